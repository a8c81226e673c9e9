"""Winograd convolution: algo="winograd" (F(4x4, 3x3)) and "winograd2" (F(2x2, 3x3)).

Against the float64 reference on odd shapes (maps not divisible by the tile, 1x1 maps,
1, 3 and 13 channels, asymmetric padding), bit-identical for 1, 2 and 3 threads and
between conv2d and a prepared convolution, the accuracy budget on VGG-16 layer shapes,
ValueError for configurations it cannot serve, and the auto rule.

Measured accuracy (test_vgg16_layer_accuracy; max |err| / max |ref| against float64,
He-initialised weights, ImageNet-scaled inputs, VGG-16 channel counts on 12x12 to 20x20
maps): winograd 1.3e-5 (AVX2) / 1.5e-5 (scalar), winograd2 7.2e-7 / 7.4e-7, against a
budget of 1e-3. For comparison the direct algorithm reaches ~1e-6 on such layers."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv as fc_mod
from fastconv import layers as L
from conftest import assert_bitequal, assert_close, num_threads, rand, ref_conv2d, use_isa

WINO = ("winograd", "winograd2")

# (n, c, h, w, co, padding): maps not divisible by 4 or 2, 1x1 maps, channels 1, 3, 13
SHAPES = [
    (1, 1, 1, 1, 1, 1),
    (2, 3, 1, 1, 5, 1),
    (1, 13, 7, 9, 13, 1),
    (3, 3, 11, 6, 4, (0, 2, 1, 0)),
    (1, 13, 5, 38, 7, 0),
    (2, 1, 9, 3, 3, 2),
    (1, 16, 17, 19, 24, (1, 0, 2, 3)),
    (1, 8, 3, 3, 16, 0),
    # 16 F(4x4) / 49 F(2x2) tiles, and 12 / 48 over a batch: last GEMM panels at most
    # half full, which the driver computes at half width
    (1, 8, 14, 14, 16, 1),
    (3, 4, 8, 8, 8, 1),
]


def _inputs(seed, n, c, h, w, co, bias=True):
    rng = np.random.default_rng(seed)
    x = rand(rng, n, c, h, w)
    wt = rand(rng, co, c, 3, 3)
    b = rand(rng, co) if bias else None
    return x, wt, b


@pytest.mark.parametrize("algo", WINO)
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_reference_and_thread_counts(fc, isa, algo, shape):
    n, c, h, w, co, pad = shape
    for bias in (True, False):
        x, wt, b = _inputs(len(SHAPES) + h * w + bias, n, c, h, w, co, bias)
        ref = ref_conv2d(x, wt, b, 1, pad, 1, 1)
        outs = []
        for nt in (1, 2, 3):
            with num_threads(nt):
                outs.append(fc.conv2d(x, wt, b, padding=pad, algo=algo))
        assert_close(outs[0], ref, what=f"{algo} isa={isa} {shape} bias={bias}")
        for nt, y in zip((2, 3), outs[1:]):
            assert_bitequal(y, outs[0], f"{algo} {shape}: {nt} threads vs 1")


@pytest.mark.parametrize("algo", WINO)
def test_many_tiles_and_blocks(fc, isa, algo):
    """Enough tiles for several blocks per thread, groups of 8 tiles crossing tile rows
    and images, edge tiles on the right and at the bottom."""
    x, wt, b = _inputs(7, 3, 24, 45, 39, 40)
    ref = ref_conv2d(x, wt, b, 1, 1, 1, 1)
    outs = []
    for nt in (1, 2, 3):
        with num_threads(nt):
            outs.append(fc.conv2d(x, wt, b, padding=1, algo=algo))
    assert_close(outs[0], ref, what=f"{algo} isa={isa} many tiles")
    assert_bitequal(outs[1], outs[0], "2 threads vs 1")
    assert_bitequal(outs[2], outs[0], "3 threads vs 1")


# Tile groups (8 tiles, 16 under avx512) in every form the kernels take: (n, c, h, w, co,
# padding) with tile rows of 1, 2, 4, 5, 7, 14, 16, 17, 33 tiles, so that groups cross tile
# rows and images at every phase; whole-row runs touching the left or right border or
# both (w = 64: one 16-tile run per F(4x4) row); 1x1 and 2x2 maps; paddings 0, 1, 2 and
# asymmetric ones.
GROUP_SHAPES = [
    (3, 2, 1, 1, 3, 1),
    (2, 2, 2, 2, 3, 1),
    (2, 2, 2, 2, 3, 2),
    (1, 3, 2, 2, 2, (2, 0, 1, 2)),
    (3, 3, 14, 14, 4, 1),
    (2, 3, 28, 28, 4, 1),
    (1, 2, 10, 64, 3, 1),
    (2, 2, 9, 66, 3, 1),
    (2, 2, 6, 130, 3, (1, 2, 0, 1)),
    (3, 2, 17, 19, 3, 0),
    (2, 2, 5, 61, 3, 2),
    (3, 2, 7, 7, 3, (0, 1, 2, 0)),
]


@pytest.mark.parametrize("algo", WINO)
def test_group_forms_and_borders(fc, isa, algo):
    """Against the reference; bit-identical for 1 and 2 threads; and each image of a batch
    bit-identical to that image alone, where its tiles fall into other groups (other
    lanes, other forms: run or gathered tiles)."""
    for k, (n, c, h, w, co, pad) in enumerate(GROUP_SHAPES):
        x, wt, b = _inputs(100 + k, n, c, h, w, co)
        what = f"{algo} isa={isa} {(n, c, h, w, co, pad)}"
        y = fc.conv2d(x, wt, b, padding=pad, algo=algo)
        assert_close(y, ref_conv2d(x, wt, b, 1, pad, 1, 1), what=what)
        with num_threads(2):
            assert_bitequal(fc.conv2d(x, wt, b, padding=pad, algo=algo), y, f"{what}: 2 threads")
        for i in range(n):
            yi = fc.conv2d(x[i:i + 1], wt, b, padding=pad, algo=algo)
            assert_bitequal(yi, y[i:i + 1], f"{what}: image {i} alone")


@pytest.mark.parametrize("algo", WINO)
def test_memory_around_the_input_is_not_read(fc, isa, algo):
    """The masked loads at the borders read nothing outside the image: NaN in the memory
    right before and after the input plane (a contiguous view of a larger buffer) must
    not reach the output, whose padding reads as zeros."""
    rng = np.random.default_rng(21)
    for h, w, pad in ((9, 64, 1), (5, 66, 2), (6, 9, 1), (2, 2, 2), (13, 130, (2, 1, 1, 2))):
        big = np.full((1, 1, h + 4, w), np.nan, np.float32)
        big[0, 0, 2:2 + h] = rand(rng, h, w)
        x = big[:, :, 2:2 + h]
        assert x.flags.c_contiguous
        wt = rand(rng, 2, 1, 3, 3)
        y = fc.conv2d(x, wt, None, padding=pad, algo=algo)
        assert np.isfinite(y).all(), f"{algo} isa={isa} {h}x{w} pad {pad}: NaN from outside"
        assert_close(y, ref_conv2d(np.ascontiguousarray(x), wt, None, 1, pad, 1, 1),
                     what=f"{algo} isa={isa} {h}x{w}")


@pytest.mark.parametrize("algo", WINO)
def test_prepared_relu_and_other_sizes(fc, isa, algo):
    rng = np.random.default_rng(11)
    wt, b = rand(rng, 24, 13, 3, 3), rand(rng, 24)
    conv = fc.prepare_conv2d(wt, b, padding="same", algo=algo)
    relu = fc.prepare_conv2d(wt, b, padding="same", algo=algo, relu=True)
    for shape in ((1, 13, 9, 7), (3, 13, 18, 17), (0, 13, 5, 5), (13, 4, 6)):
        x = rand(rng, *shape)
        y = conv(x)
        assert_bitequal(y, fc.conv2d(x, wt, b, padding="same", algo=algo), f"shape {shape}")
        assert_bitequal(relu(x), np.maximum(y, 0), f"fused relu, shape {shape}")
    x = rand(rng, 2, 13, 10, 11)
    assert_close(conv(x), ref_conv2d(x, wt, b, 1, 1, 1, 1), what=f"prepared {algo}")


def test_prepared_repacks_after_isa_switch(fc, kernels):
    rng = np.random.default_rng(12)
    wt, b = rand(rng, 16, 8, 3, 3), rand(rng, 16)
    x = rand(rng, 1, 8, 13, 13)
    conv = fc.prepare_conv2d(wt, b, padding=1, algo="winograd")
    with use_isa("scalar"):
        ys = conv(x)
        assert_bitequal(ys, fc.conv2d(x, wt, b, padding=1, algo="winograd"), "scalar")
    if kernels.has_avx2():
        with use_isa("avx2"):
            ya = conv(x)
            assert_bitequal(ya, fc.conv2d(x, wt, b, padding=1, algo="winograd"), "avx2")
        assert_close(ya, ys.astype(np.float64), what="avx2 vs scalar")


# VGG-16's 3x3 layers (in, out channels), on small maps so the test stays fast
VGG16 = [(3, 64, 20), (64, 64, 20), (64, 128, 16), (128, 128, 16), (128, 256, 14),
         (256, 256, 14), (256, 512, 12), (512, 512, 12)]
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def _vgg_input(rng, c, h):
    """ImageNet-normalised pixels for the RGB layer; for deeper layers activations of the
    same scale after a ReLU (what a VGG layer sees)."""
    if c == 3:
        px = rng.uniform(0.0, 1.0, (1, 3, h, h))
        return ((px - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]).astype(np.float32)
    return np.maximum(rng.standard_normal((1, c, h, h)), 0).astype(np.float32) * 1.5


@pytest.mark.parametrize("algo", WINO)
def test_vgg16_layer_accuracy(fc, isa, algo):
    rng = np.random.default_rng(16)
    worst = 0.0
    for ci, co, h in VGG16:
        x = _vgg_input(rng, ci, h)
        wt = (rng.standard_normal((co, ci, 3, 3)) * np.sqrt(2.0 / (9 * ci))).astype(np.float32)
        b = (rng.standard_normal(co) * 0.1).astype(np.float32)
        ref = ref_conv2d(x, wt, b, 1, 1, 1, 1)
        y = fc.conv2d(x, wt, b, padding=1, algo=algo)
        rel = float(np.abs(y - ref).max() / np.abs(ref).max())
        worst = max(worst, rel)
        assert rel < 1e-3, f"{algo} isa={isa} VGG layer {ci}->{co} at {h}x{h}: {rel:.2e}"
    print(f"\n{algo} isa={isa}: worst max|err|/max|ref| over VGG-16 layers {worst:.2e}")
    # tighter than the budget: a wrong transform constant gives errors of order 1
    assert worst < (5e-5 if algo == "winograd" else 5e-6)


@pytest.mark.parametrize("algo", WINO)
def test_unsupported_configurations_raise(fc, algo):
    rng = np.random.default_rng(13)
    x = rand(rng, 1, 4, 9, 9)
    w3, w5, w1 = rand(rng, 4, 4, 3, 3), rand(rng, 4, 4, 5, 5), rand(rng, 4, 4, 1, 1)
    cases = [dict(weight=w5, padding=2), dict(weight=w1), dict(weight=w3, stride=2),
             dict(weight=w3, dilation=2, padding=2), dict(weight=w3[:, :2], groups=2),
             dict(weight=rand(rng, 4, 4, 3, 1))]
    for kw in cases:
        wt = kw.pop("weight")
        with pytest.raises(ValueError, match="cannot serve"):
            fc.conv2d(x, wt, algo=algo, **kw)
        with pytest.raises(ValueError):
            fc.prepare_conv2d(wt, algo=algo, **kw)(x)
    with pytest.raises(ValueError):
        fc.conv1d(rand(rng, 1, 4, 9), rand(rng, 4, 4, 3), algo=algo)


@pytest.mark.parametrize("algo", WINO)
def test_nan_stays_within_its_tiles(fc, algo):
    """Documented (DESIGN.md, fastconv.h): a NaN may spread to every output of the tiles
    whose input patch holds it, never further; where direct gives NaN so does Winograd."""
    rng = np.random.default_rng(17)
    x, wt = rand(rng, 1, 5, 24, 24), rand(rng, 6, 5, 3, 3)
    x[0, 2, 10, 13] = np.nan
    yd = fc.conv2d(x, wt, padding=1, algo="direct")
    yw = fc.conv2d(x, wt, padding=1, algo=algo)
    m = 4 if algo == "winograd" else 2
    assert np.isnan(yw[np.isnan(yd)]).all()
    # outputs whose tile's input patch (rows/cols t*m - 1 ... t*m + m) misses the NaN
    rows, cols = np.arange(24) // m * m, np.arange(24) // m * m
    near_r = (rows - 1 <= 10) & (10 <= rows + m)
    near_c = (cols - 1 <= 13) & (13 <= cols + m)
    far = ~(near_r[:, None] & near_c[None, :])
    assert np.isfinite(yw[:, :, far]).all()
    assert_close(yw[:, :, far], yd[:, :, far].astype(np.float64), what=f"{algo} away from NaN")


def _choose(kernels, n, c, h, co, k=3, s=1, d=1, g=1):
    p = d * (k - 1) // 2
    return kernels.conv2d_choose((n, c, h, h), (co, c // g, k, k), (s, s), (p,) * 4, (d, d), g)


def test_auto_rule(kernels):
    # VGG-16 layers with 64 channels or more: F(4x4)
    for c, h, co in ((64, 224, 64), (128, 112, 128), (256, 56, 256)):
        assert _choose(kernels, 1, c, h, co) == "winograd", (c, h, co)
    # 14x14: 16 F(4x4) tiles fill an avx2 panel and half an avx512 one (computed at half
    # width), against F(2x2)'s 49
    assert _choose(kernels, 1, 512, 14, 512) == "winograd"
    # an 8x8 map has 4 F(4x4) tiles but 16 F(2x2) ones: one full avx2 GEMM panel, half an
    # avx512 one
    assert _choose(kernels, 1, 256, 8, 256) == "winograd2"
    assert _choose(kernels, 64, 512, 4, 512) == "winograd"  # batch 64 fills the panels
    # too few tiles to fill a panel, too few channels, or a shape Winograd cannot serve
    assert _choose(kernels, 1, 512, 4, 512) not in WINO
    assert _choose(kernels, 1, 3, 224, 64) not in WINO
    assert _choose(kernels, 1, 256, 56, 256, s=2) not in WINO
    assert _choose(kernels, 1, 256, 56, 256, d=2) not in WINO
    assert _choose(kernels, 1, 256, 56, 256, g=2) not in WINO
    assert _choose(kernels, 1, 256, 56, 256, k=1) not in WINO
    assert _choose(kernels, 1, 256, 56, 256, k=5) not in WINO


def test_workspace_is_reported_and_checked(fc, kernels):
    rng = np.random.default_rng(14)
    x, wt = rand(rng, 2, 16, 13, 13), rand(rng, 32, 16, 3, 3)
    for algo in WINO:
        nbytes = fc.conv2d_workspace_bytes(x.shape, wt.shape, padding=1, algo=algo)
        assert nbytes > 0
        y = kernels.conv2d(x, wt, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, algo,
                           workspace=np.empty(nbytes, np.uint8))
        assert_close(y, ref_conv2d(x, wt, None, 1, 1, 1, 1), what=algo)
        with pytest.raises(ValueError, match="workspace"):
            kernels.conv2d(x, wt, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, algo,
                           workspace=np.empty(nbytes // 2, np.uint8))
        blob, name = kernels.conv2d_pack(x.shape, wt, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, algo)
        assert name == algo
        rb = kernels.conv2d_run_workspace_bytes(x.shape, blob, wt.shape, (1, 1), (1, 1, 1, 1),
                                                (1, 1), 1)
        y2 = kernels.conv2d_run(x, blob, wt.shape, (1, 1), (1, 1, 1, 1), (1, 1), 1,
                                workspace=np.empty(rb, np.uint8))
        assert_bitequal(y2, y, f"run vs conv2d {algo}")
        # a winograd blob cannot run a configuration winograd does not serve
        with pytest.raises(ValueError):
            kernels.conv2d_run(x, blob, wt.shape, (2, 2), (1, 1, 1, 1), (1, 1), 1)


def test_model_set_algo_and_summary(tmp_path):
    m = fc_mod.Sequential([L.Conv2d(3, 16, 3, padding=1, seed=1), L.ReLU(),
                           L.Conv2d(16, 16, 3, padding=1, seed=2), L.ReLU(),
                           L.Conv2d(16, 8, 1, seed=3)], input_shape=(3, 12, 12))
    x = np.random.default_rng(15).standard_normal((2, 3, 12, 12)).astype(np.float32)
    y = m(x)
    conv_names = [n for n, info in m.plan.node_info.items() if n.startswith("conv")]
    m.set_algo(conv_names[1], "winograd")
    assert m.plan.node_info[conv_names[1]]["algo"] == "winograd"
    assert "winograd" in str(m.summary(print_fn=None))
    np.testing.assert_allclose(m(x), y, rtol=1e-4, atol=1e-4)
    m.set_algo(conv_names[1], "winograd2")
    y2 = m(x)
    np.testing.assert_allclose(y2, y, rtol=1e-4, atol=1e-4)
    m.save(tmp_path / "m.fcz")  # the choice is saved with the model
    m2 = fc_mod.load(tmp_path / "m.fcz")
    assert m2.plan.node_info[conv_names[1]]["algo"] == "winograd2"
    assert_bitequal(m2(x), y2, "saved and loaded")
    with pytest.raises(ValueError):
        m.set_algo(conv_names[2], "winograd")  # a 1x1 layer
    assert m.plan.node_info[conv_names[2]]["algo"] != "winograd"
    np.testing.assert_allclose(m(x), y, rtol=1e-4, atol=1e-4)
