"""Winograd vs direct vs im2col on the 3x3 stride-1 layers of fastconv/data/shapes/conv2d.csv.

Prepared (packed-once) convolutions, as a compiled model runs them. Trials of the
algorithms are interleaved, so machine noise hits them alike; the medians are printed as
GFLOP/s-equivalent (2 * direct-convolution MACs / time).
    python scripts/bench_winograd.py [--threads 1 2] [--repeats 7] [--filter vgg16]
    python scripts/bench_winograd.py --threads 1 --cpu-time   # on a shared machine
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import _tree  # noqa: E402,F401  (the repository's fastconv first, as bench/ does)

import argparse
import csv
import os
import statistics
import time

import numpy as np

from fastconv import _kernels as K

ALGOS = ("direct", "im2col", "winograd", "winograd2")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--filter", default="vgg16")
    ap.add_argument("--algos", nargs="+", default=list(ALGOS))
    ap.add_argument("--cpu-time", action="store_true",
                    help="time by the calling thread's CPU time (1 thread only): steadier "
                         "than wall time when other jobs share the cores")
    args = ap.parse_args()
    clock = time.thread_time if args.cpu_time else time.perf_counter
    if args.cpu_time and args.threads != [1]:
        ap.error("--cpu-time measures one thread: use --threads 1")
    from fastconv._bench_shapes import shapes_file
    with shapes_file("conv2d.csv").open() as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(0)
    print("uptime:", os.popen("uptime").read().strip())
    print("layer".ljust(26), "T", " ".join(a.rjust(10) for a in args.algos), "  auto")
    for r in rows:
        if args.filter not in r["name"]:
            continue
        n, c, h, w, co = (int(r[k]) for k in ("batch", "in_channels", "height", "width",
                                                 "out_channels"))
        if (int(r["kernel_h"]), int(r["kernel_w"]), int(r["stride"]), int(r["dilation"]),
                int(r["groups"])) != (3, 3, 1, 1, 1):
            continue
        pad = int(r["padding"])
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = (rng.standard_normal((co, c, 3, 3)) * np.sqrt(2.0 / (9 * c))).astype(np.float32)
        b = rng.standard_normal(co).astype(np.float32)
        pads = (pad,) * 4
        flops = 2.0 * n * co * h * w * c * 9
        blobs = {a: K.conv2d_pack(x.shape, wt, b, (1, 1), pads, (1, 1), 1, a)[0]
                 for a in args.algos}
        for nt in args.threads:
            outs = {}
            times = {a: [] for a in args.algos}
            ws = {a: np.empty(K.conv2d_run_workspace_bytes(x.shape, blobs[a], wt.shape, (1, 1), pads,
                                                           (1, 1), 1, nt), np.uint8)
                  for a in args.algos}
            for a in args.algos:  # warm-up
                outs[a] = K.conv2d_run(x, blobs[a], wt.shape, (1, 1), pads, (1, 1), 1, True, nt,
                                       workspace=ws[a])
            for _ in range(args.repeats):
                for a in args.algos:
                    t = clock()
                    K.conv2d_run(x, blobs[a], wt.shape, (1, 1), pads, (1, 1), 1, True, nt,
                                 out=outs[a], workspace=ws[a])
                    times[a].append(clock() - t)
            auto = K.conv2d_choose(x.shape, wt.shape, (1, 1), pads, (1, 1), 1)
            print(r["name"].ljust(26), nt,
                  " ".join(f"{flops / statistics.median(times[a]) / 1e9:10.1f}" for a in args.algos),
                  " ", auto, flush=True)
    print("uptime:", os.popen("uptime").read().strip())


if __name__ == "__main__":
    main()
