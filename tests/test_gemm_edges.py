"""Edge tiles of the SGEMM micro-kernels (6x16 AVX2, 14x32 AVX-512, 4x8 scalar) and of the
convolutions built on them, under every ISA the CPU has, against float64 references:
m, n, k that are not multiples of MR, NR or KC (AVX-512: 14, 32, 256; AVX2: 6, 16, 384),
1, 3 and 13 channels, and bit identity across thread counts 1, 2 and 3."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_bitequal, assert_close, num_threads, rand, ref_conv2d, use_isa

# (m, n, k): single elements, one short tile, a full tile plus one row / column, a half
# (16-column) AVX-512 tile, sums crossing the KC blocks of either ISA (257, 385, 513)
GEMM_SHAPES = [
    (1, 1, 1), (3, 5, 7), (13, 31, 17), (14, 32, 256), (15, 33, 257), (6, 16, 384),
    (29, 16, 385), (28, 47, 513), (3, 100, 9), (41, 65, 130), (7, 17, 1),
]


def _ref_gemm(a, b, bias_m, bias_n, relu):
    r = a.astype(np.float64) @ b.astype(np.float64)
    if bias_m is not None:
        r = r + bias_m.astype(np.float64)[:, None]
    if bias_n is not None:
        r = r + bias_n.astype(np.float64)[None, :]
    return np.maximum(r, 0.0) if relu else r


@pytest.mark.parametrize("m,n,k", GEMM_SHAPES)
def test_sgemm_edge_tiles(kernels, isa, m, n, k):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    a, b = rand(rng, m, k), rand(rng, k, n)
    bias_m, bias_n = rand(rng, m), rand(rng, n)
    for bm, bn, relu in ((None, None, False), (bias_m, None, True), (bias_m, bias_n, True),
                         (None, bias_n, False)):
        ref = _ref_gemm(a, b, bm, bn, relu)
        # B as stored and transposed (column j contiguous: the linear-layer packer)
        for bb in (b, np.ascontiguousarray(b.T).T):
            outs = [kernels.sgemm(a, bb, bm, bn, relu, t) for t in (1, 2, 3)]
            assert_close(outs[0], ref, what=f"sgemm {isa} m={m} n={n} k={k}")
            for t, o in zip((2, 3), outs[1:]):
                assert_bitequal(o, outs[0], f"sgemm {isa} {m}x{n}x{k} threads {t} vs 1")


def test_sgemm_strided_a(kernels, isa):
    # A transposed (rs_a == 1) and A with a row stride wider than k
    rng = np.random.default_rng(3)
    base = rand(rng, 40, 300)
    for a in (base[:29, :257], np.ascontiguousarray(base[:29, :257].T).T):
        b = rand(rng, 257, 45)
        assert_close(kernels.sgemm(a, b), _ref_gemm(a, b, None, None, False),
                     what=f"sgemm strided A {isa}")


@pytest.mark.parametrize("cin", [1, 3, 13])
@pytest.mark.parametrize("algo", ["im2col", "direct"])
def test_conv_edge_channels(fc, isa, cin, algo):
    # output channels 29 = 2 x 14 + 1; 5x7 = 35 pixels = one 32-wide panel plus 3;
    # 3x3 at stride 2 and a 1x1 conv reach the strided and the plain-GEMM packers
    rng = np.random.default_rng(cin)
    for (h, w_), co, kk, kw in (((5, 7), 29, 3, dict(padding=1)),
                               ((9, 8), 17, 3, dict(stride=2, padding=1)),
                               ((4, 5), 33, 1, {})):
        x, w, b = rand(rng, 2, cin, h, w_), rand(rng, co, cin, kk, kk), rand(rng, co)
        ref = ref_conv2d(x, w, b, **kw)
        outs = []
        for t in (1, 2, 3):
            with num_threads(t):
                outs.append(fc.conv2d(x, w, b, algo=algo, **kw))
        assert_close(outs[0], ref, what=f"conv {algo} {isa} cin={cin} co={co} {kw}")
        for t, o in zip((2, 3), outs[1:]):
            assert_bitequal(o, outs[0], f"conv {algo} {isa} cin={cin} threads {t} vs 1")


def test_avx512_matches_avx2_and_blob_records_isa(fc, kernels):
    if not kernels.has_avx512():
        pytest.skip("this CPU has no AVX-512 F/VL/DQ/BW (or the OS does not save ZMM state)")
    rng = np.random.default_rng(9)
    x, w, b = rand(rng, 1, 20, 12, 13), rand(rng, 40, 20, 3, 3), rand(rng, 40)
    ref = ref_conv2d(x, w, b, padding=1)
    with use_isa("avx512"):
        y512 = fc.conv2d(x, w, b, padding=1, algo="im2col")
        blob, _ = kernels.conv2d_pack(x.shape, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1, "im2col")
    with use_isa("avx2"):
        y2 = fc.conv2d(x, w, b, padding=1, algo="im2col")
        with pytest.raises(ValueError):   # packed for avx512: 14-row panels, KC 256
            kernels.conv2d_run(x, blob, w.shape, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    assert_close(y512, ref, what="avx512 im2col")
    assert_close(y2, ref, what="avx2 im2col")
    with use_isa("avx512"):
        yr = kernels.conv2d_run(x, blob, w.shape, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    assert_bitequal(yr, y512, "avx512 prepared vs per-call im2col")


# Direct convolution channel kernels: output channels that pair two 16-channel blocks
# (AVX-512 two-block kernel, nco 17..32), leave an 8-wide last block (17..24, 33..40) or an
# odd block (48); map widths around the tile widths (AVX-512: 28 and 14 columns, a short
# remainder merged and split; AVX2: 6) at strides 1, 2 and 3.
@pytest.mark.parametrize("co", [16, 20, 29, 40, 48])
@pytest.mark.parametrize("w_in,stride,pad", [(31, 1, 1), (17, 1, 0), (35, 2, 1), (16, 3, 2)])
def test_direct_channel_blocks_and_widths(fc, isa, co, w_in, stride, pad):
    rng = np.random.default_rng(co * 100 + w_in)
    x, w, b = rand(rng, 1, 5, 4, w_in), rand(rng, co, 5, 3, 3), rand(rng, co)
    kw = dict(stride=stride, padding=pad)
    ref = ref_conv2d(x, w, b, **kw)
    outs = []
    for t in (1, 2, 3):
        with num_threads(t):
            outs.append(fc.conv2d(x, w, b, algo="direct", **kw))
    assert_close(outs[0], ref, what=f"direct {isa} co={co} w={w_in} {kw}")
    for t, o in zip((2, 3), outs[1:]):
        assert_bitequal(o, outs[0], f"direct {isa} co={co} w={w_in} threads {t} vs 1")
    # prepared weights run the same kernels on the same packed blocks
    conv = fc.prepare_conv2d(w, b, algo="direct", **kw)
    assert_bitequal(conv(x), outs[0], f"direct {isa} co={co} prepared vs per call")
