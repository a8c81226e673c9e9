"""Max / average / global pooling against float64 NumPy references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import (
    AVG_RTOL, assert_bitequal, assert_close, available_isas, num_threads, out_size, rand,
    ref_avg_pool2d, ref_max_pool2d, use_isa,
)
from strategies import pool2d_configs, windows_cover


def pool_input(cfg, nan_fraction=0.0):
    rng = np.random.default_rng(cfg["seed"])
    x = rand(rng, cfg["n"], cfg["c"], cfg["h"], cfg["w"], lo=-4, hi=4)
    if nan_fraction:
        x[rng.random(x.shape) < nan_fraction] = np.nan
    return x


def describe(cfg):
    return ", ".join(f"{k}={cfg[k]}" for k in ("n", "c", "h", "w", "kernel", "stride", "padding",
                                                 "dilation", "ceil_mode", "count_include_pad"))


def assert_exact(got, ref, what):
    ref32 = np.asarray(ref).astype(np.float32)
    assert got.dtype == np.float32, what
    assert got.shape == ref32.shape, f"{what}: shape {got.shape}, expected {ref32.shape}"
    if not np.array_equal(got, ref32, equal_nan=True):
        bad = np.argwhere(~((got == ref32) | (np.isnan(got) & np.isnan(ref32))))
        i = tuple(bad[0])
        raise AssertionError(f"{what}: {len(bad)} elements differ; first at {i}: got {got[i]}, "
                             f"expected {ref32[i]}")


# --------------------------------------------------------------------------- max pooling


@given(cfg=pool2d_configs())
def test_max_pool2d_exact(fc, isa, cfg):
    x = pool_input(cfg)
    y = fc.max_pool2d(x, cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                      dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"])
    ref = ref_max_pool2d(x, cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"],
                         cfg["ceil_mode"])
    assert y.shape == (cfg["n"], cfg["c"]) + cfg["out"]
    assert_exact(y, ref, f"max_pool2d isa={isa} {describe(cfg)}")


@given(cfg=pool2d_configs())
def test_max_pool2d_nan_propagates(fc, isa, cfg):
    x = pool_input(cfg, nan_fraction=0.05)
    y = fc.max_pool2d(x, cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                      dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"])
    ref = ref_max_pool2d(x, cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"],
                         cfg["ceil_mode"])
    assert_exact(y, ref, f"max_pool2d with NaN isa={isa} {describe(cfg)}")


@pytest.mark.parametrize("pos", [(0, 0), (0, 1), (1, 0), (1, 1), (3, 3), (2, 1)])
def test_max_pool_single_nan_in_window(fc, isa, pos):
    # the NaN at every position inside a 2x2 window, first or last in scan order
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0][pos] = np.nan
    y = fc.max_pool2d(x, 2)
    expected = np.array([[5, 7], [13, 15]], np.float32)
    expected[pos[0] // 2, pos[1] // 2] = np.nan
    np.testing.assert_array_equal(y[0, 0], expected)


def test_max_pool_nan_among_all_others_negative_inf(fc, isa):
    x = np.full((1, 2, 1, 9), -np.inf, np.float32)
    x[0, 0, 0, 4] = np.nan
    y = fc.max_pool2d(x, (1, 3))
    np.testing.assert_array_equal(y[0, 0, 0], np.array([-np.inf, np.nan, -np.inf], np.float32))
    np.testing.assert_array_equal(y[0, 1, 0], np.full(3, -np.inf, np.float32))


def test_max_pool_infinities_and_negative_values(fc, isa):
    x = -np.arange(1, 37, dtype=np.float32).reshape(1, 1, 6, 6)
    x[0, 0, 0, 0] = np.inf
    y = fc.max_pool2d(x, 3, stride=3, padding=0)
    np.testing.assert_array_equal(y[0, 0], np.array([[np.inf, -4], [-19, -22]], np.float32))
    # padding never wins over negative values: pads are -inf, not 0
    y = fc.max_pool2d(x, 3, stride=1, padding=1)
    ref = ref_max_pool2d(x, 3, 1, 1)
    assert_exact(y, ref, "negative values with padding")
    assert np.all(y[0, 0, 2:, 2:] < 0)   # windows that do not reach the +inf at (0, 0)


def test_max_pool_fixed_cases(fc, isa):
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(fc.max_pool2d(x, 2)[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(fc.max_pool2d(x, 2, stride=2)[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(fc.max_pool2d(x, 3, stride=1)[0, 0], [[10, 11], [14, 15]])
    # dilation 2: taps at rows/cols {0, 2}
    np.testing.assert_array_equal(fc.max_pool2d(x, 2, stride=1, dilation=2)[0, 0],
                                  [[10, 11], [14, 15]])
    x5 = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    assert fc.max_pool2d(x5, 2).shape == (1, 1, 2, 2)
    y = fc.max_pool2d(x5, 2, ceil_mode=True)
    assert y.shape == (1, 1, 3, 3)
    np.testing.assert_array_equal(y[0, 0], [[6, 8, 9], [16, 18, 19], [21, 23, 24]])


def test_ceil_mode_drops_window_starting_in_end_padding(fc):
    # W=5, k=2, s=4, pad 1: ceil((5+2-2)/4)+1 = 3, but the third window would start at
    # padded index 8 >= W + pad_begin = 6, so PyTorch keeps 2.
    assert out_size(5, 1, 1, 2, 4, 1, True) == 2
    x = np.arange(5, dtype=np.float32).reshape(1, 1, 1, 5)
    y = fc.max_pool2d(x, (1, 2), stride=(1, 4), padding=(0, 1), ceil_mode=True)
    assert y.shape == (1, 1, 1, 2)
    np.testing.assert_array_equal(y[0, 0, 0], [0, 4])
    y = fc.avg_pool2d(x, (1, 2), stride=(1, 4), padding=(0, 1), ceil_mode=True)
    assert y.shape == (1, 1, 1, 2)
    y = fc.max_pool1d(x[0], 2, stride=4, padding=1, ceil_mode=True)
    assert y.shape == (1, 1, 2)


@pytest.mark.parametrize("h,w,k,s", [(9, 7, 3, 2), (18, 17, 2, 2), (9, 7, 3, 1), (18, 17, 4, 3),
                                     (5, 5, 2, 1)])
def test_pool_padding_same_and_valid(fc, isa, h, w, k, s):
    rng = np.random.default_rng(h * w + k)
    x = rand(rng, 2, 3, h, w)
    y = fc.max_pool2d(x, k, stride=s, padding="same")
    assert y.shape == (2, 3, -(-h // s), -(-w // s))
    assert_exact(y, ref_max_pool2d(x, k, s, "same"), f"max_pool2d same h={h} w={w} k={k} s={s}")
    ya = fc.avg_pool2d(x, k, stride=s, padding="same", count_include_pad=False)
    assert ya.shape == y.shape
    assert_close(ya, ref_avg_pool2d(x, k, s, "same", False, False), rtol=AVG_RTOL,
                 what=f"avg_pool2d same h={h} w={w} k={k} s={s}")
    np.testing.assert_array_equal(fc.max_pool2d(x, k, stride=s, padding="valid"),
                                  fc.max_pool2d(x, k, stride=s, padding=0))


def test_stride_none_means_kernel_size(fc):
    rng = np.random.default_rng(0)
    x = rand(rng, 2, 3, 18, 17)
    np.testing.assert_array_equal(fc.max_pool2d(x, (3, 2)), fc.max_pool2d(x, (3, 2), stride=(3, 2)))
    np.testing.assert_array_equal(fc.avg_pool2d(x, 3), fc.avg_pool2d(x, 3, stride=3))
    assert fc.max_pool2d(x, 3).shape == (2, 3, 6, 5)
    x1 = rand(rng, 2, 3, 17)
    np.testing.assert_array_equal(fc.max_pool1d(x1, 4), fc.max_pool1d(x1, 4, stride=4))
    np.testing.assert_array_equal(fc.avg_pool1d(x1, 4), fc.avg_pool1d(x1, 4, stride=4))


@pytest.mark.skipif(len(available_isas()) < 2, reason="this CPU has no AVX2+FMA: only one ISA")
@given(cfg=pool2d_configs())
def test_pools_scalar_equals_avx2(fc, cfg):
    x = pool_input(cfg, nan_fraction=0.01)
    out = {}
    for isa in ("scalar", "avx2"):
        with use_isa(isa):
            out[isa] = (
                fc.max_pool2d(x, cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                              dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"]),
                fc.avg_pool2d(np.nan_to_num(x), cfg["kernel"], stride=cfg["stride"],
                              padding=cfg["padding"], ceil_mode=cfg["ceil_mode"],
                              count_include_pad=cfg["count_include_pad"]),
            )
    assert_bitequal(out["avx2"][0], out["scalar"][0], what=f"max_pool2d avx2 vs scalar "
                                                           f"{describe(cfg)}")
    assert_close(out["avx2"][1], out["scalar"][1].astype(np.float64), rtol=AVG_RTOL,
                 what=f"avg_pool2d avx2 vs scalar {describe(cfg)}")


# --------------------------------------------------------------------------- average pooling


@given(cfg=pool2d_configs(with_dilation=False))
def test_avg_pool2d_matches_reference(fc, isa, cfg):
    x = pool_input(cfg)
    y = fc.avg_pool2d(x, cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                      ceil_mode=cfg["ceil_mode"], count_include_pad=cfg["count_include_pad"])
    ref = ref_avg_pool2d(x, cfg["kernel"], cfg["stride"], cfg["padding"], cfg["ceil_mode"],
                         cfg["count_include_pad"])
    assert y.shape == (cfg["n"], cfg["c"]) + cfg["out"]
    assert_close(y, ref, rtol=AVG_RTOL, what=f"avg_pool2d isa={isa} {describe(cfg)}")


def test_avg_pool_count_include_pad_fixed(fc, isa):
    x = np.ones((1, 1, 3, 3), np.float32)
    y = fc.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True)
    np.testing.assert_allclose(y[0, 0], [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9],
                                         [4 / 9, 6 / 9, 4 / 9]], rtol=1e-6)
    y = fc.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    np.testing.assert_allclose(y[0, 0], np.ones((3, 3)), rtol=1e-6)
    # asymmetric padding: (top, left, bottom, right) = (1, 0, 0, 0), window 2x1
    x = np.arange(1, 7, dtype=np.float32).reshape(1, 1, 3, 2)
    y = fc.avg_pool2d(x, (2, 1), stride=1, padding=(1, 0, 0, 0), count_include_pad=True)
    np.testing.assert_allclose(y[0, 0], [[0.5, 1.0], [2, 3], [4, 5]], rtol=1e-6)
    y = fc.avg_pool2d(x, (2, 1), stride=1, padding=(1, 0, 0, 0), count_include_pad=False)
    np.testing.assert_allclose(y[0, 0], [[1, 2], [2, 3], [4, 5]], rtol=1e-6)


def test_avg_pool_ceil_mode_divisor_stops_at_padded_end(fc, isa):
    # W=5, k=2, s=2, no padding, ceil: the last window [4, 6) holds only x[4]; the taps
    # past W + pad_end are not counted even with count_include_pad.
    x = np.array([1, 2, 3, 4, 10], np.float32).reshape(1, 1, 1, 5)
    for cip in (True, False):
        y = fc.avg_pool2d(x, (1, 2), stride=(1, 2), ceil_mode=True, count_include_pad=cip)
        np.testing.assert_allclose(y[0, 0, 0], [1.5, 3.5, 10.0], rtol=1e-6)
    # with one pixel of padding each side: windows [-1,1) [1,3) [3,5) [5,7): the last
    # window starts in the end padding -> dropped; so 3 outputs
    y = fc.avg_pool2d(x, (1, 2), stride=(1, 2), padding=(0, 1), ceil_mode=True,
                      count_include_pad=True)
    np.testing.assert_allclose(y[0, 0, 0], [0.5, 2.5, 7.0], rtol=1e-6)
    # k=3, s=2, pad 1, W=6, ceil: windows start at -1, 1, 3, 5; the last covers [5, 8):
    # inside [-1, 7) are 5 and 6 -> divisor 2 with count_include_pad, 1 without
    x = np.arange(1, 7, dtype=np.float32).reshape(1, 1, 1, 6)
    y = fc.avg_pool2d(x, (1, 3), stride=(1, 2), padding=(0, 1), ceil_mode=True,
                      count_include_pad=True)
    np.testing.assert_allclose(y[0, 0, 0], [3 / 3, 9 / 3, 15 / 3, 6 / 2], rtol=1e-6)
    y = fc.avg_pool2d(x, (1, 3), stride=(1, 2), padding=(0, 1), ceil_mode=True,
                      count_include_pad=False)
    np.testing.assert_allclose(y[0, 0, 0], [3 / 2, 9 / 3, 15 / 3, 6 / 1], rtol=1e-6)


def test_avg_pool_constant_input_is_constant(fc, isa):
    x = np.full((2, 3, 9, 7), 0.3, np.float32)
    y = fc.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    np.testing.assert_allclose(y, 0.3, rtol=1e-6)


# --------------------------------------------------------------------------- 1-D pooling


@given(
    n=st.sampled_from((1, 2)), c=st.sampled_from((1, 3, 13)), w=st.sampled_from((1, 7, 17, 32)),
    k=st.integers(1, 5), s=st.one_of(st.none(), st.integers(1, 3)), d=st.integers(1, 2),
    pb=st.integers(0, 2), pe=st.integers(0, 2), ceil_mode=st.booleans(), cip=st.booleans(),
    tuple_pad=st.booleans(), seed=st.integers(0, 2**31 - 1),
)
def test_pool1d_matches_pool2d_with_height_one(fc, n, c, w, k, s, d, pb, pe, ceil_mode, cip,
                                              tuple_pad, seed):
    pb, pe = min(pb, k // 2), min(pe, k // 2)
    if not tuple_pad:
        pe = pb
    stride = k if s is None else s
    wo = out_size(w, pb, pe, k, stride, d, ceil_mode)
    if wo < 1 or not windows_cover(w, pb, k, stride, d, wo):
        return
    rng = np.random.default_rng(seed)
    x = rand(rng, n, c, w)
    pad = (pb, pe) if tuple_pad else pb
    ym = fc.max_pool1d(x, k, stride=s, padding=pad, dilation=d, ceil_mode=ceil_mode)
    refm = ref_max_pool2d(x[:, :, None, :], (1, k), (1, stride), (0, pb, 0, pe), (1, d),
                          ceil_mode)[:, :, 0, :]
    assert ym.shape == (n, c, wo)
    assert_exact(ym, refm, f"max_pool1d w={w} k={k} s={s} d={d} pad={pad} ceil={ceil_mode}")
    ya = fc.avg_pool1d(x, k, stride=s, padding=pad, ceil_mode=ceil_mode, count_include_pad=cip)
    refa = ref_avg_pool2d(x[:, :, None, :], (1, k), (1, stride), (0, pb, 0, pe), ceil_mode,
                          cip)[:, :, 0, :]
    assert_close(ya, refa, rtol=AVG_RTOL,
                 what=f"avg_pool1d w={w} k={k} s={s} pad={pad} ceil={ceil_mode} cip={cip}")


# --------------------------------------------------------------------------- global pooling


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 9, 7), (1, 13, 18, 17), (3, 24, 1, 5),
                                   (1, 5, 33, 31), (2, 2, 64, 64)])
def test_global_pools(fc, isa, shape):
    rng = np.random.default_rng(sum(shape))
    x = rand(rng, *shape, lo=-3, hi=3)
    ya = fc.global_avg_pool2d(x)
    ym = fc.global_max_pool2d(x)
    assert ya.shape == ym.shape == shape[:2] + (1, 1)
    assert_close(ya, x.astype(np.float64).mean(axis=(2, 3), keepdims=True), rtol=AVG_RTOL,
                 what=f"global_avg_pool2d {shape}")
    assert_exact(ym, x.max(axis=(2, 3), keepdims=True), f"global_max_pool2d {shape}")
    # equal to a full-window pool
    np.testing.assert_array_equal(ym, fc.max_pool2d(x, shape[2:]))
    assert_close(fc.avg_pool2d(x, shape[2:]), ya.astype(np.float64), rtol=AVG_RTOL,
                 what="avg_pool2d with full window")


def test_global_max_pool_nan(fc, isa):
    x = np.zeros((1, 3, 5, 5), np.float32)
    x[0, 1, 4, 4] = np.nan
    x[0, 2, 0, 0] = np.nan
    y = fc.global_max_pool2d(x)[:, :, 0, 0]
    assert y[0, 0] == 0 and np.isnan(y[0, 1]) and np.isnan(y[0, 2])


def test_global_pools_large_plane_accuracy(fc):
    # 300*301 values: a naive float32 running sum of this many values would drift
    rng = np.random.default_rng(3)
    x = rand(rng, 1, 2, 300, 301, lo=0.0, hi=1.0)
    assert_close(fc.global_avg_pool2d(x), x.astype(np.float64).mean(axis=(2, 3), keepdims=True),
                 rtol=1e-5, what="global avg over 90300 values")


# --------------------------------------------------------------------------- array forms


def test_pools_noncontiguous_and_readonly(fc):
    rng = np.random.default_rng(4)
    x = rand(rng, 2, 3, 18, 17)
    variants = {
        "fortran": np.asfortranarray(x),
        "negative-stride": np.ascontiguousarray(x[..., ::-1])[..., ::-1],
        "sliced": np.pad(x, ((0, 0), (0, 1), (0, 0), (0, 0)))[:, :3],
    }
    ro = x.copy()
    ro.flags.writeable = False
    variants["read-only"] = ro
    calls = [
        lambda a: fc.max_pool2d(a, 3, stride=2, padding=1, ceil_mode=True),
        lambda a: fc.avg_pool2d(a, 2, padding=1, count_include_pad=False),
        fc.global_avg_pool2d, fc.global_max_pool2d,
    ]
    for f in calls:
        expected = f(x)
        for name, v in variants.items():
            np.testing.assert_array_equal(f(v), expected, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_pools_convert_float16_float64(fc, dtype):
    rng = np.random.default_rng(5)
    x = rand(rng, 1, 3, 9, 7).astype(dtype)
    y = fc.max_pool2d(x, 2)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, fc.max_pool2d(x.astype(np.float32), 2))
    y = fc.avg_pool2d(x, 2)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, fc.avg_pool2d(x.astype(np.float32), 2))


def test_pools_batch_zero(fc):
    x = np.zeros((0, 3, 9, 7), np.float32)
    assert fc.max_pool2d(x, 2).shape == (0, 3, 4, 3)
    assert fc.avg_pool2d(x, 3, stride=1, padding=1).shape == (0, 3, 9, 7)
    assert fc.global_avg_pool2d(x).shape == (0, 3, 1, 1)
    assert fc.global_max_pool2d(x).shape == (0, 3, 1, 1)
    assert fc.max_pool1d(np.zeros((0, 2, 9), np.float32), 3).shape == (0, 2, 3)


# --------------------------------------------------------------------------- small maps
# Maps whose output rows are shorter than a vector go through the planes-in-lanes kernels
# (8 planes per vector, a static split of plane groups over threads). They must agree with
# the float64 reference (max: exactly), with the C oracle bit for bit (same reduction
# order, so also for signed zeros and NaN), and with themselves for any thread count.

VGG_SMALL_MAPS = ((64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2))


def _pools(kernels, x, k, s, pads=(0, 0, 0, 0), dil=(1, 1), ceil=False, cip=True, threads=1):
    """(max, avg) through the kernels the graph step calls; avg only without dilation."""
    ym = kernels.max_pool2d(x, k, s, pads, dil, ceil, threads)
    ya = None if dil != (1, 1) else kernels.avg_pool2d(x, k, s, pads, ceil, cip, threads)
    return ym, ya


def _bitequal_any_nan(a, b, what):
    """Bit equality except that any NaN equals any NaN: which NaN an addition returns
    depends on its operand order, which a C compiler may swap."""
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    assert np.array_equal(nan_a, nan_b), f"{what}: NaN positions differ"
    assert_bitequal(np.where(nan_a, 0, a), np.where(nan_b, 0, b), what=what)


def _check_small(kernels, x, k, s, pads=(0, 0, 0, 0), dil=(1, 1), ceil=False, cip=True,
                 threads=(1, 2, 3), what=""):
    oracle_m = kernels.ref_max_pool2d(x, k, s, pads, dil, ceil)
    oracle_a = None if dil != (1, 1) else kernels.ref_avg_pool2d(x, k, s, pads, ceil, cip)
    padding = (pads[0], pads[1], pads[2], pads[3])
    ref_m = ref_max_pool2d(x, k, s, padding, dil, ceil)
    finite = bool(np.isfinite(x).all())
    ref_a = None if oracle_a is None or not finite else \
        ref_avg_pool2d(x, k, s, padding, ceil, cip)
    first = None
    for t in threads:
        ym, ya = _pools(kernels, x, k, s, pads, dil, ceil, cip, t)
        assert_exact(ym, ref_m, f"max {what} threads={t}")
        assert_bitequal(ym, oracle_m, what=f"max vs C oracle {what} threads={t}")
        if ya is not None:
            if ref_a is not None:
                assert_close(ya, ref_a, rtol=AVG_RTOL, what=f"avg {what} threads={t}")
            _bitequal_any_nan(ya, oracle_a, what=f"avg vs C oracle {what} threads={t}")
        if first is None:
            first = (ym, ya)
        else:
            assert_bitequal(ym, first[0], what=f"max {what} threads={t} vs {threads[0]}")
            if ya is not None:
                _bitequal_any_nan(ya, first[1], f"avg {what} threads={t} vs {threads[0]}")


@pytest.mark.parametrize("c,h,w", VGG_SMALL_MAPS)
@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("k,s", [(2, 2), (3, 2)])
def test_small_maps_vgg_shapes(kernels, isa, c, h, w, n, k, s):
    if k > h:
        pytest.skip("window larger than the map: no output (ShapeError, tested elsewhere)")
    rng = np.random.default_rng(c + h + n + k)
    x = rand(rng, n, c, h, w, lo=-4, hi=4)
    _check_small(kernels, x, (k, k), (s, s), what=f"n={n} {c}x{h}x{w} k={k} s={s} isa={isa}")


@pytest.mark.parametrize("n,c,h,w", [(16, 512, 4, 4), (64, 512, 2, 2), (300, 13, 7, 7),
                                     (40, 256, 8, 8)])
def test_small_maps_split_over_threads(kernels, isa, n, c, h, w):
    # enough work that the call really uses several threads (and, for 13 channels, a last
    # group of fewer than 8 planes)
    rng = np.random.default_rng(n + c)
    x = rand(rng, n, c, h, w, lo=-4, hi=4)
    x[rng.random(x.shape) < 0.002] = np.nan
    _check_small(kernels, x, (2, 2), (2, 2), threads=(1, 2, 3, 4),
                 what=f"split n={n} {c}x{h}x{w} isa={isa}")


_ODD_CONFIGS = [
    # kernel, stride, pads (top, left, bottom, right), dilation, ceil_mode, count_include_pad
    ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False, True),
    ((3, 3), (2, 2), (0, 0, 0, 0), (1, 1), False, True),
    ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1), True, True),
    ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1), True, False),
    ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), False, True),
    ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), False, False),
    ((2, 3), (1, 2), (1, 0, 0, 2), (1, 1), False, True),
    ((1, 1), (1, 1), (0, 0, 0, 0), (1, 1), False, True),
    ((2, 2), (1, 1), (0, 0, 0, 0), (2, 2), False, True),
    ((2, 2), (1, 1), (1, 1, 1, 1), (2, 1), True, True),
    ((4, 4), (3, 3), (2, 2, 2, 2), (1, 1), True, False),   # windows of padding only
]


@pytest.mark.parametrize("h,w", [(7, 7), (5, 3), (3, 5), (1, 1), (2, 2), (4, 1), (1, 4),
                                 (6, 6), (9, 2)])
@pytest.mark.parametrize("c", [1, 13])
def test_small_maps_odd_sizes(kernels, isa, h, w, c):
    rng = np.random.default_rng(h * 10 + w + c)
    x = rand(rng, 2, c, h, w, lo=-4, hi=4)
    ran = 0
    for k, s, pads, dil, ceil, cip in _ODD_CONFIGS:
        oh = out_size(h, pads[0], pads[2], k[0], s[0], dil[0], ceil)
        ow = out_size(w, pads[1], pads[3], k[1], s[1], dil[1], ceil)
        if oh < 1 or ow < 1:
            continue
        _check_small(kernels, x, k, s, pads, dil, ceil, cip, threads=(1, 2),
                     what=f"{c}x{h}x{w} k={k} s={s} pads={pads} dil={dil} ceil={ceil} "
                          f"cip={cip} isa={isa}")
        ran += 1
    assert ran >= 2


@pytest.mark.parametrize("h,w", [(8, 8), (4, 4), (2, 2), (7, 7), (16, 16)])
def test_small_maps_nan_inf_and_signed_zeros(kernels, isa, h, w):
    # values from a small set, so that windows often hold several NaNs, infinities or zeros
    # of both signs: bit equality with the oracle checks the reduction order too
    rng = np.random.default_rng(h + w)
    vals = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1.0], np.float32)
    x = vals[rng.integers(0, len(vals), size=(2, 13, h, w))]
    x[0, 0] = np.nan   # a plane of NaN only
    x[0, 1] = -0.0     # a plane of negative zeros: max keeps -0, the average gives +0
    x[1, 2] = -np.inf
    for k, s, pads in (((2, 2), (2, 2), (0, 0, 0, 0)), ((3, 3), (2, 2), (1, 1, 1, 1)),
                       ((3, 3), (1, 1), (1, 1, 1, 1))):
        _check_small(kernels, x, k, s, pads, threads=(1, 2), what=f"{h}x{w} k={k} isa={isa}")
    ym, ya = _pools(kernels, x, (2, 2), (2, 2))
    assert np.isnan(ym[0, 0]).all() and np.isnan(ya[0, 0]).all()
    assert (np.signbit(ym[0, 1]) & (ym[0, 1] == 0)).all()
    assert (~np.signbit(ya[0, 1]) & (ya[0, 1] == 0)).all()
    assert (ym[1, 2] == -np.inf).all()


def test_small_maps_max_keeps_subnormals(kernels, isa):
    # max pooling compares, it does no arithmetic: subnormals come out exactly
    rng = np.random.default_rng(11)
    x = (rand(rng, 3, 13, 8, 8, lo=-1, hi=1) * np.float32(1e-39)).astype(np.float32)
    assert (np.abs(x[x != 0]) < np.finfo(np.float32).tiny).all()
    ym = kernels.max_pool2d(x, (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False, 2)
    assert_bitequal(ym, kernels.ref_max_pool2d(x, (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False),
                    what="subnormal max pool")
    assert (ym != 0).any()


def test_small_maps_public_api_and_threads(fc, isa):
    # the functional API and the thread-count setting reach the same kernels
    rng = np.random.default_rng(12)
    x = rand(rng, 4, 256, 8, 8, lo=-4, hi=4)
    ref = ref_max_pool2d(x, 2, 2)
    for t in (1, 2):
        with num_threads(t):
            assert_exact(fc.max_pool2d(x, 2), ref, f"fc.max_pool2d threads={t}")
            assert_close(fc.avg_pool2d(x, 3, stride=2), ref_avg_pool2d(x, 3, 2), rtol=AVG_RTOL,
                         what=f"fc.avg_pool2d threads={t}")


@pytest.mark.parametrize("n,c,h,w", [(1, 13, 2, 8), (1, 13, 6, 4), (1, 13, 2, 2), (3, 5, 2, 2),
                                     (1, 1, 2, 2), (1, 13, 2, 16), (1, 13, 4, 24), (2, 3, 10, 20),
                                     (2, 3, 10, 32), (70, 13, 4, 4), (9, 100, 2, 2)])
def test_2x2_stride2_even_planes(kernels, isa, n, c, h, w):
    # the row-pair kernel: row pairs not a multiple of its 8-output blocks (scalar tail),
    # rows of 1, 2, 4, 8, 10, 12 and 16 outputs, values that make the order visible
    rng = np.random.default_rng(n * c + h * w)
    x = rand(rng, n, c, h, w, lo=-4, hi=4)
    _check_small(kernels, x, (2, 2), (2, 2), threads=(1, 2, 3),
                 what=f"2x2/2 n={n} {c}x{h}x{w} isa={isa}")
    vals = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0], np.float32)
    xv = vals[rng.integers(0, len(vals), size=x.shape)]
    _check_small(kernels, xv, (2, 2), (2, 2), threads=(1, 2, 3),
                 what=f"2x2/2 specials n={n} {c}x{h}x{w} isa={isa}")
    # ceil_mode changes nothing on even sizes and takes the same path
    assert_bitequal(kernels.max_pool2d(x, (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), True, 2),
                    kernels.max_pool2d(x, (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False, 1),
                    what="ceil_mode on even sizes")
