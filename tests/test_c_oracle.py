"""The naive C oracles in fastconv._kernels against the float64 NumPy references, and the
optimised kernels against the C oracles."""

from __future__ import annotations

import numpy as np
from hypothesis import given

from conftest import (
    AVG_RTOL, assert_close, rand, ref_avg_pool2d, ref_conv2d, ref_max_pool2d,
)
from strategies import conv2d_configs, pool2d_configs
from test_conv import ALGOS, call_conv, describe, make_conv_inputs
from test_pool import assert_exact, describe as describe_pool, pool_input


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


@given(cfg=conv2d_configs())
def test_c_ref_conv2d_matches_numpy(kernels, cfg):
    x, w, b = make_conv_inputs(cfg)
    y = kernels.ref_conv2d(x, w, b, _pair(cfg["stride"]), cfg["pads"], _pair(cfg["dilation"]),
                           cfg["groups"])
    ref = ref_conv2d(x, w, b, cfg["stride"], cfg["pads"], cfg["dilation"], cfg["groups"])
    assert_close(y, ref, what=f"C ref_conv2d {describe(cfg)}")


@given(cfg=conv2d_configs())
def test_kernels_match_c_ref_conv2d(fc, kernels, isa, cfg):
    x, w, b = make_conv_inputs(cfg)
    oracle = kernels.ref_conv2d(x, w, b, _pair(cfg["stride"]), cfg["pads"],
                                _pair(cfg["dilation"]), cfg["groups"]).astype(np.float64)
    for algo in ALGOS:
        assert_close(call_conv(fc, x, w, b, cfg, algo), oracle,
                     what=f"conv2d vs C oracle isa={isa} algo={algo} {describe(cfg)}")


def test_c_ref_conv2d_textbook(kernels):
    from test_conv import EXPECTED_3x3, IMAGE_5x5, KERNEL_3x3

    y = kernels.ref_conv2d(IMAGE_5x5[None, None], KERNEL_3x3[None, None], None, (1, 1),
                           (0, 0, 0, 0), (1, 1), 1)
    np.testing.assert_array_equal(y[0, 0], EXPECTED_3x3)


def test_c_ref_conv2d_bias_and_groups(kernels):
    rng = np.random.default_rng(0)
    x = rand(rng, 2, 6, 9, 7)
    w = rand(rng, 9, 2, 3, 2)
    b = rand(rng, 9)
    y = kernels.ref_conv2d(x, w, b, (2, 1), (1, 0, 2, 1), (1, 2), 3)
    assert_close(y, ref_conv2d(x, w, b, (2, 1), (1, 0, 2, 1), (1, 2), 3), what="C ref groups=3")


@given(cfg=pool2d_configs())
def test_c_ref_max_pool2d_matches_numpy(fc, kernels, cfg):
    x = pool_input(cfg, nan_fraction=0.02)
    y = kernels.ref_max_pool2d(x, cfg["kernel"], cfg["strides"], cfg["pads"], cfg["dilation"],
                               cfg["ceil_mode"])
    ref = ref_max_pool2d(x, cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"],
                         cfg["ceil_mode"])
    assert_exact(y, ref, f"C ref_max_pool2d {describe_pool(cfg)}")
    got = fc.max_pool2d(x, cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                        dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"])
    assert_exact(got, y, f"max_pool2d vs C oracle {describe_pool(cfg)}")


@given(cfg=pool2d_configs(with_dilation=False))
def test_c_ref_avg_pool2d_matches_numpy(fc, kernels, cfg):
    x = pool_input(cfg)
    y = kernels.ref_avg_pool2d(x, cfg["kernel"], cfg["strides"], cfg["pads"], cfg["ceil_mode"],
                               cfg["count_include_pad"])
    ref = ref_avg_pool2d(x, cfg["kernel"], cfg["stride"], cfg["padding"], cfg["ceil_mode"],
                         cfg["count_include_pad"])
    assert_close(y, ref, rtol=AVG_RTOL, what=f"C ref_avg_pool2d {describe_pool(cfg)}")
    got = fc.avg_pool2d(x, cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                        ceil_mode=cfg["ceil_mode"], count_include_pad=cfg["count_include_pad"])
    assert_close(got, y.astype(np.float64), rtol=AVG_RTOL,
                 what=f"avg_pool2d vs C oracle {describe_pool(cfg)}")
