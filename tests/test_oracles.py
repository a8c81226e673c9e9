"""PyTorch (CPU) and ONNX Runtime as independent oracles for the functional API."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import AVG_RTOL, CONV_RTOL, assert_close, out_size, rand
from strategies import conv2d_configs, pool2d_configs
from test_conv import call_conv, describe, make_conv_inputs
from test_pool import assert_exact, describe as describe_pool, pool_input


# --------------------------------------------------------------------------- peers


@pytest.fixture(scope="module")
def torch():
    t = pytest.importorskip("torch", reason="PyTorch (CPU) not installed: pip install torch==2.13.0")
    t.set_num_threads(1)
    return t


@pytest.fixture(scope="module")
def ort():
    o = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: pip install onnxruntime")
    pytest.importorskip("onnx", reason="onnx not installed: pip install onnx")
    return o


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def torch_conv2d(torch, x, w, b, cfg):
    F = torch.nn.functional
    t, l, bo, r = cfg["pads"]
    xt = F.pad(torch.from_numpy(x), (l, r, t, bo))
    y = F.conv2d(xt, torch.from_numpy(w), None if b is None else torch.from_numpy(b),
                 stride=_pair(cfg["stride"]), padding=0, dilation=_pair(cfg["dilation"]),
                 groups=cfg["groups"])
    return y.numpy()


# --------------------------------------------------------------------------- torch


@given(cfg=conv2d_configs())
def test_conv2d_vs_torch(fc, torch, cfg):
    x, w, b = make_conv_inputs(cfg)
    ref = torch_conv2d(torch, x, w, b, cfg).astype(np.float64)
    for algo in ("auto", "direct", "im2col"):
        assert_close(call_conv(fc, x, w, b, cfg, algo), ref, rtol=2 * CONV_RTOL,
                     what=f"conv2d vs torch algo={algo} {describe(cfg)}")


@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("k,d", [(3, 1), (5, 1), (3, 2), (1, 1), (4, 1), (2, 3)])
def test_conv2d_same_valid_vs_torch_stride1(fc, torch, padding, k, d):
    # torch's padding="same" (stride 1) puts the odd pixel at the end, like SAME_UPPER
    rng = np.random.default_rng(k * 10 + d)
    x = rand(rng, 2, 3, 9, 7)
    w = rand(rng, 4, 3, k, k)
    if padding == "valid" and (9 < d * (k - 1) + 1 or 7 < d * (k - 1) + 1):
        pytest.skip("kernel larger than the input")
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=padding,
                                     dilation=d).numpy()
    y = fc.conv2d(x, w, padding=padding, dilation=d)
    assert_close(y, ref.astype(np.float64), rtol=2 * CONV_RTOL, what=f"{padding} k={k} d={d}")


@given(
    c=st.sampled_from((1, 3, 13)), wdt=st.sampled_from((7, 17, 33)), k=st.integers(1, 5),
    s=st.integers(1, 3), d=st.integers(1, 2), p=st.integers(0, 2), dw=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_conv1d_vs_torch(fc, torch, c, wdt, k, s, d, p, dw, seed):
    if out_size(wdt, p, p, k, s, d) < 1:
        return
    rng = np.random.default_rng(seed)
    g = c if dw else 1
    co = 2 * c if dw else 5
    x = rand(rng, 2, c, wdt)
    w = rand(rng, co, c // g, k)
    b = rand(rng, co)
    ref = torch.nn.functional.conv1d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                                     stride=s, padding=p, dilation=d, groups=g).numpy()
    assert_close(fc.conv1d(x, w, b, stride=s, padding=p, dilation=d, groups=g),
                 ref.astype(np.float64), rtol=2 * CONV_RTOL, what="conv1d vs torch")


@given(cfg=pool2d_configs(symmetric_only=True))
def test_max_pool2d_vs_torch(fc, torch, cfg):
    x = pool_input(cfg, nan_fraction=0.03)
    ref = torch.nn.functional.max_pool2d(
        torch.from_numpy(x), cfg["kernel"], stride=cfg["strides"], padding=cfg["padding"],
        dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"]).numpy()
    y = fc.max_pool2d(x, cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                      dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"])
    assert_exact(y, ref, f"max_pool2d vs torch {describe_pool(cfg)}")


@given(cfg=pool2d_configs(symmetric_only=True, with_dilation=False))
def test_avg_pool2d_vs_torch(fc, torch, cfg):
    x = pool_input(cfg)
    ref = torch.nn.functional.avg_pool2d(
        torch.from_numpy(x), cfg["kernel"], stride=cfg["strides"], padding=cfg["padding"],
        ceil_mode=cfg["ceil_mode"], count_include_pad=cfg["count_include_pad"]).numpy()
    y = fc.avg_pool2d(x, cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                      ceil_mode=cfg["ceil_mode"], count_include_pad=cfg["count_include_pad"])
    assert_close(y, ref.astype(np.float64), rtol=AVG_RTOL,
                 what=f"avg_pool2d vs torch {describe_pool(cfg)}")


@given(
    w=st.integers(1, 40), k=st.integers(1, 6), s=st.integers(1, 4), d=st.integers(1, 3),
    p=st.integers(0, 3), ceil_mode=st.booleans(),
)
@settings(max_examples=200)
def test_pool_output_size_rule_vs_torch(fc, torch, w, k, s, d, p, ceil_mode):
    # the shape rule (incl. ceil_mode's dropped last window) on many sizes; shapes only
    if p > k // 2:
        p = k // 2
    expected = out_size(w, p, p, k, s, d, ceil_mode)
    x = np.zeros((1, 1, w), np.float32)
    if expected < 1:
        with pytest.raises(fc.ShapeError):
            fc.max_pool1d(x, k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
        return
    ref = torch.nn.functional.max_pool1d(torch.from_numpy(x), k, stride=s, padding=p, dilation=d,
                                         ceil_mode=ceil_mode)
    assert ref.shape[-1] == expected, "the test's own rule disagrees with torch"
    y = fc.max_pool1d(x, k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
    assert y.shape == (1, 1, expected)
    if d == 1:
        ya = fc.avg_pool1d(x, k, stride=s, padding=p, ceil_mode=ceil_mode)
        assert ya.shape == (1, 1, expected)


@pytest.mark.parametrize("shape,axis", [((4, 10), -1), ((2, 5, 3), 1), ((3, 7, 2, 2), 0)])
def test_softmax_relu_linear_vs_torch(fc, torch, shape, axis):
    rng = np.random.default_rng(len(shape))
    x = rand(rng, *shape, lo=-5, hi=5)
    np.testing.assert_allclose(fc.softmax(x, axis=axis),
                               torch.softmax(torch.from_numpy(x), dim=axis).numpy(), atol=1e-6)
    np.testing.assert_array_equal(fc.relu(x), torch.relu(torch.from_numpy(x)).numpy())
    w = rand(rng, 9, shape[-1])
    b = rand(rng, 9)
    ref = torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(w),
                                     torch.from_numpy(b)).numpy()
    assert_close(fc.linear(x, w, b), ref.astype(np.float64), rtol=2 * CONV_RTOL, what="linear")


def test_small_vgg_block_vs_torch(fc, torch):
    # conv-relu-conv-relu-maxpool-conv-relu-global avg-linear-softmax, end to end
    rng = np.random.default_rng(7)
    x = rand(rng, 2, 3, 18, 17)
    w1, b1 = rand(rng, 16, 3, 3, 3, lo=-0.5, hi=0.5), rand(rng, 16)
    w2, b2 = rand(rng, 24, 16, 3, 3, lo=-0.2, hi=0.2), rand(rng, 24)
    w3, b3 = rand(rng, 13, 24, 3, 3, lo=-0.2, hi=0.2), rand(rng, 13)
    wl, bl = rand(rng, 10, 13), rand(rng, 10)
    h = fc.relu(fc.conv2d(x, w1, b1, padding=1))
    h = fc.relu(fc.conv2d(h, w2, b2, padding=1))
    h = fc.max_pool2d(h, 2, ceil_mode=True)
    h = fc.relu(fc.conv2d(h, w3, b3, padding="same"))
    h = fc.global_avg_pool2d(h).reshape(2, 13)
    y = fc.softmax(fc.linear(h, wl, bl))
    F = torch.nn.functional
    T = torch.from_numpy
    t = F.relu(F.conv2d(T(x), T(w1), T(b1), padding=1))
    t = F.relu(F.conv2d(t, T(w2), T(b2), padding=1))
    t = F.max_pool2d(t, 2, ceil_mode=True)
    t = F.relu(F.conv2d(t, T(w3), T(b3), padding="same"))
    t = t.mean(dim=(2, 3))
    ref = torch.softmax(F.linear(t, T(wl), T(bl)), dim=-1).numpy()
    np.testing.assert_allclose(y, ref, atol=1e-5)


# --------------------------------------------------------------------------- onnxruntime


def _ort_run(ort, node, inputs, initializers=(), opset=17):
    from onnx import TensorProto, helper, numpy_helper

    graph_inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape))
                    for n, a in inputs.items()]
    inits = [numpy_helper.from_array(a, n) for n, a in initializers]
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([node], "g", graph_inputs, [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)[0]


@given(cfg=conv2d_configs())
@settings(max_examples=30)
def test_conv2d_vs_onnxruntime(fc, ort, cfg):
    from onnx import helper

    x, w, b = make_conv_inputs(cfg)
    attrs = dict(kernel_shape=[cfg["kh"], cfg["kw"]], strides=list(_pair(cfg["stride"])),
                 dilations=list(_pair(cfg["dilation"])), group=cfg["groups"])
    if cfg["padding"] == "same" and _pair(cfg["dilation"]) == (1, 1):
        attrs["auto_pad"] = "SAME_UPPER"
    else:
        # explicit pads (onnxruntime refuses auto_pad with dilation); ONNX order is ours
        attrs["pads"] = list(cfg["pads"])
    inputs = ["x", "w"] + (["b"] if b is not None else [])
    node = helper.make_node("Conv", inputs, ["y"], **attrs)
    inits = [("w", w)] + ([("b", b)] if b is not None else [])
    ref = _ort_run(ort, node, {"x": x}, inits)
    y = call_conv(fc, x, w, b, cfg)
    assert_close(y, ref.astype(np.float64), rtol=2 * CONV_RTOL,
                 what=f"conv2d vs onnxruntime {describe(cfg)}")


# dilation 1 only: onnxruntime rejects auto_pad SAME_* together with dilation
@pytest.mark.parametrize("h,w,k,s,d", [(9, 7, 3, 2, 1), (18, 17, 4, 3, 1), (9, 7, 2, 1, 1),
                                       (18, 17, 5, 2, 1), (6, 1, 3, 2, 1), (7, 9, 4, 1, 1),
                                       (18, 17, 6, 4, 1)])
def test_same_upper_vs_onnxruntime(fc, ort, h, w, k, s, d):
    from onnx import helper

    rng = np.random.default_rng(h + w + k)
    x = rand(rng, 1, 3, h, w)
    wt = rand(rng, 5, 3, k, k)
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[k, k], strides=[s, s],
                            dilations=[d, d], auto_pad="SAME_UPPER")
    ref = _ort_run(ort, node, {"x": x}, [("w", wt)])
    y = fc.conv2d(x, wt, stride=s, padding="same", dilation=d)
    assert_close(y, ref.astype(np.float64), rtol=2 * CONV_RTOL, what=f"SAME_UPPER h={h} w={w}")


@given(cfg=pool2d_configs())
@settings(max_examples=30)
def test_max_pool2d_vs_onnxruntime(fc, ort, cfg):
    from onnx import helper

    x = pool_input(cfg)
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=list(cfg["kernel"]),
                            strides=list(cfg["strides"]), pads=list(cfg["pads"]),
                            dilations=list(cfg["dilation"]), ceil_mode=int(cfg["ceil_mode"]))
    ref = _ort_run(ort, node, {"x": x})
    y = fc.max_pool2d(x, cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                      dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"])
    assert_exact(y, ref, f"max_pool2d vs onnxruntime {describe_pool(cfg)}")


@given(cfg=pool2d_configs(with_dilation=False))
@settings(max_examples=30)
def test_avg_pool2d_vs_onnxruntime(fc, ort, cfg):
    from onnx import helper

    # ceil_mode off: onnxruntime's AveragePool divisor under ceil_mode has varied across
    # releases; the ceil_mode divisor is pinned against torch and fixed cases instead
    cfg = dict(cfg, ceil_mode=False)
    t, l, b, r = cfg["pads"]
    (kh, kw), (sh, sw) = cfg["kernel"], cfg["strides"]
    if out_size(cfg["h"], t, b, kh, sh) < 1 or out_size(cfg["w"], l, r, kw, sw) < 1:
        return
    x = pool_input(cfg)
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=list(cfg["kernel"]),
                            strides=list(cfg["strides"]), pads=list(cfg["pads"]),
                            count_include_pad=int(cfg["count_include_pad"]))
    ref = _ort_run(ort, node, {"x": x})
    y = fc.avg_pool2d(x, cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                      count_include_pad=cfg["count_include_pad"])
    assert_close(y, ref.astype(np.float64), rtol=AVG_RTOL,
                 what=f"avg_pool2d vs onnxruntime {describe_pool(cfg)}")


def test_global_pools_softmax_relu_gemm_vs_onnxruntime(fc, ort):
    from onnx import helper

    rng = np.random.default_rng(5)
    x = rand(rng, 2, 13, 9, 7, lo=-3, hi=3)
    ref = _ort_run(ort, helper.make_node("GlobalAveragePool", ["x"], ["y"]), {"x": x})
    assert_close(fc.global_avg_pool2d(x), ref.astype(np.float64), rtol=AVG_RTOL, what="GAP")
    ref = _ort_run(ort, helper.make_node("GlobalMaxPool", ["x"], ["y"]), {"x": x})
    assert_exact(fc.global_max_pool2d(x), ref, "GlobalMaxPool")
    ref = _ort_run(ort, helper.make_node("Relu", ["x"], ["y"]), {"x": x})
    np.testing.assert_array_equal(fc.relu(x), ref)
    for axis in (-1, 1):
        ref = _ort_run(ort, helper.make_node("Softmax", ["x"], ["y"], axis=axis), {"x": x})
        np.testing.assert_allclose(fc.softmax(x, axis=axis), ref, atol=1e-6)
    a = rand(rng, 5, 33)
    w = rand(rng, 17, 33)
    b = rand(rng, 17)
    node = helper.make_node("Gemm", ["a", "w", "b"], ["y"], transB=1)
    ref = _ort_run(ort, node, {"a": a}, [("w", w), ("b", b)])
    assert_close(fc.linear(a, w, b), ref.astype(np.float64), rtol=2 * CONV_RTOL, what="Gemm")
