"""The direct convolution that writes NCHW8c (conv2d_nchw8c_pack / conv2d_nchw8c_run,
src_c/fc_conv_nchw8c.c) against float64 references, on every ISA, from NCHW and from
blocked inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import CONV_RTOL, assert_bitequal, assert_close, rand, ref_conv2d, use_isa
from test_conv import EXPECTED_3x3, IMAGE_5x5, KERNEL_3x3


def blocked(x):
    """NCHW -> NCHW8c written out in NumPy: [N, ceil(C/8), H, W, 8], zero tail lanes."""
    n, c, h, w = x.shape
    cb = -(-c // 8)
    xp = np.zeros((n, cb * 8, h, w), np.float32)
    xp[:, :c] = x
    return np.ascontiguousarray(xp.reshape(n, cb, 8, h, w).transpose(0, 1, 3, 4, 2))


def unblocked(y, c):
    n, cb, h, w, _ = y.shape
    return y.transpose(0, 1, 4, 2, 3).reshape(n, cb * 8, h, w)[:, :c]


def tail(y, c):
    """The lanes past channel c of a blocked tensor (must be zero)."""
    n, cb, h, w, _ = y.shape
    return y.transpose(0, 1, 4, 2, 3).reshape(n, cb * 8, h, w)[:, c:]


def run(kernels, x, w, b, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), relu=False,
        threads=1, from_blocked=False):
    blob = kernels.conv2d_nchw8c_pack(x.shape, w, b, stride, pads, dilation)
    xin = blocked(x) if from_blocked else x
    return kernels.conv2d_nchw8c_run(xin, blob, w.shape, stride, pads, dilation, relu, threads)


@pytest.mark.parametrize("from_blocked", [False, True])
def test_textbook_5x5_image_3x3_kernel(kernels, isa, from_blocked):
    y = run(kernels, IMAGE_5x5[None, None], KERNEL_3x3[None, None], None,
            from_blocked=from_blocked)
    assert y.shape == (1, 1, 3, 3, 8)
    np.testing.assert_array_equal(unblocked(y, 1)[0, 0], EXPECTED_3x3)
    assert not tail(y, 1).any()


@pytest.mark.parametrize("from_blocked", [False, True])
@pytest.mark.parametrize("c", [1, 3, 13])
def test_C_by_3x5_input_padding_2_1_stride_2(kernels, isa, c, from_blocked):
    rng = np.random.default_rng(c)
    x = rng.integers(-3, 4, size=(1, c, 3, 5)).astype(np.float32)
    w = rng.integers(-3, 4, size=(1, c, 3, 5)).astype(np.float32)
    y = run(kernels, x, w, None, (2, 2), (2, 1, 2, 1), from_blocked=from_blocked)
    assert y.shape == (1, 1, 3, 2, 8)
    # small integers: exact in float32
    np.testing.assert_array_equal(unblocked(y, 1), ref_conv2d(x, w, None, 2, (2, 1)))


# (n, ci, co, h, w, k, stride, pads, dilation): VGG-like, odd sizes, channel counts that
# are not multiples of 8 or of a group (16 / 32), border-only maps
CASES = [
    (1, 3, 64, 20, 23, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    (2, 13, 24, 9, 7, (3, 3), (2, 2), (2, 1, 2, 1), (1, 1)),
    (1, 16, 40, 14, 14, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    (1, 8, 8, 5, 5, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    (1, 5, 33, 11, 13, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2)),
    (3, 1, 1, 6, 30, (2, 5), (1, 3), (0, 3, 1, 0), (1, 1)),
    (1, 3, 5, 4, 4, (5, 5), (1, 1), (1, 1, 1, 1), (1, 1)),
    (1, 9, 17, 2, 2, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    (1, 32, 48, 16, 45, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    (1, 4, 7, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:5])))
@pytest.mark.parametrize("from_blocked", [False, True])
def test_against_float64_reference(kernels, isa, case, from_blocked):
    n, ci, co, h, w, k, s, pads, d = case
    rng = np.random.default_rng(ci * 1000 + co)
    x = rand(rng, n, ci, h, w)
    wt = rand(rng, co, ci, *k)
    b = rand(rng, co)
    ref = np.maximum(ref_conv2d(x, wt, b, s, pads, d), 0)
    y = run(kernels, x, wt, b, s, pads, d, relu=True, threads=2, from_blocked=from_blocked)
    assert y.shape == (n, -(-co // 8)) + ref.shape[2:] + (8,)
    assert_close(unblocked(y, co), ref, what=f"nchw8c conv {case}")
    assert not tail(y, co).any(), "tail lanes must be zero"
    y1 = run(kernels, x, wt, b, s, pads, d, relu=True, threads=1, from_blocked=from_blocked)
    assert_bitequal(y, y1, "threads 2 vs 1")


def test_nchw_and_blocked_input_give_the_same_bits(kernels, isa):
    rng = np.random.default_rng(5)
    x, wt, b = rand(rng, 2, 11, 9, 10), rand(rng, 20, 11, 3, 3), rand(rng, 20)
    # the blocked input goes through the column-padded copy, the NCHW one through the
    # one-column border tiles
    args = (x.shape, wt.shape, (1, 1), (1, 1, 1, 1), (1, 1))
    assert kernels.conv2d_nchw8c_workspace_bytes(*args, True) > 0
    assert kernels.conv2d_nchw8c_workspace_bytes(*args, False) == 0
    a = run(kernels, x, wt, b, pads=(1, 1, 1, 1))
    c = run(kernels, x, wt, b, pads=(1, 1, 1, 1), from_blocked=True)
    assert_bitequal(a, c, "NCHW vs NCHW8c input")


def test_no_bias_no_relu_and_batch_zero(kernels, isa):
    rng = np.random.default_rng(1)
    x, wt = rand(rng, 2, 3, 7, 7), rand(rng, 9, 3, 3, 3)
    y = run(kernels, x, wt, None, pads=(1, 1, 1, 1))
    assert (y < 0).any()  # no ReLU applied
    assert_close(unblocked(y, 9), ref_conv2d(x, wt, None, 1, 1))
    empty = run(kernels, np.zeros((0, 3, 7, 7), np.float32), wt, None, pads=(1, 1, 1, 1))
    assert empty.shape == (0, 2, 7, 7, 8)


def test_nan_stays_in_its_windows_and_out_of_the_tail(kernels, isa):
    x = np.ones((1, 3, 6, 6), np.float32)
    x[0, 1, 2, 3] = np.nan
    wt = np.ones((5, 3, 3, 3), np.float32)
    y = unblocked(run(kernels, x, wt, None, pads=(1, 1, 1, 1), relu=True), 5)
    hit = np.zeros((6, 6), bool)
    hit[1:4, 2:5] = True       # the outputs whose 3x3 window holds (2, 3)
    assert np.isnan(y[0, :, hit]).all()
    assert np.isfinite(y[0, :, ~hit]).all()
    full = run(kernels, x, wt, None, pads=(1, 1, 1, 1), relu=True)
    assert not tail(full, 5).any()


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_random_configurations(kernels, data):
    ci = data.draw(st.sampled_from([1, 2, 3, 7, 8, 9, 16, 19]), "ci")
    co = data.draw(st.sampled_from([1, 5, 8, 15, 16, 17, 33]), "co")
    kh, kw = data.draw(st.integers(1, 4), "kh"), data.draw(st.integers(1, 4), "kw")
    s = (data.draw(st.integers(1, 3), "sh"), data.draw(st.integers(1, 3), "sw"))
    d = (data.draw(st.integers(1, 2), "dh"), data.draw(st.integers(1, 2), "dw"))
    pads = tuple(data.draw(st.integers(0, 2), f"p{i}") for i in range(4))
    h = data.draw(st.integers(1, 12), "h")
    w = data.draw(st.integers(1, 31), "w")
    if h + pads[0] + pads[2] < d[0] * (kh - 1) + 1 or w + pads[1] + pads[3] < d[1] * (kw - 1) + 1:
        return  # no output: the conv front rejects it (tested elsewhere)
    isa = data.draw(st.sampled_from(["scalar", "avx2", "avx512"]), "isa")
    if (isa == "avx2" and not kernels.has_avx2()) or (isa == "avx512" and not kernels.has_avx512()):
        isa = "scalar"
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31), "seed"))
    x, wt, b = rand(rng, 2, ci, h, w), rand(rng, co, ci, kh, kw), rand(rng, co)
    from_blocked = data.draw(st.booleans(), "from_blocked")
    with use_isa(isa):
        y = run(kernels, x, wt, b, s, pads, d, threads=2, from_blocked=from_blocked)
    ref = ref_conv2d(x, wt, b, s, pads, d)
    assert_close(unblocked(y, co), ref, rtol=CONV_RTOL, what="random nchw8c conv")
    assert not tail(y, co).any()


def test_errors(kernels, fc):
    rng = np.random.default_rng(0)
    x, wt = rand(rng, 1, 10, 6, 6), rand(rng, 8, 10, 3, 3)
    blob = kernels.conv2d_nchw8c_pack(x.shape, wt, None, (1, 1), (0, 0, 0, 0), (1, 1))
    with pytest.raises(fc.ShapeError):        # 10 channels are 2 blocks, not 1
        kernels.conv2d_nchw8c_run(np.zeros((1, 1, 6, 6, 8), np.float32), blob, wt.shape,
                                  (1, 1), (0, 0, 0, 0), (1, 1))
    with pytest.raises(fc.ShapeError):        # weight expects 10 input channels
        kernels.conv2d_nchw8c_run(np.zeros((1, 9, 6, 6), np.float32), blob, wt.shape,
                                  (1, 1), (0, 0, 0, 0), (1, 1))
    with pytest.raises(TypeError):
        kernels.conv2d_nchw8c_run(x.astype(np.float64), blob, wt.shape, (1, 1),
                                  (0, 0, 0, 0), (1, 1))
    with pytest.raises(fc.ShapeError):        # output below 1x1
        kernels.conv2d_nchw8c_pack((1, 10, 2, 2), wt, None, (1, 1), (0, 0, 0, 0), (1, 1))
    with pytest.raises(ValueError, match="do not match"):   # blob of another weight shape
        other = rand(rng, 8, 10, 1, 1)
        kernels.conv2d_nchw8c_run(x, blob, other.shape, (1, 1), (0, 0, 0, 0), (1, 1))
    with pytest.raises(TypeError):
        kernels.conv2d_nchw8c_run(x, np.zeros(10, np.float32), wt.shape, (1, 1),
                                  (0, 0, 0, 0), (1, 1))
    isas = [i for i in ("scalar", "avx2", "avx512")
            if i == "scalar" or getattr(kernels, f"has_{i}")()]
    if len(isas) > 1:
        with use_isa(isas[-1]):
            fresh = kernels.conv2d_nchw8c_pack(x.shape, wt, None, (1, 1), (0, 0, 0, 0), (1, 1))
        with use_isa("scalar"), pytest.raises(ValueError, match="another ISA"):
            kernels.conv2d_nchw8c_run(x, fresh, wt.shape, (1, 1), (0, 0, 0, 0), (1, 1))
    out = np.empty((1, 1, 4, 4, 8), np.float32)
    y = kernels.conv2d_nchw8c_run(x, blob, wt.shape, (1, 1), (0, 0, 0, 0), (1, 1), out=out)
    assert y is out
    with pytest.raises(fc.ShapeError):
        kernels.conv2d_nchw8c_run(x, blob, wt.shape, (1, 1), (0, 0, 0, 0), (1, 1),
                                  out=np.empty((1, 8, 4, 4), np.float32))


@pytest.mark.parametrize("case", CASES[:6], ids=lambda c: "x".join(map(str, c[:5])))
def test_against_torch(kernels, case):
    torch = pytest.importorskip("torch", reason="PyTorch (CPU) not installed: "
                                "pip install torch==2.13.0")
    n, ci, co, h, w, k, s, pads, d = case
    rng = np.random.default_rng(ci + 7 * co)
    x, wt, b = rand(rng, n, ci, h, w), rand(rng, co, ci, *k), rand(rng, co)
    t, l, bo, r = pads
    xt = torch.nn.functional.pad(torch.from_numpy(x), (l, r, t, bo))
    ref = torch.nn.functional.conv2d(xt, torch.from_numpy(wt), torch.from_numpy(b),
                                     stride=s, dilation=d).numpy()
    y = run(kernels, x, wt, b, s, pads, d, from_blocked=True)
    assert_close(unblocked(y, co), ref, what=f"nchw8c conv vs torch {case}")
