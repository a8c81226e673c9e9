"""Hostile files, the cases tests/test_onnx_import.py and tests/test_io.py do not already
cover (those hold truncation at every byte, random and flipped bytes, cycles, duplicate
names, missing initializers, unsupported-op lists, the .fcz header and tensor table):

ONNX: attributes of the wrong type, absurd or negative dimensions (graph inputs,
initializers, attribute values, folded shapes), initializers whose data does not fit
their dims or whose size does not fit the operator, dangling or empty input names,
nodes without outputs, unknown and structural ops, deeply nested protobuf, external
data outside the model's directory. .fcz: a JSON document the checksums vouch for but
whose graph is wrong (dangling inputs, cycles, duplicate names, layer configs of the
wrong type or size, absurd input shapes, deep nesting). Each gives ModelFormatError /
ShapeError / UnsupportedOperatorError naming the node (or tensor, or input).

Regressions of what fuzzing found (fuzz/, SECURITY.md) are marked "fuzz finding".
"""
from __future__ import annotations

import copy
import json
import os
import sys
import textwrap

import numpy as np
import pytest

from conftest import TESTS_DIR, run_python

onnx = pytest.importorskip("onnx")
from onnx import AttributeProto, TensorProto, helper, numpy_helper  # noqa: E402

import fastconv as fc  # noqa: E402
from fastconv import layers as L  # noqa: E402
from fastconv.errors import ModelFormatError, ShapeError, UnsupportedOperatorError  # noqa: E402

sys.path.insert(0, str(TESTS_DIR.parent / "fuzz"))
from mutations import build_fcz, parse_fcz  # noqa: E402

DOCUMENTED = (ModelFormatError, ShapeError, UnsupportedOperatorError)
W = np.ones((4, 3, 3, 3), np.float32)


# ============================================================================ ONNX builders

def _vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def _model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _conv(w=None, x_shape=("N", 3, 8, 8), y_shape=("N", 4, 6, 6), **attrs):
    """One Conv node named 'c' reading x and the initializer 'w'."""
    t = numpy_helper.from_array(W, "w") if w is None else w
    return _model([helper.make_node("Conv", ["x", "w"], ["y"], name="c", **attrs)],
                  [_vi("x", list(x_shape))], [_vi("y", list(y_shape))], [t])


def _with_attr(m, attr):
    m.graph.node[0].attribute.append(attr)
    return m


def _raises(exc, src, *needles):
    with pytest.raises(exc) as ei:
        fc.load_onnx(src)
    msg = str(ei.value)
    for n in needles:
        assert n in msg, f"{n!r} not in message: {msg}"
    return msg


# ============================================================================ ONNX: attributes

WRONG_ATTRS = {
    "strides-float": lambda: _conv(strides=1.5),
    "strides-string": lambda: _conv(strides="ab"),
    "strides-inf": lambda: _with_attr(_conv(), helper.make_attribute("strides",
                                                                      [float("inf")] * 2)),
    "strides-negative": lambda: _conv(strides=[-1, -1]),
    "strides-empty-ints": lambda: _with_attr(_conv(), AttributeProto(
        name="strides", type=AttributeProto.INTS)),
    "strides-declared-float-holding-ints": lambda: _with_attr(_conv(), AttributeProto(
        name="strides", type=AttributeProto.FLOAT, ints=[1, 1])),
    "kernel_shape-int": lambda: _conv(kernel_shape=3),
    "group-floats": lambda: _conv(group=[1.0, 2.0]),
    "group-string": lambda: _conv(group="two"),
    "auto_pad-int": lambda: _conv(auto_pad=3),                  # fuzz finding
    "auto_pad-float": lambda: _conv(auto_pad=0.5),              # fuzz finding
    "auto_pad-unknown": lambda: _conv(auto_pad="SAME"),
    "dilations-2**40": lambda: _conv(dilations=[2**40, 1]),
    "strides-2**62": lambda: _conv(strides=[2**62, 2**62]),
    "pads-2**31": lambda: _conv(pads=[2**31] * 4),
    "pads-3-entries": lambda: _conv(pads=[1, 1, 1]),
}


@pytest.mark.parametrize("case", list(WRONG_ATTRS))
def test_attribute_of_the_wrong_type_or_size(case):
    _raises(ModelFormatError, WRONG_ATTRS[case](), "node 'c' (Conv)")


def test_pooling_attributes_of_the_wrong_type():
    def pool(**kw):
        return _model([helper.make_node("MaxPool", ["x"], ["y"], name="mp", **kw)],
                      [_vi("x", ["N", 3, 8, 8])], [_vi("y", ["N", 3, 4, 4])])
    _raises(ModelFormatError, pool(kernel_shape=[2**40, 2**40]), "node 'mp' (MaxPool)")
    _raises(ModelFormatError, pool(kernel_shape=[2.5, 2.0]), "node 'mp'")
    _raises(ModelFormatError, pool(kernel_shape=[2, 2], strides=[float("-inf")] * 2), "'mp'")
    _raises(ModelFormatError, pool(kernel_shape=[2, 2], ceil_mode="yes"), "'mp'")
    _raises(ModelFormatError, pool(), "node 'mp'", "kernel_shape")      # required, missing


def test_fold_errors_are_format_errors():
    """fuzz finding: any failure inside a constant fold (here Gather out of range) raised
    AttributeError (`np.AxisError` is gone in NumPy 2) instead of a ModelFormatError."""
    m = _model([helper.make_node("Shape", ["x"], ["s"], name="shape"),
                helper.make_node("Gather", ["s", "i"], ["n"], axis=0, name="gather"),
                helper.make_node("Reshape", ["x", "n"], ["y"], name="rs")],
               [_vi("x", ["N", 6])], [_vi("y", ["N", 6])],
               [numpy_helper.from_array(np.array([7], np.int64), "i")])
    _raises(ModelFormatError, m, "node 'gather' (Gather)", "cannot be evaluated at load")
    m.graph.node[1].attribute[0].i = 5                    # axis out of range: AxisError
    _raises(ModelFormatError, m, "node 'gather' (Gather)")


# ============================================================================ ONNX: dims and sizes

def test_graph_input_dimensions():
    relu = lambda shape: _model([helper.make_node("Relu", ["x"], ["y"], name="r")],  # noqa
                                [_vi("x", shape)], [_vi("y", shape)])
    # fuzz finding: a size above 2**31-1 was a bare ValueError from the Model
    for shape in (["N", 2**40], ["N", 2**31], ["N", 3, -2], ["N", 0], ["N", "H"]):
        _raises(ShapeError, relu(shape), "graph input 'x'", "input_shapes")
    # an absurd but representable size loads (nothing is allocated before a run) ...
    m = fc.load_onnx(_conv(x_shape=("N", 3, 2**20, 2**20), y_shape=("N", 4, 2**20 - 2,
                                                                    2**20 - 2)))
    assert m.input_shapes == {"x": (3, 2**20, 2**20)}
    # ... and a declared batch size is not a limit
    assert fc.load_onnx(relu([2**40, 3])).input_shapes == {"x": (3,)}


def _init_model(t):
    return _conv(w=t)


def _tensor(**fields):
    return onnx.TensorProto(name="w", **fields)


INIT_CASES = {
    "dims-negative": lambda: (lambda t: (t.dims.__setitem__(1, -3), t)[1])(
        numpy_helper.from_array(W, "w")),
    "dims-2**40-no-data": lambda: _tensor(data_type=TensorProto.FLOAT, dims=[2**40, 3, 3, 3]),
    "dims-product-overflows-int64": lambda: _tensor(data_type=TensorProto.FLOAT,
                                                    dims=[2**32, 2**32, 2**32, 1]),
    "float_data-too-many": lambda: _tensor(data_type=TensorProto.FLOAT, dims=[4, 3, 3, 3],
                                           float_data=[1.0] * 200),
    "float_data-too-few": lambda: _tensor(data_type=TensorProto.FLOAT, dims=[4, 3, 3, 3],
                                          float_data=[1.0] * 107),
    "raw-too-long": lambda: (lambda t: (setattr(t, "raw_data", t.raw_data + b"\0" * 12), t)[1])(
        numpy_helper.from_array(W, "w")),
    "raw-not-whole-floats": lambda: (lambda t: (setattr(t, "raw_data", t.raw_data[:-3]), t)[1])(
        numpy_helper.from_array(W, "w")),
    "dtype-undefined": lambda: (lambda t: (setattr(t, "data_type", 0), t)[1])(
        numpy_helper.from_array(W, "w")),
    "dtype-unknown-99": lambda: (lambda t: (setattr(t, "data_type", 99), t)[1])(
        numpy_helper.from_array(W, "w")),
}


@pytest.mark.parametrize("case", list(INIT_CASES))
def test_initializer_data_that_does_not_fit_its_dims(case):
    _raises(ModelFormatError, _init_model(INIT_CASES[case]()), "initializer 'w'")


def test_initializer_of_the_wrong_kind_or_size_for_the_operator():
    strings = helper.make_tensor("w", TensorProto.STRING, [4, 3, 3, 3], [b"a"] * 108)
    _raises(ModelFormatError, _init_model(strings), "node 'c' (Conv)", "W")
    rank3 = numpy_helper.from_array(np.ones((4, 3, 3), np.float32), "w")
    _raises(ShapeError, _init_model(rank3), "node 'c' (Conv)", "(4, 3, 3)")
    gemm = _model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)],
                  [_vi("x", ["N", 6])], [_vi("y", ["N", 4])],
                  [numpy_helper.from_array(np.ones((4, 6), np.float32), "w"),
                   numpy_helper.from_array(np.ones(5, np.float32), "b")])
    _raises(ShapeError, gemm, "node 'fc' (Gemm)", "(5,)")
    c = lambda n, k: numpy_helper.from_array(np.ones(k, np.float32), n)  # noqa: E731
    bn = _model([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"],
                                  name="bn")],
                [_vi("x", ["N", 3, 4, 4])], [_vi("y", ["N", 3, 4, 4])],
                [c("s", 3), c("b", 3), c("m", 4), c("v", 3)])
    _raises(ShapeError, bn, "node 'bn' (BatchNormalization)", "mean", "(4,)")


def test_activations_that_cannot_exist():
    """fuzz finding (.fcz, the same in ONNX): a layer whose per-sample output needs more
    bytes than the address space is refused when the model is built, naming the node."""
    m = _model([helper.make_node("AveragePool", ["x"], ["y"], name="ap",
                                 kernel_shape=[2, 2], pads=[2**30] * 4)],
               [_vi("x", ["N", 3, 5, 5])], [_vi("y", ["N", 3, "H", "W"])])
    _raises(ShapeError, m, "ap", "address space")


def test_absurd_folded_shapes():
    cos = _model([helper.make_node("ConstantOfShape", ["s"], ["c"], name="cos"),
                  helper.make_node("Add", ["x", "c"], ["y"], name="add")],
                 [_vi("x", ["N", 4])], [_vi("y", ["N", 4])],
                 [numpy_helper.from_array(np.array([2**40], np.int64), "s")])
    _raises(ModelFormatError, cos, "node 'cos' (ConstantOfShape)", "too large")
    rs = _model([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")],
                [_vi("x", ["N", 6])], [_vi("y", ["N", 6])],
                [numpy_helper.from_array(np.array([-1, 2**40], np.int64), "s")])
    _raises(ShapeError, rs, "node 'rs' (Reshape)", "1099511627776")
    # a fold whose value cannot be held (8 TB): reported, never allocated
    ex = _model([helper.make_node("Expand", ["k", "s"], ["c"], name="ex"),
                 helper.make_node("Add", ["x", "c"], ["y"], name="add")],
                [_vi("x", ["N", 4])], [_vi("y", ["N", 4])],
                [numpy_helper.from_array(np.ones(1, np.float32), "k"),
                 numpy_helper.from_array(np.array([2**20, 2**20], np.int64), "s")])
    _raises(UnsupportedOperatorError, ex, "Expand", "node 'ex'")


# A tiny file must not make the loader allocate much more than the file holds. Measured
# with tracemalloc (NumPy reports its buffers to it) in a fresh interpreter.
PEAK_SCRIPT = textwrap.dedent(r"""
    import os, sys, tempfile, tracemalloc
    sys.path.insert(0, sys.argv[2])   # the repository's fuzz/ folder (mutations.py)
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    import fastconv as fc
    from fastconv import layers as L
    from fastconv.errors import ModelFormatError, ShapeError, UnsupportedOperatorError
    from mutations import build_fcz

    def onnx_tile():
        # Tile of a (1, 4) constant 2**22 times: a 64 MB value from a 200-byte file
        vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
        g = helper.make_graph(
            [helper.make_node("Tile", ["k", "r"], ["c"], name="tile"),
             helper.make_node("Add", ["x", "c"], ["y"], name="add")],
            "g", [vi("x", ["N", 4])], [vi("y", ["N", 4])],
            [numpy_helper.from_array(np.ones((1, 4), np.float32), "k"),
             numpy_helper.from_array(np.array([2**22, 1], np.int64), "r")])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        data = m.SerializeToString()
        return len(data), lambda: fc.load_onnx(data)

    def fcz_missing_weights():
        # a Linear of 2**12 x 2**12 whose weights are not in the file's table
        m = fc.Sequential([L.Linear(64, 3, name="fc")], (64,))
        doc = {"format": "fastconv", "version": 1, "model": m.to_config(), "tensors": []}
        doc["model"]["nodes"][0]["config"].update(in_features=2**12, out_features=2**12)
        doc["model"]["inputs"]["input"] = [2**12]
        p = os.path.join(tempfile.mkdtemp(), "dos.fcz")
        data = build_fcz(doc, {})
        open(p, "wb").write(data)
        return len(data), lambda: fc.load(p)

    size, load = {"onnx": onnx_tile, "fcz": fcz_missing_weights}[sys.argv[1]]()
    tracemalloc.start()
    try:
        load()
        outcome = "loaded"
    except (ModelFormatError, ShapeError, UnsupportedOperatorError) as e:
        outcome = type(e).__name__
    except MemoryError:
        outcome = "MemoryError"
    peak = tracemalloc.get_traced_memory()[1]
    print(f"RESULT {outcome} {size} {peak}")
""")


def _peak(kind):
    import subprocess
    from conftest import package_root
    env = dict(os.environ, PYTHONPATH=package_root())
    fuzz_dir = str(TESTS_DIR.parent / "fuzz")
    proc = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, kind, fuzz_dir], capture_output=True,
                          text=True, timeout=300, cwd=package_root(), env=env)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, proc.stderr[-2000:]
    outcome, size, peak = line[-1].split()[1:]
    return outcome, int(size), int(peak)


def test_constant_fold_size_is_bounded():
    """A 200-byte Tile must not make the loader build 64 MB: folds have a budget of twice
    the file's weights (at least 1M elements)."""
    outcome, size, peak = _peak("onnx")
    assert outcome != "loaded"
    assert peak < (16 << 20), f"a {size}-byte ONNX file made load_onnx allocate {peak >> 20} MB"


# ============================================================================ ONNX: structure

def test_dangling_and_empty_names():
    _raises(ModelFormatError, _model([helper.make_node("Conv", ["x", ""], ["y"], name="c")],
                                     [_vi("x", ["N", 3, 8, 8])], [_vi("y", ["N", 4, 6, 6])]),
            "node 'c' (Conv)", "input W is required")
    _raises(ModelFormatError, _model([helper.make_node("Relu", ["x"], ["y"], name="r"),
                                      helper.make_node("Relu", ["ghost"], ["z"], name="g")],
                                     [_vi("x", ["N", 4])], [_vi("y", ["N", 4])]),
            "node 'g' (Relu) reads 'ghost'")
    # an unused graph input is not an error: it is simply not a model input
    m = fc.load_onnx(_model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                            [_vi("x", ["N", 4]), _vi("z", ["N", 9])], [_vi("y", ["N", 4])]))
    assert m.input_names == ["x"]


@pytest.mark.parametrize("op", ["Relu", "Conv"])
def test_node_without_outputs(op):
    """fuzz finding: a node without outputs reached the Model as a node named None
    (ValueError)."""
    ins = ["x", "w"] if op == "Conv" else ["x"]
    m = _model([helper.make_node(op, ins, [], name="n0"),
                helper.make_node("Relu", ["x"], ["y"], name="r")],
               [_vi("x", ["N", 3, 8, 8])], [_vi("y", ["N", 3, 8, 8])],
               [numpy_helper.from_array(W, "w")])
    _raises(ModelFormatError, m, f"node 'n0' ({op}) has no outputs")
    del m.graph.node[0].output[:]
    m.graph.node[0].output.append("")
    m.graph.node[0].name = ""
    _raises(ModelFormatError, m, f"{op} #0 has no outputs")


def test_unsupported_structures_name_the_node():
    relu = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    typo = _model([helper.make_node("Conv2D", ["x"], ["y"], name="oops")],
                  [_vi("x", ["N", 3, 8, 8])], [_vi("y", ["N", 3, 8, 8])])
    _raises(UnsupportedOperatorError, typo, "Conv2D", "node 'oops'")
    f = helper.make_function("local", "MyRelu", ["a"], ["b"],
                             [helper.make_node("Relu", ["a"], ["b"])],
                             [helper.make_opsetid("", 17)])
    fn = _model([helper.make_node("MyRelu", ["x"], ["y"], name="fn", domain="local")],
                [_vi("x", ["N", 4])], [_vi("y", ["N", 4])])
    fn.opset_import.append(helper.make_opsetid("local", 1))
    fn.functions.append(f)
    _raises(UnsupportedOperatorError, fn, "local.MyRelu", "node 'fn'")
    body = helper.make_graph(relu, "body", [_vi("x", ["N", 4])], [_vi("y", ["N", 4])])
    cond = _model([helper.make_node("If", ["c"], ["y"], name="branch", then_branch=body,
                                    else_branch=body)],
                  [_vi("c", [1], TensorProto.BOOL), _vi("x", ["N", 4])], [_vi("y", ["N", 4])])
    _raises(UnsupportedOperatorError, cond, "node 'branch'")
    seq = _model(relu, [_vi("x", ["N", 4])], [_vi("y", ["N", 4])])
    seq.graph.input[0].type.CopyFrom(helper.make_sequence_type_proto(
        helper.make_tensor_type_proto(TensorProto.FLOAT, [2])))
    _raises(UnsupportedOperatorError, seq, "'x'", "not a tensor")


def _varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num, payload):
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def test_deeply_nested_protobuf():
    """graph.node.attribute.g.node.attribute.g... 400 levels deep, written by hand (the
    protobuf library itself refuses to serialize it): a format error, no RecursionError."""
    inner = b""
    for _ in range(400):
        inner = _field(1, _field(5, _field(6, inner)))     # GraphProto.node / .attribute / .g
    data = _varint(1 << 3) + _varint(8) + _field(7, inner)   # ir_version 8, graph
    _raises(ModelFormatError, data, "not a valid ONNX protobuf")


def test_long_chain_loads_without_recursion(tmp_path):
    n = 1500
    nodes = [helper.make_node("Relu", [f"t{i}" if i else "x"], [f"t{i + 1}"], name=f"r{i}")
             for i in range(n)]
    m = fc.load_onnx(_model(nodes, [_vi("x", ["N", 4])], [_vi(f"t{n}", ["N", 4])]))
    y = m(np.array([[-1, 0, 1, 2]], np.float32))
    np.testing.assert_array_equal(y, [[0, 0, 1, 2]])


@pytest.mark.parametrize("location", ["../../outside.bin", "/etc/passwd"])
def test_external_data_must_stay_in_the_model_directory(tmp_path, location):
    t = numpy_helper.from_array(W, "w")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", location
    d = tmp_path / "a" / "b"
    d.mkdir(parents=True)
    (tmp_path / "outside.bin").write_bytes(W.tobytes())
    p = d / "m.onnx"
    p.write_bytes(_init_model(t).SerializeToString())
    _raises(ModelFormatError, p, "external data")


# ============================================================================ .fcz

@pytest.fixture(scope="module")
def fcz_doc(tmp_path_factory):
    """(JSON document, {tensor name: raw bytes}) of a small model saved by fastconv."""
    m = fc.Sequential([L.Conv2d(1, 4, 3, padding=1, seed=0, name="conv"), L.ReLU(name="relu"),
                       L.MaxPool2d(2, name="pool"), L.Flatten(name="flat"),
                       L.Linear(64, 3, seed=1, name="fc")], (1, 8, 8))
    p = tmp_path_factory.mktemp("fcz") / "seed.fcz"
    m.save(p)
    return parse_fcz(p.read_bytes())


def _node(doc, name):
    return next(n for n in doc["model"]["nodes"] if n["name"] == name)


def _fcz_error(tmp_path, doc, tensors, name="m.fcz"):
    p = tmp_path / name
    p.write_bytes(build_fcz(doc, tensors))
    with pytest.raises(ModelFormatError) as ei:
        fc.load(p)
    msg = str(ei.value)
    assert str(p) in msg, msg
    return msg


def test_fcz_builder_makes_loadable_files(fcz_doc, tmp_path):
    doc, tensors = fcz_doc
    p = tmp_path / "ok.fcz"
    p.write_bytes(build_fcz(copy.deepcopy(doc), tensors))
    assert fc.load(p)(np.ones((2, 1, 8, 8), np.float32)).shape == (2, 3)
    again, raw = parse_fcz(p.read_bytes())
    assert again["model"] == doc["model"] and raw == tensors


FCZ_GRAPH_CASES = {
    # name: (mutation of the doc, text the message must hold)
    "dangling-input": (lambda d: _node(d, "relu").update(inputs=["ghost"]), "'ghost'"),
    "cycle": (lambda d: _node(d, "relu").update(inputs=["pool"]), "cycle"),
    "self-loop": (lambda d: _node(d, "relu").update(inputs=["relu"]), "cycle"),
    "duplicate-node-name": (lambda d: _node(d, "pool").update(name="relu"), "'relu'"),
    "node-named-like-the-input": (lambda d: _node(d, "relu").update(name="input"), "'input'"),
    "output-not-a-node": (lambda d: d["model"].update(outputs=["nowhere"]), "'nowhere'"),
    "no-outputs": (lambda d: d["model"].update(outputs=[]), "output"),
    "node-name-int": (lambda d: _node(d, "relu").update(name=7), "7"),
    "node-name-empty": (lambda d: _node(d, "relu").update(name=""), "name"),
    "node-inputs-ints": (lambda d: _node(d, "relu").update(inputs=[3]), "'relu'"),
    "config-list": (lambda d: _node(d, "relu").update(config=[1, 2]), "does not build"),
    "config-null": (lambda d: _node(d, "relu").update(config=None), "does not build"),
    "config-unknown-key": (lambda d: _node(d, "relu")["config"].update(frobnicate=1),
                           "frobnicate"),
    "kernel-string": (lambda d: _node(d, "pool")["config"].update(kernel_size="2"), "pool"),
    "kernel-null": (lambda d: _node(d, "pool")["config"].update(kernel_size=None), "pool"),
    "kernel-object": (lambda d: _node(d, "pool")["config"].update(kernel_size={"h": 2}),
                      "pool"),
    "kernel-2**40": (lambda d: _node(d, "pool")["config"].update(kernel_size=2**40), "pool"),
    "kernel-bool": (lambda d: _node(d, "pool")["config"].update(kernel_size=True), "pool"),
    "kernel-float": (lambda d: _node(d, "pool")["config"].update(kernel_size=2.0), "pool"),
    "kernel-10**4000": (lambda d: _node(d, "pool")["config"].update(kernel_size=10**4000),
                        "pool"),
    "stride-nested": (lambda d: _node(d, "pool")["config"].update(stride=[[2], [2]]), "pool"),
    "conv-padding-word": (lambda d: _node(d, "conv")["config"].update(padding="full"), "conv"),
    "conv-groups-0": (lambda d: _node(d, "conv")["config"].update(groups=0), "conv"),
    "conv-algo-unknown": (lambda d: _node(d, "conv")["config"].update(algo="fft"), "conv"),
    "linear-in-features-wrong": (lambda d: _node(d, "fc")["config"].update(in_features=65),
                                 "fc"),
    "input-shape-2**40": (lambda d: d["model"]["inputs"].update(input=[1, 2**40, 8]),
                          "input"),
    "input-shape-negative": (lambda d: d["model"]["inputs"].update(input=[1, -8, 8]),
                             "input"),
    "input-shape-empty": (lambda d: d["model"]["inputs"].update(input=[]), "input"),
    "input-shape-string": (lambda d: d["model"]["inputs"].update(input="1x8x8"), "input"),
    "input-shape-floats": (lambda d: d["model"]["inputs"].update(input=[1.0, 8.5, 8]),
                           "input"),
    "inputs-a-list": (lambda d: d["model"].update(inputs=[["input", [1, 8, 8]]]), "malformed"),
    "config-format-string": (lambda d: d["model"].update(format="1"), "format"),
    # fuzz finding: an unhashable layer type raised TypeError from the type check
    "layer-type-object": (lambda d: _node(d, "relu").update(type={"a": 1}), "'relu'"),
    "layer-type-list": (lambda d: _node(d, "relu").update(type=["ReLU"]), "'relu'"),
    "layer-type-null": (lambda d: _node(d, "relu").update(type=None), "'relu'"),
    "layer-type-base-class": (lambda d: _node(d, "relu").update(type="Layer"), "'relu'"),
    # fuzz finding: activations that cannot exist loaded and failed at run time inside
    # NumPy ("Maximum allowed dimension exceeded")
    "pool-padding-2**30": (lambda d: _node(d, "pool")["config"].update(padding=2**30),
                           "address space"),
}


@pytest.mark.parametrize("case", list(FCZ_GRAPH_CASES))
def test_fcz_graph_that_does_not_build(fcz_doc, tmp_path, case):
    doc, tensors = fcz_doc
    doc = copy.deepcopy(doc)
    change, needle = FCZ_GRAPH_CASES[case]
    change(doc)
    msg = _fcz_error(tmp_path, doc, tensors)
    assert needle in msg, msg


def test_fcz_batchnorm_eps_nan_and_negative(fcz_doc, tmp_path):
    doc, tensors = fcz_doc
    for eps in (float("nan"), -1.0, float("inf")):
        d = copy.deepcopy(doc)
        d["model"]["nodes"].insert(1, {"name": "bn", "type": "BatchNorm2d",
                                       "config": {"name": "bn", "num_features": 4, "eps": eps},
                                       "inputs": ["conv"]})
        _node(d, "relu")["inputs"] = ["bn"]
        t = dict(tensors)
        for k in ("weight", "bias", "running_mean", "running_var"):
            t["bn/" + k] = np.ones(4, "<f4").tobytes()
        msg = _fcz_error(tmp_path, d, t, name=f"bn{eps}.fcz")
        assert "bn" in msg and "eps" in msg, msg


def test_fcz_deeply_nested_json(fcz_doc, tmp_path):
    doc, _ = fcz_doc
    text = json.dumps(dict(doc, tensors=[], deep=None)).replace(
        '"deep": null', '"deep": ' + "[" * 200000 + "]" * 200000)
    blob = text.encode()
    from mutations import FCZ_HEADER
    doff = (40 + len(blob) + 63) // 64 * 64
    import zlib
    data = FCZ_HEADER.pack(b"FCZ1", 1, 40, zlib.crc32(blob), len(blob), doff, doff) + blob
    p = tmp_path / "deep.fcz"
    p.write_bytes(data + b"\0" * (doff - len(data)))
    with pytest.raises(ModelFormatError, match="does not parse"):
        fc.load(p)


def test_fcz_tensor_shapes_that_cannot_exist(fcz_doc, tmp_path):
    doc, tensors = fcz_doc
    table = [{"name": "fc/weight", "dtype": "float32", "shape": [2**20, 2**20], "offset": 0,
              "nbytes": 2**42, "crc32": 0}]
    p = tmp_path / "huge.fcz"
    p.write_bytes(build_fcz(dict(copy.deepcopy(doc), tensors=table), {}, fix_table=False))
    with pytest.raises(ModelFormatError, match="truncated"):
        fc.load(p)
    d = copy.deepcopy(doc)
    for e in d["tensors"]:
        if e["name"] == "fc/bias":
            e["shape"] = [1] * 40 + [3]          # same bytes, a 41-D shape
    msg = _fcz_error(tmp_path, d, tensors, name="dims.fcz")
    assert "fc" in msg and "bias" in msg, msg


def test_fcz_missing_weights_are_reported_before_any_init():
    outcome, size, peak = _peak("fcz")
    assert outcome == "ModelFormatError"
    assert peak < (16 << 20), f"a {size}-byte .fcz file made fc.load allocate {peak >> 20} MB"
