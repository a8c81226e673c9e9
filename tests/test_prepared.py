"""prepare_conv2d: weights packed once and reused. It must give the same bits as conv2d
with the same algorithm, follow the float64 reference, survive ISA switches and reject
blobs that do not belong to the call."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from conftest import assert_bitequal, assert_close, rand, ref_conv2d, num_threads, use_isa
from strategies import conv2d_configs
from test_conv import describe, make_conv_inputs

ALGOS = ("auto", "direct", "im2col")


def _prepare(fc, w, b, cfg, algo, relu=False):
    return fc.prepare_conv2d(w, b, stride=cfg["stride"], padding=cfg["padding"],
                             dilation=cfg["dilation"], groups=cfg["groups"], algo=algo,
                             relu=relu)


@settings(max_examples=40)
@given(cfg=conv2d_configs())
@pytest.mark.parametrize("algo", ALGOS)
def test_prepared_equals_conv2d_and_reference(fc, isa, algo, cfg):
    x, w, b = make_conv_inputs(cfg)
    y0 = fc.conv2d(x, w, b, stride=cfg["stride"], padding=cfg["padding"],
                   dilation=cfg["dilation"], groups=cfg["groups"], algo=algo)
    conv = _prepare(fc, w, b, cfg, algo)
    y1 = conv(x)
    assert_bitequal(y1, y0, f"prepared vs conv2d, algo={algo}, {describe(cfg)}")
    ref = ref_conv2d(x, w, b, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    assert_close(y1, ref, what=f"prepared vs float64, algo={algo}, {describe(cfg)}")
    relu = _prepare(fc, w, b, cfg, algo, relu=True)
    assert_bitequal(relu(x), np.maximum(y0, 0), f"fused relu, algo={algo}, {describe(cfg)}")
    assert_bitequal(conv(x), y1, "second call on the same packs")


@pytest.mark.parametrize("algo", ("direct", "im2col"))
def test_prepared_runs_other_batch_and_map_sizes(fc, algo):
    rng = np.random.default_rng(3)
    w, b = rand(rng, 24, 13, 3, 3), rand(rng, 24)
    conv = fc.prepare_conv2d(w, b, padding="same", algo=algo)
    for shape in ((1, 13, 9, 7), (3, 13, 18, 17), (0, 13, 5, 5), (13, 4, 6)):
        x = rand(rng, *shape)
        y = conv(x)
        assert_bitequal(y, fc.conv2d(x, w, b, padding="same", algo=algo), f"shape {shape}")


def test_prepared_copies_weights(fc):
    rng = np.random.default_rng(4)
    w = rand(rng, 8, 3, 3, 3)
    x = rand(rng, 1, 3, 9, 9)
    conv = fc.prepare_conv2d(w, None, padding=1)
    before = conv(x)
    w[...] = 0  # the caller's array changes; the prepared conv does not
    assert_bitequal(conv(x), before, "after changing the caller's weights")


def test_prepared_repacks_after_isa_switch(fc):
    k = pytest.importorskip("fastconv._kernels")
    if not k.has_avx2():
        pytest.skip("this CPU has no AVX2+FMA: only one ISA to switch between")
    rng = np.random.default_rng(5)
    x, w, b = rand(rng, 2, 16, 12, 11), rand(rng, 32, 16, 3, 3), rand(rng, 32)
    conv = fc.prepare_conv2d(w, b, padding=1, algo="direct")
    with use_isa("avx2"):
        y_avx2 = conv(x)
    with use_isa("scalar"):
        y_scalar = conv(x)
        assert_bitequal(y_scalar, fc.conv2d(x, w, b, padding=1, algo="direct"), "scalar pack")
    assert_close(y_scalar, y_avx2.astype(np.float64), what="scalar vs avx2 packs")


def test_prepared_thread_counts_bit_identical(fc):
    rng = np.random.default_rng(6)
    x, w, b = rand(rng, 2, 24, 17, 19), rand(rng, 40, 24, 3, 3), rand(rng, 40)
    for algo in ("direct", "im2col"):
        conv = fc.prepare_conv2d(w, b, padding=1, algo=algo)
        with num_threads(1):
            y1 = conv(x)
        with num_threads(2):
            y2 = conv(x)
        assert_bitequal(y1, y2, f"1 vs 2 threads, {algo}")


def test_prepared_argument_errors(fc):
    rng = np.random.default_rng(7)
    w = rand(rng, 8, 3, 3, 3)
    with pytest.raises(fc.ShapeError, match="weight must be 4-D"):
        fc.prepare_conv2d(w[0])
    with pytest.raises(fc.ShapeError, match="bias must have shape"):
        fc.prepare_conv2d(w, np.zeros(7, np.float32))
    with pytest.raises(ValueError, match="algo"):
        fc.prepare_conv2d(w, algo="winograd-ish")
    with pytest.raises(ValueError, match="padding"):
        fc.prepare_conv2d(w, padding="sometimes")
    with pytest.raises(TypeError):
        fc.prepare_conv2d(w.astype(np.int32))
    conv = fc.prepare_conv2d(w)
    with pytest.raises(fc.ShapeError, match="channels"):
        conv(rand(rng, 1, 4, 9, 9))
    with pytest.raises(fc.ShapeError, match="output height"):
        conv(rand(rng, 1, 3, 2, 9))


def test_binding_rejects_foreign_or_corrupt_blobs(fc, kernels):
    rng = np.random.default_rng(8)
    x, w = rand(rng, 1, 8, 9, 9), rand(rng, 16, 8, 3, 3)
    blob, algo = kernels.conv2d_pack(x.shape, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, "direct")
    assert algo == "direct"
    y = kernels.conv2d_run(x, blob, w.shape, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    assert_bitequal(y, fc.conv2d(x, w, padding=1, algo="direct"), "binding round trip")
    with pytest.raises(ValueError, match="do not match"):  # another weight shape
        kernels.conv2d_run(rand(rng, 1, 4, 9, 9), blob, (16, 4, 3, 3), (1, 1), (1, 1, 1, 1),
                           (1, 1), 1)
    bad = blob.copy()
    bad[:8] = 0  # not a blob any more (or a misaligned copy): refused either way
    with pytest.raises(ValueError):
        kernels.conv2d_run(x, bad, w.shape, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    with pytest.raises(ValueError):
        kernels.conv2d_run(x, blob[:100], w.shape, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    with pytest.raises(TypeError):
        kernels.conv2d_run(x, blob.view(np.int8), w.shape, (1, 1), (1, 1, 1, 1), (1, 1), 1)
