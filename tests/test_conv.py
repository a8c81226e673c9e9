"""conv2d / conv1d against float64 NumPy references, fixed cases and argument forms."""

from __future__ import annotations

import csv
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import (
    CONV_RTOL, ODD_CHANNELS, assert_bitequal, assert_close, available_isas, num_threads,
    out_size, pads2d, rand, ref_conv1d, ref_conv2d, same_pads, use_isa,
)
from strategies import conv2d_configs

ALGOS = ("auto", "direct", "im2col")

IMAGE_5x5 = np.array(
    [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]],
    dtype=np.float32,
)
KERNEL_3x3 = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]], dtype=np.float32)
EXPECTED_3x3 = np.array([[12, 12, 17], [10, 17, 19], [9, 6, 14]], dtype=np.float32)


def make_conv_inputs(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rand(rng, cfg["n"], cfg["c"], cfg["h"], cfg["w"])
    w = rand(rng, cfg["co"], cfg["c"] // cfg["groups"], cfg["kh"], cfg["kw"])
    b = rand(rng, cfg["co"]) if cfg["bias"] else None
    return x, w, b


def call_conv(fc, x, w, b, cfg, algo="auto"):
    return fc.conv2d(x, w, b, stride=cfg["stride"], padding=cfg["padding"],
                     dilation=cfg["dilation"], groups=cfg["groups"], algo=algo)


def describe(cfg):
    keys = ("n", "c", "h", "w", "co", "kh", "kw", "stride", "padding", "dilation", "groups",
            "bias")
    return ", ".join(f"{k}={cfg[k]}" for k in keys)


# --------------------------------------------------------------------------- fixed cases


@pytest.mark.parametrize("algo", ALGOS)
def test_textbook_5x5_image_3x3_kernel(fc, isa, algo):
    y = fc.conv2d(IMAGE_5x5[None, None], KERNEL_3x3[None, None], algo=algo)
    assert y.shape == (1, 1, 3, 3)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y[0, 0], EXPECTED_3x3)


@pytest.mark.parametrize("algo", ALGOS)
def test_textbook_5x5_unbatched(fc, isa, algo):
    y = fc.conv2d(IMAGE_5x5[None], KERNEL_3x3[None, None], algo=algo)
    assert y.shape == (1, 3, 3)
    np.testing.assert_array_equal(y[0], EXPECTED_3x3)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("c", [1, 3, 13])
def test_C_by_3x5_input_padding_2_1_stride_2_gives_3x2(fc, isa, algo, c):
    rng = np.random.default_rng(c)
    x = rng.integers(-3, 4, size=(1, c, 3, 5)).astype(np.float32)
    w = rng.integers(-3, 4, size=(1, c, 3, 5)).astype(np.float32)
    y = fc.conv2d(x, w, stride=(2, 2), padding=(2, 1), algo=algo)
    assert y.shape == (1, 1, 3, 2)
    # small integers: the float32 result is exact; check against loops written out here
    xp = np.zeros((c, 3 + 4, 5 + 2))
    xp[:, 2:5, 1:6] = x[0]
    expected = np.zeros((3, 2))
    for i in range(3):
        for j in range(2):
            expected[i, j] = np.sum(xp[:, 2 * i: 2 * i + 3, 2 * j: 2 * j + 5] * w[0])
    np.testing.assert_array_equal(y[0, 0], expected.astype(np.float32))
    np.testing.assert_array_equal(y[0, 0], ref_conv2d(x, w, None, 2, (2, 1))[0, 0])


@pytest.mark.parametrize("f,ci,co", [(3, 3, 64), (5, 13, 7), (1, 24, 15), (7, 1, 3)])
def test_parameter_count(fc, f, ci, co):
    rng = np.random.default_rng(0)
    w = rand(rng, co, ci, f, f)
    b = rand(rng, co)
    assert w.size + b.size == (f * f * ci + 1) * co
    x = rand(rng, 2, ci, f + 2, f + 3)
    y = fc.conv2d(x, w, b)
    assert y.shape == (2, co, 3, 4)
    assert_close(y, ref_conv2d(x, w, b), what="parameter-count conv")


@pytest.mark.parametrize("algo", ALGOS)
def test_bias_only_kernel_of_zeros(fc, isa, algo):
    x = np.ones((2, 3, 6, 5), np.float32)
    w = np.zeros((4, 3, 3, 3), np.float32)
    b = np.array([1.5, -2.0, 0.0, 7.25], np.float32)
    y = fc.conv2d(x, w, b, padding=1, algo=algo)
    assert y.shape == (2, 4, 6, 5)
    np.testing.assert_array_equal(y, np.broadcast_to(b[None, :, None, None], y.shape))


@pytest.mark.parametrize("algo", ALGOS)
def test_identity_kernel_copies_input(fc, isa, algo):
    rng = np.random.default_rng(3)
    x = rand(rng, 2, 5, 9, 7)
    w = np.zeros((5, 5, 3, 3), np.float32)
    for c in range(5):
        w[c, c, 1, 1] = 1.0
    y = fc.conv2d(x, w, padding=1, algo=algo)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("algo", ALGOS)
def test_no_kernel_flip(fc, isa, algo):
    # cross-correlation: a kernel with a single 1 at (0, 0) reads the top-left tap
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    w = np.zeros((1, 1, 2, 2), np.float32)
    w[0, 0, 0, 0] = 1.0
    y = fc.conv2d(x, w, algo=algo)
    np.testing.assert_array_equal(y[0, 0], x[0, 0, :3, :3])


# --------------------------------------------------------------------------- hypothesis


@given(cfg=conv2d_configs())
def test_conv2d_matches_reference(fc, isa, cfg):
    x, w, b = make_conv_inputs(cfg)
    ref = ref_conv2d(x, w, b, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    assert ref.shape == (cfg["n"], cfg["co"]) + cfg["out"]
    for algo in ALGOS:
        y = call_conv(fc, x, w, b, cfg, algo)
        assert_close(y, ref, what=f"conv2d isa={isa} algo={algo} {describe(cfg)}")


@given(cfg=conv2d_configs(max_kernel=3, medium=True))
@settings(max_examples=25)
def test_conv2d_medium_matches_reference(fc, isa, cfg):
    # channels 16..64 and maps up to 40x37: several direct-conv channel blocks and
    # register tiles, several im2col pixel tiles, GEMM edges in every dimension
    x, w, b = make_conv_inputs(cfg)
    ref = ref_conv2d(x, w, b, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    for algo in ALGOS:
        y = call_conv(fc, x, w, b, cfg, algo)
        assert_close(y, ref, what=f"conv2d medium isa={isa} algo={algo} {describe(cfg)}")


@given(cfg=conv2d_configs())
def test_direct_equals_im2col(fc, isa, cfg):
    x, w, b = make_conv_inputs(cfg)
    yd = call_conv(fc, x, w, b, cfg, "direct")
    yi = call_conv(fc, x, w, b, cfg, "im2col")
    scale = max(1.0, float(np.max(np.abs(yi))))
    assert yd.shape == yi.shape
    err = float(np.max(np.abs(yd.astype(np.float64) - yi)))
    assert err <= CONV_RTOL * scale, f"direct vs im2col {err:.3e} isa={isa} {describe(cfg)}"


@pytest.mark.skipif(len(available_isas()) < 2, reason="this CPU has no AVX2+FMA: only one ISA")
@given(cfg=conv2d_configs())
def test_scalar_equals_avx2(fc, cfg):
    x, w, b = make_conv_inputs(cfg)
    for algo in ALGOS:
        with use_isa("scalar"):
            ys = call_conv(fc, x, w, b, cfg, algo)
        with use_isa("avx2"):
            ya = call_conv(fc, x, w, b, cfg, algo)
        assert_close(ya, ys.astype(np.float64), what=f"avx2 vs scalar algo={algo} {describe(cfg)}")


@given(cfg=conv2d_configs(), data=st.data())
def test_unbatched_equals_batch_of_one(fc, cfg, data):
    x, w, b = make_conv_inputs(cfg)
    x1 = x[:1]
    algo = data.draw(st.sampled_from(ALGOS))
    y4 = call_conv(fc, x1, w, b, cfg, algo)
    y3 = call_conv(fc, x1[0], w, b, cfg, algo)
    assert y3.shape == y4.shape[1:]
    np.testing.assert_array_equal(y3, y4[0])


@given(cfg=conv2d_configs())
def test_batch_items_independent(fc, cfg):
    # the result for item i does not depend on the other items of the batch
    x, w, b = make_conv_inputs(cfg)
    y = call_conv(fc, x, w, b, cfg)
    for i in range(x.shape[0]):
        np.testing.assert_array_equal(call_conv(fc, x[i: i + 1], w, b, cfg), y[i: i + 1])


# --------------------------------------------------------------------------- argument forms


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("h,w,k,s,d", [
    (9, 7, 3, 1, 1), (9, 7, 3, 2, 1), (18, 17, 4, 2, 1), (18, 17, 3, 3, 2), (9, 7, 2, 1, 1),
    (7, 9, 5, 2, 2), (6, 1, 3, 1, 1), (5, 5, 1, 3, 1),
])
def test_padding_same_is_onnx_same_upper(fc, isa, algo, h, w, k, s, d):
    rng = np.random.default_rng(h * 100 + w)
    x = rand(rng, 1, 3, h, w)
    wt = rand(rng, 4, 3, k, k)
    y = fc.conv2d(x, wt, stride=s, padding="same", dilation=d, algo=algo)
    assert y.shape == (1, 4, -(-h // s), -(-w // s))
    pads = pads2d("same", (h, w), (k, k), s, d)
    assert_close(y, ref_conv2d(x, wt, None, s, pads, d), what=f"same pads={pads}")
    if (k - 1) * d % 2 == 1 and s == 1:
        # the odd pixel goes at the end: differs from putting it at the beginning
        t, l, b, r = pads
        assert b == t + 1


@pytest.mark.parametrize("algo", ALGOS)
def test_padding_valid_and_forms_agree(fc, algo):
    rng = np.random.default_rng(11)
    x = rand(rng, 2, 3, 9, 7)
    w = rand(rng, 5, 3, 3, 2)
    np.testing.assert_array_equal(fc.conv2d(x, w, padding="valid", algo=algo),
                                  fc.conv2d(x, w, padding=0, algo=algo))
    np.testing.assert_array_equal(fc.conv2d(x, w, padding=2, algo=algo),
                                  fc.conv2d(x, w, padding=(2, 2), algo=algo))
    np.testing.assert_array_equal(fc.conv2d(x, w, padding=(1, 2), algo=algo),
                                  fc.conv2d(x, w, padding=(1, 2, 1, 2), algo=algo))
    np.testing.assert_array_equal(fc.conv2d(x, w, stride=2, dilation=1, algo=algo),
                                  fc.conv2d(x, w, stride=(2, 2), dilation=(1, 1), algo=algo))


@pytest.mark.parametrize("algo", ALGOS)
def test_asymmetric_padding_is_onnx_order(fc, algo):
    # (top, left, bottom, right): only the top padded by 3 -> 3 extra rows at the top
    rng = np.random.default_rng(5)
    x = rand(rng, 1, 2, 5, 6)
    w = rand(rng, 3, 2, 2, 2)
    y = fc.conv2d(x, w, padding=(3, 0, 0, 1), algo=algo)
    assert y.shape == (1, 3, 7, 6)
    xp = np.pad(x, ((0, 0), (0, 0), (3, 0), (0, 1)))
    assert_close(y, ref_conv2d(xp, w), what="asymmetric (3,0,0,1)")


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("groups,c,co", [(2, 4, 6), (3, 15, 3), (13, 13, 13), (13, 13, 26),
                                         (24, 24, 24), (8, 24, 16), (1, 24, 1)])
def test_groups_and_depthwise(fc, isa, algo, groups, c, co):
    rng = np.random.default_rng(groups * 31 + c)
    x = rand(rng, 2, c, 9, 7)
    w = rand(rng, co, c // groups, 3, 3)
    b = rand(rng, co)
    y = fc.conv2d(x, w, b, padding=1, stride=(1, 2), groups=groups, algo=algo)
    assert_close(y, ref_conv2d(x, w, b, (1, 2), 1, 1, groups),
                 what=f"groups={groups} c={c} co={co} algo={algo}")
    # a grouped conv is the concatenation of independent convs on channel slices
    cg, og = c // groups, co // groups
    for g in (0, groups - 1):
        yg = fc.conv2d(x[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og],
                       b[g * og:(g + 1) * og], padding=1, stride=(1, 2), algo=algo)
        assert_close(y[:, g * og:(g + 1) * og], yg.astype(np.float64), what=f"group slice {g}")


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("k,s,p,d", [(1, 1, 0, 1), (1, 2, 0, 1), (7, 2, 3, 1), (3, 1, 2, 2),
                                     (3, 4, 0, 1), (5, 1, 0, 3), (2, 3, 1, 1), (9, 1, 4, 1)])
def test_kernel_stride_padding_dilation_grid(fc, isa, algo, k, s, p, d):
    rng = np.random.default_rng(k * 1000 + s * 100 + p * 10 + d)
    x = rand(rng, 2, 13, 18, 17)
    w = rand(rng, 15, 13, k, k)
    b = rand(rng, 15)
    y = fc.conv2d(x, w, b, stride=s, padding=p, dilation=d, algo=algo)
    assert_close(y, ref_conv2d(x, w, b, s, p, d), what=f"k={k} s={s} p={p} d={d} algo={algo}")


@pytest.mark.parametrize("algo", ALGOS)
def test_kernel_as_large_as_padded_input(fc, algo):
    rng = np.random.default_rng(2)
    x = rand(rng, 1, 3, 9, 7)
    w = rand(rng, 2, 3, 11, 9)
    y = fc.conv2d(x, w, padding=1, algo=algo)
    assert y.shape == (1, 2, 1, 1)
    assert_close(y, ref_conv2d(x, w, None, 1, 1), what="kernel = padded input")


@pytest.mark.parametrize("algo", ALGOS)
def test_wide_channels_and_larger_map(fc, isa, algo):
    rng = np.random.default_rng(9)
    x = rand(rng, 1, 64, 20, 19)
    w = rand(rng, 40, 64, 3, 3)
    b = rand(rng, 40)
    y = fc.conv2d(x, w, b, padding=1, algo=algo)
    assert_close(y, ref_conv2d(x, w, b, 1, 1), what=f"64->40 channels algo={algo}")


@pytest.mark.parametrize("algo", ALGOS)
def test_large_magnitudes_relative_tolerance(fc, algo):
    rng = np.random.default_rng(4)
    x = rand(rng, 1, 8, 9, 7, lo=-1e3, hi=1e3)
    w = rand(rng, 6, 8, 3, 3, lo=-1e2, hi=1e2)
    y = fc.conv2d(x, w, padding=1, algo=algo)
    assert_close(y, ref_conv2d(x, w, None, 1, 1), what="large magnitudes")


# --------------------------------------------------------------------------- array forms


def _strided_variants(a):
    """The same values as `a` in several memory layouts (all float32)."""
    yield "fortran", np.asfortranarray(a)
    big = np.zeros(tuple(2 * s for s in a.shape), np.float32)
    sl = tuple(slice(None, None, 2) for _ in a.shape)
    big[sl] = a
    yield "every-other", big[sl]
    neg = np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    yield "negative-stride", neg
    ro = a.copy()
    ro.flags.writeable = False
    yield "read-only", ro
    t = np.ascontiguousarray(np.swapaxes(a, 0, -1))
    yield "transposed-view", np.swapaxes(t, 0, -1)


@pytest.mark.parametrize("algo", ALGOS)
def test_noncontiguous_inputs_match_contiguous(fc, algo):
    rng = np.random.default_rng(8)
    x = rand(rng, 2, 3, 9, 7)
    w = rand(rng, 4, 3, 3, 2)
    b = rand(rng, 4)
    expected = fc.conv2d(x, w, b, padding=1, algo=algo)
    for name, xv in _strided_variants(x):
        np.testing.assert_array_equal(xv, x)
        np.testing.assert_array_equal(fc.conv2d(xv, w, b, padding=1, algo=algo), expected,
                                      err_msg=f"x {name}")
    for name, wv in _strided_variants(w):
        np.testing.assert_array_equal(fc.conv2d(x, wv, b, padding=1, algo=algo), expected,
                                      err_msg=f"weight {name}")
    for name, bv in _strided_variants(b):
        np.testing.assert_array_equal(fc.conv2d(x, w, bv, padding=1, algo=algo), expected,
                                      err_msg=f"bias {name}")


def test_inputs_not_modified_and_output_fresh(fc):
    rng = np.random.default_rng(1)
    x = rand(rng, 2, 3, 9, 7)
    w = rand(rng, 4, 3, 3, 3)
    b = rand(rng, 4)
    x0, w0, b0 = x.copy(), w.copy(), b.copy()
    y1 = fc.conv2d(x, w, b, padding=1)
    y2 = fc.conv2d(x, w, b, padding=1)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(b, b0)
    assert isinstance(y1, np.ndarray) and y1.flags.c_contiguous and y1.flags.writeable
    assert not np.shares_memory(y1, y2) and not np.shares_memory(y1, x)
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_float16_and_float64_inputs_converted(fc, dtype):
    rng = np.random.default_rng(6)
    x = rand(rng, 1, 3, 9, 7).astype(dtype)
    w = rand(rng, 4, 3, 3, 3).astype(dtype)
    b = rand(rng, 4).astype(dtype)
    y = fc.conv2d(x, w, b, padding=1)
    assert y.dtype == np.float32
    expected = fc.conv2d(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32),
                         padding=1)
    np.testing.assert_array_equal(y, expected)


def test_mixed_dtypes_converted(fc):
    rng = np.random.default_rng(7)
    x = rand(rng, 1, 3, 9, 7)
    w = rand(rng, 4, 3, 3, 3)
    expected = fc.conv2d(x, w)
    np.testing.assert_array_equal(fc.conv2d(x.astype(np.float64), w), expected)
    np.testing.assert_array_equal(fc.conv2d(x, w.astype(np.float64)), expected)


@pytest.mark.parametrize("algo", ALGOS)
def test_batch_zero_gives_empty_output(fc, algo):
    x = np.zeros((0, 3, 9, 7), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    y = fc.conv2d(x, w, np.zeros(4, np.float32), stride=2, padding=1, algo=algo)
    assert y.shape == (0, 4, 5, 4)
    assert y.dtype == np.float32


# --------------------------------------------------------------------------- conv1d


@given(
    c=st.sampled_from(ODD_CHANNELS), n=st.sampled_from((1, 2)), w=st.sampled_from((1, 7, 17, 33)),
    k=st.integers(1, 6), s=st.integers(1, 3), d=st.integers(1, 3),
    pad=st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)),
                  st.sampled_from(("same", "valid"))),
    dw=st.booleans(), bias=st.booleans(), seed=st.integers(0, 2**31 - 1),
    algo=st.sampled_from(ALGOS),
)
def test_conv1d_matches_reference(fc, c, n, w, k, s, d, pad, dw, bias, seed, algo):
    if isinstance(pad, str):
        pb, pe = (0, 0) if pad == "valid" else same_pads(w, k, s, d)
    elif isinstance(pad, int):
        pb = pe = pad
    else:
        pb, pe = pad
    wo = out_size(w, pb, pe, k, s, d)
    if wo < 1:
        with pytest.raises(ValueError):
            fc.conv1d(np.zeros((n, c, w), np.float32), np.zeros((c, c, k), np.float32),
                      stride=s, padding=pad, dilation=d)
        return
    groups = c if dw else 1
    co = c if dw else 5
    rng = np.random.default_rng(seed)
    x = rand(rng, n, c, w)
    wt = rand(rng, co, c // groups, k)
    b = rand(rng, co) if bias else None
    y = fc.conv1d(x, wt, b, stride=s, padding=pad, dilation=d, groups=groups, algo=algo)
    ref = ref_conv1d(x, wt, b, s, (pb, pe), d, groups)
    assert y.shape == (n, co, wo)
    assert_close(y, ref, what=f"conv1d c={c} w={w} k={k} s={s} d={d} pad={pad} groups={groups}")
    # unbatched [C, W] -> [Co, Wo]
    y1 = fc.conv1d(x[0], wt, b, stride=s, padding=pad, dilation=d, groups=groups, algo=algo)
    np.testing.assert_array_equal(y1, y[0])


def test_conv1d_equals_conv2d_with_height_one(fc):
    rng = np.random.default_rng(12)
    x = rand(rng, 2, 13, 31)
    w = rand(rng, 7, 13, 5)
    b = rand(rng, 7)
    y1 = fc.conv1d(x, w, b, stride=2, padding=(1, 3), dilation=2)
    y2 = fc.conv2d(x[:, :, None, :], w[:, :, None, :], b, stride=(1, 2), padding=(0, 1, 0, 3),
                   dilation=(1, 2))
    assert y1.shape == (2, 7, y2.shape[-1])
    assert_close(y1, y2[:, :, 0, :].astype(np.float64), what="conv1d vs conv2d H=1")


# --------------------------------------------------------------------------- workspace query


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("xs,ws,kw", [
    ((1, 3, 32, 32), (16, 3, 3, 3), dict(padding=1)),
    ((2, 13, 18, 17), (24, 13, 5, 5), dict(stride=2, padding=(1, 2, 0, 3), dilation=1)),
    ((1, 24, 9, 7), (24, 1, 3, 3), dict(groups=24, padding="same")),
    ((1, 8, 9, 7), (4, 8, 1, 1), {}),
])
def test_workspace_bytes_is_nonnegative_int(fc, algo, xs, ws, kw):
    n = fc.conv2d_workspace_bytes(xs, ws, algo=algo, **kw)
    assert isinstance(n, int) and not isinstance(n, bool)
    assert n >= 0
    # the call with that configuration works
    rng = np.random.default_rng(0)
    fc.conv2d(rand(rng, *xs), rand(rng, *ws), algo=algo, **kw)


def test_workspace_bytes_im2col_grows_with_problem(fc):
    small = fc.conv2d_workspace_bytes((1, 16, 16, 16), (16, 16, 3, 3), padding=1, algo="im2col")
    big = fc.conv2d_workspace_bytes((1, 64, 64, 64), (16, 64, 3, 3), padding=1, algo="im2col")
    assert big > small > 0


def test_workspace_bytes_rejects_bad_shapes(fc):
    with pytest.raises(fc.ShapeError):
        fc.conv2d_workspace_bytes((1, 3, 5, 5), (4, 2, 3, 3))       # channel mismatch
    with pytest.raises(fc.ShapeError):
        fc.conv2d_workspace_bytes((1, 3, 2, 2), (4, 3, 3, 3))       # output < 1
    with pytest.raises(ValueError):
        fc.conv2d_workspace_bytes((1, 3, 5, 5), (4, 3, 3, 3), algo="winograd-ish")


# --------------------------------------------------------------------------- bench shapes

# the package's copy, the one `fastconv bench` and bench/ read
SHAPES_CSV = (Path(__file__).resolve().parent.parent / "fastconv" / "data" / "shapes"
              / "conv2d.csv")


def _bench_rows():
    if not SHAPES_CSV.exists():
        return []
    with open(SHAPES_CSV, newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("name") and not r["name"].startswith("#")]


def _parse_padding(p):
    p = p.strip()
    if p in ("same", "valid"):
        return p
    parts = [int(v) for v in p.replace("(", "").replace(")", "").replace(";", " ")
             .replace(",", " ").replace("x", " ").split()]
    return parts[0] if len(parts) == 1 else tuple(parts)


@pytest.mark.parametrize("row", _bench_rows() or [None],
                         ids=lambda r: r["name"] if r else "no-csv")
def test_bench_shapes_reduced(fc, row):
    assert row is not None, f"{SHAPES_CSV} is missing or has no rows: the shared shapes file"
    n = min(int(row["batch"]), 2)
    c = int(row["in_channels"])
    co = int(row["out_channels"])
    kh, kw = int(row["kernel_h"]), int(row["kernel_w"])
    s = int(row["stride"])
    d = int(row["dilation"])
    g = int(row["groups"])
    pad = _parse_padding(row["padding"])
    # reduce the map but keep at least two output rows/cols where the original had them
    h = min(int(row["height"]), max(12, d * (kh - 1) + 1 + s))
    w = min(int(row["width"]), max(12, d * (kw - 1) + 1 + s))
    rng = np.random.default_rng(zlib.crc32(row["name"].encode()))
    x = rand(rng, n, c, h, w)
    wt = rand(rng, co, c // g, kh, kw)
    b = rand(rng, co)
    ref = ref_conv2d(x, wt, b, s, pad, d, g)
    for algo in ALGOS:
        y = fc.conv2d(x, wt, b, stride=s, padding=pad, dilation=d, groups=g, algo=algo)
        assert_close(y, ref, what=f"bench shape {row['name']} reduced to {h}x{w} algo={algo}")


# --------------------------------------------------------------------------- auto rule


@pytest.mark.parametrize("x_shape,w_shape,stride,pads,groups,expected", [
    ((1, 64, 224, 224), (64, 64, 3, 3), 1, 1, 1, "winograd"),     # 3x3/1: F(4x4)
    ((1, 256, 56, 56), (256, 256, 3, 3), 1, 2, 1, "direct"),      # (dilated below)
    ((1, 3, 224, 224), (64, 3, 7, 7), 2, 3, 1, "direct"),         # 7x7/2 stem, K = 147
    ((1, 3, 224, 224), (64, 3, 3, 3), 1, 1, 1, "im2col"),         # K = 27 < 32
    # ... under avx512 direct when the 14-row GEMM tiles would run part empty
    ((1, 3, 56, 56), (32, 3, 3, 3), 1, 1, 1, "im2col|avx512:direct"),
    ((1, 256, 56, 56), (256, 256, 1, 1), 1, 0, 1, "im2col"),      # 1x1
    ((1, 512, 28, 28), (512, 512, 3, 3), 1, 1, 1, "winograd"),    # stride 1: winograd
    # 16 F(4x4) tiles: one avx2 GEMM panel, half an avx512 one, computed at half width
    ((1, 512, 14, 14), (512, 512, 3, 3), 1, 1, 1, "winograd"),
    # 4 F(4x4) tiles only; F(2x2)'s 16 fill an avx2 panel, half an avx512 one
    ((1, 256, 8, 8), (256, 256, 3, 3), 1, 1, 1, "winograd2"),
    # 16x16: 16 F(4x4) tiles against 64 F(2x2) ones
    ((1, 128, 16, 16), (128, 128, 3, 3), 1, 1, 1, "winograd"),
    # 2x2 maps: a single F(2x2) tile, no gain -> direct
    ((1, 512, 2, 2), (512, 512, 3, 3), 1, 1, 1, "direct"),
    # too few tiles for Winograd; under avx512 direct's 28-column tiles would run nearly
    # empty on 4 columns, so im2col
    ((1, 512, 4, 4), (512, 512, 3, 3), 1, 1, 1, "direct|avx512:im2col"),
    ((1, 256, 56, 56), (256, 256, 3, 3), 2, 1, 1, "im2col|avx512:direct"),  # strided, 28 cols
    ((1, 256, 56, 56), (256, 1, 3, 3), 1, 1, 256, "direct"),      # depthwise
    ((1, 64, 56, 56), (64, 8, 3, 3), 1, 1, 8, "direct"),          # 8 channels per group
])
def test_auto_rule_as_documented(kernels, x_shape, w_shape, stride, pads, groups, expected):
    dil = 2 if pads == 2 else 1
    got = kernels.conv2d_choose(x_shape, w_shape, (stride, stride), (pads,) * 4, (dil, dil),
                                groups)
    if "|" in expected:             # "default|isa:algo": the rule differs under that ISA
        default, special = expected.split("|")
        isa, algo = special.split(":")
        expected = algo if kernels.get_isa() == isa else default
    assert got == expected, f"auto picked {got} for x {x_shape}, w {w_shape}"


def test_auto_rule_never_depends_on_the_thread_count(kernels):
    """DESIGN: same bits for any thread count, `auto` included: the rule picks the same
    algorithm for 1, 2 and 3 threads on every ISA (here for first layers, where the best
    algorithm does change with the thread count under avx512, and two VGG layers)."""
    old_isa, old_threads = kernels.get_isa(), kernels.get_num_threads()
    isas = ["scalar"] + (["avx2"] if kernels.has_avx2() else []) + \
        (["avx512"] if kernels.has_avx512() else [])
    cases = [((1, 3, 224, 224), (64, 3, 3, 3), 1), ((1, 3, 224, 224), (64, 3, 3, 3), 2),
             ((1, 1, 32, 32), (16, 1, 3, 3), 1), ((1, 256, 56, 56), (256, 256, 3, 3), 1),
             ((1, 512, 14, 14), (512, 512, 3, 3), 1)]
    try:
        for isa in isas:
            kernels.set_isa(isa)
            for xs, ws, s in cases:
                picks = set()
                for threads in (1, 2, 3):
                    kernels.set_num_threads(threads)
                    picks.add(kernels.conv2d_choose(xs, ws, (s, s), (1, 1, 1, 1), (1, 1), 1))
                assert len(picks) == 1, (isa, xs, ws, s, picks)
        if kernels.has_avx512():
            kernels.set_isa("avx512")
            assert kernels.conv2d_choose((1, 3, 224, 224), (64, 3, 3, 3), (1, 1),
                                         (1, 1, 1, 1), (1, 1), 1) == "im2col"
            assert kernels.conv2d_choose((1, 1, 32, 32), (16, 1, 3, 3), (1, 1),
                                         (1, 1, 1, 1), (1, 1), 1) == "direct"
    finally:
        kernels.set_isa(old_isa)
        kernels.set_num_threads(old_threads)


# --------------------------------------------------------------------------- tiny maps
# Direct convolution on maps of at most 16 output pixels (avx512; 4 under avx2) takes its
# own path (src_c/fc_conv_direct.c, uses_tiny): all output pixels of up to 6 (image, pixel)
# slots per call, each slot skipping the taps that fall in its padding, channel blocks of
# 16 (a last block of <= 8 channels is 8 wide) up to 4 per call. The cases cross those
# limits: 1..16 pixels, slots spanning images (batch 3, 7), 1..9 blocks with and without
# an 8-wide last one, and channel counts below 8 (the width kernel, not this path).

TINY_MAPS = [((1, 1), 1), ((2, 2), 1), ((3, 3), 1), ((4, 4), 1), ((3, 3), 0), ((4, 4), 0),
             ((2, 1), 1), ((1, 4), 1)]
TINY_CHANNELS = [(1, 1), (3, 3), (13, 13), (3, 24), (13, 40), (16, 72), (5, 136)]


def _check_tiny(fc, x, w, b, what, **kw):
    """direct, prepacked with fused ReLU and not, against float64; bit-identical for 1
    and 2 threads and between conv2d + relu and the prepared fused form."""
    ref = ref_conv2d(x, w, b, **kw)
    for relu in (False, True):
        r = np.maximum(ref, 0.0) if relu else ref
        got = []
        for threads in (1, 2):
            with num_threads(threads):
                yp = fc.prepare_conv2d(w, b, algo="direct", relu=relu, **kw)(x)
                yc = fc.conv2d(x, w, b, algo="direct", **kw)
            yc = fc.relu(yc) if relu else yc
            tag = f"{what} relu={relu} threads={threads}"
            assert_close(yp, r, what=tag)
            assert_bitequal(yp, yc, what=f"{tag}: prepared vs conv2d")
            got.append(yp)
        assert_bitequal(got[0], got[1], what=f"{what} relu={relu}: 1 vs 2 threads")


@pytest.mark.parametrize("n", [1, 3, 7])
@pytest.mark.parametrize("ci,co", TINY_CHANNELS)
@pytest.mark.parametrize("hw,pad", TINY_MAPS)
def test_direct_tiny_maps_match_reference(fc, isa, hw, pad, ci, co, n):
    rng = np.random.default_rng(zlib.crc32(repr((hw, pad, ci, co, n)).encode()))
    x = rand(rng, n, ci, *hw)
    w = rand(rng, co, ci, 3, 3)
    for bias in (False, True):
        b = rand(rng, co) if bias else None
        _check_tiny(fc, x, w, b, f"isa={isa} x={x.shape} co={co} pad={pad} bias={bias}",
                    padding=pad)


TINY_512 = [(isa, hw, pad, n) for isa in available_isas()
            for hw, pad in (((1, 1), 1), ((2, 2), 1), ((3, 3), 1), ((4, 4), 0), ((4, 4), 1))
            for n in (1, 3)
            # the scalar kernels take seconds on the larger ones: the small cases cover them
            if isa != "scalar" or (n == 1 and hw[0] * hw[1] <= 4)]


@pytest.mark.parametrize("isa,hw,pad,n", TINY_512)
def test_direct_tiny_maps_512_channels(fc, isa, hw, pad, n):
    """A CIFAR VGG's last layers: 512 -> 512 on 1x1..4x4 maps (32 blocks, 8 units of 4)."""
    rng = np.random.default_rng(hw[0] * 10 + pad + 100 * n)
    x = rand(rng, n, 512, *hw)
    w = rand(rng, 512, 512, 3, 3, lo=-0.05, hi=0.05)
    b = rand(rng, 512)
    with use_isa(isa):
        _check_tiny(fc, x, w, b, f"isa={isa} x={x.shape} pad={pad}", padding=pad)


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1), dict(dilation=2, padding=2),
                                dict(stride=(1, 2), padding=(1, 0)),
                                dict(padding=(0, 1, 2, 1))])
def test_direct_tiny_maps_stride_dilation_groups(fc, isa, kw):
    rng = np.random.default_rng(7)
    for groups, ci, co in ((1, 6, 40), (2, 32, 48), (4, 8, 64)):
        x = rand(rng, 2, ci, 4, 3)
        w = rand(rng, co, ci // groups, 3, 3)
        _check_tiny(fc, x, w, rand(rng, co), f"isa={isa} groups={groups} {kw}",
                    groups=groups, **kw)


def test_direct_tiny_maps_skip_padding_taps(fc, isa):
    """A tap in the padding is skipped, not multiplied by zero: infinite weights on taps
    that only ever see padding leave the output finite (a 1x1 map with padding 1 reads
    the centre tap alone)."""
    if isa == "scalar":
        pytest.skip("no tiny-map path in the scalar kernels (their padded input copy "
                    "multiplies the padding by zero)")
    rng = np.random.default_rng(3)
    x = rand(rng, 2, 16, 1, 1)
    w = rand(rng, 32, 16, 3, 3)
    w[:, :, 0, :] = np.inf
    w[:, :, :, 2] = -np.inf
    y = fc.conv2d(x, w, None, padding=1, algo="direct")
    ref = ref_conv2d(x, w[:, :, 1:2, 1:2], None)
    assert_close(y, ref, what=f"isa={isa}")
