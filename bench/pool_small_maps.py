#!/usr/bin/env python
"""Pooling on the small maps of a CIFAR-style VGG: fastconv against ONNX Runtime.

    python bench/pool_small_maps.py [--batches 1,64] [--threads 1,2] [--repeats 7]
                                    [--op max|avg] [--kernel 2] [--stride 2]

For each shape (C x H x W) and batch / thread count: one pooling node in ORT
(intra_op_num_threads = threads, no spinning) and fastconv's kernel as the graph step
calls it (_kernels.max_pool2d / avg_pool2d into a preallocated output). Trials are
interleaved (fastconv, ORT, fastconv, ...); a trial repeats the call until it lasts about
20 ms and counts the mean; the table shows the median (and the minimum, less sensitive to
other load on a shared machine) over repeats in ms.

On a loaded 2-core machine run the 2-thread rows with OMP_WAIT_POLICY=passive (what ORT's
allow_spinning=0 does for its pool): with libgomp's default spinning, a thread that waits
at the join holds its core while the other thread of the team queues behind another
process, and every parallel call then costs a scheduler slice (4-12 ms measured).
"""
import argparse
import time

import numpy as np

SHAPES = ((64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2))


def trial(f, target=0.02):
    n, t = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        t = time.perf_counter() - t0
        if t >= target:
            return t / n
        n = max(n * 2, int(n * target / max(t, 1e-9)) + 1)


def ort_session(op, c, h, w, n, k, s, threads):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    node = helper.make_node("MaxPool" if op == "max" else "AveragePool", ["x"], ["y"],
                            kernel_shape=[k, k], strides=[s, s])
    g = helper.make_graph([node], "pool",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, c, h, w])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, c, oh, ow])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--op", default="max", choices=("max", "avg"))
    ap.add_argument("--kernel", type=int, default=2)
    ap.add_argument("--stride", type=int, default=2)
    a = ap.parse_args()
    from fastconv import _kernels as K

    k, s = a.kernel, a.stride
    print(f"{a.op} pool {k}x{k} stride {s}, isa {K.get_isa()}, median of {a.repeats} "
          "interleaved trials, ms")
    print("| batch | threads | C x H x W | fastconv median | ORT median | fastconv / ORT | "
          "fastconv min | ORT min | fastconv / ORT (min) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in [int(v) for v in a.batches.split(",")]:
        for t in [int(v) for v in a.threads.split(",")]:
            for c, h, w in SHAPES:
                if h < k:
                    continue
                rng = np.random.default_rng(0)
                x = rng.standard_normal((n, c, h, w)).astype(np.float32)
                oh, ow = (h - k) // s + 1, (w - k) // s + 1
                y = np.empty((n, c, oh, ow), np.float32)
                sess = ort_session(a.op, c, h, w, n, k, s, t)
                if a.op == "max":
                    fcall = lambda: K.max_pool2d(x, (k, k), (s, s), (0, 0, 0, 0), (1, 1),
                                                 False, t, out=y)
                else:
                    fcall = lambda: K.avg_pool2d(x, (k, k), (s, s), (0, 0, 0, 0), False,
                                                 False, t, out=y)
                feed = {"x": x}
                ocall = lambda: sess.run(None, feed)
                fcall()
                ref = ocall()[0]
                assert np.array_equal(y, ref) if a.op == "max" else np.allclose(y, ref, rtol=1e-5, atol=1e-6)
                tf, to = [], []
                for r in range(a.repeats):
                    pair = [(fcall, tf), (ocall, to)]
                    for f, acc in (pair if r % 2 == 0 else pair[::-1]):
                        acc.append(trial(f))
                mf, mo = np.median(tf) * 1e3, np.median(to) * 1e3
                lf, lo = min(tf) * 1e3, min(to) * 1e3
                print(f"| {n} | {t} | {c}x{h}x{w} | {mf:.4f} | {mo:.4f} | {mf / mo:.2f} | "
                      f"{lf:.4f} | {lo:.4f} | {lf / lo:.2f} |", flush=True)


if __name__ == "__main__":
    main()
