"""The direct convolution into NCHW8c against the NCHW algorithms, on VGG-16's 3x3 layers.

Every layer prepacked, batch 1, bias + ReLU, outputs and workspaces preallocated, timed
interleaved in one process (medians of --rounds calls each): the blocked conv from a
blocked input (from the NCHW image for the 3-channel first layer) against direct, im2col
and winograd on NCHW. Prints ms and GFLOP/s (direct-equivalent: 2 x MACs of the direct
conv).

    python scripts/bench_nchw8c_conv.py --threads 1 --rounds 7
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
from fastconv import _kernels as K  # noqa: E402

LAYERS = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56),
          (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 14)]
ONE, PAD = (1, 1), (1, 1, 1, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    t = a.threads
    fc.set_num_threads(t)
    print(f"uptime: {os.popen('uptime').read().strip()}; threads {t}; isa {K.get_isa()}; "
          f"FMA peak {K.fma_peak(t, 0.3):.1f} GFLOP/s")
    rng = np.random.default_rng(0)
    for ci, co, hw in LAYERS:
        x = rng.standard_normal((1, ci, hw, hw)).astype(np.float32)
        w = (rng.standard_normal((co, ci, 3, 3)) * (2 / (9 * ci)) ** 0.5).astype(np.float32)
        b = rng.standard_normal(co).astype(np.float32)
        xin = x if ci < 8 else fc.to_nchw8c(x)
        blob8 = K.conv2d_nchw8c_pack(x.shape, w, b, ONE, PAD, ONE)
        ws8 = np.empty(max(1, K.conv2d_nchw8c_workspace_bytes(x.shape, w.shape, ONE, PAD, ONE,
                                                              xin.ndim == 5)), np.uint8)
        # outputs preallocated (a fresh 12.8 MB array per call would time its page faults)
        y8 = np.empty((1, -(-co // 8), hw, hw, 8), np.float32)
        y = np.empty((1, co, hw, hw), np.float32)
        runs = {"nchw8c": lambda: K.conv2d_nchw8c_run(xin, blob8, w.shape, ONE, PAD, ONE, True,
                                                      t, out=y8, workspace=ws8)}
        for algo in ("direct", "im2col", "winograd"):
            blob, _ = K.conv2d_pack(x.shape, w, b, ONE, PAD, ONE, 1, algo)
            ws = np.empty(max(1, K.conv2d_run_workspace_bytes(x.shape, blob, w.shape, ONE, PAD,
                                                              ONE, 1, t)), np.uint8)
            runs[algo] = (lambda blob=blob, ws=ws:
                          K.conv2d_run(x, blob, w.shape, ONE, PAD, ONE, 1, True, t, out=y,
                                       workspace=ws))
        ts = {k: [] for k in runs}
        for f in runs.values():
            f()
        for _ in range(a.rounds):
            for k, f in runs.items():
                t0 = time.perf_counter()
                f()
                ts[k].append(time.perf_counter() - t0)
        flop = 2 * ci * co * 9 * hw * hw
        cells = " ".join(f"{k} {statistics.median(v) * 1e3:7.2f} ms "
                         f"({flop / statistics.median(v) / 1e9:4.0f})" for k, v in ts.items())
        print(f"{ci:4d}->{co:4d} {hw:3d}x{hw:<3d} {cells}")


if __name__ == "__main__":
    main()
