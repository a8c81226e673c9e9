"""Conv + ReLU + 2x2 max pool fused (plan.ConvStep maxpool2) against the same model with
the fusion off (Model.fuse_pool = False): whole VGG-16 (224x224) and, per fused step,
its time against the conv step + pool step it replaces. Two models, trials interleaved
(round by round, whole network then every step once, the order swapped every round),
medians in ms. --cpu-time (1 thread) times by the calling thread's CPU time, which a
shared machine disturbs less.
    python scripts/bench_pool_fusion.py [--threads 1] [--rounds 9] [--batch 1] [--cpu-time]
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
    args, clock = _vgg16_ab.parse(__doc__, "--rounds", 9)
    fused = models.vgg16()
    plain = models.vgg16()
    plain.fuse_pool = False
    x = np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224)).astype(np.float32)
    yf, yp = fused(x), plain(x)
    print("outputs bit-identical:", bool(np.array_equal(yf.view(np.uint32), yp.view(np.uint32))))
    key = x.shape[0]
    whole = {"fused": [], "unfused": []}
    steps = {"fused": {}, "unfused": {}}
    if args.cpu_time:  # plan.profile times with time.perf_counter: give it the CPU clock
        import fastconv.plan as plan_mod
        plan_mod.time = type("clock", (), {"perf_counter": staticmethod(time.thread_time)})
    for r in range(args.rounds):
        pair = (("fused", fused), ("unfused", plain))
        pair = pair if r % 2 == 0 else pair[::-1]
        for name, m in pair:
            t = clock()
            m(x)
            whole[name].append(clock() - t)
        for name, m in pair:
            for label, ts in m.plan.profile({"input": x}, key, 1).items():
                steps[name].setdefault(label, []).extend(ts)
    med = {n: {lb: statistics.median(v) for lb, v in s.items()} for n, s in steps.items()}
    print(f"\nVGG-16 batch {args.batch}, {args.threads} thread(s), medians of {args.rounds} "
          f"interleaved rounds" + (" (thread CPU time)" if args.cpu_time else ""))
    for n in ("fused", "unfused"):
        print(f"  whole network {n:8s} median {1e3 * statistics.median(whole[n]):8.1f} ms"
              f"   min {1e3 * min(whole[n]):8.1f} ms")
    print(f"\n  {'fused step':34s} {'algo':>9s} {'fused':>8s} {'conv':>8s} {'pool':>8s} "
          f"{'conv+pool':>9s} {'saved':>7s}")
    tot_f = tot_u = 0.0
    for st in fused.plan.steps:
        if not getattr(st, "maxpool2", False):
            continue
        conv_label, pool_label = "+".join(st.nodes[:-1]), st.nodes[-1]
        f = med["fused"][st.label]
        c, p = med["unfused"][conv_label], med["unfused"][pool_label]
        tot_f += f
        tot_u += c + p
        print(f"  {st.label:34s} {st.algo_for(key):>9s} {f:8.2f} {c:8.2f} {p:8.2f} {c + p:9.2f} "
              f"{c + p - f:7.2f}")
    print(f"  {'total':34s} {'':>9s} {tot_f:8.2f} {'':>8s} {'':>8s} {tot_u:9.2f} "
          f"{tot_u - tot_f:7.2f}")
    print("uptime:", os.popen("uptime").read().strip())


if __name__ == "__main__":
    main()
