"""The channel-blocked layout NCHW8c: reorders to and from NCHW, and max / average pooling
on blocked tensors, which must equal the NCHW pooling kernels bit for bit on every real
lane and leave the tail lanes (channels past C in the last block) zero."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_bitequal, rand
from strategies import pool2d_configs

LAYOUT_CHANNELS = (1, 3, 8, 13, 16, 64)


def ref_to_nchw8c(x):
    """The layout by definition: pad C to a multiple of 8 with zeros, split it into
    (blocks, 8) and move the 8 to the end."""
    n, c, h, w = x.shape
    cb = -(-c // 8)
    xp = np.pad(x, ((0, 0), (0, cb * 8 - c), (0, 0), (0, 0)))
    return np.ascontiguousarray(xp.reshape(n, cb, 8, h, w).transpose(0, 1, 3, 4, 2))


def tail_lanes(yb, c):
    """The lanes of the last block past channel c (empty when c is a multiple of 8)."""
    return yb[:, -1, :, :, c % 8:] if c % 8 else yb[:, :0]


def assert_same_nan_aware(got, want, what):
    """Bit equality, except that any NaN equals any NaN (which NaN an addition returns
    depends on its operand order, which the compiler may swap)."""
    nan_g, nan_w = np.isnan(got), np.isnan(want)
    assert np.array_equal(nan_g, nan_w), f"{what}: NaN positions differ"
    assert_bitequal(np.where(nan_g, 0, got), np.where(nan_w, 0, want), what=what)


# --------------------------------------------------------------------------- reorders


@pytest.mark.parametrize("c", LAYOUT_CHANNELS)
@pytest.mark.parametrize("n", [0, 1, 3])
def test_round_trip_against_reference_layout(kernels, c, n):
    rng = np.random.default_rng(c * 10 + n)
    x = rand(rng, n, c, 7, 5, lo=-3, hi=3)
    yb = kernels.to_nchw8c(x)
    assert yb.shape == (n, -(-c // 8), 7, 5, 8) and yb.dtype == np.float32
    assert_bitequal(yb, ref_to_nchw8c(x), what=f"to_nchw8c n={n} c={c}")
    assert not np.any(tail_lanes(yb, c)), "tail lanes must be zero"
    back = kernels.from_nchw8c(yb, c)
    assert back.shape == x.shape
    assert_bitequal(back, x, what=f"from_nchw8c n={n} c={c}")


@pytest.mark.parametrize("h,w", [(1, 1), (1, 9), (9, 7), (3, 41), (33, 31)])
@pytest.mark.parametrize("c", [5, 8, 21])
def test_reorders_odd_maps_and_special_values(kernels, h, w, c):
    rng = np.random.default_rng(h * w + c)
    x = rand(rng, 2, c, h, w)
    # values a copy must keep bit for bit: NaN payloads, infinities, -0, subnormals
    flat = x.reshape(-1)
    specials = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-40, -1e-42], np.float32)
    flat[: min(flat.size, specials.size)] = specials[: flat.size]
    flat.view(np.uint32)[-1] = 0x7FC0_1234  # a NaN with a payload
    yb = kernels.to_nchw8c(x)
    assert_bitequal(yb, ref_to_nchw8c(x), what=f"to_nchw8c {c}x{h}x{w}")
    assert_bitequal(kernels.from_nchw8c(yb, c), x, what=f"from_nchw8c {c}x{h}x{w}")


def test_from_nchw8c_ignores_tail_lanes(kernels):
    x = np.arange(2 * 11 * 3 * 4, dtype=np.float32).reshape(2, 11, 3, 4)
    yb = kernels.to_nchw8c(x)
    yb[:, -1, :, :, 3:] = 7.0   # garbage in the tail lanes is not read back
    assert_bitequal(kernels.from_nchw8c(yb, 11), x, what="from_nchw8c")


def test_reorders_same_bits_for_any_thread_count(kernels):
    rng = np.random.default_rng(5)
    x = rand(rng, 2, 61, 40, 40)   # big enough for several threads, 61: a tail block
    y1 = kernels.to_nchw8c(x, 1)
    assert_bitequal(y1, ref_to_nchw8c(x), what="to_nchw8c threads=1")
    for t in (2, 3):
        assert_bitequal(kernels.to_nchw8c(x, t), y1, what=f"to_nchw8c threads={t}")
        assert_bitequal(kernels.from_nchw8c(y1, 61, t), x, what=f"from_nchw8c threads={t}")


def test_reorders_out_buffers(kernels):
    x = np.arange(3 * 10 * 2 * 2, dtype=np.float32).reshape(3, 10, 2, 2)
    out = np.full((3, 2, 2, 2, 8), np.nan, np.float32)   # tail lanes must be overwritten
    assert kernels.to_nchw8c(x, out=out) is out
    assert_bitequal(out, ref_to_nchw8c(x), what="to_nchw8c out=")
    back = np.empty_like(x)
    assert kernels.from_nchw8c(out, 10, out=back) is back
    assert_bitequal(back, x, what="from_nchw8c out=")
    with pytest.raises(ValueError, match="out has shape"):
        kernels.to_nchw8c(x, out=np.empty((3, 2, 2, 2, 4), np.float32))
    with pytest.raises(ValueError, match="overlaps"):
        kernels.from_nchw8c(out, 10, out=out.reshape(-1)[: x.size].reshape(x.shape))


def test_functional_api(fc):
    x = np.arange(2 * 13 * 3 * 5, dtype=np.float64).reshape(2, 13, 3, 5)  # float64 converts
    yb = fc.to_nchw8c(x)
    assert yb.dtype == np.float32 and yb.shape == (2, 2, 3, 5, 8)
    assert_bitequal(yb, ref_to_nchw8c(x.astype(np.float32)), what="fc.to_nchw8c")
    assert_bitequal(fc.from_nchw8c(yb, 13), x.astype(np.float32), what="fc.from_nchw8c")
    assert fc.to_nchw8c(np.zeros((0, 3, 2, 2), np.float32)).shape == (0, 1, 2, 2, 8)
    assert fc.from_nchw8c(np.zeros((0, 1, 2, 2, 8), np.float32), 3).shape == (0, 3, 2, 2)
    assert "to_nchw8c" in fc.__all__ and "from_nchw8c" in fc.__all__


def test_reorder_errors(fc, kernels):
    x = np.zeros((1, 13, 4, 4), np.float32)
    yb = kernels.to_nchw8c(x)
    for bad_channels in (8, 17, 0):
        with pytest.raises(ValueError, match=r"\(1, 2, 4, 4, 8\)"):
            kernels.from_nchw8c(yb, bad_channels)
        with pytest.raises(ValueError):
            fc.from_nchw8c(yb, bad_channels)
    with pytest.raises(ValueError):   # wrong rank
        kernels.to_nchw8c(np.zeros((13, 4, 4), np.float32))
    with pytest.raises(ValueError):
        kernels.from_nchw8c(x, 13)
    with pytest.raises(ValueError):
        fc.to_nchw8c(np.zeros((1, 13, 4), np.float32))
    with pytest.raises(ValueError):   # last axis not 8
        kernels.from_nchw8c(np.zeros((1, 2, 4, 4, 4), np.float32), 13)
    with pytest.raises(fc.ShapeError):   # zero channels / spatial size
        kernels.to_nchw8c(np.zeros((1, 0, 4, 4), np.float32))
    with pytest.raises(fc.ShapeError):
        fc.to_nchw8c(np.zeros((1, 3, 0, 4), np.float32))
    with pytest.raises(TypeError):
        kernels.to_nchw8c(np.zeros((1, 3, 4, 4), np.int32))
    with pytest.raises(TypeError):
        fc.to_nchw8c(np.zeros((1, 3, 4, 4), np.int64))
    with pytest.raises(TypeError):
        fc.from_nchw8c(np.zeros((1, 1, 4, 4, 8), np.int32), 3)
    with pytest.raises(ValueError):   # thread count checked by the C layer
        kernels.to_nchw8c(x, 0)


# --------------------------------------------------------------------------- pools


def blocked_pools(kernels, x, cfg, threads=1):
    """(max, avg) of blocked x through the NCHW8c kernels, blocked NCHW results to compare
    with; avg only without dilation."""
    c = x.shape[1]
    xb = kernels.to_nchw8c(x)
    k, s, p, d = cfg["kernel"], cfg["strides"], cfg["pads"], cfg["dilation"]
    ceil = cfg["ceil_mode"]
    got_m = kernels.max_pool2d_nchw8c(xb, c, k, s, p, d, ceil, threads)
    want_m = ref_to_nchw8c(kernels.max_pool2d(x, k, s, p, d, ceil, threads))
    got_a = want_a = None
    if d == (1, 1):
        cip = cfg["count_include_pad"]
        got_a = kernels.avg_pool2d_nchw8c(xb, c, k, s, p, ceil, cip, threads)
        want_a = ref_to_nchw8c(kernels.avg_pool2d(x, k, s, p, ceil, cip, threads))
    return got_m, want_m, got_a, want_a


def check_pools(kernels, x, cfg, what, threads=(1,)):
    first = None
    for t in threads:
        got_m, want_m, got_a, want_a = blocked_pools(kernels, x, cfg, t)
        # the NCHW result, blocked, has zero tail lanes: so this also checks them
        assert_bitequal(got_m, want_m, what=f"max {what} threads={t}")
        if got_a is not None:
            assert_same_nan_aware(got_a, want_a, what=f"avg {what} threads={t}")
        if first is None:
            first = (got_m, got_a)
        else:
            assert_bitequal(got_m, first[0], what=f"max {what} threads={t} vs {threads[0]}")
            if got_a is not None:
                assert_same_nan_aware(got_a, first[1], f"avg {what} threads={t} vs {threads[0]}")


def config(kernel, stride, pads=(0, 0, 0, 0), dilation=(1, 1), ceil_mode=False, cip=True):
    return dict(kernel=kernel, strides=stride, pads=pads, dilation=dilation,
                ceil_mode=ceil_mode, count_include_pad=cip)


FIXED_CONFIGS = [
    config((2, 2), (2, 2)),
    config((3, 3), (2, 2)),
    config((3, 3), (1, 1), (1, 1, 1, 1)),
    config((3, 3), (1, 1), (1, 1, 1, 1), cip=False),
    config((2, 2), (1, 1)),
    config((3, 3), (2, 2), (1, 1, 1, 1), ceil_mode=True),
    config((3, 3), (2, 2), (1, 1, 1, 1), ceil_mode=True, cip=False),
    config((2, 2), (2, 2), (0, 0, 1, 1), ceil_mode=True),
    config((3, 2), (1, 2), (1, 0, 0, 1)),
    config((3, 3), (1, 1), (2, 2, 2, 2), dilation=(2, 2)),
    config((2, 3), (2, 1), (0, 1, 1, 0), dilation=(2, 1), ceil_mode=True),
    config((1, 1), (1, 1)),
    config((7, 7), (1, 1), (3, 3, 3, 3)),
]


def config_id(c):
    return (f"k{c['kernel']}s{c['strides']}p{c['pads']}d{c['dilation']}"
            f"c{int(c['ceil_mode'])}i{int(c['count_include_pad'])}")


@pytest.mark.parametrize("cfg", FIXED_CONFIGS, ids=config_id)
@pytest.mark.parametrize("c", [3, 8, 13, 20])
def test_pools_equal_nchw_kernels(kernels, isa, cfg, c):
    rng = np.random.default_rng(c)
    x = rand(rng, 2, c, 11, 9, lo=-4, hi=4)
    check_pools(kernels, x, cfg, f"c={c} isa={isa}")


@pytest.mark.parametrize("cfg", [config((2, 2), (2, 2)), config((3, 3), (1, 1), (1, 1, 1, 1)),
                                 config((3, 3), (2, 2), (1, 1, 1, 1), dilation=(2, 1))])
def test_max_pool_nan_inputs(kernels, isa, cfg):
    rng = np.random.default_rng(1)
    x = rand(rng, 2, 13, 10, 9)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[0, 0, 0, :] = -np.inf
    x[0, 1, 0, 0] = np.inf
    c = x.shape[1]
    got = kernels.max_pool2d_nchw8c(kernels.to_nchw8c(x), c, cfg["kernel"], cfg["strides"],
                                    cfg["pads"], cfg["dilation"], False)
    want = ref_to_nchw8c(kernels.max_pool2d(x, cfg["kernel"], cfg["strides"], cfg["pads"],
                                            cfg["dilation"], False))
    assert np.isnan(got).any()
    np.testing.assert_array_equal(got, want)   # NaN == NaN here
    assert_bitequal(got, want, what=f"max with NaN isa={isa}")


def test_pools_signed_zeros_and_subnormals(kernels, isa):
    # max keeps the caller's floating-point mode as fc_max_pool2d does (with DAZ two
    # subnormals would compare equal); average flushes subnormals as fc_avg_pool2d does
    rng = np.random.default_rng(2)
    vals = np.array([0.0, -0.0, 1e-40, 3e-41, -1e-40, -2e-45, 1e-38], np.float32)
    x = rng.choice(vals, size=(2, 11, 6, 7)).astype(np.float32)
    for cfg in (config((2, 2), (2, 2)), config((3, 3), (1, 1), (1, 1, 1, 1)),
                config((3, 3), (1, 1), (1, 1, 1, 1), cip=False)):
        check_pools(kernels, x, cfg, f"tiny values isa={isa}", threads=(1, 2))


def test_tail_lanes_zero_for_windows_of_padding_only(kernels):
    # rows 0 and 2 of the output see only padding: -inf (max) and 0 * inf = NaN (average
    # without count_include_pad) on the real lanes, but 0 on the tail lanes
    x = np.ones((1, 3, 1, 4), np.float32)
    xb = kernels.to_nchw8c(x)
    ym = kernels.max_pool2d_nchw8c(xb, 3, (1, 1), (1, 1), (1, 0, 1, 0), (1, 1), False)
    ya = kernels.avg_pool2d_nchw8c(xb, 3, (1, 1), (1, 1), (1, 0, 1, 0), False, False)
    assert ym.shape == ya.shape == (1, 1, 3, 4, 8)
    assert np.all(ym[0, 0, 0, :, :3] == -np.inf) and np.all(ym[0, 0, 1, :, :3] == 1)
    assert np.all(np.isnan(ya[0, 0, 0, :, :3])) and np.all(ya[0, 0, 1, :, :3] == 1)
    for y in (ym, ya):
        assert_bitequal(y[..., 3:], np.zeros_like(y[..., 3:]), what="tail lanes")
    assert_bitequal(ym[..., :3], ref_to_nchw8c(kernels.max_pool2d(
        x, (1, 1), (1, 1), (1, 0, 1, 0), (1, 1), False))[..., :3], what="max vs NCHW")
    # tail lanes holding garbage in the input still come out zero
    xb[..., 3:] = 5.0
    for y in (kernels.max_pool2d_nchw8c(xb, 3, (1, 2), (1, 1), (0, 0, 0, 0), (1, 1), False),
              kernels.avg_pool2d_nchw8c(xb, 3, (1, 2), (1, 1), (0, 0, 0, 0), False, True)):
        assert y.shape == (1, 1, 1, 3, 8) and np.all(y[..., :3] == 1)
        assert not np.any(y[..., 3:])


@st.composite
def blocked_pool_configs(draw):
    """pool2d_configs with channel counts around the block size and 1 or 2 threads."""
    cfg = draw(pool2d_configs())
    return dict(cfg, c=draw(st.sampled_from((1, 3, 7, 8, 9, 16, 21))),
                threads=draw(st.sampled_from((1, 2))))


@given(cfg=blocked_pool_configs())
def test_pools_random_configs(kernels, isa, cfg):
    # scalar: the portable loops; avx2 / avx512: the AVX2 interior kernel
    rng = np.random.default_rng(cfg["seed"])
    x = rand(rng, cfg["n"], cfg["c"], cfg["h"], cfg["w"], lo=-4, hi=4)
    if cfg["seed"] % 3 == 0:
        x[rng.random(x.shape) < 0.05] = np.nan
    what = ", ".join(f"{k}={cfg[k]}" for k in ("n", "c", "h", "w", "kernel", "strides", "pads",
                                                "dilation", "ceil_mode", "count_include_pad"))
    check_pools(kernels, x, cfg, f"{what} isa={isa}", threads=(cfg["threads"],))


def test_pools_same_bits_for_any_thread_count(kernels, isa):
    rng = np.random.default_rng(3)
    x = rand(rng, 2, 61, 64, 64)   # 8 blocks, 61: a tail; enough rows for several threads
    x[rng.random(x.shape) < 0.001] = np.nan
    for cfg in (config((2, 2), (2, 2)), config((3, 3), (1, 1), (1, 1, 1, 1), cip=False)):
        check_pools(kernels, x, cfg, f"threads isa={isa}", threads=(1, 2, 3))


def test_pools_batch_zero_and_out(kernels):
    xb = np.zeros((0, 2, 5, 5, 8), np.float32)
    assert kernels.max_pool2d_nchw8c(xb, 13, (2, 2), (2, 2), (0, 0, 0, 0), (1, 1),
                                     False).shape == (0, 2, 2, 2, 8)
    assert kernels.avg_pool2d_nchw8c(xb, 13, (3, 3), (1, 1), (1, 1, 1, 1), False,
                                     True).shape == (0, 2, 5, 5, 8)
    rng = np.random.default_rng(4)
    x = rand(rng, 1, 13, 6, 6)
    xb = kernels.to_nchw8c(x)
    out = np.full((1, 2, 3, 3, 8), np.nan, np.float32)
    assert kernels.max_pool2d_nchw8c(xb, 13, (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False,
                                     out=out) is out
    assert_bitequal(out, ref_to_nchw8c(kernels.max_pool2d(x, (2, 2), (2, 2), (0, 0, 0, 0),
                                                          (1, 1), False)), what="out=")
    with pytest.raises(ValueError, match="overlaps"):
        kernels.avg_pool2d_nchw8c(xb, 13, (1, 1), (1, 1), (0, 0, 0, 0), False, True, out=xb)


def test_pool_errors(fc, kernels):
    xb = kernels.to_nchw8c(np.zeros((1, 13, 4, 4), np.float32))
    args = ((2, 2), (2, 2), (0, 0, 0, 0))
    for bad in (8, 17, 0):   # channels do not match the block count
        with pytest.raises(ValueError, match=r"\(1, 2, 4, 4, 8\)"):
            kernels.max_pool2d_nchw8c(xb, bad, *args, (1, 1), False)
        with pytest.raises(ValueError, match=r"\(1, 2, 4, 4, 8\)"):
            kernels.avg_pool2d_nchw8c(xb, bad, *args, False, True)
    with pytest.raises(ValueError):   # wrong rank: an NCHW tensor
        kernels.max_pool2d_nchw8c(np.zeros((1, 13, 4, 4), np.float32), 13, *args, (1, 1), False)
    with pytest.raises(ValueError):
        kernels.avg_pool2d_nchw8c(xb[..., :4].copy(), 13, *args, False, True)
    with pytest.raises(TypeError):
        kernels.max_pool2d_nchw8c(xb.astype(np.int32), 13, *args, (1, 1), False)
    with pytest.raises(TypeError):
        kernels.avg_pool2d_nchw8c(xb.astype(np.float64), 13, *args, False, True)
    with pytest.raises(fc.ShapeError):   # output size < 1
        kernels.max_pool2d_nchw8c(xb, 13, (5, 5), (1, 1), (0, 0, 0, 0), (1, 1), False)
    with pytest.raises(fc.ShapeError):
        kernels.avg_pool2d_nchw8c(xb, 13, (2, 6), (1, 1), (0, 0, 0, 0), False, True)
    with pytest.raises(ValueError):   # stride 0 (fc_pool2d_check)
        kernels.max_pool2d_nchw8c(xb, 13, (2, 2), (0, 1), (0, 0, 0, 0), (1, 1), False)
    with pytest.raises(ValueError):
        kernels.max_pool2d_nchw8c(xb, 13, *args, (1, 1), False, 0)
