"""How far `auto` is from the best single algorithm on the VGG-16 conv layers and on
first layers with short sums: every algorithm that can serve a layer, weights prepacked
(fc.prepare_conv2d), calls interleaved, medians; prints each layer's times, the best, the
rule's choice and its time over the best's.

    python scripts/bench_auto_choice.py --threads 1 2 [--batch 1] [--repeats 7]
                                        [--sets vgg16 first cifar]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import _tree  # noqa: E402,F401  (the repository's fastconv first, as bench/ does)

import argparse
import time

import numpy as np

import fastconv as fc
from fastconv import _kernels

VGG16 = [("conv1_1", 3, 64, 224), ("conv1_2", 64, 64, 224), ("conv2_1", 64, 128, 112),
         ("conv2_2", 128, 128, 112), ("conv3_1", 128, 256, 56), ("conv3_2", 256, 256, 56),
         ("conv4_1", 256, 512, 28), ("conv4_2", 512, 512, 28), ("conv5_1", 512, 512, 14)]
FIRST = [("cifar conv1_1", 3, 64, 32), ("1->16 at 32", 1, 16, 32), ("3->32 at 56", 3, 32, 56)]
CIFAR = [("cifar conv1_2", 64, 64, 32), ("cifar conv2_1", 64, 128, 16),
         ("cifar conv2_2", 128, 128, 16), ("cifar conv3_1", 128, 256, 8),
         ("cifar conv3_2", 256, 256, 8), ("cifar conv4_1", 256, 512, 4),
         ("cifar conv4_2", 512, 512, 4), ("cifar conv5_1", 512, 512, 2)]
SETS = {"vgg16": VGG16, "first": FIRST, "cifar": CIFAR}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--sets", nargs="+", choices=sorted(SETS), default=["vgg16", "first"],
                    help="layer sets: VGG-16's convs, short-sum first layers, CIFAR VGG's convs")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"ISA {_kernels.get_isa()}, batch {args.batch}, medians of {args.repeats}")
    for threads in args.threads:
        fc.set_num_threads(threads)
        for name, ci, co, hw in [layer for s in args.sets for layer in SETS[s]]:
            w = (rng.standard_normal((co, ci, 3, 3)) * np.sqrt(2 / (9 * ci))).astype(np.float32)
            x = rng.standard_normal((args.batch, ci, hw, hw)).astype(np.float32)
            chosen = _kernels.conv2d_choose(x.shape, w.shape, (1, 1), (1, 1, 1, 1), (1, 1), 1)
            runs = {}
            for algo in fc.conv_algorithms():
                try:
                    f = fc.prepare_conv2d(w, None, padding=1, algo=algo, relu=True)
                    f(x)
                except ValueError:      # e.g. Winograd cannot serve it
                    continue
                runs[algo] = f
            times = {a: [] for a in runs}
            for _ in range(args.repeats):
                for algo, f in runs.items():
                    t = time.perf_counter()
                    f(x)
                    times[algo].append(time.perf_counter() - t)
            med = {a: float(np.median(v)) * 1e3 for a, v in times.items()}
            best = min(med, key=med.get)
            cells = " ".join(f"{a} {m:.3f}" for a, m in med.items())
            print(f"{threads} thread(s) {name:14s} {cells} | best {best}, auto {chosen} "
                  f"({med[chosen] / med[best]:.2f}x the best)", flush=True)


if __name__ == "__main__":
    main()
