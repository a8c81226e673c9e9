"""Pooling speed, one pytest-benchmark group per row of fastconv/data/shapes/pool2d.csv
(op = max, or avg with count_include_pad=False as in ONNX's AveragePool default).

Rows: fastconv, ONNX Runtime, PyTorch (the peers skipped with a reason when missing).
Throughput is reported in GB/s of the minimum traffic: the input read once plus the
output written once. Results are checked once against NumPy; no time is asserted.
"""
import functools

from fastconv._bench_peers import (POOL_TOL, fastconv_pool_runner, numpy_pool2d,
                                   onnx_pool, ort_runner, torch_pool_runner)
from fastconv._bench_shapes import load_pool_shapes, make_pool_input

_SHAPES = {s.name: s for s in load_pool_shapes()}
_TOL = POOL_TOL


@functools.lru_cache(maxsize=2)
def _case(name):
    s = _SHAPES[name]
    x = make_pool_input(s)
    return x, numpy_pool2d(x, s.op, s.kernel, s.stride, s.padding)


def _group(s):
    return f"pool2d {s.name} ({s.bytes / 1e6:.1f} MB)"


def test_pool_fastconv(run_bench, fc, pool_shape):
    s = pool_shape
    x, ref = _case(s.name)
    run_bench(_group(s), "fastconv", fastconv_pool_runner(s, x), ref=ref, tol=_TOL,
              work=s.bytes, unit="GB/s")


def test_pool_onnxruntime(run_bench, ort, threads, pool_shape):
    s = pool_shape
    x, ref = _case(s.name)
    onnx, rt = ort
    run_bench(_group(s), "onnxruntime", ort_runner(rt, onnx_pool(onnx, s), threads, x), ref=ref,
              tol=_TOL, work=s.bytes, unit="GB/s")


def test_pool_torch(run_bench, torch, pool_shape):
    s = pool_shape
    x, ref = _case(s.name)
    run_bench(_group(s), "torch", torch_pool_runner(torch, s, x), ref=ref, tol=_TOL,
              work=s.bytes, unit="GB/s")
