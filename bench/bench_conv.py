"""Conv2d speed, one pytest-benchmark group per layer shape of the package's
fastconv/data/shapes/conv2d.csv.

Rows of each group: one per conv algorithm the engine has (``fc.conv_algorithms()``:
direct, im2col, ...; the weights packed once, as ``fastconv bench`` and a compiled model
do; an algorithm that cannot serve the layer is skipped with its reason and listed as
n/a in the summary), the NumPy BLAS baseline (im2col with sliding_window_view, then
`w2d @ cols`), ONNX Runtime and PyTorch (skipped with a reason when not installed). All
at FASTCONV_BENCH_THREADS threads (default 1). Each row's result is checked once against
the NumPy reference before it is timed; no time is asserted.
"""
import functools

from fastconv._bench_peers import (CANNOT_SERVE, CONV_TOL, fastconv_conv_runner,
                                   numpy_conv_runner, numpy_im2col_conv2d, onnx_conv,
                                   ort_runner, torch_conv_runner)
from fastconv._bench_shapes import load_conv_shapes, make_conv_inputs
import pytest

_SHAPES = {s.name: s for s in load_conv_shapes()}


@functools.lru_cache(maxsize=2)
def _case(name):
    """Inputs and the NumPy reference output of one shape (built once, not timed)."""
    s = _SHAPES[name]
    x, w, b = make_conv_inputs(s)
    ref = numpy_im2col_conv2d(x, w, b, **s.kwargs()) if s.groups == 1 else None
    return x, w, b, ref


def _group(s):
    return f"conv2d {s.name} ({s.flops / 1e9:.2f} GFLOP)"


def test_conv_fastconv(run_bench, not_served, fc, conv_shape, algo):
    s = conv_shape
    x, w, b, ref = _case(s.name)
    try:
        fn = fastconv_conv_runner(s, x, w, b, algo)
    except CANNOT_SERVE as e:
        not_served(_group(s), f"fastconv_{algo}", f"{type(e).__name__}: {e}")
    run_bench(_group(s), f"fastconv_{algo}", fn, ref=ref, tol=CONV_TOL, work=s.flops)


def test_conv_numpy_im2col(run_bench, conv_shape):
    s = conv_shape
    x, w, b, ref = _case(s.name)
    if s.groups != 1:
        pytest.skip("the NumPy im2col baseline covers groups=1 only")
    run_bench(_group(s), "numpy_im2col_blas", numpy_conv_runner(s, x, w, b), work=s.flops)


def test_conv_onnxruntime(run_bench, ort, threads, conv_shape):
    s = conv_shape
    x, w, b, ref = _case(s.name)
    onnx, rt = ort
    run_bench(_group(s), "onnxruntime", ort_runner(rt, onnx_conv(onnx, s, w, b), threads, x),
              ref=ref, tol=CONV_TOL, work=s.flops)


def test_conv_torch(run_bench, torch, conv_shape):
    s = conv_shape
    x, w, b, ref = _case(s.name)
    run_bench(_group(s), "torch", torch_conv_runner(torch, s, x, w, b), ref=ref,
              tol=CONV_TOL, work=s.flops)
