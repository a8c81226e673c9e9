"""Max / average / global pooling against float64 NumPy references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import (
    AVG_RTOL, assert_bitequal, assert_close, available_isas, out_size, rand, ref_avg_pool2d,
    ref_max_pool2d, use_isa,
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
