"""Seed models and structure-aware mutations for fuzzing fastconv's two file readers,
shared by the atheris harnesses (fuzz_load_onnx.py, fuzz_load_fcz.py) and the short
hypothesis run in the test suite (tests/test_fuzz_short.py).

A mutation is driven by a `Draw` source: an object with `int(lo, hi)` (inclusive),
`choice(seq)` and `bytes(n)`. atheris backs it with a FuzzedDataProvider, hypothesis
with `data.draw`, so both fuzzers explore the same mutation space. Byte-level mutation
(what libFuzzer does on its own) mostly breaks the protobuf or the checksums; the
structured mutations keep a file well-formed and change what it says (an attribute's
type, a dimension, an initializer's size, an input's name, the JSON config's values),
which is where the importers' semantic checks live.

What may come out of `fastconv.load_onnx` / `fastconv.load` for any input is listed in
DOCUMENTED_ONNX / DOCUMENTED_FCZ; everything else is a finding.
"""
from __future__ import annotations

import copy
import json
import struct
import zlib
from typing import Callable, Dict, List, Sequence

import numpy as np

# A few special integers: boundaries of the checks and of int32 / int64 / size_t.
SPECIAL_INTS = (0, 1, 2, 3, -1, -2, 7, 64, 255, 2**15, 2**16, 2**31 - 1, 2**31, 2**32,
                2**40, 2**62, 2**63 - 1, -(2**31), -(2**63))
SPECIAL_FLOATS = (0.0, -0.0, 1.0, -1.0, 0.5, 1e-45, 1e38, 3.5e38, float("inf"),
                  float("-inf"), float("nan"))


class Draw:
    """The interface the mutators use; subclasses supply the randomness."""

    def int(self, lo: int, hi: int) -> int:          # pragma: no cover - interface
        raise NotImplementedError

    def bytes(self, n: int) -> bytes:                 # pragma: no cover - interface
        raise NotImplementedError

    def choice(self, seq: Sequence):
        return seq[self.int(0, len(seq) - 1)]

    def bool(self) -> bool:
        return self.int(0, 1) == 1

    def weird_int(self) -> int:
        if self.bool():
            return self.choice(SPECIAL_INTS)
        return self.int(-(2**40), 2**40) if self.bool() else self.int(-4, 20)

    def weird_float(self) -> float:
        return self.choice(SPECIAL_FLOATS) if self.bool() else float(self.int(-1000, 1000)) / 8


class RandomDraw(Draw):
    """numpy-backed, for ad hoc runs and for replaying a seed."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def int(self, lo, hi):
        return int(self.rng.integers(lo, hi, endpoint=True))

    def bytes(self, n):
        return self.rng.integers(0, 256, n, dtype=np.uint8).tobytes()


# ============================================================================ ONNX

def onnx_seeds() -> List[bytes]:
    """Small serialized models covering the operators fastconv converts."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def vi(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    def init(name, arr):
        return numpy_helper.from_array(np.asarray(arr), name)

    def model(nodes, inputs, outputs, inits, opset=17):
        g = helper.make_graph(nodes, "g", inputs, outputs, inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        return m.SerializeToString()

    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)   # noqa: E731
    seeds = [
        # Conv + Relu + MaxPool + Flatten + Gemm
        model([helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
               helper.make_node("Relu", ["c"], ["r"], name="relu"),
               helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2],
                                name="pool"),
               helper.make_node("Flatten", ["p"], ["f"], axis=1, name="flatten"),
               helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1, name="fc")],
              [vi("x", ["N", 3, 8, 8])], [vi("y", ["N", 5])],
              [init("w", f32(4, 3, 3, 3)), init("b", f32(4)), init("fw", f32(5, 64)),
               init("fb", f32(5))]),
        # BatchNormalization, AveragePool (auto_pad), GlobalAveragePool, Softmax
        model([helper.make_node("BatchNormalization", ["x", "s", "bb", "m", "v"], ["n"],
                                epsilon=1e-5, name="bn"),
               helper.make_node("AveragePool", ["n"], ["a"], kernel_shape=[3, 3],
                                auto_pad="SAME_UPPER", count_include_pad=1, name="avg"),
               helper.make_node("LeakyRelu", ["a"], ["l"], alpha=0.1, name="leaky"),
               helper.make_node("GlobalAveragePool", ["l"], ["g"], name="gap"),
               helper.make_node("Flatten", ["g"], ["f"], name="flat"),
               helper.make_node("Softmax", ["f"], ["y"], axis=1, name="sm")],
              [vi("x", ["N", 2, 5, 5])], [vi("y", ["N", 2])],
              [init("s", np.ones(2, np.float32)), init("bb", np.zeros(2, np.float32)),
               init("m", np.zeros(2, np.float32)), init("v", np.ones(2, np.float32))]),
        # the Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain of a torch export,
        # MatMul + Add (one Linear), Concat of two branches, 1-D conv and pooling
        model([helper.make_node("Conv", ["x", "w1"], ["c"], strides=[2], name="conv1d"),
               helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2], name="pool1d"),
               helper.make_node("Relu", ["c"], ["q"], name="relu1d"),
               helper.make_node("AveragePool", ["q"], ["q2"], kernel_shape=[2], name="avg1d"),
               helper.make_node("Concat", ["p", "q2"], ["k"], axis=1, name="cat"),
               helper.make_node("Shape", ["k"], ["sh"], name="shape"),
               helper.make_node("Gather", ["sh", "zero"], ["n"], axis=0, name="gather"),
               helper.make_node("Unsqueeze", ["n", "ax"], ["nu"], name="unsq"),
               helper.make_node("Concat", ["nu", "minus1"], ["tgt"], axis=0, name="cat_shape"),
               helper.make_node("Reshape", ["k", "tgt"], ["flat"], name="reshape"),
               helper.make_node("MatMul", ["flat", "mw"], ["mm"], name="matmul"),
               helper.make_node("Add", ["mm", "mb"], ["y"], name="bias")],
              [vi("x", ["N", 2, 9])], [vi("y", ["N", 3])],
              [init("w1", f32(4, 2, 3)), init("zero", np.array(0, np.int64)),
               init("ax", np.array([0], np.int64)), init("minus1", np.array([-1], np.int64)),
               init("mw", f32(24, 3)), init("mb", f32(3))], opset=13),
        # Sum, LRN, Dropout (opset 12: ratio as an input), Identity, GlobalMaxPool
        model([helper.make_node("Sum", ["x", "x"], ["s"], name="sum"),
               helper.make_node("LRN", ["s"], ["l"], size=3, name="lrn"),
               helper.make_node("Dropout", ["l", "ratio"], ["d"], name="drop"),
               helper.make_node("Identity", ["d"], ["i"], name="ident"),
               helper.make_node("GlobalMaxPool", ["i"], ["y"], name="gmp")],
              [vi("x", ["N", 3, 4, 4])], [vi("y", ["N", 3, 1, 1])],
              [init("ratio", np.array(0.3, np.float32))], opset=12),
    ]
    return seeds


_ONNX_OPS = ("Conv", "Relu", "MaxPool", "AveragePool", "Gemm", "MatMul", "Add", "Sum",
             "Flatten", "Reshape", "Concat", "Softmax", "BatchNormalization", "Dropout",
             "LRN", "Identity", "Constant", "ConstantOfShape", "Shape", "Gather",
             "Unsqueeze", "Squeeze", "Cast", "GlobalAveragePool", "GlobalMaxPool",
             "LeakyRelu", "Tanh", "Expand", "Tile", "Range", "Loop", "If", "Conv2D", "")
_ATTR_NAMES = ("strides", "pads", "kernel_shape", "dilations", "group", "auto_pad", "axis",
               "axes", "alpha", "beta", "transA", "transB", "ceil_mode", "count_include_pad",
               "epsilon", "size", "bias", "to", "value", "ratio", "allowzero", "zz")


def _random_attribute(d: Draw, name: str):
    """An AttributeProto named `name` of a random type holding random values."""
    from onnx import AttributeProto, helper, numpy_helper

    kind = d.int(0, 7)
    if kind == 0:
        return helper.make_attribute(name, max(min(d.weird_int(), 2**63 - 1), -(2**63)))
    if kind == 1:
        return helper.make_attribute(name, d.weird_float())
    if kind == 2:
        return AttributeProto(name=name, type=AttributeProto.INTS,
                              ints=[max(min(d.weird_int(), 2**63 - 1), -(2**63))
                                    for _ in range(d.int(0, 5))])
    if kind == 3:
        return helper.make_attribute(name, [d.weird_float() for _ in range(d.int(1, 4))])
    if kind == 4:
        return helper.make_attribute(name, d.choice(["NOTSET", "SAME_UPPER", "SAME_LOWER",
                                                     "VALID", "", "same", "\u00e9"]))
    if kind == 5:
        arr = np.asarray([d.weird_int() % 7 for _ in range(d.int(0, 4))], np.int64)
        return helper.make_attribute(name, numpy_helper.from_array(arr))
    if kind == 6:    # a type that disagrees with the field that is filled
        a = AttributeProto(name=name, type=d.choice([AttributeProto.INT, AttributeProto.FLOAT,
                                                     AttributeProto.INTS,
                                                     AttributeProto.STRING,
                                                     AttributeProto.TENSOR,
                                                     AttributeProto.UNDEFINED, 99]))
        a.ints.extend([d.int(-3, 5) for _ in range(d.int(0, 3))])
        if d.bool():
            a.f = d.weird_float()
        return a
    return helper.make_attribute(name, [b"a", b"\xff"])


def mutate_onnx(data: bytes, d: Draw, rounds: int = 3) -> bytes:
    """Parse `data` (a valid model), apply `rounds` random structured mutations and
    serialize again; unparsable or unserializable results fall back to byte edits."""
    import onnx

    m = onnx.ModelProto()
    m.ParseFromString(data)
    g = m.graph
    for _ in range(rounds):
        try:
            _onnx_round(m, g, d)
        except (ValueError, TypeError, IndexError, OverflowError):
            pass         # a mutation that does not apply to this model
    try:
        out = m.SerializeToString()
    except Exception:
        out = data
    if d.int(0, 9) == 0:                              # sometimes a byte edit on top
        out = mutate_bytes(out, d)
    return out


def _onnx_round(m, g, d: Draw) -> None:
    from onnx import TensorProto

    what = d.int(0, 21)
    nodes = list(g.node)
    names = [n for node in nodes for n in list(node.input) + list(node.output)] + \
            [i.name for i in g.input] + [t.name for t in g.initializer] + ["", "ghost"]
    if what == 0 and nodes:                       # attribute of a random type
        node = d.choice(nodes)
        name = d.choice(_ATTR_NAMES)
        keep = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend(keep + [_random_attribute(d, name)])
    elif what == 1 and nodes:                     # drop an attribute
        node = d.choice(nodes)
        if node.attribute:
            del node.attribute[d.int(0, len(node.attribute) - 1)]
    elif what == 2 and nodes:                     # another op type
        d.choice(nodes).op_type = d.choice(_ONNX_OPS)
    elif what == 3 and nodes:                     # rewire an input
        node = d.choice(nodes)
        if node.input:
            node.input[d.int(0, len(node.input) - 1)] = d.choice(names)
        else:
            node.input.append(d.choice(names))
    elif what == 4 and nodes:                     # rewire an output (cycles, dups)
        node = d.choice(nodes)
        if node.output:
            node.output[d.int(0, len(node.output) - 1)] = d.choice(names)
    elif what == 5 and nodes:                     # duplicate or delete a node
        if d.bool():
            g.node.append(copy.deepcopy(d.choice(nodes)))
        else:
            del g.node[d.int(0, len(nodes) - 1)]
    elif what == 6 and g.initializer:             # delete an initializer
        del g.initializer[d.int(0, len(g.initializer) - 1)]
    elif what == 7 and g.initializer:             # wrong size of data
        t = d.choice(list(g.initializer))
        if t.raw_data:
            cut = d.int(0, len(t.raw_data))
            t.raw_data = t.raw_data[:cut] + (d.bytes(d.int(0, 12)) if d.bool() else b"")
        else:
            t.float_data.extend([d.weird_float()] * d.int(1, 5))
    elif what == 8 and g.initializer:             # dims changed, data kept
        t = d.choice(list(g.initializer))
        if t.dims and d.bool():
            t.dims[d.int(0, len(t.dims) - 1)] = d.weird_int()
        else:
            t.dims.append(d.weird_int() if d.bool() else 1)
    elif what == 9 and g.initializer:             # another element type
        d.choice(list(g.initializer)).data_type = d.choice(
            [TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.INT64, TensorProto.INT8,
             TensorProto.BOOL, TensorProto.STRING, TensorProto.UNDEFINED, 77])
    elif what == 10 and g.input:                  # a graph input dimension
        i = d.choice(list(g.input))
        dims = i.type.tensor_type.shape.dim
        if dims:
            dim = dims[d.int(0, len(dims) - 1)]
            if d.bool():
                dim.dim_value = d.weird_int()
            else:
                dim.dim_param = d.choice(["N", "batch", "", "H"])
    elif what == 11 and g.input:                  # rank of a graph input
        dims = d.choice(list(g.input)).type.tensor_type.shape.dim
        if dims and d.bool():
            del dims[d.int(0, len(dims) - 1)]
        else:
            dims.add().dim_value = d.int(0, 4)
    elif what == 12 and g.input:                  # element type of a graph input
        d.choice(list(g.input)).type.tensor_type.elem_type = d.choice(
            [TensorProto.INT64, TensorProto.DOUBLE, TensorProto.FLOAT16, 0, 1, 123])
    elif what == 13:                              # outputs: add, drop, rename
        if g.output and d.bool():
            g.output[d.int(0, len(g.output) - 1)].name = d.choice(names)
        elif g.output and d.bool():
            del g.output[d.int(0, len(g.output) - 1)]
        elif g.output:
            g.output.append(copy.deepcopy(g.output[0]))
    elif what == 14:                              # opset
        if m.opset_import:
            m.opset_import[0].version = d.choice([1, 6, 7, 11, 12, 13, 17, 21, 99, 0, -1])
    elif what == 15 and nodes:                    # node names: empty / duplicate
        node = d.choice(nodes)
        node.name = d.choice(["", nodes[0].name, "x", "y", "\u2603"])
    elif what == 16 and nodes:                    # domain
        d.choice(nodes).domain = d.choice(["", "ai.onnx", "com.microsoft", "x"])
    elif what == 17:                              # graph inputs: duplicate or drop
        if g.input and d.bool():
            g.input.append(copy.deepcopy(d.choice(list(g.input))))
        elif g.input:
            del g.input[d.int(0, len(g.input) - 1)]
    elif what == 18 and g.initializer:            # an initializer is also a graph input
        t = d.choice(list(g.initializer))
        vi = g.input.add()
        vi.name = t.name if d.bool() else "x"
    elif what == 19 and nodes:                    # extra or missing inputs / outputs
        node = d.choice(nodes)
        if d.bool():
            node.input.append(d.choice(names))
        elif d.bool():
            node.output.append(d.choice(["extra", "", "y"]))
        elif node.input:
            del node.input[-1]
        else:
            del node.output[:]
    elif what == 20 and g.initializer:            # values: NaN, inf, huge
        t = d.choice(list(g.initializer))
        if t.data_type == TensorProto.FLOAT and t.raw_data:
            a = np.frombuffer(t.raw_data, np.float32).copy()
            if a.size:
                with np.errstate(over="ignore"):    # 3.5e38 -> inf on purpose
                    a[d.int(0, a.size - 1)] = d.weird_float()
                t.raw_data = a.tobytes()
    else:                                         # an int64 initializer's values
        ints = [t for t in g.initializer if t.data_type == TensorProto.INT64]
        if ints:
            t = d.choice(ints)
            a = np.frombuffer(t.raw_data, np.int64).copy() if t.raw_data else \
                np.asarray(t.int64_data, np.int64)
            if a.size:
                a[d.int(0, a.size - 1)] = max(min(d.weird_int(), 2**63 - 1), -(2**63))
                t.ClearField("int64_data")
                t.raw_data = a.tobytes()


def mutate_bytes(data: bytes, d: Draw) -> bytes:
    """A few byte edits: flip, set, insert, delete, truncate."""
    b = bytearray(data)
    for _ in range(d.int(1, 4)):
        op = d.int(0, 4)
        i = d.int(0, max(len(b) - 1, 0))
        if op == 0 and b:
            b[i] ^= 1 << d.int(0, 7)
        elif op == 1 and b:
            b[i] = d.choice((0, 1, 0x7F, 0x80, 0xFF, d.int(0, 255)))
        elif op == 2:
            b[i:i] = d.bytes(d.int(1, 8))
        elif op == 3 and b:
            del b[i:i + d.int(1, 8)]
        else:
            del b[i:]
    return bytes(b)


# ============================================================================ .fcz

FCZ_HEADER = struct.Struct("<4sIIIQQQ")


def fcz_seeds() -> List[bytes]:
    """Small native files written by fastconv itself."""
    import os
    import tempfile

    import fastconv as fc
    from fastconv import layers as L
    from fastconv.graph import Model, Node

    models = [
        fc.Sequential([L.Conv2d(1, 4, 3, padding=1, seed=0), L.ReLU(), L.MaxPool2d(2),
                       L.Flatten(), L.Linear(64, 3, seed=1)], (1, 8, 8)),
        fc.Sequential([L.Conv2d(2, 3, 3, padding=1, seed=2), L.BatchNorm2d(3), L.LeakyReLU(0.2),
                       L.AvgPool2d(2, ceil_mode=True), L.GlobalMaxPool2d(), L.Flatten(),
                       L.Softmax()], (2, 5, 5)),
        Model([Node("a", L.Conv1d(2, 2, 3, padding=1, seed=3), ("x",)),
               Node("b", L.ReLU(), ("a",)),
               Node("s", L.Add(), ("a", "b")),
               Node("c", L.Concat(axis=1), ("s", "x")),
               Node("p", L.MaxPool1d(2), ("c",)),
               Node("r", L.Reshape((8,)), ("p",)),
               Node("l", L.Linear(8, 2, seed=4), ("r",))], {"x": (2, 4)}, ["l", "s"]),
    ]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, m in enumerate(models):
            p = os.path.join(tmp, f"s{i}.fcz")
            m.save(p)
            with open(p, "rb") as f:
                out.append(f.read())
    return out


def parse_fcz(data: bytes):
    """(doc, {name: raw tensor bytes}) of a valid file."""
    fields = FCZ_HEADER.unpack(data[:FCZ_HEADER.size])
    jlen, doff = fields[4], fields[5]
    doc = json.loads(data[FCZ_HEADER.size:FCZ_HEADER.size + jlen])
    body = data[doff:]
    tensors = {e["name"]: body[e["offset"]:e["offset"] + e["nbytes"]] for e in doc["tensors"]}
    return doc, tensors


def build_fcz(doc: dict, tensors: Dict[str, bytes], fix_table: bool = True) -> bytes:
    """A file with consistent header, offsets and checksums for `doc` (whose tensor table
    entries are refreshed from `tensors` unless fix_table is False)."""
    table, chunks, off = [], [], 0
    entries = doc.get("tensors", []) if isinstance(doc, dict) else []
    for e in entries if isinstance(entries, list) else []:
        if not isinstance(e, dict):
            table.append(e)
            continue
        raw = tensors.get(e.get("name"), b"") if isinstance(e.get("name"), str) else b""
        off = (off + 63) // 64 * 64
        if fix_table:
            e = dict(e, offset=off, nbytes=len(raw), crc32=zlib.crc32(raw))
        table.append(e)
        chunks.append((off, raw))
        off += len(raw)
    if isinstance(doc, dict):
        doc = dict(doc, tensors=table)
    blob = json.dumps(doc).encode()
    doff = (FCZ_HEADER.size + len(blob) + 63) // 64 * 64
    body = bytearray(off)
    for o, raw in chunks:
        body[o:o + len(raw)] = raw
    head = FCZ_HEADER.pack(b"FCZ1", 1, FCZ_HEADER.size, zlib.crc32(blob), len(blob), doff,
                           doff + off)
    return head + blob + b"\0" * (doff - FCZ_HEADER.size - len(blob)) + bytes(body)


def _weird_json(d: Draw, depth: int = 0):
    kind = d.int(0, 9 if depth < 2 else 5)
    if kind == 0:
        return d.weird_int()
    if kind == 1:
        return d.weird_float() if d.bool() else 0.5
    if kind == 2:
        return d.choice(["", "x", "same", "valid", "auto", "direct", "input", "\u00e9", "3"])
    if kind == 3:
        return None
    if kind == 4:
        return d.bool()
    if kind == 5:
        return [d.int(-2, 9) for _ in range(d.int(0, 5))]
    if kind in (6, 7):
        return [_weird_json(d, depth + 1) for _ in range(d.int(0, 4))]
    return {d.choice(["a", "name", "type", "kernel_size"]): _weird_json(d, depth + 1)
            for _ in range(d.int(0, 3))}


def _paths(obj, prefix=()):
    """Every (path, value) inside a JSON document."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _delete(obj, path):
    for k in path[:-1]:
        obj = obj[k]
    del obj[path[-1]]


def mutate_fcz(data: bytes, d: Draw, rounds: int = 3) -> bytes:
    """Mutate the JSON document of a valid .fcz (values, keys, nodes, tensor table) or a
    tensor's bytes / shape, then rebuild a file whose header and checksums are right, so
    that the loader's semantic checks run; sometimes byte edits on top."""
    doc, tensors = parse_fcz(data)
    tensors = dict(tensors)
    fix_table = True
    for _ in range(rounds):
        try:
            fix_table = _fcz_round(doc, tensors, d) and fix_table
        except (ValueError, TypeError, IndexError, KeyError, OverflowError):
            pass
    try:
        out = build_fcz(doc, tensors, fix_table)
    except (TypeError, ValueError):
        out = data
    if d.int(0, 9) == 0:
        out = mutate_bytes(out, d)
    return out


def _fcz_round(doc, tensors, d: Draw) -> bool:
    """One mutation in place; returns False to leave the tensor table as mutated."""
    what = d.int(0, 9)
    paths = [p for p, _ in _paths(doc) if p]
    if what <= 2 and paths:                       # a value anywhere
        _set(doc, d.choice(paths), _weird_json(d))
    elif what == 3 and paths:                     # a key removed
        _delete(doc, d.choice(paths))
    elif what == 4:                               # a node duplicated / removed / moved
        nodes = doc.get("model", {}).get("nodes") if isinstance(doc.get("model"), dict) \
            else None
        if isinstance(nodes, list) and nodes:
            k = d.int(0, len(nodes) - 1)
            op = d.int(0, 2)
            if op == 0:
                nodes.append(copy.deepcopy(nodes[k]))
            elif op == 1:
                del nodes[k]
            else:
                nodes.insert(d.int(0, len(nodes) - 1), nodes.pop(k))
    elif what == 5:                               # a node's inputs rewired
        nodes = doc.get("model", {}).get("nodes") if isinstance(doc.get("model"), dict) \
            else None
        if isinstance(nodes, list) and nodes and isinstance(nodes[0], dict):
            names = [n.get("name") for n in nodes if isinstance(n, dict)] + ["input", "x",
                                                                             "ghost"]
            n = d.choice(nodes)
            if isinstance(n, dict):
                n["inputs"] = [d.choice(names) for _ in range(d.int(0, 3))]
    elif what == 6 and tensors:                   # a tensor's bytes: size or values
        k = d.choice(sorted(tensors))
        raw = tensors[k]
        if d.bool():
            tensors[k] = raw[:d.int(0, len(raw))]
        else:
            a = np.frombuffer(raw, "<f4").copy()
            if a.size:
                with np.errstate(over="ignore"):    # 3.5e38 -> inf on purpose
                    a[d.int(0, a.size - 1)] = d.weird_float()
            tensors[k] = a.tobytes()
    elif what == 7:                               # a tensor table shape
        table = doc.get("tensors")
        if isinstance(table, list) and table and isinstance(table[0], dict):
            e = d.choice(table)
            if isinstance(e, dict):
                e["shape"] = [d.weird_int() if d.bool() else d.int(0, 6)
                              for _ in range(d.int(0, 5))]
    elif what == 8:                               # table offsets/sizes left as mutated
        return False
    else:                                         # model inputs' per-sample shapes
        model = doc.get("model")
        if isinstance(model, dict) and isinstance(model.get("inputs"), dict):
            for k in list(model["inputs"]):
                if d.bool():
                    model["inputs"][k] = [d.weird_int() if d.bool() else d.int(0, 9)
                                          for _ in range(d.int(0, 4))]
    return True


# ============================================================================ checking

def documented_onnx():
    from fastconv.errors import ModelFormatError, ShapeError, UnsupportedOperatorError
    return (ModelFormatError, ShapeError, UnsupportedOperatorError)


def documented_fcz():
    from fastconv.errors import ModelFormatError
    return (ModelFormatError,)


def run_loaded(model, max_elems: int = 1 << 20) -> str:
    """Run a model that loaded on a batch of 2 zeros (and batch 0) unless its inputs are
    too big to feed; a loaded model must run. Returns "loaded", or "too big to run" when
    its activations cannot be allocated (MemoryError, the documented outcome of a size
    the machine cannot hold; at load time a MemoryError is a finding). Any other
    exception propagates."""
    feeds = {}
    for name, shape in model.input_shapes.items():
        if int(np.prod(shape, dtype=object)) * 2 > max_elems:
            return "loaded"
        feeds[name] = np.zeros((2,) + tuple(shape), np.float32)
    try:
        out = model.run(feeds)
    except MemoryError:
        return "too big to run"
    assert set(out) == set(model.output_names)
    for k, v in out.items():
        assert v.shape[0] == 2 and v.dtype == np.float32, (k, v.shape, v.dtype)
    model.run({k: v[:0] for k, v in feeds.items()})
    return "loaded"


def check_onnx(data: bytes, run: bool = True) -> str:
    """Load `data` with fastconv.load_onnx: returns 'loaded' or the documented exception's
    name; anything else propagates (a finding)."""
    import fastconv as fc
    try:
        model = fc.load_onnx(data)
    except documented_onnx() as e:
        if not str(e):
            raise AssertionError(f"{type(e).__name__} without a message")
        return type(e).__name__
    return run_loaded(model) if run else "loaded"


def check_fcz(data: bytes, path: str, run: bool = True) -> str:
    """Write `data` to a new file at `path` and load it with fastconv.load."""
    import os

    import fastconv as fc
    if os.path.exists(path):
        os.unlink(path)          # a new file each time (see tests/test_io.py)
    with open(path, "wb") as f:
        f.write(data)
    try:
        model = fc.load(path)
    except documented_fcz() as e:
        if path not in str(e):
            raise AssertionError(f"ModelFormatError does not name the path: {e}")
        return type(e).__name__
    return run_loaded(model) if run else "loaded"


Checker = Callable[[bytes], str]
