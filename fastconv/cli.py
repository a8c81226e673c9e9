"""Command line: `fastconv demo` (or `python -m fastconv demo`) and `fastconv info`.

The demo runs a small VGG-style stack on random data with each convolution algorithm and
prints the median time of every layer, so a fresh install shows at once that the kernels
work and where the time goes.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

import fastconv as fc

# (name, kind, args): a VGG-style stack for a 3 x 64 x 64 input.
DEMO_STACK = [
    ("conv1", "conv", dict(ci=3, co=32)),
    ("pool1", "maxpool", {}),
    ("conv2", "conv", dict(ci=32, co=64)),
    ("pool2", "maxpool", {}),
    ("conv3_1", "conv", dict(ci=64, co=128)),
    ("conv3_2", "conv", dict(ci=128, co=128)),
    ("pool3", "maxpool", {}),
    ("gap", "gap", {}),
    ("fc", "linear", dict(ci=128, co=10)),
    ("softmax", "softmax", {}),
]


def _demo_weights(rng: np.random.Generator) -> dict:
    """He-initialised weights for DEMO_STACK, fixed by the seed."""
    params = {}
    for name, kind, a in DEMO_STACK:
        if kind == "conv":
            std = np.sqrt(2.0 / (a["ci"] * 9))
            params[name] = (rng.standard_normal((a["co"], a["ci"], 3, 3)).astype(np.float32) * std,
                            np.zeros(a["co"], np.float32))
        elif kind == "linear":
            std = np.sqrt(1.0 / a["ci"])
            params[name] = (rng.standard_normal((a["co"], a["ci"])).astype(np.float32) * std,
                            np.zeros(a["co"], np.float32))
    return params


def _layer(kind: str, x: np.ndarray, p, algo: str) -> np.ndarray:
    if kind == "conv":
        return fc.relu(fc.conv2d(x, p[0], p[1], padding=1, algo=algo))
    if kind == "maxpool":
        return fc.max_pool2d(x, 2)
    if kind == "gap":
        return fc.global_avg_pool2d(x).reshape(x.shape[0], -1)
    if kind == "linear":
        return fc.linear(x, p[0], p[1])
    return fc.softmax(x, axis=-1)


def run_demo(batch: int, size: int, repeats: int, seed: int, out=sys.stdout) -> dict:
    """Run the demo stack with every algorithm; returns {algo: {layer: median ms}}."""
    rng = np.random.default_rng(seed)
    params = _demo_weights(rng)
    x0 = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
    info = fc.cpu_info()
    print(f"fastconv {fc.__version__}: ISA {info['isa']}, {info['num_threads']} thread(s), "
          f"OpenMP {'on' if info['openmp'] else 'off'}, {info['compiler']}", file=out)
    print(f"input {x0.shape}, median of {repeats} runs per layer (ms)\n", file=out)
    algos = ("direct", "im2col", "auto")
    times = {a: {} for a in algos}
    outputs = {}
    for algo in algos:
        x = x0
        for name, kind, _ in DEMO_STACK:
            samples = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                y = _layer(kind, x, params.get(name), algo)
                samples.append((time.perf_counter() - t0) * 1e3)
            times[algo][name] = statistics.median(samples)
            x = y
        outputs[algo] = x
    shapes, x = {}, x0
    for name, kind, _ in DEMO_STACK:
        x = _layer(kind, x, params.get(name), "auto")
        shapes[name] = x.shape
    print(f"{'layer':<10}{'output shape':<22}" + "".join(f"{a:>10}" for a in algos), file=out)
    for name, _, _ in DEMO_STACK:
        print(f"{name:<10}{str(shapes[name]):<22}"
              + "".join(f"{times[a][name]:>10.3f}" for a in algos), file=out)
    print(f"{'total':<32}" + "".join(f"{sum(times[a].values()):>10.3f}" for a in algos), file=out)
    spread = max(float(np.max(np.abs(outputs[a] - outputs["auto"]))) for a in algos)
    print(f"\nlargest difference between the algorithms' class probabilities: {spread:.2e}",
          file=out)
    print(f"predicted class per image: {np.argmax(outputs['auto'], axis=1).tolist()}", file=out)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastconv", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a small VGG-style stack with each algorithm")
    demo.add_argument("--batch", type=int, default=1)
    demo.add_argument("--size", type=int, default=64, help="input height and width")
    demo.add_argument("--repeats", type=int, default=5)
    demo.add_argument("--threads", type=int, default=None)
    demo.add_argument("--seed", type=int, default=0)
    sub.add_parser("info", help="print the CPU and build information as JSON")
    args = parser.parse_args(argv)
    if args.command == "info":
        print(json.dumps(fc.cpu_info(), indent=2))
        return 0
    if args.batch < 1 or args.size < 8 or args.repeats < 1:
        parser.error("need --batch >= 1, --size >= 8 and --repeats >= 1")
    if args.threads is not None:
        fc.set_num_threads(args.threads)
    run_demo(args.batch, args.size, args.repeats, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
