"""fastconv.load_onnx against onnxruntime on hypothesis-generated one-node models: Conv,
MaxPool and AveragePool, 1-D and 2-D, across kernel sizes, strides, explicit pads,
auto_pad (SAME_UPPER, SAME_LOWER, VALID), dilations, groups, ceil_mode and
count_include_pad. The suite's "ci" hypothesis profile (tests/conftest.py) derandomizes,
so CI runs the same examples every time.

Tolerances (DESIGN.md numerics): conv within 1e-4 of the output's scale, max pooling
exact, average pooling within 1e-5 of the scale (ONNX Runtime sums in another order).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from conftest import AVG_RTOL, CONV_RTOL, assert_bitequal, assert_close

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import fastconv as fc  # noqa: E402
from fastconv.onnx_backend import FastconvBackend  # noqa: E402
from fastconv.onnx_import import load_onnx  # noqa: E402

AUTO_PADS = ("NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def _model(node, x_shape, inits, opset, extra_inputs=()):
    graph = helper.make_graph(
        [node], "one_node",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"] + list(x_shape[1:]))]
        + [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape))
           for n, a in extra_inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                       [f"d{i}" for i in range(len(x_shape))])],
        [numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = min(m.ir_version, 10)     # what this onnxruntime reads
    return m


def _ort(model, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3       # its shape-inference warnings are not ours
    sess = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def _out_size(n, pb, pe, k, s, d, ceil_mode):
    span = n + pb + pe - d * (k - 1) - 1
    if span < 0:
        return 0
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + pb:
        out -= 1
    return out


@st.composite
def window(draw, nsp, max_kernel=4, pad_below_kernel=True, dilate=True):
    """Kernel, strides, dilations, pads / auto_pad and an input size that gives an
    output (every case valid for both engines)."""
    kernel = [draw(st.integers(1, max_kernel)) for _ in range(nsp)]
    strides = [draw(st.integers(1, 3)) for _ in range(nsp)]
    auto_pad = draw(st.sampled_from(AUTO_PADS))
    # onnxruntime's Conv refuses dilations with SAME_UPPER / SAME_LOWER, and its pooling
    # leaves the dilation out of the SAME padding (the ONNX spec puts it in, as fastconv
    # does: output = ceil(in / stride)); so SAME cases here are undilated
    dilate = dilate and not auto_pad.startswith("SAME")
    dil = [draw(st.integers(1, 2)) if dilate else 1 for _ in range(nsp)]
    pads = None
    if auto_pad == "NOTSET":
        # onnxruntime's pooling needs every pad below the kernel size
        hi = [min(2, k - 1) if pad_below_kernel else 2 for k in kernel]
        pads = [draw(st.integers(0, h)) for h in hi] + [draw(st.integers(0, h)) for h in hi]
    sizes = [draw(st.integers(1, 11)) for _ in range(nsp)]
    return kernel, strides, dil, auto_pad, pads, sizes


def _ort_takes_same(auto_pad, sizes, strides, kernel):
    """onnxruntime's pooling rejects the negative SAME padding of a kernel shorter than
    the stride (fastconv clamps it at 0, as DESIGN.md says)."""
    return not auto_pad.startswith("SAME") or all(
        (-(-n // s) - 1) * s + k >= n for n, s, k in zip(sizes, strides, kernel))


def _explicit(auto_pad, pads, sizes, kernel, strides, dil):
    return fc.onnx_import.onnx_pads(auto_pad, pads, sizes, kernel, strides, dil)


def _attrs(kernel, strides, dil, auto_pad, pads, with_dil=True):
    a = {"kernel_shape": kernel, "strides": strides, "auto_pad": auto_pad}
    if with_dil:
        a["dilations"] = dil
    if pads is not None:
        a["pads"] = pads
    return a


# ---------------------------------------------------------------------------- Conv

@given(nsp=st.sampled_from([1, 2, 2]), data=st.data())
def test_conv_matches_onnxruntime(nsp, data):
    kernel, strides, dil, auto_pad, pads, sizes = data.draw(window(nsp, pad_below_kernel=False))
    group = data.draw(st.sampled_from([1, 1, 2, 3]))
    cig = data.draw(st.integers(1, 3))
    cog = data.draw(st.integers(1, 3))
    batch = data.draw(st.integers(1, 2))
    bias = data.draw(st.booleans())
    seed = data.draw(st.integers(0, 2**16))
    p = _explicit(auto_pad, pads, sizes, kernel, strides, dil)
    outs = [_out_size(n, p[i], p[nsp + i], k, s, d, False)
            for i, (n, k, s, d) in enumerate(zip(sizes, kernel, strides, dil))]
    assume(min(outs) >= 1)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal([batch, cig * group] + sizes).astype(np.float32)
    w = rng.standard_normal([cog * group, cig] + kernel).astype(np.float32)
    b = rng.standard_normal(cog * group).astype(np.float32)
    inits = [("W", w)] + ([("B", b)] if bias else [])
    node = helper.make_node("Conv", ["x", "W"] + (["B"] if bias else []), ["y"], group=group,
                            **_attrs(kernel, strides, dil, auto_pad, pads))
    m = _model(node, x.shape, inits, 17)
    ref = _ort(m, {"x": x})
    got = load_onnx(m)(x)
    assert got.shape == ref.shape == (batch, cog * group) + tuple(outs)
    assert_close(got, ref, CONV_RTOL, f"Conv {kernel} s{strides} d{dil} {auto_pad} {pads} "
                 f"g{group} in {x.shape}")


@given(data=st.data())
def test_conv_weights_as_graph_inputs_match_onnxruntime(data):
    """W and B fed at run time (the fastconv model takes them as parameter inputs)."""
    kernel, strides, dil, auto_pad, pads, sizes = data.draw(window(2, max_kernel=3))
    group = data.draw(st.sampled_from([1, 2]))
    seed = data.draw(st.integers(0, 2**16))
    p = _explicit(auto_pad, pads, sizes, kernel, strides, dil)
    assume(min(_out_size(n, p[i], p[2 + i], k, s, d, False) for i, (n, k, s, d) in
               enumerate(zip(sizes, kernel, strides, dil))) >= 1)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal([2, 2 * group] + sizes).astype(np.float32)
    w = rng.standard_normal([3 * group, 2] + kernel).astype(np.float32)
    b = rng.standard_normal(3 * group).astype(np.float32)
    node = helper.make_node("Conv", ["x", "W", "B"], ["y"], group=group,
                            **_attrs(kernel, strides, dil, auto_pad, pads))
    m = _model(node, x.shape, [], 17, extra_inputs=[("W", w), ("B", b)])
    ref = _ort(m, {"x": x, "W": w, "B": b})
    (got,) = FastconvBackend.prepare(m).run([x, w, b])
    assert_close(got, ref, CONV_RTOL, "Conv with W and B as inputs")


# ---------------------------------------------------------------------------- pooling

@given(nsp=st.sampled_from([1, 2, 2]), data=st.data())
def test_maxpool_matches_onnxruntime(nsp, data):
    kernel, strides, dil, auto_pad, pads, sizes = data.draw(window(nsp))
    ceil_mode = data.draw(st.integers(0, 1))
    seed = data.draw(st.integers(0, 2**16))
    p = _explicit(auto_pad, pads, sizes, kernel, strides, dil)
    outs = [_out_size(n, p[i], p[nsp + i], k, s, d, bool(ceil_mode))
            for i, (n, k, s, d) in enumerate(zip(sizes, kernel, strides, dil))]
    assume(min(outs) >= 1)
    assume(_ort_takes_same(auto_pad, sizes, strides, kernel))
    if auto_pad.startswith("SAME"):
        outs = [-(-n // s) for n, s in zip(sizes, strides)]
    x = np.random.default_rng(seed).standard_normal([2, 3] + sizes).astype(np.float32)
    node = helper.make_node("MaxPool", ["x"], ["y"], ceil_mode=ceil_mode,
                            **_attrs(kernel, strides, dil, auto_pad, pads))
    m = _model(node, x.shape, [], 17)
    ref = _ort(m, {"x": x})
    got = load_onnx(m)(x)
    assert got.shape == ref.shape == (2, 3) + tuple(outs)
    # a window that sees only padding (dilated taps around a tiny map): the max of
    # nothing is -inf for fastconv, the lowest finite float for onnxruntime
    ref = np.where(ref == np.finfo(np.float32).min, np.float32(-np.inf), ref)
    assert_bitequal(got, ref, f"MaxPool {kernel} s{strides} d{dil} {auto_pad} {pads} "
                    f"ceil={ceil_mode} in {x.shape}")


@given(nsp=st.sampled_from([1, 2, 2]), data=st.data())
def test_averagepool_matches_onnxruntime(nsp, data):
    dilate = data.draw(st.booleans())
    kernel, strides, dil, auto_pad, pads, sizes = data.draw(window(nsp, dilate=dilate))
    ceil_mode = data.draw(st.integers(0, 1))
    count_include_pad = data.draw(st.integers(0, 1))
    seed = data.draw(st.integers(0, 2**16))
    p = _explicit(auto_pad, pads, sizes, kernel, strides, dil)
    outs = [_out_size(n, p[i], p[nsp + i], k, s, d, bool(ceil_mode))
            for i, (n, k, s, d) in enumerate(zip(sizes, kernel, strides, dil))]
    assume(min(outs) >= 1)
    assume(_ort_takes_same(auto_pad, sizes, strides, kernel))
    x = np.random.default_rng(seed).standard_normal([2, 3] + sizes).astype(np.float32)
    node = helper.make_node("AveragePool", ["x"], ["y"], ceil_mode=ceil_mode,
                            count_include_pad=count_include_pad,
                            **_attrs(kernel, strides, dil, auto_pad, pads, with_dil=dilate))
    m = _model(node, x.shape, [], 19 if dilate else 17)
    ref = _ort(m, {"x": x})
    got = load_onnx(m)(x)
    assert got.shape == ref.shape
    assert_close(got, ref, AVG_RTOL, f"AveragePool {kernel} s{strides} d{dil} {auto_pad} "
                 f"{pads} ceil={ceil_mode} cip={count_include_pad} in {x.shape}")

