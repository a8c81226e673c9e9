"""Whole networks and their steps with NCHW activations against NCHW8c ones (Model.layout).

Two copies of each network, the same weights, one per layout, timed interleaved in one
process (medians of --rounds calls each), then every step of both with model.profile.
Prints one table per network and batch: the network latency of each layout and their
ratio, then the steps of the blocked copy beside the matching NCHW step (a conv with a
fused pool in NCHW appears as conv and pool in NCHW8c, which does not fuse pools).

    python scripts/bench_layout.py --threads 1 --rounds 7
    python scripts/bench_layout.py --threads 2 --networks cifar_vgg --batches 1,64
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import fastconv as fc  # noqa: E402
from fastconv import models  # noqa: E402

NETWORKS = {"vgg16": (lambda: models.vgg16(), "1,8"),
            "cifar_vgg": (lambda: models.cifar_vgg(), "1,64")}


def median_ms(fn, rounds):
    ts = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--networks", default="vgg16,cifar_vgg")
    ap.add_argument("--batches", default=None, help="comma list (default: per network)")
    ap.add_argument("--no-steps", dest="steps", action="store_false")
    a = ap.parse_args()
    fc.set_num_threads(a.threads)
    print(f"uptime: {os.popen('uptime').read().strip()}; threads {a.threads}; "
          f"isa {fc.cpu_info().get('isa')}; FMA peak {fc._kernels.fma_peak(a.threads):.1f} "
          f"GFLOP/s")
    for name in a.networks.split(","):
        build, default_batches = NETWORKS[name]
        nchw, blocked = build(), build()
        blocked.layout = "nchw8c"
        (in_name,) = nchw.input_names
        shape = nchw.input_shapes[in_name]
        for batch in [int(b) for b in (a.batches or default_batches).split(",")]:
            x = np.random.default_rng(1).standard_normal((batch,) + shape).astype(np.float32)
            diff = np.abs(nchw(x) - blocked(x)).max()
            for _ in range(2):       # warm both (arenas, first-touch)
                nchw(x)
                blocked(x)
            t = {"nchw": [], "nchw8c": []}
            for _ in range(a.rounds):
                t["nchw"].append(median_ms(lambda: nchw(x), 1))
                t["nchw8c"].append(median_ms(lambda: blocked(x), 1))
            mn, mb = statistics.median(t["nchw"]), statistics.median(t["nchw8c"])
            print(f"\n## {name} batch {batch}: nchw {mn:.2f} ms, nchw8c {mb:.2f} ms, "
                  f"nchw8c / nchw {mb / mn:.3f} (max |diff| of the outputs {diff:.2e})")
            if not a.steps:
                continue
            pn, pb = nchw.profile(x, repeats=3), blocked.profile(x, repeats=3)
            print(f"{'nchw8c step':44s} {'ms':>8s}   {'nchw step':44s} {'ms':>8s}")
            nsteps = list(pn.items())
            for label, ms in pb.items():
                head = label.split("+")[0]
                match = next(((k, v) for k, v in nsteps if k.split("+")[0] == head), None)
                other = f"{match[0]:44s} {match[1]:8.2f}" if match else ""
                print(f"{label:44s} {ms:8.2f}   {other}")
            print(f"{'sum':44s} {sum(pb.values()):8.2f}   {'sum':44s} {sum(pn.values()):8.2f}")


if __name__ == "__main__":
    main()
