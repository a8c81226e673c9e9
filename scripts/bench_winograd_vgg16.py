"""Whole VGG-16 (224x224, batch 1 by default): `auto` with Winograd against the same model
with every layer auto sends to Winograd forced back to `direct` (the rule before
Winograd existed). Two models, trials interleaved, medians (and minima) in ms.
    python scripts/bench_winograd_vgg16.py [--threads 1] [--repeats 7] [--batch 1] [--cpu-time]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import _tree  # noqa: E402,F401  (the repository's fastconv first, as bench/ does)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _vgg16_ab  # noqa: E402

import os
import statistics
import time

import numpy as np

from fastconv import models


def main():
    args, clock = _vgg16_ab.parse(__doc__, "--repeats", 7)
    t = time.perf_counter()
    wino = models.vgg16()
    wino(np.zeros((1, 3, 224, 224), np.float32))
    print(f"build + compile + first run (auto, Winograd): {time.perf_counter() - t:.2f} s")
    plain = models.vgg16()
    forced = []
    for name, info in plain.plan.node_info.items():
        if info.get("algo") in ("winograd", "winograd2"):
            forced.append(name)
    for name in forced:
        plain.set_algo(name, "direct")
    print("auto picks Winograd for:", ", ".join(
        f"{n}={wino.plan.node_info[n]['algo']}" for n in forced))
    x = np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224)).astype(np.float32)
    ya, yb = wino(x), plain(x)
    print(f"max |auto - direct| / max |direct| = {np.abs(ya - yb).max() / np.abs(yb).max():.2e}")
    ta, tb = [], []
    for _ in range(args.repeats):
        t = clock(); wino(x); ta.append(clock() - t)
        t = clock(); plain(x); tb.append(clock() - t)
    for label, ts in (("auto with winograd", ta), ("auto without (direct)", tb)):
        print(f"{label:24s} median {1e3 * statistics.median(ts):8.1f} ms   min {1e3 * min(ts):8.1f} ms")
    print("uptime:", os.popen("uptime").read().strip())


if __name__ == "__main__":
    main()
