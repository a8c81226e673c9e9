"""3x3 convolutions on tiny maps (1..16 output pixels): fastconv direct / im2col vs
onnxruntime (one Conv node), prepacked weights, fused ReLU, weights cached or evicted.

"evicted": a 256 MB array is summed before each timed call, so the prepacked weights
come from DRAM (with --wake, a small fastconv conv then wakes the OpenMP workers). Trials are interleaved (every engine once per round, rounds repeated),
the figure is the median per engine, in ms.

    python scripts/bench_tiny_conv.py --threads 1 --rounds 30
    python scripts/bench_tiny_conv.py --path /tmp/fc_before   # another fastconv build
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

SHAPES = [  # (batch, Ci, H, W, Co, pad)
    (1, 512, 2, 2, 512, 1),
    (1, 512, 1, 1, 512, 1),
    (1, 512, 4, 4, 512, 0),
    (1, 512, 3, 3, 512, 1),
    (1, 512, 4, 4, 512, 1),
    (4, 512, 2, 2, 512, 1),
    (8, 512, 2, 2, 512, 1),
    (1, 256, 2, 2, 256, 1),
]


def ort_session(w, b, pad, threads):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    co, ci = w.shape[:2]
    node = helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[pad] * 4,
                            kernel_shape=[3, 3])
    relu = helper.make_node("Relu", ["c"], ["y"])
    g = helper.make_graph(
        [node, relu], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return lambda x: s.run(None, {"x": x})[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--path", default=None, help="directory holding the fastconv to test")
    ap.add_argument("--shapes", default=None, help="indices into SHAPES, e.g. 0,1")
    ap.add_argument("--no-ort", action="store_true")
    ap.add_argument("--wake", action="store_true",
                    help="evicted: after the eviction, run a small fastconv conv (16 -> 16 on "
                         "2x2) so that the OpenMP workers are awake when the timed call starts "
                         "(on a busy machine a sleeping worker can wait a scheduler slice)")
    a = ap.parse_args()
    # the worktree's fastconv unless told otherwise (not an installed copy)
    sys.path.insert(0, a.path or str(Path(__file__).resolve().parent.parent))
    import fastconv as fc
    fc.set_num_threads(a.threads)
    big = np.ones(256 * 1024 * 1024 // 8)
    shapes = SHAPES if a.shapes is None else [SHAPES[int(i)] for i in a.shapes.split(",")]
    print(f"fastconv {fc.__file__} isa={fc.cpu_info().get('isa')} threads={a.threads}")
    print(f"{'shape':>24} {'mode':>8} " + " ".join(f"{e:>8}" for e in ("direct", "im2col", "ort")))
    rng = np.random.default_rng(0)
    wx = np.ones((1, 16, 2, 2), np.float32)
    wake = fc.prepare_conv2d(np.ones((16, 16, 3, 3), np.float32), None, padding=1, algo="direct")
    for (n, ci, h, wd, co, pad) in shapes:
        x = rng.standard_normal((n, ci, h, wd), dtype=np.float32)
        w = (rng.standard_normal((co, ci, 3, 3), dtype=np.float32) * 0.05).astype(np.float32)
        b = rng.standard_normal(co, dtype=np.float32)
        eng = {al: fc.prepare_conv2d(w, b, padding=pad, algo=al, relu=True)
               for al in ("direct", "im2col")}
        ref = eng["im2col"](x)
        if not a.no_ort:
            eng["ort"] = ort_session(w, b, pad, a.threads)
        for k, f in eng.items():
            y = f(x)
            assert np.allclose(y, ref, atol=1e-3 * max(1.0, np.abs(ref).max())), k
        for mode in ("cached", "evicted"):
            t = {k: [] for k in eng}
            for _ in range(a.rounds):
                for k, f in eng.items():
                    if mode == "evicted":
                        big.sum()
                        if a.wake:
                            wake(wx)
                    else:
                        f(x)
                    t0 = time.perf_counter()
                    f(x)
                    t[k].append(time.perf_counter() - t0)
            med = {k: 1e3 * float(np.median(v)) for k, v in t.items()}
            cells = " ".join(f"{med[k]:8.3f}" if k in med else f"{'-':>8}"
                             for k in ("direct", "im2col", "ort"))
            print(f"{f'{n}x{ci}x{h}x{wd}->{co} p{pad}':>24} {mode:>8} {cells}", flush=True)


if __name__ == "__main__":
    main()
