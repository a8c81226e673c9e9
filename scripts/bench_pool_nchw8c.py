"""NCHW8c pooling and reorders against the NCHW kernels, 1 thread, one process, trials
interleaved (every function once per round), medians in ms / us:
  - 2x2/2 max and average pooling of 64 channels at 224x224: blocked [1, 8, 224, 224, 8]
    against NCHW [1, 64, 224, 224] (memory-bound), and to_nchw8c / from_nchw8c of it;
  - the same pools on cache-resident VGG maps (512x28x28, 512x14x14, 256x56x56).
    python scripts/bench_pool_nchw8c.py [--isa scalar|avx2|avx512] [--rounds 20]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import _tree  # noqa: E402,F401  (the repository's fastconv first, as bench/ does)

import fastconv._kernels as k  # noqa: E402


def medians(fns, rounds):
    for f in fns.values():
        f()
    ts = {n: [] for n in fns}
    for _ in range(rounds):
        for n, f in fns.items():
            t0 = time.perf_counter()
            f()
            ts[n].append(time.perf_counter() - t0)
    return {n: float(np.median(v)) for n, v in ts.items()}


def pools(x, c, rounds):
    xb = k.to_nchw8c(x, 1)
    a = ((2, 2), (2, 2), (0, 0, 0, 0))
    n, _, h, w = x.shape
    yb = np.empty((n, xb.shape[1], h // 2, w // 2, 8), np.float32)
    y = np.empty((n, c, h // 2, w // 2), np.float32)
    xo = np.empty_like(x)
    m = medians({
        "max nchw8c": lambda: k.max_pool2d_nchw8c(xb, c, *a, (1, 1), False, 1, out=yb),
        "max nchw": lambda: k.max_pool2d(x, *a, (1, 1), False, 1, out=y),
        "avg nchw8c": lambda: k.avg_pool2d_nchw8c(xb, c, *a, False, True, 1, out=yb),
        "avg nchw": lambda: k.avg_pool2d(x, *a, False, True, 1, out=y),
        "to_nchw8c": lambda: k.to_nchw8c(x, 1, out=xb),
        "from_nchw8c": lambda: k.from_nchw8c(xb, c, 1, out=xo),
    }, rounds)
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--isa", default=None)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    if args.isa:
        k.set_isa(args.isa)
    print(f"isa={k.get_isa()}, 1 thread, medians of {args.rounds}")
    rng = np.random.default_rng(0)
    m = pools(rng.standard_normal((1, 64, 224, 224)).astype(np.float32), 64, args.rounds)
    for n, v in m.items():
        print(f"  [1,64,224,224] {n:12s} {v * 1e3:7.3f} ms")
    for op in ("max", "avg"):
        print(f"  {op}: nchw8c / nchw = {m[op + ' nchw8c'] / m[op + ' nchw']:.2f}")
    for c, h in ((512, 28), (512, 14), (256, 56)):
        m = pools(rng.standard_normal((1, c, h, h)).astype(np.float32), c, args.rounds * 10)
        print(f"  [1,{c},{h},{h}] " + "; ".join(
            f"{op}: nchw8c {m[op + ' nchw8c'] * 1e6:.1f} us, nchw {m[op + ' nchw'] * 1e6:.1f} us"
            f" ({m[op + ' nchw8c'] / m[op + ' nchw']:.2f}x)" for op in ("max", "avg")))


if __name__ == "__main__":
    main()
