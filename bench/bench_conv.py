"""Conv2d speed, one pytest-benchmark group per layer shape of bench/shapes/conv2d.csv.

Rows of each group: fastconv `direct` and `im2col`, the NumPy BLAS baseline (im2col with
sliding_window_view, then `w2d @ cols`), ONNX Runtime and PyTorch (skipped with a reason
when not installed). All at FASTCONV_BENCH_THREADS threads (default 1). Each row's result
is checked once against the NumPy reference before it is timed; no time is asserted.
"""
import functools

import pytest
from fastconv_bench_conftest import (CONV_TOL, fastconv_conv_runner, load_conv_shapes,
                                     make_conv_inputs, numpy_conv_runner,
                                     numpy_im2col_conv2d, ort_conv_runner,
                                     torch_conv_runner)

_SHAPES = {s.name: s for s in load_conv_shapes()}


@functools.lru_cache(maxsize=2)
def _case(name):
    """Inputs and the NumPy reference output of one shape (built once, not timed)."""
    s = _SHAPES[name]
    x, w, b = make_conv_inputs(s)
    ref = numpy_im2col_conv2d(x, w, b, **s.conv_kwargs())
    return x, w, b, ref


def _group(s):
    return f"conv2d {s.name} ({s.flops / 1e9:.2f} GFLOP)"


@pytest.mark.parametrize("algo", ["direct", "im2col"])
def test_conv_fastconv(run_bench, fc, conv_shape, algo):
    s = conv_shape
    x, w, b, ref = _case(s.name)
    fn = fastconv_conv_runner(fc, s, x, w, b, algo)
    try:
        fn()
    except (ValueError, NotImplementedError) as e:
        pytest.skip(f"fastconv algo={algo!r} cannot serve {s.name}: {e}")
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
    run_bench(_group(s), "onnxruntime", ort_conv_runner(onnx, rt, s, x, w, b, threads),
              ref=ref, tol=CONV_TOL, work=s.flops)


def test_conv_torch(run_bench, torch, conv_shape):
    s = conv_shape
    x, w, b, ref = _case(s.name)
    run_bench(_group(s), "torch", torch_conv_runner(torch, s, x, w, b), ref=ref,
              tol=CONV_TOL, work=s.flops)
