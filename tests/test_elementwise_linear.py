"""relu, softmax and linear (the GEMM path) against float64 NumPy references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import (
    SOFTMAX_ATOL, assert_close, available_isas, rand, ref_linear, ref_softmax, use_isa,
)

# --------------------------------------------------------------------------- relu


@pytest.mark.parametrize("shape", [(7,), (1,), (3, 5), (2, 3, 9, 7), (1, 13, 18, 17),
                                   (4, 1, 1, 1, 33), (1000,), (0,), (2, 0, 3), (16385,),
                                   (3, 40001)])
def test_relu_any_shape(fc, isa, shape):
    rng = np.random.default_rng(len(shape))
    x = rand(rng, *shape, lo=-2, hi=2)
    x0 = x.copy()
    y = fc.relu(x)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_array_equal(x, x0)   # input untouched


def test_relu_special_values(fc, isa):
    x = np.array([np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0, -1e-45, 1e-45, 3.4e38, -3.4e38]
                 * 3, np.float32)
    y = fc.relu(x)
    assert np.isnan(y[0]) and np.isnan(y[1])
    assert np.all(np.isnan(y[0::10])) and np.all(np.isnan(y[1::10]))
    expected = np.array([np.inf, 0, 0, 0, 0, 1e-45, 3.4e38, 0], np.float32)
    np.testing.assert_array_equal(y[2:10], expected)
    np.testing.assert_array_equal(y[12:20], expected)


def test_relu_nan_at_every_simd_lane(fc, isa):
    for i in range(19):
        x = np.linspace(-1, 1, 19).astype(np.float32)
        x[i] = np.nan
        y = fc.relu(x)
        assert np.isnan(y[i]), f"relu lost the NaN at index {i}"
        mask = np.arange(19) != i
        np.testing.assert_array_equal(y[mask], np.maximum(x[mask], 0))


def test_relu_noncontiguous_readonly_float64(fc):
    rng = np.random.default_rng(1)
    x = rand(rng, 6, 9, 7)
    expected = np.maximum(x, 0)
    np.testing.assert_array_equal(fc.relu(np.asfortranarray(x)), expected)
    np.testing.assert_array_equal(fc.relu(x[:, ::-1])[:, ::-1], expected)
    ro = x.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(fc.relu(ro), expected)
    y = fc.relu(x.astype(np.float64))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, expected)


# --------------------------------------------------------------------------- softmax


@given(
    shape=st.sampled_from([(5,), (3, 7), (2, 3, 9), (2, 13, 3, 4), (1, 1000), (4, 1), (1, 17, 1),
                           (2, 7, 300), (1, 5, 513), (3, 257, 2)]),
    data=st.data(), scale=st.sampled_from((1.0, 10.0, 100.0)), seed=st.integers(0, 2**31 - 1),
)
def test_softmax_matches_reference(fc, isa, shape, data, scale, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    rng = np.random.default_rng(seed)
    x = rand(rng, *shape, lo=-scale, hi=scale)
    y = fc.softmax(x, axis=axis)
    ref = ref_softmax(x, axis)
    assert y.shape == x.shape and y.dtype == np.float32
    err = float(np.max(np.abs(y - ref)))
    assert err <= SOFTMAX_ATOL, f"softmax {shape} axis={axis}: max abs err {err:.3e}"
    np.testing.assert_allclose(y.sum(axis=axis, dtype=np.float64), 1.0, atol=1e-5)


def test_softmax_default_axis_is_last(fc):
    rng = np.random.default_rng(2)
    x = rand(rng, 3, 4, 5)
    np.testing.assert_array_equal(fc.softmax(x), fc.softmax(x, axis=-1))
    np.testing.assert_array_equal(fc.softmax(x), fc.softmax(x, axis=2))


def test_softmax_is_stable_for_large_inputs(fc, isa):
    x = np.array([[1000.0, 1000.0, 999.0], [-1000.0, -1001.0, -1000.0], [88.0, 89.0, 90.0]],
                 np.float32)
    y = fc.softmax(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, ref_softmax(x), atol=SOFTMAX_ATOL)


def test_softmax_invariant_to_shift_and_handles_neg_inf(fc):
    x = np.array([[0.0, 1.0, 2.0, -np.inf]], np.float32)
    y = fc.softmax(x)
    assert y[0, 3] == 0.0
    np.testing.assert_allclose(y[0, :3], ref_softmax(x[:, :3])[0], atol=SOFTMAX_ATOL)
    np.testing.assert_allclose(fc.softmax(x + 50), y, atol=SOFTMAX_ATOL)


def test_softmax_noncontiguous(fc):
    rng = np.random.default_rng(3)
    x = rand(rng, 4, 6, 5)
    for axis in (0, 1, 2):
        expected = fc.softmax(x, axis=axis)
        np.testing.assert_array_equal(fc.softmax(np.asfortranarray(x), axis=axis), expected)
        np.testing.assert_allclose(fc.softmax(np.swapaxes(x, 0, 2), axis=2 - axis),
                                   np.swapaxes(expected, 0, 2), atol=1e-7)


# --------------------------------------------------------------------------- linear (GEMM)

LINEAR_SIZES = st.sampled_from((1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 100))


@given(
    lead=st.sampled_from([(), (1,), (5,), (3, 4), (2, 1, 3)]),
    n_in=LINEAR_SIZES, n_out=LINEAR_SIZES, bias=st.booleans(), seed=st.integers(0, 2**31 - 1),
)
def test_linear_matches_reference(fc, isa, lead, n_in, n_out, bias, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, *lead, n_in)
    w = rand(rng, n_out, n_in)
    b = rand(rng, n_out) if bias else None
    y = fc.linear(x, w, b)
    assert y.shape == lead + (n_out,)
    assert_close(y, ref_linear(x, w, b), what=f"linear isa={isa} x{x.shape} w{w.shape} bias={bias}")


@pytest.mark.parametrize("m,k,n", [(1, 4096, 10), (64, 512, 100), (257, 129, 65), (8, 1, 8),
                                   (1, 1, 1), (130, 300, 7),
                                   # across the cache blocks: KC 384, MC 168, NC 4080
                                   (169, 385, 17), (7, 769, 33), (337, 97, 49), (5, 31, 4097),
                                   (170, 400, 4081)])
def test_linear_larger_gemms(fc, isa, m, k, n):
    rng = np.random.default_rng(m + k + n)
    x = rand(rng, m, k)
    w = rand(rng, n, k)
    b = rand(rng, n)
    assert_close(fc.linear(x, w, b), ref_linear(x, w, b), what=f"linear m={m} k={k} n={n}")


@pytest.mark.skipif(len(available_isas()) < 2, reason="this CPU has no AVX2+FMA: only one ISA")
@given(m=LINEAR_SIZES, k=LINEAR_SIZES, n=LINEAR_SIZES, seed=st.integers(0, 2**31 - 1))
def test_linear_scalar_equals_avx2(fc, m, k, n, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, m, k)
    w = rand(rng, n, k)
    b = rand(rng, n)
    with use_isa("scalar"):
        ys = fc.linear(x, w, b)
    with use_isa("avx2"):
        ya = fc.linear(x, w, b)
    assert_close(ya, ys.astype(np.float64), what=f"linear avx2 vs scalar m={m} k={k} n={n}")


def test_linear_noncontiguous_weight_and_input(fc):
    rng = np.random.default_rng(4)
    x = rand(rng, 6, 33)
    w = rand(rng, 17, 33)
    b = rand(rng, 17)
    expected = fc.linear(x, w, b)
    wt = np.ascontiguousarray(w.T).T        # Fortran-ordered weight (a transposed view)
    np.testing.assert_array_equal(fc.linear(x, wt, b), expected)
    np.testing.assert_array_equal(fc.linear(np.asfortranarray(x), w, b), expected)
    np.testing.assert_array_equal(fc.linear(x[::-1], w, b)[::-1], expected)
    ro = x.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(fc.linear(ro, w, b[::-1].copy()[::-1]), expected)
    y = fc.linear(x.astype(np.float64), w.astype(np.float16).astype(np.float32), b)
    assert y.dtype == np.float32


def test_linear_batch_zero(fc):
    y = fc.linear(np.zeros((0, 5), np.float32), np.ones((3, 5), np.float32))
    assert y.shape == (0, 3) and y.dtype == np.float32


def test_linear_fixed_values(fc, isa):
    x = np.array([[1, 2, 3], [4, 5, 6]], np.float32)
    w = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 1], [0, 0, -1]], np.float32)
    b = np.array([0.5, 0, -6, 1], np.float32)
    np.testing.assert_array_equal(fc.linear(x, w, b),
                                  [[1.5, 2, 0, -2], [4.5, 5, 9, -5]])


# --------------------------------------------------------------------------- GEMM via im2col


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (5, 7, 9), (16, 64, 33), (63, 100, 17),
                                   (128, 27, 257)])
def test_gemm_through_1x1_im2col_conv(fc, isa, m, k, n):
    # a 1x1 conv over an [k, 1, n] map is the GEMM [m, k] x [k, n]
    rng = np.random.default_rng(m * k + n)
    a = rand(rng, m, k)
    bmat = rand(rng, k, n)
    y = fc.conv2d(bmat.reshape(1, k, 1, n), a.reshape(m, k, 1, 1), algo="im2col")
    assert_close(y.reshape(m, n), a.astype(np.float64) @ bmat, what=f"gemm via im2col {m}x{k}x{n}")
