"""fastconv.load_onnx / load_weights: error cases (corrupt and truncated files, random
bytes, unsupported operators, shapes that do not fit, missing initializers, cycles,
duplicate names), the per-opset semantics (Softmax before and after opset 13, Dropout's
ratio), Gemm and MatMul variants, the pads helper, the Reshape chains of a PyTorch
export, parameters fed as graph inputs, and loading ONNX weights into a fastconv-built
model. References are float64 NumPy (tests/conftest.py) or onnxruntime where noted.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from conftest import (CONV_RTOL, assert_close, ref_conv2d, ref_linear, ref_max_pool2d,
                      ref_softmax)

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import fastconv as fc  # noqa: E402
from fastconv import layers as L  # noqa: E402
from fastconv.errors import ModelFormatError, ShapeError, UnsupportedOperatorError  # noqa: E402
from fastconv.onnx_import import load_onnx, load_weights, onnx_pads  # noqa: E402


# ---------------------------------------------------------------------------- builders

def _vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def make_model(nodes, inputs, outputs, inits=(), opset=17, value_info=(), name="g"):
    graph = helper.make_graph(nodes, name, inputs, outputs, list(inits),
                              value_info=list(value_info))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = min(m.ir_version, 10)
    return m


def small_cnn(seed=0, opset=17):
    """Conv(3->4, 3x3, pad 1) + Relu + MaxPool 2 + Flatten + Gemm(64->5) on [N, 3, 8, 8]."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    fw = rng.standard_normal((5, 64)).astype(np.float32) * 0.1
    fb = rng.standard_normal(5).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2],
                         name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1, name="fc"),
    ]
    m = make_model(nodes, [_vi("x", ["N", 3, 8, 8])], [_vi("y", ["N", 5])],
                   [_init("w", w), _init("b", b), _init("fw", fw), _init("fb", fb)], opset)
    return m, (w, b, fw, fb)


def small_cnn_ref(x, params):
    w, b, fw, fb = params
    y = ref_max_pool2d(np.maximum(ref_conv2d(x, w, b, padding=1), 0), 2, 2)
    return ref_linear(y.reshape(len(x), -1), fw, fb)


@pytest.fixture(scope="module")
def cnn():
    return small_cnn()


# ---------------------------------------------------------------------------- basics

def test_small_cnn_from_proto_bytes_and_path(cnn, tmp_path):
    m, params = cnn
    x = np.random.default_rng(1).standard_normal((3, 3, 8, 8)).astype(np.float32)
    ref = small_cnn_ref(x, params)
    path = tmp_path / "cnn.onnx"
    onnx.save(m, str(path))
    for src in (m, m.SerializeToString(), str(path), path):
        model = load_onnx(src)
        assert model.input_names == ["x"] and model.output_names == ["y"]
        assert model.input_shapes == {"x": (3, 8, 8)}
        assert_close(model(x), ref, CONV_RTOL, f"small cnn from {type(src).__name__}")
    assert_close(fc.load_onnx(m)(x), ref, CONV_RTOL, "fc.load_onnx")
    # the batch varies between runs, including 0
    assert_close(model(x[:1]), ref[:1], CONV_RTOL, "batch 1")
    assert model(x[:0]).shape == (0, 5)


def test_layers_are_fastconv_layers_named_after_nodes(cnn):
    model = load_onnx(cnn[0])
    kinds = [(n.name, n.layer.kind, n.layer.name) for n in model.nodes]
    assert kinds == [("c", "Conv2d", "conv"), ("r", "ReLU", "relu"), ("p", "MaxPool2d", "pool"),
                     ("f", "Flatten", "flatten"), ("y", "Linear", "fc")]
    conv = model.nodes[0].layer
    assert conv.params["weight"].shape == (4, 3, 3, 3) and conv.padding == (1, 1, 1, 1)


def test_initializers_listed_as_graph_inputs_are_not_model_inputs(cnn):
    m, params = cnn
    m2 = onnx.ModelProto()
    m2.CopyFrom(m)
    for t in m2.graph.initializer:      # IR < 4 style: every initializer also an input
        m2.graph.input.append(_vi(t.name, list(t.dims)))
    model = load_onnx(m2)
    assert model.input_names == ["x"]
    x = np.ones((1, 3, 8, 8), np.float32)
    assert_close(model(x), small_cnn_ref(x, params), CONV_RTOL, "initializers as inputs")


def test_pickle_and_save_of_imported_model_with_onnx_layers(tmp_path):
    # W as a graph input -> OnnxConv; a broadcast Add -> OnnxAdd
    m = make_model(
        [helper.make_node("Conv", ["x", "W"], ["c"]),
         helper.make_node("Add", ["c", "bias"], ["y"])],
        [_vi("x", ["N", 2, 5, 5]), _vi("W", [3, 2, 3, 3])], [_vi("y", ["N", 3, 3, 3])],
        [_init("bias", np.arange(3, dtype=np.float32).reshape(3, 1, 1))])
    model = load_onnx(m)
    assert [n.layer.kind for n in model.nodes] == ["OnnxConv", "OnnxAdd"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    feeds = {"x": x, "W": np.broadcast_to(w, (2,) + w.shape)}
    ref = ref_conv2d(x, w) + np.arange(3).reshape(1, 3, 1, 1)
    y = model.run(feeds)["y"]
    assert_close(y, ref, CONV_RTOL, "conv with weight input")
    again = pickle.loads(pickle.dumps(model))
    assert_close(again.run(feeds)["y"], ref, CONV_RTOL, "pickled")
    model.save(tmp_path / "m.fcz")
    assert_close(fc.load(tmp_path / "m.fcz").run(feeds)["y"], ref, CONV_RTOL, "saved")


def test_parameter_inputs_may_differ_per_sample():
    m = make_model([helper.make_node("Conv", ["x", "W", "B"], ["y"], pads=[1, 1, 1, 1])],
                   [_vi("x", ["N", 2, 4, 4]), _vi("W", [3, 2, 3, 3]), _vi("B", [3])],
                   [_vi("y", ["N", 3, 4, 4])])
    model = load_onnx(m)
    assert model.input_shapes == {"x": (2, 4, 4), "W": (3, 2, 3, 3), "B": (3,)}
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 4, 4)).astype(np.float32)
    w = rng.standard_normal((2, 3, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal((2, 3)).astype(np.float32)
    y = model.run({"x": x, "W": w, "B": b})["y"]
    for i in range(2):
        assert_close(y[i], ref_conv2d(x[i:i + 1], w[i], b[i], padding=1)[0], CONV_RTOL,
                     f"sample {i}")


def test_input_shapes_fix_symbolic_dimensions():
    m = make_model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", ["N", 3, "H", "W"])],
                   [_vi("y", ["N", 3, "H", "W"])])
    with pytest.raises(ShapeError, match=r"'x'.*symbolic.*input_shapes"):
        load_onnx(m)
    model = load_onnx(m, input_shapes={"x": (3, 5, 6)})
    assert model.input_shapes == {"x": (3, 5, 6)}
    x = np.linspace(-1, 1, 2 * 90, dtype=np.float32).reshape(2, 3, 5, 6)
    np.testing.assert_array_equal(model(x), np.maximum(x, 0))


# ---------------------------------------------------------------------------- pads helper

def test_pads_helper():
    # ONNX [x1_begin, x2_begin, x1_end, x2_end] is fastconv's (top, left, bottom, right)
    assert onnx_pads("NOTSET", [1, 2, 3, 4], [9, 9], [3, 3], [1, 1], [1, 1]) == (1, 2, 3, 4)
    assert onnx_pads("NOTSET", None, [9, 9], [3, 3], [1, 1], [1, 1]) == (0, 0, 0, 0)
    assert onnx_pads("VALID", [1, 1, 1, 1], [9], [3], [1], [1]) == (0, 0)
    # total padding 3 (7 in, kernel 4, stride 1): UPPER puts the odd pixel at the end,
    # LOWER at the beginning
    assert onnx_pads("SAME_UPPER", None, [7], [4], [1], [1]) == (1, 2)
    assert onnx_pads("SAME_LOWER", None, [7], [4], [1], [1]) == (2, 1)
    # stride 2: output ceil(7/2) = 4, total = 3*2 + 3 - 7 = 2
    assert onnx_pads("SAME_UPPER", None, [7, 8], [3, 3], [2, 2], [1, 1]) == (1, 0, 1, 1)
    # dilation 2 makes a 3-tap kernel span 5: total = 4
    assert onnx_pads("SAME_LOWER", None, [6], [3], [1], [2]) == (2, 2)
    # never below zero
    assert onnx_pads("SAME_UPPER", None, [5], [1], [3], [1]) == (0, 0)
    with pytest.raises(ModelFormatError, match="2 entries; 2 spatial axes need 4"):
        onnx_pads("NOTSET", [1, 1], [5, 5], [3, 3], [1, 1], [1, 1])
    with pytest.raises(ModelFormatError, match="negative"):
        onnx_pads("NOTSET", [-1, 0], [5], [3], [1], [1])
    with pytest.raises(ModelFormatError, match="auto_pad"):
        onnx_pads("SAME", None, [5], [3], [1], [1])


def test_same_lower_conv_against_explicit_pads():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 7, 6)).astype(np.float32)
    w = rng.standard_normal((2, 2, 4, 3)).astype(np.float32)
    for mode, pads in (("SAME_LOWER", (2, 1, 1, 1)), ("SAME_UPPER", (1, 1, 2, 1))):
        m = make_model([helper.make_node("Conv", ["x", "w"], ["y"], auto_pad=mode)],
                       [_vi("x", [1, 2, 7, 6])], [_vi("y", [1, 2, 7, 6])], [_init("w", w)])
        assert_close(load_onnx(m)(x), ref_conv2d(x, w, padding=pads), CONV_RTOL, mode)


# ---------------------------------------------------------------------------- file errors

def test_truncated_file_at_every_offset(cnn):
    data = cnn[0].SerializeToString()
    assert len(data) > 1000
    for cut in range(len(data)):
        with pytest.raises(ModelFormatError):
            load_onnx(data[:cut])


def test_truncated_file_on_disk(cnn, tmp_path):
    data = cnn[0].SerializeToString()
    for cut in (0, 1, 7, len(data) // 3, len(data) // 2, len(data) - 10, len(data) - 1):
        p = tmp_path / f"cut{cut}.onnx"
        p.write_bytes(data[:cut])
        with pytest.raises(ModelFormatError, match="cut"):
            load_onnx(p)


def test_random_bytes_are_rejected():
    rng = np.random.default_rng(4)
    for n in (1, 2, 5, 16, 100, 1000, 10000):
        for _ in range(5):
            with pytest.raises(ModelFormatError):
                load_onnx(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
    with pytest.raises(ModelFormatError, match="empty"):
        load_onnx(b"")


def test_flipped_bytes_never_crash(cnn):
    """Corrupting single bytes gives a model, or one of fastconv's errors; nothing else."""
    data = bytearray(cnn[0].SerializeToString())
    rng = np.random.default_rng(5)
    outcomes = set()
    for i in rng.integers(0, len(data), 150):
        bad = bytearray(data)
        bad[i] ^= 0xFF
        try:
            load_onnx(bytes(bad))
            outcomes.add("ok")
        except (ModelFormatError, ShapeError, UnsupportedOperatorError) as e:
            outcomes.add(type(e).__name__)
    assert "ModelFormatError" in outcomes


def test_not_a_model():
    with pytest.raises(TypeError, match="path, bytes or an onnx.ModelProto"):
        load_onnx(123)
    with pytest.raises(FileNotFoundError):
        load_onnx("/nonexistent/model.onnx")
    with pytest.raises(ModelFormatError, match="no graph"):
        load_onnx(onnx.ModelProto(ir_version=8))
    m = onnx.ModelProto(ir_version=8)
    m.graph.CopyFrom(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                                       [_vi("x", [1, 2])], [_vi("y", [1, 2])]))
    with pytest.raises(ModelFormatError, match="opset"):
        load_onnx(m)


def test_corrupt_initializer(cnn):
    m = onnx.ModelProto()
    m.CopyFrom(cnn[0])
    t = m.graph.initializer[0]
    t.raw_data = t.raw_data[:-8]
    with pytest.raises(ModelFormatError, match="initializer 'w'"):
        load_onnx(m)


# ---------------------------------------------------------------------------- graph errors

def test_missing_initializer(cnn):
    m = onnx.ModelProto()
    m.CopyFrom(cnn[0])
    del m.graph.initializer[2]          # fw
    with pytest.raises(ModelFormatError, match=r"node 'fc' \(Gemm\) reads 'fw'.*missing"):
        load_onnx(m)


def test_graph_cycle():
    m = make_model([helper.make_node("Relu", ["x", ], ["a"]),
                    helper.make_node("Add", ["a", "c"], ["b"], name="add"),
                    helper.make_node("Relu", ["b"], ["c"], name="back")],
                   [_vi("x", ["N", 4])], [_vi("c", ["N", 4])])
    with pytest.raises(ModelFormatError, match=r"cycle.*'add'.*'back'"):
        load_onnx(m)
    self_loop = make_model([helper.make_node("Add", ["x", "a"], ["a"], name="me")],
                           [_vi("x", ["N", 4])], [_vi("a", ["N", 4])])
    with pytest.raises(ModelFormatError, match="own output"):
        load_onnx(self_loop)


def test_nodes_out_of_order_are_sorted(cnn):
    m = onnx.ModelProto()
    m.CopyFrom(cnn[0])
    nodes = list(m.graph.node)[::-1]
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    x = np.ones((2, 3, 8, 8), np.float32)
    assert_close(load_onnx(m)(x), small_cnn_ref(x, cnn[1]), CONV_RTOL, "reversed nodes")


@pytest.mark.parametrize("case", ["tensor", "node_name", "initializer", "input", "output",
                                  "input_overwritten"])
def test_duplicate_names(case):
    x = _vi("x", ["N", 4])
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="n1"),
             helper.make_node("Relu", ["a"], ["b"], name="n2")]
    inputs, outputs, inits = [x], [_vi("b", ["N", 4])], []
    if case == "tensor":
        nodes.append(helper.make_node("Relu", ["x"], ["a"], name="n3"))
        pat = r"'a' is written by both node 'n1' \(Relu\) and node 'n3'"
    elif case == "node_name":
        nodes[1].name = "n1"
        pat = "two nodes are named 'n1'"
    elif case == "initializer":
        inits = [_init("k", np.ones(4, np.float32)), _init("k", np.ones(4, np.float32))]
        pat = "initializer 'k' appears twice"
    elif case == "input":
        inputs = [x, _vi("x", ["N", 4])]
        pat = "graph input 'x' is declared twice"
    elif case == "output":
        outputs = [_vi("b", ["N", 4]), _vi("b", ["N", 4])]
        pat = "lists an output twice"
    else:
        nodes[0].output[0] = "x"
        nodes[1].input[0] = "x"
        pat = "writes 'x', which is also a graph input"
    with pytest.raises(ModelFormatError, match=pat):
        load_onnx(make_model(nodes, inputs, outputs, inits))


def test_output_not_produced():
    m = make_model([helper.make_node("Relu", ["x"], ["a"])], [_vi("x", ["N", 4])],
                   [_vi("zz", ["N", 4])])
    with pytest.raises(ModelFormatError, match="'zz' is not produced"):
        load_onnx(m)


# ---------------------------------------------------------------------------- unsupported

def test_unsupported_operators_are_listed_together():
    m = make_model(
        [helper.make_node("Relu", ["x"], ["a"], name="relu"),
         helper.make_node("Tanh", ["a"], ["b"]),                       # unnamed: op #1
         helper.make_node("Relu", ["b"], ["c"]),
         helper.make_node("HardSwish", ["c"], ["d"], name="hs"),
         helper.make_node("Relu", ["x"], ["e"], name="ok")],
        [_vi("x", ["N", 4])], [_vi("d", ["N", 4]), _vi("e", ["N", 4])])
    with pytest.raises(UnsupportedOperatorError) as ei:
        load_onnx(m)
    msg = str(ei.value)
    assert "2 unsupported operators" in msg
    assert "Tanh (opset 17) at op #1" in msg
    assert "HardSwish (opset 17) at node 'hs'" in msg
    assert msg.index("Tanh") < msg.index("HardSwish")
    assert isinstance(ei.value, NotImplementedError)


def test_unsupported_attribute_domain_and_mode_are_listed():
    m = make_model(
        [helper.make_node("MaxPool", ["x"], ["p", "idx"], kernel_shape=[2, 2], name="mp"),
         helper.make_node("Gemm", ["f", "w"], ["g"], transA=1, name="gemm"),
         helper.make_node("Foo", ["x"], ["q"], domain="com.example", name="custom"),
         helper.make_node("Flatten", ["x"], ["f"], axis=0, name="flat0")],
        [_vi("x", ["N", 2, 4, 4])],
        [_vi("p", ["N", 2, 2, 2]), _vi("idx", ["N", 2, 2, 2]), _vi("q", ["N", 2, 4, 4]),
         _vi("g", [32, 3])], [_init("w", np.ones((1, 3), np.float32))])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(UnsupportedOperatorError) as ei:
        load_onnx(m)
    msg = str(ei.value)
    assert "MaxPool (opset 17) at node 'mp': the second output (Indices)" in msg
    assert "com.example.Foo (opset 1) at node 'custom'" in msg
    assert "Flatten (opset 17) at node 'flat0': axis=0" in msg
    assert "gemm" not in msg     # skipped: its input comes from the failed Flatten


def test_3d_conv_is_unsupported():
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="c3")],
                   [_vi("x", ["N", 1, 4, 4, 4])], [_vi("y", ["N", 1, 2, 2, 2])],
                   [_init("w", np.ones((1, 1, 3, 3, 3), np.float32))])
    with pytest.raises(UnsupportedOperatorError, match=r"Conv \(opset 17\) at node 'c3': a 3-D"):
        load_onnx(m)


def test_opsets():
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    newest = onnx.defs.onnx_opset_version()
    with pytest.raises(UnsupportedOperatorError, match=f"opset {newest + 1}, newer"):
        load_onnx(make_model(relu, [_vi("x", ["N", 3])], [_vi("y", ["N", 3])],
                             opset=newest + 1))
    for opset in (6, 7, 13, newest):     # 6: upgraded by onnx's version converter
        model = load_onnx(make_model(relu, [_vi("x", ["N", 3])], [_vi("y", ["N", 3])],
                                     opset=opset))
        np.testing.assert_array_equal(model(np.array([[-1, 0, 2]], np.float32)), [[0, 0, 2]])


def test_integer_graph_inputs_must_be_constant():
    m = make_model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="rs")],
                   [_vi("x", ["N", 2, 3]), _vi("shape", [2], TensorProto.INT64)],
                   [_vi("y", ["N", 6])])
    with pytest.raises(UnsupportedOperatorError, match=r"'shape' is int64.*as initializers"):
        load_onnx(m)


# ---------------------------------------------------------------------------- shape errors

def test_conv_channel_mismatch_names_the_node():
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv7")],
                   [_vi("x", ["N", 3, 8, 8])], [_vi("y", ["N", 4, 6, 6])],
                   [_init("w", np.ones((4, 2, 3, 3), np.float32))])
    with pytest.raises(ShapeError, match=r"node 'conv7' \(Conv\): X \(N, 3, 8, 8\) has 3 "
                                         r"channels but W \(4, 2, 3, 3\).*2 x 1 = 2"):
        load_onnx(m)


def test_kernel_larger_than_input_names_unnamed_node():
    m = make_model([helper.make_node("Relu", ["x"], ["r"]),
                    helper.make_node("Conv", ["r", "w"], ["y"])],
                   [_vi("x", ["N", 1, 3, 3])], [_vi("y", ["N", 1, 1, 1])],
                   [_init("w", np.ones((1, 1, 5, 5), np.float32))])
    with pytest.raises(ShapeError, match=r"Conv #1: output height = floor\(.*\(3 \+ 0 \+ 0 - "
                                         r"1\*\(5-1\) - 1\) / 1\) \+ 1 = -1 < 1"):
        load_onnx(m)


def test_gemm_inner_size_mismatch():
    m = make_model([helper.make_node("Gemm", ["x", "w"], ["y"], name="fc")],
                   [_vi("x", ["N", 10])], [_vi("y", ["N", 3])],
                   [_init("w", np.ones((12, 3), np.float32))])
    with pytest.raises(ShapeError, match=r"node 'fc' \(Gemm\).*inner sizes 10 and 12"):
        load_onnx(m)


def test_declared_shape_mismatch_names_the_producer():
    m = make_model([helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2],
                                     name="mp"),
                    helper.make_node("Relu", ["p"], ["y"])],
                   [_vi("x", ["N", 2, 8, 8])], [_vi("y", ["N", 2, 4, 4])],
                   value_info=[_vi("p", ["N", 2, 5, 4])])
    with pytest.raises(ShapeError, match=r"node 'mp' \(MaxPool\): output 'p' comes out as "
                                         r"\(N, 2, 4, 4\) but the model declares \['\?', 2, 5, 4\]"):
        load_onnx(m)


def test_rank1_input_is_a_shape_error():
    m = make_model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [5])], [_vi("y", [5])])
    with pytest.raises(ShapeError, match="at least one axis after the batch axis"):
        load_onnx(m)


# ---------------------------------------------------------------------------- semantics

@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_before_and_after_opset_13(opset):
    x = np.random.default_rng(6).standard_normal((2, 3, 4)).astype(np.float32)
    for axis in (None, 1, 2, -1):
        kw = {} if axis is None else {"axis": axis}
        m = make_model([helper.make_node("Softmax", ["x"], ["y"], **kw)],
                       [_vi("x", ["N", 3, 4])], [_vi("y", ["N", 3, 4])], opset=opset)
        got = load_onnx(m)(x)
        if opset < 13:   # coerced to 2-D at `axis` (default 1): softmax over dims[axis:]
            a = 1 if axis is None else axis % 3
            ref = ref_softmax(x.reshape(int(np.prod(x.shape[:a])), -1), 1).reshape(x.shape)
        else:            # one axis (default -1)
            ref = ref_softmax(x, -1 if axis is None else axis)
        assert_close(got, ref, 1e-5, f"Softmax opset {opset} axis {axis}")
    if opset < 13:
        m = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=0)],
                       [_vi("x", ["N", 3, 4])], [_vi("y", ["N", 3, 4])], opset=opset)
        with pytest.raises(UnsupportedOperatorError, match="across the batch axis"):
            load_onnx(m)


def test_softmax_13_over_the_batch_axis():
    x = np.random.default_rng(7).standard_normal((3, 4)).astype(np.float32)
    m = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=0)], [_vi("x", ["N", 4])],
                   [_vi("y", ["N", 4])], opset=13)
    assert_close(load_onnx(m)(x), ref_softmax(x, 0), 1e-5, "softmax axis 0")


def _gemm_model(a_shape, b, c=None, **attrs):
    inits = [_init("b", b)] + ([] if c is None else [_init("c", c)])
    n = b.shape[0] if attrs.get("transB") else b.shape[1]
    node = helper.make_node("Gemm", ["a", "b"] + ([] if c is None else ["c"]), ["y"], **attrs)
    return make_model([node], [_vi("a", ["N", a_shape[1]])], [_vi("y", ["N", n])], inits)


@pytest.mark.parametrize("c_shape", [None, (), (1,), (4,), (1, 4), (1, 1)])
@pytest.mark.parametrize("alpha,beta,trans_b", [(1.0, 1.0, 0), (0.5, 2.0, 0), (2.0, 0.0, 1),
                                                (-1.5, 0.25, 1)])
def test_gemm_variants(c_shape, alpha, beta, trans_b):
    rng = np.random.default_rng(8)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal((4, 5) if trans_b else (5, 4)).astype(np.float32)
    c = None if c_shape is None else rng.standard_normal(c_shape).astype(np.float32)
    model = load_onnx(_gemm_model(a.shape, b, c, alpha=alpha, beta=beta, transB=trans_b))
    assert [n.layer.kind for n in model.nodes] == ["Linear"]
    b64 = b.astype(np.float64).T if trans_b else b.astype(np.float64)
    ref = alpha * a.astype(np.float64) @ b64
    if c is not None:
        ref = ref + beta * c.astype(np.float64)
    assert_close(model(a), np.broadcast_to(ref, (3, 4)), CONV_RTOL,
                 f"Gemm alpha={alpha} beta={beta} transB={trans_b} C{c_shape}")


def test_gemm_unsupported_forms():
    rng = np.random.default_rng(9)
    b = rng.standard_normal((5, 4)).astype(np.float32)
    with pytest.raises(UnsupportedOperatorError, match="transA=1"):
        load_onnx(_gemm_model((3, 5), b, transA=1))
    with pytest.raises(UnsupportedOperatorError, match="row per batch sample"):
        load_onnx(_gemm_model((3, 5), b, np.ones((3, 4), np.float32)))


def test_gemm_with_b_and_c_as_inputs():
    from fastconv.onnx_backend import FastconvBackend
    rng = np.random.default_rng(10)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    for c in (rng.standard_normal((3, 4)).astype(np.float32),      # one row per sample
              rng.standard_normal((4,)).astype(np.float32),
              rng.standard_normal((1, 4)).astype(np.float32)):
        m = make_model([helper.make_node("Gemm", ["a", "b", "c"], ["y"], alpha=0.5, beta=2.0,
                                         transB=1)],
                       [_vi("a", [3, 5]), _vi("b", [4, 5]), _vi("c", list(c.shape))],
                       [_vi("y", [3, 4])])
        (got,) = FastconvBackend.prepare(m).run([a, b, c])
        ref = 0.5 * a.astype(np.float64) @ b.T.astype(np.float64) + 2.0 * c
        assert_close(got, ref, CONV_RTOL, f"Gemm with C {c.shape} as an input")


def test_matmul_then_add_becomes_one_linear():
    rng = np.random.default_rng(11)
    w = rng.standard_normal((6, 3)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"]),
             helper.make_node("Add", ["mm", "bias"], ["y"])]
    m = make_model(nodes, [_vi("x", ["N", 6])], [_vi("y", ["N", 3])],
                   [_init("w", w), _init("bias", bias)])
    model = load_onnx(m)
    assert [(n.name, n.layer.kind) for n in model.nodes] == [("y", "Linear")]
    assert model.nodes[0].layer.bias is not None
    x = rng.standard_normal((4, 6)).astype(np.float32)
    assert_close(model(x), ref_linear(x, w.T, bias), CONV_RTOL, "MatMul+Add")
    # without the Add, or when the MatMul's output is read twice: no fusion
    m2 = make_model(nodes + [helper.make_node("Relu", ["mm"], ["z"])], [_vi("x", ["N", 6])],
                    [_vi("y", ["N", 3]), _vi("z", ["N", 3])], [_init("w", w), _init("bias", bias)])
    model2 = load_onnx(m2)
    assert [n.layer.kind for n in model2.nodes] == ["Linear", "OnnxAdd", "ReLU"]
    out = model2.run({"x": x})
    assert_close(out["y"], ref_linear(x, w.T, bias), CONV_RTOL, "unfused")
    assert_close(out["z"], np.maximum(ref_linear(x, w.T), 0), CONV_RTOL, "relu of matmul")


def test_batchnorm_is_folded_into_the_conv():
    rng = np.random.default_rng(12)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    g, b, mu = (rng.standard_normal(4).astype(np.float32) for _ in range(3))
    var = rng.uniform(0.5, 2, 4).astype(np.float32)
    m = make_model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                    helper.make_node("BatchNormalization", ["c", "g", "b", "mu", "var"], ["y"],
                                     epsilon=1e-3, name="bn")],
                   [_vi("x", ["N", 3, 6, 6])], [_vi("y", ["N", 4, 6, 6])],
                   [_init("w", w), _init("g", g), _init("b", b), _init("mu", mu),
                    _init("var", var)])
    model = load_onnx(m)
    assert [n.layer.kind for n in model.nodes] == ["Conv2d", "BatchNorm2d"]
    assert "fused" in model.plan.node_info["y"]["algo"]
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    s = (g / np.sqrt(var.astype(np.float64) + 1e-3)).reshape(1, 4, 1, 1)
    ref = (ref_conv2d(x, w, padding=1) - mu.reshape(1, 4, 1, 1)) * s + b.reshape(1, 4, 1, 1)
    assert_close(model(x), ref, CONV_RTOL, "conv+bn")
    m.graph.node[1].attribute.append(helper.make_attribute("training_mode", 1))
    with pytest.raises(UnsupportedOperatorError, match="training_mode=1"):
        load_onnx(m)


@pytest.mark.parametrize("opset", [7, 11, 12, 13])
def test_dropout_ratio_attribute_or_input(opset):
    if opset < 12:
        node = helper.make_node("Dropout", ["x"], ["y"], ratio=0.3)
        inits = []
    else:
        node = helper.make_node("Dropout", ["x", "r"], ["y"])
        inits = [_init("r", np.float32(0.3))]
    m = make_model([node], [_vi("x", ["N", 5])], [_vi("y", ["N", 5])], inits, opset)
    model = load_onnx(m)
    layer = model.nodes[0].layer
    assert layer.kind == "Dropout" and layer.p == pytest.approx(0.3)
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    np.testing.assert_array_equal(model(x), x)
    if opset >= 12:
        m = make_model([helper.make_node("Dropout", ["x", "r", "t"], ["y"])],
                       [_vi("x", ["N", 5])], [_vi("y", ["N", 5])],
                       inits + [_init("t", np.array(True))], opset)
        with pytest.raises(UnsupportedOperatorError, match="training_mode=true"):
            load_onnx(m)


def test_sum_concat_lrn_global_pool():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    m = make_model(
        [helper.make_node("Relu", ["x"], ["a"]),
         helper.make_node("Sum", ["x", "a", "x"], ["s"]),
         helper.make_node("Concat", ["s", "a"], ["c"], axis=1),
         helper.make_node("LRN", ["c"], ["l"], size=3, alpha=0.1, beta=0.5, bias=2.0),
         helper.make_node("GlobalAveragePool", ["l"], ["y"])],
        [_vi("x", ["N", 3, 5, 5])], [_vi("y", ["N", 6, 1, 1])])
    model = load_onnx(m)
    assert [n.layer.kind for n in model.nodes] == ["ReLU", "Add", "Concat", "LRN",
                                                   "GlobalAvgPool2d"]
    a = np.maximum(x, 0).astype(np.float64)
    c = np.concatenate([2 * x + a, a], axis=1)
    sq = np.pad(c ** 2, ((0, 0), (1, 1), (0, 0), (0, 0)))
    win = sq[:, :-2] + sq[:, 1:-1] + sq[:, 2:]
    lrn = c / (2.0 + 0.1 / 3 * win) ** 0.5
    assert_close(model(x), lrn.mean(axis=(2, 3), keepdims=True), 1e-5, "sum/concat/lrn/gap")


def test_broadcast_add_with_constant_and_parameter_operands():
    from fastconv.onnx_backend import FastconvBackend
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    k = rng.standard_normal((1, 3, 1)).astype(np.float32)     # leading 1: broadcast over N
    p = rng.standard_normal((4,)).astype(np.float32)          # a parameter graph input
    m = make_model([helper.make_node("Add", ["x", "k"], ["t"]),
                    helper.make_node("Add", ["t", "p"], ["y"])],
                   [_vi("x", ["N", 3, 4]), _vi("p", [4])], [_vi("y", ["N", 3, 4])],
                   [_init("k", k)])
    (got,) = FastconvBackend.prepare(m).run([x, p])
    assert_close(got, x.astype(np.float64) + k + p, 1e-6, "broadcast adds")
    bad = make_model([helper.make_node("Add", ["x", "k"], ["y"])], [_vi("x", ["N", 3, 4])],
                     [_vi("y", ["N", 3, 4])], [_init("k", np.ones((2, 3, 4), np.float32))])
    with pytest.raises(UnsupportedOperatorError, match="spans the batch axis"):
        load_onnx(bad)


# ---------------------------------------------------------------------------- shape chains

def test_shape_chain_is_folded_with_a_symbolic_batch():
    """Shape -> Gather(0) -> Unsqueeze -> Concat([batch, -1]) -> Cast -> Reshape."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["nu"]),
        helper.make_node("Gather", ["s", "one"], ["c"], axis=0),
        helper.make_node("Unsqueeze", ["c", "ax0"], ["cu"]),
        helper.make_node("Concat", ["nu", "cu", "m1"], ["t"], axis=0),
        helper.make_node("Cast", ["t"], ["t64"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["x", "t64"], ["y"], name="view"),
    ]
    inits = [_init("zero", np.array(0, np.int64)), _init("one", np.array(1, np.int64)),
             _init("ax0", np.array([0], np.int64)), _init("m1", np.array([-1], np.int64))]
    m = make_model(nodes, [_vi("x", ["N", 3, 4, 5])], [_vi("y", ["N", 3, 20])], inits)
    model = load_onnx(m)
    assert [(n.layer.kind, n.layer.shape) for n in model.nodes] == [("Reshape", (3, 20))]
    x = np.arange(2 * 60, dtype=np.float32).reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(model(x), x.reshape(2, 3, 20))
    np.testing.assert_array_equal(model(x[:1]), x[:1].reshape(1, 3, 20))


def test_reshape_that_moves_the_batch_axis_is_refused():
    m = make_model([helper.make_node("Reshape", ["x", "t"], ["y"], name="rs")],
                   [_vi("x", ["N", 3, 4])], [_vi("y", [-1])], [_init("t", np.array([-1]))])
    with pytest.raises(UnsupportedOperatorError, match=r"'rs': reshaping \(N, 3, 4\) to \[-1\] "
                                                       r"moves or merges the batch axis"):
        load_onnx(m)
    m = make_model([helper.make_node("Reshape", ["x", "t"], ["y"], name="rs")],
                   [_vi("x", ["N", 3, 4])], [_vi("y", ["N", 5])], [_init("t", np.array([0, 5]))])
    with pytest.raises(ShapeError, match=r"cannot reshape \(N, 3, 4\) \(12 elements per sample\)"):
        load_onnx(m)


def test_declared_batch_baked_into_a_reshape_target():
    # exporters with a fixed batch of 1 write the target [1, -1]
    m = make_model([helper.make_node("Reshape", ["x", "t"], ["y"])], [_vi("x", [1, 2, 3])],
                   [_vi("y", [1, 6])], [_init("t", np.array([1, -1]))])
    model = load_onnx(m)
    x = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    np.testing.assert_array_equal(model(x), x.reshape(2, 6))


class _TinyNet:
    """A torch module with x.view(x.size(0), -1) before the classifier."""

    @staticmethod
    def make(torch):
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
                self.fc = torch.nn.Linear(4 * 4 * 4, 5)

            def forward(self, x):
                x = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
                return self.fc(x.view(x.size(0), -1))

        torch.manual_seed(0)
        return Net().eval()


@pytest.fixture(scope="module")
def torch_net():
    torch = pytest.importorskip("torch")
    return torch, _TinyNet.make(torch)


def _export(torch, net, dynamo):
    import io
    import warnings
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(2, 3, 8, 8),), f, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
                          dynamo=dynamo)
    return f.getvalue()


def test_torch_export_view_chain(torch_net):
    """The TorchScript exporter writes Shape/Gather/Unsqueeze/Concat before Reshape."""
    torch, net = torch_net
    data = _export(torch, net, dynamo=False)
    ops = [n.op_type for n in onnx.load_from_string(data).graph.node]
    assert {"Shape", "Gather", "Unsqueeze", "Concat", "Reshape"} <= set(ops)
    model = load_onnx(data)
    assert [n.layer.kind for n in model.nodes] == ["Conv2d", "ReLU", "MaxPool2d", "Reshape",
                                                   "Linear"]
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        ref = net(x).double().numpy()
    assert_close(model(x.numpy()), ref, CONV_RTOL, "torch export (TorchScript)")


def test_torch_dynamo_export(torch_net):
    pytest.importorskip("onnxscript")
    torch, net = torch_net
    model = load_onnx(_export(torch, net, dynamo=True))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        ref = net(x).double().numpy()
    assert_close(model(x.numpy()), ref, CONV_RTOL, "torch export (dynamo)")


# ---------------------------------------------------------------------------- load_weights

def _fc_cnn(conv_out=4, fc_in=64):
    return fc.Model.sequential(
        [L.Conv2d(3, conv_out, 3, padding=1, name="conv"), L.ReLU(name="relu"),
         L.MaxPool2d(2, name="pool"), L.Flatten(name="flatten"),
         L.Linear(fc_in, 5, name="fc")], (3, 8, 8))


def test_load_weights_into_a_fastconv_model(cnn):
    m, params = cnn
    model = _fc_cnn()
    x = np.random.default_rng(15).standard_normal((2, 3, 8, 8)).astype(np.float32)
    before = model(x)
    out = load_weights(model, m)
    assert out is model
    assert_close(model(x), small_cnn_ref(x, params), CONV_RTOL, "after load_weights")
    assert not np.allclose(before, model(x))
    np.testing.assert_array_equal(model.named_params()["conv/weight"], params[0])
    # the Model method goes through the same function
    other = _fc_cnn()
    assert other.load_weights(m.SerializeToString()) is other
    assert_close(other(x), model(x), 1e-6, "Model.load_weights")


def test_load_weights_names_every_mismatch(cnn):
    model = _fc_cnn(conv_out=6, fc_in=96)
    before = {k: v.copy() for k, v in model.named_params().items()}
    with pytest.raises(ShapeError) as ei:
        load_weights(model, cnn[0])
    msg = str(ei.value)
    assert "3 mismatches" in msg
    assert "layer 'conv' (Conv2d) weight: expected shape (6, 3, 3, 3), found (4, 3, 3, 3) in " \
           "ONNX node 'conv'" in msg
    assert "layer 'conv' (Conv2d) bias: expected shape (6,), found (4,)" in msg
    assert "layer 'fc' (Linear) weight: expected shape (5, 96), found (5, 64) in ONNX node " \
           "'fc'" in msg
    for k, v in model.named_params().items():    # nothing was changed
        np.testing.assert_array_equal(v, before[k])


def test_load_weights_counts_layers():
    m, _ = small_cnn()
    model = fc.Model.sequential(
        [L.Conv2d(3, 4, 3, padding=1, name="conv"), L.Conv2d(4, 4, 3, padding=1, name="conv2"),
         L.MaxPool2d(2), L.Flatten(), L.Linear(64, 5, bias=False, name="fc")], (3, 8, 8))
    with pytest.raises(ShapeError) as ei:
        load_weights(model, m)
    msg = str(ei.value)
    assert "conv layers: the model has 2, the ONNX file 1 (unmatched in the model: " \
           "['conv2'])" in msg
    assert "layer 'fc' (Linear) bias: expected shape none, found (5,)" in msg
