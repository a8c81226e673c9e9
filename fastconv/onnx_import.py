"""ONNX import: `load_onnx(path | bytes | onnx.ModelProto) -> fastconv.Model`, and
`load_weights(model, src)` for the weights of an ONNX export into a fastconv-built model.

How a graph maps onto fastconv
------------------------------
* Every runtime tensor carries fastconv's batch axis in front: a graph input of ONNX
  shape [N, C, H, W] (N symbolic or any number) becomes a model input of per-sample shape
  (C, H, W). Operators that would mix the batch axis with the others (Flatten with an
  axis other than 1, a Reshape that moves it, Concat along it, ...) raise
  UnsupportedOperatorError.
* Initializers (and graph inputs that are initializers) are constants. A graph input
  that feeds only weight slots (Conv's W and B, Gemm's B and C, MatMul's B,
  BatchNormalization's statistics, a lower-rank operand of Add) is a *parameter input*:
  the model takes it with its whole ONNX shape as the per-sample shape, so at run time it
  is fed broadcast along the batch (`np.broadcast_to(w, (N,) + w.shape)`) and each sample
  may carry its own weights. fastconv.onnx_backend does that broadcasting for the ONNX
  backend tests. Integer inputs (shapes, axes, indices) must be initializers.
* Constant subgraphs are evaluated at load in NumPy: the Shape -> Gather -> Unsqueeze ->
  Concat (-> Cast) chains that PyTorch puts before Reshape are folded from the known
  per-sample shapes, the batch size kept symbolic (each chain is evaluated for two
  batch sizes and the entries that follow the batch size are the batch axis).
* Each ONNX op has one converter function below, named after the op and taking the ONNX
  attributes (with their ONNX defaults) as keyword arguments; the semantics follow the
  model's default-domain opset (Softmax's 2-D coercion before opset 13, Dropout's ratio
  attribute before 12 and input after, Unsqueeze/Squeeze axes as attribute or input).
  Opsets 7 to the newest the installed onnx knows are read; older models are upgraded
  with onnx's version converter first.
* Shapes are inferred node by node with the fastconv layers; a node whose shapes do not
  fit raises ShapeError naming it (its name, or "op #index"), and the shapes the model
  declares (value_info, outputs) are checked against the inferred ones. All unsupported
  operators of a model are listed in one UnsupportedOperatorError.
"""
from __future__ import annotations

import heapq
import inspect
import math
import os
from functools import reduce
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from fastconv import layers as L
from fastconv import onnx_layers as OL
from fastconv.errors import ModelFormatError, ShapeError, UnsupportedOperatorError

__all__ = ["load_onnx", "load_weights", "onnx_pads", "MIN_OPSET"]

MIN_OPSET = 7
_PROBES = (1009, 1013)          # two batch sizes for evaluating batch-dependent chains
_FOLD_LIMIT = 1 << 16           # elements a batch-dependent folded value may have
_MAX_DIM = 2**31 - 1             # a per-sample size fastconv can run (functional._DIM_LIMIT)
_FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64"}
_DEFAULT_DOMAINS = ("", "ai.onnx")
# ops whose value is not a function of their inputs: never folded
_NONDETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                     "Bernoulli", "Multinomial"}
# ops the generic (onnx.reference) folder may evaluate on batch-dependent values: small
# integer arithmetic and shape manipulation, nothing whose output size follows a value
_SHAPE_SAFE = {"Add", "Sub", "Mul", "Div", "Mod", "Neg", "Abs", "Floor", "Ceil", "Equal",
               "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or",
               "Where", "Slice", "Min", "Max", "ReduceProd", "ReduceSum", "Identity",
               "Sign", "Transpose", "Size"}


def _onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a dependency
        raise ImportError("fastconv's ONNX import needs the onnx package "
                          "(pip install onnx)") from None
    return onnx


# ====================================================================== parsing

def _parse(src, where: str = "load_onnx"):
    """(ModelProto, label) from a path, bytes or a ModelProto; ModelFormatError for
    anything that is not a readable ONNX model."""
    onnx = _onnx()
    base_dir = None
    if isinstance(src, onnx.ModelProto):
        proto, label = src, "the ModelProto given"
    elif isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        label = f"the {len(data)}-byte buffer given"
        proto = _parse_bytes(data, label, where)
    elif isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        label = repr(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{where}: no such file: {path!r}")
        with open(path, "rb") as f:
            data = f.read()
        proto = _parse_bytes(data, f"{label} ({len(data)} bytes)", where)
        base_dir = os.path.dirname(os.path.abspath(path))
    else:
        raise TypeError(f"{where}: expected a path, bytes or an onnx.ModelProto, got "
                        f"{type(src).__name__}")
    _check_structure(proto, label, where)
    _load_external(proto, base_dir, label, where)
    return proto, label


def _parse_bytes(data: bytes, label: str, where: str):
    onnx = _onnx()
    if not data:
        raise ModelFormatError(f"{where}: {label} is empty, not an ONNX model")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as e:  # DecodeError, RuntimeWarning-as-error, ...
        raise ModelFormatError(f"{where}: {label} is not a valid ONNX protobuf (truncated or "
                               f"corrupt): {type(e).__name__}: {e}") from None
    return proto


def _check_structure(proto, label: str, where: str) -> None:
    """What every model needs before we look at its nodes."""
    if proto.ir_version < 1:
        raise ModelFormatError(f"{where}: {label} has no ir_version: not an ONNX model (or "
                               f"truncated before its first field)")
    if not proto.HasField("graph"):
        raise ModelFormatError(f"{where}: {label} has no graph (truncated or not a model)")
    if not proto.graph.output:
        raise ModelFormatError(f"{where}: {label}: the graph declares no outputs")
    if _default_opset(proto) is None:
        raise ModelFormatError(f"{where}: {label} imports no default-domain (ai.onnx) "
                               f"opset (truncated, or not an ONNX model)")
    for i, node in enumerate(proto.graph.node):
        if not node.op_type:
            raise ModelFormatError(f"{where}: {label}: node #{i} has no op_type")
        if not any(node.output):
            # every operator has a required first output; without one the node cannot
            # be named or consumed
            raise ModelFormatError(f"{where}: {label}: "
                                   + (f"node {node.name!r} ({node.op_type})" if node.name
                                      else f"{node.op_type} #{i}") + " has no outputs")
    _check_text(proto, label, where)


def _check_text(proto, label: str, where: str) -> None:
    """Names that are not valid UTF-8 (a corrupt file) come back from protobuf as bytes."""
    g = proto.graph
    texts = [g.name]
    for n in g.node:
        texts += [n.name, n.op_type, n.domain, *n.input, *n.output]
        texts += [a.name for a in n.attribute]
    for coll in (g.input, g.output, g.value_info, g.initializer):
        texts += [v.name for v in coll]
    texts += [o.domain for o in proto.opset_import]
    if not all(isinstance(t, str) for t in texts):
        raise ModelFormatError(f"{where}: {label}: a name is not valid UTF-8 (corrupt file)")


def _attr_type_name(t: int) -> str:
    from onnx import AttributeProto
    try:
        return AttributeProto.AttributeType.Name(t)
    except ValueError:
        return str(t)


def _default_opset(proto) -> Optional[int]:
    for imp in proto.opset_import:
        if imp.domain in _DEFAULT_DOMAINS:
            return int(imp.version)
    if proto.ir_version < 3 and not proto.opset_import:
        return 1      # IR v1/v2 models predate opset_import
    return None


def _load_external(proto, base_dir, label: str, where: str) -> None:
    onnx = _onnx()
    ext = [t for t in proto.graph.initializer
           if t.data_location == onnx.TensorProto.EXTERNAL]
    if not ext:
        return
    if base_dir is None:
        raise ModelFormatError(f"{where}: {label} keeps tensors in external files (e.g. "
                               f"{ext[0].name!r}); load it from its path instead")
    from onnx.external_data_helper import load_external_data_for_model
    try:
        load_external_data_for_model(proto, base_dir)
    except Exception as e:
        raise ModelFormatError(f"{where}: {label}: cannot read the external data of its "
                               f"tensors: {type(e).__name__}: {e}") from None


# ====================================================================== pads

def onnx_pads(auto_pad, pads, in_sizes: Sequence[int], kernel: Sequence[int],
              strides: Sequence[int], dilations: Sequence[int],
              where: str = "ONNX node") -> Tuple[int, ...]:
    """ONNX padding to fastconv's (begins..., ends...): 2-D (top, left, bottom, right),
    1-D (begin, end).

    ONNX `pads` are [x1_begin, x2_begin, ..., x1_end, x2_end, ...], which is already that
    order. auto_pad SAME_UPPER / SAME_LOWER pad so that output = ceil(in / stride), the
    odd pixel at the end (UPPER) or at the beginning (LOWER); VALID pads nothing; NOTSET
    uses `pads` (default 0). The explicit pads are computed from the input sizes."""
    n = len(kernel)
    if auto_pad is not None and not isinstance(auto_pad, str):
        raise ModelFormatError(f"{where}: auto_pad {auto_pad!r} is not a string")
    mode = (auto_pad or "NOTSET").upper()
    if mode == "NOTSET":
        if pads is None:
            return (0,) * (2 * n)
        pads = [int(p) for p in pads]
        if len(pads) != 2 * n:
            raise ModelFormatError(f"{where}: pads {pads} has {len(pads)} entries; {n} spatial "
                                   f"axes need {2 * n} (all begins, then all ends)")
        if any(p < 0 for p in pads):
            raise ModelFormatError(f"{where}: negative pads {pads} are not allowed")
        return tuple(pads)
    if mode == "VALID":
        return (0,) * (2 * n)
    if mode in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
            out = -(-int(size) // int(s))
            total = max(0, (out - 1) * s + d * (k - 1) + 1 - size)
            small, big = total // 2, total - total // 2
            begin, end = (small, big) if mode == "SAME_UPPER" else (big, small)
            begins.append(begin)
            ends.append(end)
        return tuple(begins + ends)
    raise ModelFormatError(f"{where}: auto_pad {auto_pad!r} is not NOTSET, SAME_UPPER, "
                           f"SAME_LOWER or VALID")


# ====================================================================== values

class _V:
    """A tensor while the graph is converted.

    kind "const": value known at load (`value`, any dtype); "shape": small integer value
    that depends on the batch size (`probes`: its value for each of _PROBES); "rt": a
    runtime float tensor of the fastconv model (`name`, per-sample `shape`, `batched`:
    whether it carries the batch axis, `rank`: its ONNX rank); "pending": a graph input
    not yet classified (`decl`); "absent": a graph input that fastconv ignores;
    "poison": the output of a node that failed (its consumers are skipped)."""
    __slots__ = ("kind", "value", "probes", "name", "shape", "batched", "rank", "decl")

    def __init__(self, kind, value=None, probes=None, name=None, shape=None, batched=True,
                 rank=None, decl=None):
        self.kind, self.value, self.probes, self.name = kind, value, probes, name
        self.shape, self.batched, self.rank, self.decl = shape, batched, rank, decl

    @classmethod
    def const(cls, value):
        return cls("const", value=np.asarray(value))

    @classmethod
    def rt(cls, name, shape, batched=True, rank=None):
        shape = tuple(int(s) for s in shape)
        return cls("rt", name=name, shape=shape, batched=batched,
                   rank=(len(shape) + int(batched)) if rank is None else rank)

    @property
    def foldable(self) -> bool:
        return self.kind in ("const", "shape")

    def onnx_rank(self) -> Optional[int]:
        if self.kind == "const":
            return self.value.ndim
        if self.kind == "shape":
            return self.probes[0].ndim
        if self.kind == "rt":
            return self.rank
        if self.kind == "pending" and self.decl[1] is not None:
            return len(self.decl[1])
        return None

    def full(self) -> str:
        """The ONNX shape, with N for the batch axis."""
        if self.kind == "rt":
            dims = (("N",) if self.batched else ()) + self.shape
            return "(" + ", ".join(map(str, dims)) + ("," if len(dims) == 1 else "") + ")"
        if self.kind == "const":
            return str(tuple(self.value.shape))
        return "?"


_POISON = _V("poison")


class _Unsupported(Exception):
    def __init__(self, reason: str = ""):
        super().__init__(reason)
        self.reason = reason


class _Ctx:
    """One ONNX node being converted: what converters use to read inputs and emit
    fastconv layers."""

    def __init__(self, imp: "_Importer", node, idx: int):
        self.imp, self.node, self.idx = imp, node, idx
        self.op = node.op_type
        self.label = node.name or f"{node.op_type} #{idx}"
        self.where = f"node {node.name!r} ({node.op_type})" if node.name else self.label
        self.version = imp.since(node.op_type)
        self.out = node.output[0] if node.output else None

    # -------------------------------------------------------------- errors
    def unsupported(self, reason: str):
        raise _Unsupported(reason)

    def shape_error(self, msg: str) -> ShapeError:
        return ShapeError(f"ONNX {self.where}: {msg}")

    def format_error(self, msg: str) -> ModelFormatError:
        return ModelFormatError(f"ONNX {self.where}: {msg}")

    def output_used(self, i: int) -> bool:
        outs = self.node.output
        return i < len(outs) and outs[i] != "" and self.imp.is_used(outs[i])

    # -------------------------------------------------------------- inputs
    def data(self, v: Optional[_V], what: str, unbatched_ok: bool = False) -> _V:
        """A runtime tensor input (the batch axis in front unless unbatched_ok)."""
        if v is None:
            raise self.format_error(f"input {what} is required")
        if v.kind == "rt":
            if not v.batched and not unbatched_ok:
                self.unsupported(f"input {what} ({v.name!r}) has no batch axis (it is computed "
                                 f"from parameter inputs only)")
            return v
        if v.kind == "shape":
            self.unsupported(f"input {what} depends on the batch size as a value")
        if v.kind == "absent":
            self.unsupported(f"input {what} is a graph input fastconv ignores")
        self.unsupported(f"input {what} is a constant where a runtime tensor is expected")

    def weight(self, v: Optional[_V], what: str):
        """A weight: a float32 ndarray when constant, else a parameter input (_V)."""
        if v is None:
            raise self.format_error(f"input {what} is required")
        if v.kind == "const":
            try:
                return np.ascontiguousarray(v.value, dtype=np.float32)
            except (TypeError, ValueError):
                raise self.format_error(f"{what} has dtype {v.value.dtype}, not a number") \
                    from None
        if v.kind == "rt":
            if v.batched:
                self.unsupported(f"{what} ({v.name!r}) carries the batch axis; fastconv takes "
                                 f"weights as constants or as parameter graph inputs")
            return v
        if v.kind == "shape":
            self.unsupported(f"{what} depends on the batch size")
        self.unsupported(f"{what} is a graph input fastconv ignores")

    def const(self, v: Optional[_V], what: str) -> np.ndarray:
        if v is None:
            raise self.format_error(f"input {what} is required")
        if v.kind == "const":
            return v.value
        if v.kind == "shape":
            self.unsupported(f"{what} depends on the batch size")
        self.unsupported(f"{what} must be known at load (an initializer or a constant "
                         f"subgraph); here it is computed at run time")

    def ints(self, v: Optional[_V], what: str) -> List[int]:
        a = self.const(v, what)
        if a.dtype.kind not in "iub":
            raise self.format_error(f"{what} must be integers, got dtype {a.dtype}")
        return [int(t) for t in a.reshape(-1)]

    # -------------------------------------------------------------- outputs
    def emit(self, layer: L.Layer, inputs: Sequence[_V], name: Optional[str] = None,
             batched: Optional[bool] = None) -> _V:
        """Add `layer` reading `inputs` to the model; returns its output."""
        name = self.imp.claim(self.out) if name is None else self.imp.fresh(name)
        if layer.name is None:
            layer.name = self.label
        shapes = [v.shape for v in inputs]
        try:
            ps = layer.output_shape(shapes)
        except ShapeError as e:
            msg = str(e)
            prefix = f"{layer.label}: "
            raise self.shape_error(msg[len(prefix):] if msg.startswith(prefix) else msg) \
                from None
        self.imp.add_node(name, layer, [v.name for v in inputs], self.where)
        if batched is None:
            batched = any(v.batched for v in inputs)
        return _V.rt(name, ps, batched)

    def check_fold_size(self, elements: int, what: str, unsupported: bool = False) -> None:
        """Refuse a constant of more elements than the file could justify (see fold_budget):
        a ModelFormatError, or listed as unsupported where the fold itself is the operator."""
        if elements > self.imp.fold_budget:
            msg = (f"{what} is too large: it would build a constant of {elements:,} elements "
                   f"at load, more than this file's budget of {self.imp.fold_budget:,} "
                   f"(twice its weights, at least 1M)")
            if unsupported:
                self.unsupported(msg)
            raise self.format_error(msg)

    def fold(self, fn: Callable, *vals: _V) -> _V:
        """fn evaluated on constant / batch-dependent values (NumPy)."""
        try:      # an elementwise fold is as large as its inputs broadcast together
            out_shape = np.broadcast_shapes(*[np.shape(v.value) for v in vals
                                              if v.kind == "const"])
        except ValueError:
            out_shape = None                       # not elementwise: fn checks its own shapes
        if out_shape is not None:
            self.check_fold_size(math.prod(out_shape), "broadcasting its inputs")
        try:
            if any(v.kind == "shape" for v in vals):
                outs = [np.asarray(fn(*[v.probes[k] if v.kind == "shape" else v.value
                                        for v in vals])) for k in (0, 1)]
                a, b = outs
                if a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b):
                    return _V.const(a)
                if a.size > _FOLD_LIMIT or b.size > _FOLD_LIMIT:
                    self.unsupported("its value depends on the batch size")
                return _V("shape", probes=(a, b))
            return _V.const(fn(*[v.value for v in vals]))
        except (ValueError, IndexError, TypeError) as e:   # (AxisError is both of the first)
            raise self.format_error(f"cannot be evaluated at load: {type(e).__name__}: {e}") \
                from None


def _normalize_axis(axis: int, rank: int, cx: _Ctx, what: str = "axis",
                    allow_end: bool = False) -> int:
    hi = rank + 1 if allow_end else rank      # Flatten's axis may equal the rank
    a = int(axis)
    if a < 0:
        a += rank
    if not 0 <= a < hi:
        raise cx.shape_error(f"{what} {axis} is out of range for a tensor of rank {rank}")
    return a


def _spatial(v, n: int, what: str, cx: _Ctx, default: int = 1) -> Tuple[int, ...]:
    if v is None:
        return (default,) * n
    if isinstance(v, (str, bytes)) or not all(
            isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in v):
        # (int() would truncate a FLOATS attribute such as [2.5, 2.0] silently)
        raise cx.format_error(f"{what} {v!r} must be a list of integers")
    v = tuple(int(t) for t in v)
    if len(v) != n:
        raise cx.format_error(f"{what} {list(v)} has {len(v)} entries for {n} spatial axes")
    if any(t < 1 for t in v):
        raise cx.format_error(f"{what} {list(v)} must be >= 1")
    return v


# ====================================================================== converters
# One function per ONNX op: the node context, the inputs (as _V, None when an optional
# input is absent) and the ONNX attributes as keyword arguments with ONNX's defaults.

def Conv(cx, X, W, B=None, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
         pads=None, strides=None):
    x = cx.data(X, "X")
    nsp = len(x.shape) - 1
    if nsp not in (1, 2):
        cx.unsupported(f"a {nsp}-D convolution (input {x.full()}); fastconv runs 1-D and 2-D")
    w = cx.weight(W, "W")
    wshape = tuple(w.shape)
    if len(wshape) != nsp + 2:
        raise cx.shape_error(f"W has shape {wshape}; a {nsp}-D convolution of X {x.full()} "
                             f"needs a rank-{nsp + 2} weight")
    co, cig, kernel = wshape[0], wshape[1], wshape[2:]
    if kernel_shape is not None and tuple(int(k) for k in kernel_shape) != kernel:
        raise cx.shape_error(f"kernel_shape {list(kernel_shape)} does not match W's shape "
                             f"{wshape}")
    group = int(group)
    if group < 1:
        raise cx.format_error(f"group must be >= 1, got {group}")
    strides = _spatial(strides, nsp, "strides", cx)
    dil = _spatial(dilations, nsp, "dilations", cx)
    c = x.shape[0]
    if c != cig * group:
        raise cx.shape_error(f"X {x.full()} has {c} channels but W {wshape} with group={group} "
                             f"expects W.shape[1] x group = {cig} x {group} = {cig * group}")
    if co % group:
        raise cx.shape_error(f"group={group} does not divide the {co} output channels of W "
                             f"{wshape}")
    p = onnx_pads(auto_pad, pads, x.shape[1:], kernel, strides, dil, f"ONNX {cx.where}")
    b = None if B is None else cx.weight(B, "B")
    if b is not None and tuple(b.shape) != (co,):
        raise cx.shape_error(f"B has shape {tuple(b.shape)}, expected ({co},) for W {wshape}")
    dyn_w, dyn_b = isinstance(w, _V), isinstance(b, _V)
    if not dyn_w and not dyn_b:
        cls = L.Conv2d if nsp == 2 else L.Conv1d
        layer = cls(c, co, kernel, stride=strides, padding=p, dilation=dil, groups=group,
                    bias=b is not None, weight=w, bias_value=b, name=cx.label)
        return cx.emit(layer, [x])
    layer = OL.OnnxConv(c, co, kernel, strides, p, dil, group, weight_input=dyn_w,
                        bias_input=dyn_b, weight=None if dyn_w else w,
                        bias=None if (dyn_b or b is None) else b, name=cx.label)
    return cx.emit(layer, [x] + ([w] if dyn_w else []) + ([b] if dyn_b else []))


def _pool_args(cx, x, kernel_shape, strides, dilations, auto_pad, pads):
    nsp = len(x.shape) - 1
    if nsp not in (1, 2):
        cx.unsupported(f"{nsp}-D pooling (input {x.full()}); fastconv pools 1-D and 2-D")
    kernel = _spatial(kernel_shape, nsp, "kernel_shape", cx)
    strides = _spatial(strides, nsp, "strides", cx)
    dil = _spatial(dilations, nsp, "dilations", cx)
    p = onnx_pads(auto_pad, pads, x.shape[1:], kernel, strides, dil, f"ONNX {cx.where}")
    return nsp, kernel, strides, dil, p


def MaxPool(cx, X, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0, dilations=None,
            pads=None, storage_order=0, strides=None):
    if cx.output_used(1):
        cx.unsupported("the second output (Indices) is not supported")
    x = cx.data(X, "X")
    nsp, k, s, d, p = _pool_args(cx, x, kernel_shape, strides, dilations, auto_pad, pads)
    if nsp == 2:
        layer = L.MaxPool2d(k, stride=s, padding=p, dilation=d, ceil_mode=bool(ceil_mode),
                            name=cx.label)
    else:
        layer = L.MaxPool1d(k[0], stride=s[0], padding=p, dilation=d[0],
                            ceil_mode=bool(ceil_mode), name=cx.label)
    return cx.emit(layer, [x])


def AveragePool(cx, X, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0, count_include_pad=0,
                dilations=None, pads=None, strides=None):
    x = cx.data(X, "X")
    nsp, k, s, d, p = _pool_args(cx, x, kernel_shape, strides, dilations, auto_pad, pads)
    if any(v != 1 for v in d):
        layer = OL.OnnxAvgPool(k, s, p, d, bool(ceil_mode), bool(count_include_pad),
                               name=cx.label)
    elif nsp == 2:
        layer = L.AvgPool2d(k, stride=s, padding=p, ceil_mode=bool(ceil_mode),
                            count_include_pad=bool(count_include_pad), name=cx.label)
    else:
        layer = L.AvgPool1d(k[0], stride=s[0], padding=p, ceil_mode=bool(ceil_mode),
                            count_include_pad=bool(count_include_pad), name=cx.label)
    return cx.emit(layer, [x])


def _global_pool(cx, X, cls):
    x = cx.data(X, "X")
    if len(x.shape) == 3:
        return cx.emit(cls(name=cx.label), [x])
    if len(x.shape) == 2:   # 1-D: pool (C, W) as (C, 1, W)
        c, w = x.shape
        t = cx.emit(L.Reshape((c, 1, w), name=cx.label + "/as2d"), [x], name=cx.out + "::2d")
        t = cx.emit(cls(name=cx.label), [t], name=cx.out + "::pool")
        return cx.emit(L.Reshape((c, 1), name=cx.label + "/as1d"), [t])
    cx.unsupported(f"global pooling of a {len(x.shape) - 1}-D map (input {x.full()})")


def GlobalAveragePool(cx, X):
    return _global_pool(cx, X, L.GlobalAvgPool2d)


def GlobalMaxPool(cx, X):
    return _global_pool(cx, X, L.GlobalMaxPool2d)


def Relu(cx, X):
    return cx.emit(L.ReLU(name=cx.label), [cx.data(X, "X", unbatched_ok=True)])


def LeakyRelu(cx, X, *, alpha=0.01):
    return cx.emit(L.LeakyReLU(float(alpha), name=cx.label),
                   [cx.data(X, "X", unbatched_ok=True)])


def Softmax(cx, input, *, axis=None):
    x = cx.data(input, "input", unbatched_ok=True)
    r = x.rank
    if cx.version >= 13:   # one axis
        a = _normalize_axis(-1 if axis is None else axis, r, cx)
        return cx.emit(L.Softmax(a - r, name=cx.label), [x])
    # before opset 13: the input is coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])]
    a = _normalize_axis(1 if axis is None else axis, r, cx)
    lead = r - len(x.shape)               # 1 for a batched tensor, 0 for a parameter one
    if a < lead:
        cx.unsupported(f"axis={a} (before opset 13) takes the softmax across the batch axis")
    if a == r - 1:
        return cx.emit(L.Softmax(-1, name=cx.label), [x])
    ps = x.shape
    flat = ps[:a - lead] + (math.prod(ps[a - lead:]),)
    t = cx.emit(L.Reshape(flat, name=cx.label + "/flatten"), [x], name=cx.out + "::2d")
    t = cx.emit(L.Softmax(-1, name=cx.label), [t], name=cx.out + "::softmax")
    return cx.emit(L.Reshape(ps, name=cx.label + "/unflatten"), [t])


def LRN(cx, X, *, size, alpha=1e-4, beta=0.75, bias=1.0):
    x = cx.data(X, "X")
    if len(x.shape) not in (2, 3):
        cx.unsupported(f"LRN of a {x.full()} tensor (fastconv: (N, C, W) or (N, C, H, W))")
    return cx.emit(L.LRN(int(size), float(alpha), float(beta), float(bias), name=cx.label), [x])


def BatchNormalization(cx, X, scale, B, input_mean, input_var, *, epsilon=1e-5,
                       momentum=0.9, spatial=1, training_mode=0, is_test=None,
                       consumed_inputs=None):
    if training_mode:
        cx.unsupported("training_mode=1 (fastconv runs inference only)")
    if any(cx.output_used(i) for i in range(1, len(cx.node.output))):
        cx.unsupported("the statistics outputs (mean, var, saved_mean, saved_var) exist "
                       "in training only")
    if not spatial:
        cx.unsupported("spatial=0 (statistics per activation rather than per channel)")
    x = cx.data(X, "X")
    c = x.shape[0]
    names = ("weight", "bias", "running_mean", "running_var")
    vals = [cx.weight(v, w) for v, w in zip((scale, B, input_mean, input_var),
                                            ("scale", "B", "mean", "var"))]
    for v, w in zip(vals, ("scale", "B", "mean", "var")):
        if tuple(v.shape) != (c,):
            raise cx.shape_error(f"{w} has shape {tuple(v.shape)}, expected ({c},) for X "
                                 f"{x.full()}")
    dyn = [isinstance(v, _V) for v in vals]
    if not any(dyn) and len(x.shape) in (2, 3):
        layer = L.BatchNorm2d(c, float(epsilon), name=cx.label,
                              **dict(zip(names, vals)))
        return cx.emit(layer, [x])
    consts = {n: v for n, v, d in zip(names, vals, dyn) if not d}
    layer = OL.OnnxBatchNorm(c, float(epsilon), inputs=[n for n, d in zip(names, dyn) if d],
                             name=cx.label, **consts)
    return cx.emit(layer, [x] + [v for v, d in zip(vals, dyn) if d])


def Dropout(cx, data, ratio_input=None, training_mode=None, *, ratio=0.5, seed=None,
            is_test=None):
    if cx.output_used(1):
        cx.unsupported("the mask output is not supported (fastconv tensors are float32)")
    if training_mode is not None:
        if training_mode.kind == "const":
            if bool(np.any(training_mode.value)):
                cx.unsupported("training_mode=true (fastconv runs inference only)")
        else:
            cx.unsupported("training_mode is given at run time; fastconv runs inference "
                           "only (make it a constant false or leave it out)")
    if ratio_input is not None and ratio_input.kind == "const":
        ratio = float(np.asarray(ratio_input.value).reshape(-1)[0])
    x = cx.data(data, "data", unbatched_ok=True)
    p = float(ratio) if 0.0 <= float(ratio) < 1.0 else 0.5   # has no effect at inference
    return cx.emit(L.Dropout(p, name=cx.label), [x])


def Flatten(cx, input, *, axis=1):
    if input is not None and input.foldable:
        r = input.onnx_rank()
        a = _normalize_axis(axis, r, cx, allow_end=True)
        return cx.fold(lambda v: v.reshape(math.prod(v.shape[:a]), math.prod(v.shape[a:])),
                       input)
    x = cx.data(input, "input")
    a = _normalize_axis(axis, x.rank, cx, allow_end=True)
    if a != 1:
        # the output is [prod(dims[:axis]), prod(dims[axis:])]: any axis but 1 merges the
        # batch axis with others
        cx.unsupported(f"axis={axis} flattens {x.full()} to [prod(dims[:{a}]), "
                       f"prod(dims[{a}:])], which merges the batch axis with the others")
    return cx.emit(L.Flatten(name=cx.label), [x])


def _reshape_to(in_shape, target, allowzero) -> Optional[Tuple[int, ...]]:
    """ONNX Reshape's output shape, or None when the target does not fit."""
    out = []
    for i, t in enumerate(target):
        if t == 0 and not allowzero:
            if i >= len(in_shape):
                return None
            out.append(int(in_shape[i]))
        elif t < -1:
            return None
        else:
            out.append(int(t))
    total = math.prod(in_shape)
    if out.count(-1) > 1:
        return None
    if -1 in out:
        known = math.prod(s for s in out if s != -1)
        if known == 0 or total % known:
            return None
        out[out.index(-1)] = total // known
    return tuple(out) if math.prod(out) == total else None


def Reshape(cx, data, shape, *, allowzero=0):
    if shape is None:
        raise cx.format_error("input shape is required")
    if shape.kind not in ("const", "shape"):
        cx.unsupported("the target shape is computed at run time")
    if data is not None and data.foldable:
        def fn(v, t):
            out = _reshape_to(v.shape, [int(e) for e in np.asarray(t).reshape(-1)], allowzero)
            if out is None:
                raise ValueError(f"cannot reshape {v.shape} to {list(np.asarray(t))}")
            return v.reshape(out)
        return cx.fold(fn, data, shape)
    x = cx.data(data, "data")
    ps = x.shape
    targets = [shape.probes[k] if shape.kind == "shape" else shape.value for k in (0, 1)]
    targets = [[int(e) for e in np.asarray(t).reshape(-1)] for t in targets]
    outs = [_reshape_to((n,) + ps, t, allowzero) for n, t in zip(_PROBES, targets)]
    ok = all(o is not None and o[0] == n for o, n in zip(outs, _PROBES)) and \
        outs[0][1:] == outs[1][1:]
    if not ok and shape.kind == "const" and cx.imp.declared_batch is not None:
        # an exporter may bake the declared batch size into the target (e.g. [1, -1])
        n0 = cx.imp.declared_batch
        o = _reshape_to((n0,) + ps, targets[0], allowzero)
        if o is not None and o[0] == n0:
            outs, ok = [o, o], True
    if not ok:
        per = math.prod(ps)
        if all(_reshape_to((n,) + ps, t, allowzero) is None for n, t in zip(_PROBES, targets)) \
                and shape.kind == "const":
            raise cx.shape_error(f"cannot reshape {x.full()} ({per} elements per sample) to "
                                 f"{targets[0]}")
        cx.unsupported(f"reshaping {x.full()} to {targets[0]} moves or merges the batch axis")
    out_ps = outs[0][1:]
    if not out_ps:
        cx.unsupported(f"reshaping {x.full()} to {targets[0]} leaves no per-sample axis")
    if out_ps == ps:
        return cx.emit(L.Identity(name=cx.label), [x])
    return cx.emit(L.Reshape(out_ps, name=cx.label), [x])


def _c_bias(cx, c: np.ndarray, n: int) -> np.ndarray:
    """Gemm's constant C (times beta) as a bias vector of n entries."""
    if c.ndim > 2:
        raise cx.shape_error(f"C must have rank <= 2, got shape {c.shape}")
    if c.ndim == 2 and c.shape[0] != 1:
        cx.unsupported(f"C of shape {c.shape} has a row per batch sample")
    try:
        return np.ascontiguousarray(np.broadcast_to(c.reshape(c.shape[-1:] if c.ndim else ()),
                                                    (n,)), dtype=np.float32)
    except ValueError:
        raise cx.shape_error(f"C of shape {c.shape} does not broadcast to the output "
                             f"(N, {n})") from None


def Gemm(cx, A, B, C=None, *, alpha=1.0, beta=1.0, transA=0, transB=0, broadcast=None):
    a = cx.data(A, "A")
    if len(a.shape) != 1:
        raise cx.shape_error(f"A must be 2-D, got {a.full()}")
    if transA:
        cx.unsupported("transA=1 on an input that carries the batch axis (A's rows are the "
                       "batch samples)")
    k = a.shape[0]
    b = cx.weight(B, "B")
    bshape = tuple(b.shape)
    if len(bshape) != 2:
        raise cx.shape_error(f"B must be 2-D, got shape {bshape}")
    kb, n = (bshape[1], bshape[0]) if transB else bshape
    if kb != k:
        raise cx.shape_error(f"A {a.full()} times B {bshape} (transB={int(transB)}): inner "
                             f"sizes {k} and {kb} differ")
    alpha, beta = float(alpha), float(beta)
    c = None if C is None else (cx.weight(C, "C") if C.kind != "rt" or not C.batched
                                else C)
    if isinstance(c, np.ndarray):
        c = None if beta == 0.0 else _c_bias(cx, c.astype(np.float64) * beta, n)
    if isinstance(b, np.ndarray) and (c is None or isinstance(c, np.ndarray)):
        w = b if transB else b.T
        if alpha != 1.0:   # (a 400 MB classifier is not copied unless it must be)
            w = (w.astype(np.float64) * alpha).astype(np.float32)
        layer = L.Linear(k, n, bias=c is not None, weight=w, bias_value=c, name=cx.label)
        out = cx.emit(layer, [a])
        cx.imp.mark_fusable(out.name, cx)
        return out
    dyn_b, dyn_c = isinstance(b, _V), isinstance(c, _V)
    layer = OL.OnnxGemm(k, n, alpha, 1.0 if (c is not None and not dyn_c) else beta,
                        bool(transB), b_input=dyn_b, c_input=dyn_c,
                        b=None if dyn_b else b, c=c if (c is not None and not dyn_c) else None,
                        name=cx.label)
    return cx.emit(layer, [a] + ([b] if dyn_b else []) + ([c] if dyn_c else []))


def MatMul(cx, A, B):
    if A is not None and B is not None and A.foldable and B.foldable:
        return cx.fold(np.matmul, A, B)
    a = cx.data(A, "A")
    if len(a.shape) != 1:
        cx.unsupported(f"MatMul of A {a.full()}: fastconv runs the 2-D MatMul [N, K] x [K, M]")
    b = cx.weight(B, "B")
    if len(b.shape) != 2:
        cx.unsupported(f"MatMul with B of shape {tuple(b.shape)}: fastconv runs the 2-D MatMul "
                       f"[N, K] x [K, M]")
    k = a.shape[0]
    kb, n = tuple(b.shape)
    if kb != k:
        raise cx.shape_error(f"A {a.full()} times B {tuple(b.shape)}: inner sizes {k} and {kb} "
                             f"differ")
    if isinstance(b, np.ndarray):
        out = cx.emit(L.Linear(k, n, bias=False, weight=np.ascontiguousarray(b.T),
                               name=cx.label), [a])
        cx.imp.mark_fusable(out.name, cx)
        return out
    return cx.emit(OL.OnnxGemm(k, n, 1.0, 0.0, False, b_input=True, name=cx.label), [a, b])


def _add(cx, vals: List[Optional[_V]]):
    if any(v is None for v in vals):
        raise cx.format_error("an operand is missing")
    if all(v.foldable for v in vals):
        return cx.fold(lambda *a: reduce(np.add, a), *vals)
    for v in vals:
        if v.kind == "shape":
            cx.unsupported("an operand depends on the batch size")
        if v.kind == "absent":
            cx.unsupported("an operand is a graph input fastconv ignores")
    rts = [v for v in vals if v.kind == "rt"]
    consts = [np.asarray(v.value, dtype=np.float64) for v in vals if v.kind == "const"]
    if len(vals) == 1:
        return cx.emit(L.Identity(name=cx.label), rts)
    # MatMul (or Gemm without C) then Add of a bias vector: one Linear with a bias
    if len(rts) == 1 and consts:
        fused = cx.imp.fuse_bias(rts[0], reduce(np.add, consts), cx)
        if fused is not None:
            return fused
    r_out = max(v.onnx_rank() for v in vals)
    batched = [v for v in rts if v.batched]
    c = reduce(np.add, consts) if consts else None
    if batched:
        for v in batched:
            if v.rank < r_out:
                cx.unsupported(f"broadcasting {v.full()} against a rank-{r_out} operand would "
                               f"move its batch axis")
        for v in rts:
            if not v.batched and v.rank >= r_out:
                cx.unsupported(f"the parameter operand {v.name!r} of shape {v.shape} spans the "
                               f"batch axis")
        if c is not None and c.ndim >= r_out:
            if c.shape[0] != 1:
                cx.unsupported(f"a constant operand of shape {c.shape} spans the batch axis")
            c = c.reshape(c.shape[1:])
    if c is not None and c.ndim == 0:
        c = c.reshape(1)
    if c is None and all(v.batched for v in rts) and len({v.shape for v in rts}) == 1:
        return cx.emit(L.Add(name=cx.label), rts)
    layer = OL.OnnxAdd(len(rts), name=cx.label,
                       constant=None if c is None else c.astype(np.float32))
    return cx.emit(layer, rts, batched=bool(batched))


def Add(cx, A, B):
    return _add(cx, [A, B])


def Sum(cx, *data_0):
    if not data_0:
        raise cx.format_error("Sum needs at least one input")
    return _add(cx, list(data_0))


def Concat(cx, *inputs, axis):
    if not inputs or any(v is None for v in inputs):
        raise cx.format_error("Concat needs its inputs")
    if all(v.foldable for v in inputs):
        return cx.fold(lambda *a: np.concatenate(a, axis=int(axis)), *inputs)
    xs = [cx.data(v, f"#{i}") for i, v in enumerate(inputs)]
    r = xs[0].rank
    if any(v.rank != r for v in xs):
        raise cx.shape_error("inputs of different ranks: " + ", ".join(v.full() for v in xs))
    a = _normalize_axis(axis, r, cx)
    if a == 0:
        cx.unsupported("concatenation along the batch axis")
    if len(xs) == 1:
        return cx.emit(L.Identity(name=cx.label), xs)
    return cx.emit(L.Concat(axis=a, name=cx.label), xs)


def Identity(cx, input):
    if input is not None and input.foldable:
        return input
    return cx.emit(L.Identity(name=cx.label), [cx.data(input, "input", unbatched_ok=True)])


def Constant(cx, *, value=None, value_float=None, value_floats=None, value_int=None,
             value_ints=None, value_string=None, value_strings=None, sparse_value=None):
    given = [(k, v) for k, v in (("value", value), ("value_float", value_float),
                                 ("value_floats", value_floats), ("value_int", value_int),
                                 ("value_ints", value_ints), ("value_string", value_string),
                                 ("value_strings", value_strings),
                                 ("sparse_value", sparse_value)) if v is not None]
    if len(given) != 1:
        raise cx.format_error(f"a Constant needs exactly one value attribute, got "
                              f"{[k for k, _ in given] or 'none'}")
    k, v = given[0]
    if k in ("value", "sparse_value"):
        return _V.const(v)
    if k == "value_float":
        return _V.const(np.float32(v))
    if k == "value_floats":
        return _V.const(np.asarray(v, np.float32))
    if k in ("value_int", "value_ints"):
        return _V.const(np.asarray(v, np.int64))
    return _V.const(np.asarray(v, dtype=object))


def ConstantOfShape(cx, input, *, value=None):
    if input is not None and input.kind == "shape":
        cx.unsupported("the shape depends on the batch size")
    dims = cx.ints(input, "input")
    if any(d < 0 for d in dims):
        raise cx.format_error(f"negative dimension in shape {dims}")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    if fill.size != 1:
        raise cx.format_error(f"value must hold one element, got {fill.size}")
    cx.check_fold_size(math.prod(dims), f"shape {dims}")
    return _V.const(np.full(dims, fill[0], dtype=fill.dtype))


def Shape(cx, data, *, start=0, end=None):
    sl = slice(int(start), None if end is None else int(end))
    if data is None:
        raise cx.format_error("input data is required")
    if data.kind == "const":
        return _V.const(np.asarray(data.value.shape, np.int64)[sl])
    if data.kind == "shape":
        return _V.const(np.asarray(data.probes[0].shape, np.int64)[sl])
    x = cx.data(data, "data", unbatched_ok=True)
    if not x.batched:
        return _V.const(np.asarray(x.shape, np.int64)[sl])
    a, b = (np.asarray((n,) + x.shape, np.int64)[sl] for n in _PROBES)
    if np.array_equal(a, b):
        return _V.const(a)
    return _V("shape", probes=(a, b))


def Gather(cx, data, indices, *, axis=0):
    if data is not None and indices is not None and data.foldable and indices.foldable:
        return cx.fold(lambda d, i: np.take(d, np.asarray(i, np.int64), axis=int(axis)),
                       data, indices)
    cx.unsupported("Gather of a runtime tensor (fastconv folds only the constant shape "
                   "chains that exporters put before Reshape)")


def _axes(cx, axes_attr, axes_input, what="axes") -> Optional[List[int]]:
    if axes_attr is not None:
        return [int(a) for a in axes_attr]
    if axes_input is not None:
        return cx.ints(axes_input, what)
    return None


def Unsqueeze(cx, data, axes_input=None, *, axes=None):
    ax = _axes(cx, axes, axes_input)
    if ax is None:
        raise cx.format_error("Unsqueeze needs axes")
    if data is None:
        raise cx.format_error("input data is required")
    r_in = data.onnx_rank()
    r = r_in + len(ax)
    norm = sorted(_normalize_axis(a, r, cx, "axes entry") for a in ax)
    if len(set(norm)) != len(norm):
        raise cx.format_error(f"axes {ax} repeat an axis")

    def full_out(shape):
        out, it = [], iter(shape)
        for i in range(r):
            out.append(1 if i in norm else next(it))
        return tuple(out)

    if data.foldable:
        return cx.fold(lambda v: v.reshape(full_out(v.shape)), data)
    x = cx.data(data, "data", unbatched_ok=True)
    if x.batched:
        if 0 in norm:
            cx.unsupported("inserting an axis in front of the batch axis")
        out_ps = full_out((0,) + x.shape)[1:]
    else:
        out_ps = full_out(x.shape)
    return cx.emit(L.Reshape(out_ps, name=cx.label), [x])


def Squeeze(cx, data, axes_input=None, *, axes=None):
    ax = _axes(cx, axes, axes_input)
    if data is None:
        raise cx.format_error("input data is required")
    if data.foldable:
        return cx.fold(lambda v: np.squeeze(v, axis=None if ax is None else tuple(ax)), data)
    x = cx.data(data, "data", unbatched_ok=True)
    full = ((None,) if x.batched else ()) + x.shape
    if ax is None:
        if x.batched:
            cx.unsupported("Squeeze without axes would drop the batch axis when the batch is 1")
        norm = [i for i, s in enumerate(full) if s == 1]
    else:
        norm = sorted({_normalize_axis(a, len(full), cx, "axes entry") for a in ax})
    if x.batched and 0 in norm:
        cx.unsupported("squeezing the batch axis")
    for i in norm:
        if full[i] != 1:
            raise cx.shape_error(f"cannot squeeze axis {i} of {x.full()}: its size is "
                                 f"{full[i]}, not 1")
    out = tuple(s for i, s in enumerate(full) if i not in norm)
    out_ps = out[1:] if x.batched else out
    if not out_ps:
        cx.unsupported(f"squeezing {x.full()} leaves no per-sample axis")
    return cx.emit(L.Reshape(out_ps, name=cx.label), [x])


def Cast(cx, input, *, to, saturate=1, round_mode=None):
    from onnx import helper
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(int(to)))
    except Exception:
        raise cx.format_error(f"'to' = {to} is not a known tensor type") from None
    if input is not None and input.foldable:
        return cx.fold(lambda v: np.asarray(v).astype(dtype), input)
    x = cx.data(input, "input", unbatched_ok=True)
    if dtype != np.float32:
        cx.unsupported(f"a runtime Cast to {dtype} (fastconv tensors are float32; Cast is "
                       f"folded in constant chains)")
    return cx.emit(L.Identity(name=cx.label), [x])


_CONVERTERS: Dict[str, Callable] = {f.__name__: f for f in (
    Conv, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, Relu, LeakyRelu, Softmax,
    LRN, BatchNormalization, Dropout, Flatten, Reshape, Gemm, MatMul, Add, Sum, Concat,
    Identity, Constant, ConstantOfShape, Shape, Gather, Unsqueeze, Squeeze, Cast)}
# converters that evaluate constant inputs themselves; for the others a node whose
# inputs are all constant is evaluated by onnx.reference
_SELF_FOLDING = {"Flatten", "Reshape", "MatMul", "Add", "Sum", "Concat", "Identity",
                 "Constant", "ConstantOfShape", "Shape", "Gather", "Unsqueeze", "Squeeze",
                 "Cast"}


def _signature(fn) -> Tuple[int, bool, set, set]:
    """(positional inputs, variadic, keyword names, required keywords) of a converter."""
    params = list(inspect.signature(fn).parameters.values())[1:]
    npos = sum(p.kind == p.POSITIONAL_OR_KEYWORD for p in params)
    var = any(p.kind == p.VAR_POSITIONAL for p in params)
    kw = {p.name for p in params if p.kind == p.KEYWORD_ONLY}
    req = {p.name for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty}
    return npos, var, kw, req


_SIGNATURES = {op: _signature(fn) for op, fn in _CONVERTERS.items()}


# ====================================================================== the importer

class _Result:
    """What an import produced: the model (None when every output is a constant), the
    constant outputs, how each model input is fed from the ONNX value, and which outputs
    carry no batch axis."""

    def __init__(self):
        self.model = None
        self.const_outputs: Dict[str, np.ndarray] = {}
        self.input_roles: Dict[str, str] = {}      # name -> "data" | "param" | "bcast" | "scalar"
        self.unbatched_outputs: set = set()
        self.output_names: List[str] = []
        self.label = ""


# roles of graph inputs by the slot that reads them
_WEIGHT_SLOTS = {"Conv": {1, 2}, "Gemm": {1}, "MatMul": {1}, "BatchNormalization": {1, 2, 3, 4},
                 "Reshape": {1}, "Unsqueeze": {1}, "Squeeze": {1}, "ConstantOfShape": {0},
                 "Gather": {1}, "PRelu": {1}, "InstanceNormalization": {1, 2}}
_IGNORED_SLOTS = {"Dropout": {1, 2}}
_BROADCAST_OPS = {"Add", "Sum", "Sub", "Mul", "Div", "Max", "Min", "Mean", "Pow"}


class _Importer:
    def __init__(self, proto, label: str, input_shapes: Optional[Dict[str, Sequence[int]]] = None,
                 where: str = "load_onnx"):
        onnx = _onnx()
        self.where = where
        self.label = label
        opset = _default_opset(proto)
        newest = onnx.defs.onnx_opset_version()
        if opset > newest:
            raise UnsupportedOperatorError(
                f"{where}: {label} uses opset {opset}, newer than the newest the installed "
                f"onnx {onnx.__version__} knows ({newest})")
        if opset < MIN_OPSET:
            try:
                from onnx import version_converter
                proto = version_converter.convert_version(proto, MIN_OPSET)
            except Exception as e:
                raise UnsupportedOperatorError(
                    f"{where}: {label} uses opset {opset}; fastconv reads opsets {MIN_OPSET} to "
                    f"{newest} and onnx's version converter could not upgrade it: "
                    f"{type(e).__name__}: {e}") from None
            opset = _default_opset(proto)
        self.proto = proto
        self.graph = proto.graph
        self.opset = opset
        # a folded constant may be as large as twice the file's own weights (transposes,
        # sums of initializers) or 1M elements, never more: a 200-byte Tile or Expand must
        # not make the loader build gigabytes
        self.fold_budget = max(1 << 20, 2 * sum(math.prod(t.dims) for t in proto.graph.initializer))
        self.input_shapes = {k: tuple(int(s) for s in v) for k, v in (input_shapes or {}).items()}
        self._since: Dict[str, Optional[int]] = {}
        self._schemas: Dict[str, Any] = {}
        self.values: Dict[str, _V] = {}
        self.nodes: List[Tuple[str, L.Layer, Tuple[str, ...]]] = []
        self.node_index: Dict[str, int] = {}
        self.producer_where: Dict[str, str] = {}
        self.used_names: set = set()      # every ONNX tensor name
        self.claimed: set = set()         # names of fastconv nodes and inputs
        self.model_inputs: Dict[str, Tuple[int, ...]] = {}
        self.result = _Result()
        self.unsupported: List[Tuple[int, str]] = []
        self.shape_errors: List[ShapeError] = []
        self.fusable: Dict[str, str] = {}
        self.declared_batch: Optional[int] = None
        self.consumers: Dict[str, int] = {}
        self.graph_outputs = [o.name for o in self.graph.output]
        unknown = set(self.input_shapes) - {i.name for i in self.graph.input}
        if unknown:
            raise ValueError(f"{where}: input_shapes names {sorted(unknown)}, which are not "
                             f"graph inputs of {label}")

    # -------------------------------------------------------------- schema
    def since(self, op: str) -> Optional[int]:
        if op not in self._since:
            from onnx import defs
            try:
                self._schemas[op] = defs.get_schema(op, self.opset, "")
                self._since[op] = int(self._schemas[op].since_version)
            except Exception:
                self._since[op] = None
        return self._since[op]

    # -------------------------------------------------------------- bookkeeping
    def fresh(self, name: str) -> str:
        """A new tensor name for an intermediate node: `name`, or name::k when taken."""
        base, k = name, 1
        while name in self.used_names or name in self.claimed:
            name = f"{base}::{k}"
            k += 1
        self.claimed.add(name)
        return name

    def claim(self, name: str) -> str:
        """The node's own ONNX output name for the fastconv node that produces it."""
        if name in self.claimed:
            return self.fresh(name)
        self.claimed.add(name)
        return name

    def add_node(self, name, layer, inputs, where):
        self.node_index[name] = len(self.nodes)
        self.nodes.append((name, layer, tuple(inputs)))
        self.producer_where[name] = where

    def is_used(self, name: str) -> bool:
        return self.consumers.get(name, 0) > 0 or name in self.graph_outputs

    def mark_fusable(self, name: str, cx: _Ctx) -> None:
        """A Linear without bias whose output only an Add reads may take that Add's
        constant as its bias."""
        onnx_out = cx.out
        if name == onnx_out and self.consumers.get(onnx_out, 0) == 1 \
                and onnx_out not in self.graph_outputs:
            self.fusable[name] = onnx_out

    def fuse_bias(self, v: _V, c: np.ndarray, cx: _Ctx) -> Optional[_V]:
        if v.name not in self.fusable:
            return None
        i = self.node_index[v.name]
        name, layer, inputs = self.nodes[i]
        if not isinstance(layer, L.Linear) or layer.bias is not None:
            return None
        n = layer.out_features
        if c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1):
            return None
        try:
            bias = np.broadcast_to(c.reshape(c.shape[-1:] if c.ndim else ()), (n,))
        except ValueError:
            return None
        new = L.Linear(layer.in_features, n, bias=True, weight=layer.weight,
                       bias_value=bias.astype(np.float32), name=layer.name)
        out = self.claim(cx.out)
        del self.node_index[name]
        self.fusable.pop(name)
        self.nodes[i] = (out, new, inputs)
        self.node_index[out] = i
        self.producer_where[out] = cx.where
        return _V.rt(out, (n,), True)

    # -------------------------------------------------------------- validation, order
    def _check_names_and_order(self) -> List[int]:
        g = self.graph
        defined: Dict[str, str] = {}
        for t in g.initializer:
            if t.name in defined:
                raise ModelFormatError(f"{self.where}: {self.label}: initializer {t.name!r} "
                                       f"appears twice")
            defined[t.name] = "an initializer"
        for t in g.sparse_initializer:
            name = t.values.name
            if name in defined:
                raise ModelFormatError(f"{self.where}: {self.label}: initializer {name!r} "
                                       f"appears twice")
            defined[name] = "an initializer"
        seen_inputs = set()
        for i in g.input:
            if not i.name:
                raise ModelFormatError(f"{self.where}: {self.label}: a graph input has no name")
            if i.name in seen_inputs:
                raise ModelFormatError(f"{self.where}: {self.label}: graph input {i.name!r} is "
                                       f"declared twice")
            seen_inputs.add(i.name)
            defined.setdefault(i.name, "a graph input")
        producer: Dict[str, int] = {}
        node_names: Dict[str, int] = {}
        wheres = [f"node {n.name!r} ({n.op_type})" if n.name else f"{n.op_type} #{k}"
                  for k, n in enumerate(g.node)]
        for k, node in enumerate(g.node):
            if node.name:
                if node.name in node_names:
                    raise ModelFormatError(f"{self.where}: {self.label}: two nodes are named "
                                           f"{node.name!r} (#{node_names[node.name]} and #{k})")
                node_names[node.name] = k
            for o in node.output:
                if not o:
                    continue
                if o in producer:
                    raise ModelFormatError(f"{self.where}: {self.label}: tensor {o!r} is "
                                           f"written by both {wheres[producer[o]]} and "
                                           f"{wheres[k]}")
                if o in defined:
                    raise ModelFormatError(f"{self.where}: {self.label}: {wheres[k]} writes "
                                           f"{o!r}, which is also {defined[o]}")
                producer[o] = k
        deps: List[set] = []
        for k, node in enumerate(g.node):
            d = set()
            for name in node.input:
                if not name:
                    continue
                self.consumers[name] = self.consumers.get(name, 0) + 1
                if name in producer:
                    d.add(producer[name])
                elif name not in defined:
                    raise ModelFormatError(
                        f"{self.where}: {self.label}: {wheres[k]} reads {name!r}, which no node, "
                        f"graph input or initializer defines (a missing initializer?)")
            if k in d:
                raise ModelFormatError(f"{self.where}: {self.label}: {wheres[k]} reads its own "
                                       f"output (a cycle)")
            deps.append(d)
        for o in self.graph_outputs:
            if o not in producer and o not in defined:
                raise ModelFormatError(f"{self.where}: {self.label}: graph output {o!r} is not "
                                       f"produced by any node")
        if len(set(self.graph_outputs)) != len(self.graph_outputs):
            raise ModelFormatError(f"{self.where}: {self.label}: the graph lists an output "
                                   f"twice: {self.graph_outputs}")
        # Kahn's algorithm, keeping the file's order where it already works
        users: Dict[int, List[int]] = {}
        missing = [len(d) for d in deps]
        for k, d in enumerate(deps):
            for p in d:
                users.setdefault(p, []).append(k)
        ready = [k for k, m in enumerate(missing) if m == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            k = heapq.heappop(ready)
            order.append(k)
            for u in users.get(k, ()):
                missing[u] -= 1
                if missing[u] == 0:
                    heapq.heappush(ready, u)
        if len(order) != len(deps):
            stuck = [wheres[k] for k, m in enumerate(missing) if m > 0]
            raise ModelFormatError(f"{self.where}: {self.label}: the graph has a cycle through "
                                   + ", ".join(stuck[:8]) + (" ..." if len(stuck) > 8 else ""))
        return order

    def _load_constants(self) -> None:
        for t in self.graph.initializer:
            self.values[t.name] = _V.const(self._tensor(t, f"initializer {t.name!r}"))
        for st in self.graph.sparse_initializer:
            self.values[st.values.name] = _V.const(self._sparse(st))

    def _tensor(self, t, what: str) -> np.ndarray:
        from onnx import numpy_helper
        try:
            arr = numpy_helper.to_array(t)
        except Exception as e:
            raise ModelFormatError(f"{self.where}: {self.label}: {what} cannot be read "
                                   f"(truncated or corrupt data): {type(e).__name__}: {e}") \
                from None
        if tuple(arr.shape) != tuple(int(d) for d in t.dims):
            raise ModelFormatError(f"{self.where}: {self.label}: {what} holds {arr.size} values "
                                   f"for dims {list(t.dims)}")
        return arr

    def _sparse(self, st) -> np.ndarray:
        vals = self._tensor(st.values, f"sparse initializer {st.values.name!r}")
        idx = self._tensor(st.indices, f"indices of {st.values.name!r}").astype(np.int64)
        dims = tuple(int(d) for d in st.dims)
        dense = np.zeros(dims, vals.dtype)
        try:
            if idx.ndim == 1:
                dense.reshape(-1)[idx] = vals
            else:
                dense[tuple(idx.T)] = vals
        except (IndexError, ValueError) as e:
            raise ModelFormatError(f"{self.where}: {self.label}: sparse initializer "
                                   f"{st.values.name!r}: {e}") from None
        return dense

    def _declare_inputs(self) -> None:
        for i in self.graph.input:
            if i.name in self.values:
                continue       # an initializer: a constant, not a model input
            tt = i.type.tensor_type if i.type.HasField("tensor_type") else None
            if tt is None:
                decl = (None, None)
            else:
                dims = None
                if tt.HasField("shape"):
                    dims = [int(d.dim_value) if d.HasField("dim_value") else None
                            for d in tt.shape.dim]
                decl = (int(tt.elem_type), dims)
            self.values[i.name] = _V("pending", name=i.name, decl=decl)
        # the declared batch size of the first float input with a fixed one
        for i in self.graph.input:
            v = self.values.get(i.name)
            if v is not None and v.kind == "pending" and v.decl[0] in _FLOAT_TYPES and \
                    v.decl[1] and v.decl[1][0] is not None:
                self.declared_batch = v.decl[1][0]
                break

    # -------------------------------------------------------------- graph inputs
    def _role(self, node, slot: int, ins: List[Optional[_V]]) -> str:
        op = node.op_type
        v = ins[slot]
        if slot in _IGNORED_SLOTS.get(op, ()):
            return "ignored"
        if slot in _WEIGHT_SLOTS.get(op, ()):
            return "param"
        if op == "Gemm" and slot == 2:
            dims = v.decl[1] or []
            if len(dims) <= 1:
                return "param"
            return "bcast" if dims[0] == 1 else "data"
        if op in _BROADCAST_OPS:
            ranks = [u.onnx_rank() for u in ins if u is not None]
            ranks = [r for r in ranks if r is not None]
            r = v.onnx_rank()
            if r is None or not ranks:
                return "data"
            top = max(ranks)
            if r < top:
                return "param"
            dims = v.decl[1]
            if dims and dims[0] == 1:
                for j, u in enumerate(ins):
                    if j == slot or u is None or u.onnx_rank() != top:
                        continue
                    if (u.kind == "rt" and u.batched) or (
                            u.kind == "pending" and u.decl[1] and u.decl[1][0] != 1):
                        return "bcast"
            return "data"
        return "data"

    def _materialize(self, v: _V, role: str, cx: _Ctx) -> _V:
        name = v.name
        if role == "ignored":
            new = _V("absent", name=name)
            self.values[name] = new
            return new
        elem, dims = v.decl
        if elem is None:
            raise _Unsupported(f"graph input {name!r} is not a tensor")
        if elem not in _FLOAT_TYPES:
            from onnx import TensorProto
            try:
                tname = TensorProto.DataType.Name(elem).lower()
            except ValueError:
                tname = f"of type {elem}"
            raise _Unsupported(f"graph input {name!r} is {tname}; fastconv runs float32 and "
                               f"needs integer inputs (shapes, axes, indices) as initializers")
        if role == "data" and name in self.input_shapes:
            ps = self.input_shapes[name]
            if dims is not None and len(dims) != len(ps) + 1:
                raise ShapeError(f"{self.where}: input_shapes[{name!r}] = {ps} does not fit the "
                                 f"declared shape {dims} (rank {len(dims)})")
            dims = [None] + list(ps)
        if dims is None:
            raise ShapeError(f"{self.where}: graph input {name!r} declares no shape; pass "
                             f"input_shapes={{{name!r}: (C, H, W)}}")
        if role == "data":
            if len(dims) < 2:
                raise ShapeError(f"{self.where}: graph input {name!r} has shape {dims}: fastconv "
                                 f"inputs are [N, ...] with at least one axis after the batch "
                                 f"axis")
            ps = dims[1:]
        elif role == "bcast":
            ps = dims[1:]
        else:
            ps = dims if dims else [1]
        bad = [k for k, s in enumerate(ps) if s is None or s < 1 or s > _MAX_DIM]
        if bad:
            raise ShapeError(f"{self.where}: graph input {name!r} has shape {dims}: fastconv "
                             f"needs fixed per-sample sizes from 1 to {_MAX_DIM} (axis "
                             f"{bad[0] + (role in ('data', 'bcast'))}"
                             f" is {'symbolic' if ps[bad[0]] is None else ps[bad[0]]}); pass "
                             f"input_shapes={{{name!r}: (...)}} to fix them")
        ps = tuple(int(s) for s in ps)
        if role == "param" and not dims:
            role = "scalar"
        batched = role in ("data", "bcast")
        new = _V.rt(name, ps, batched, rank=len(dims))
        self.values[name] = new
        self.claimed.add(name)
        self.model_inputs[name] = ps
        self.result.input_roles[name] = role
        return new

    # -------------------------------------------------------------- conversion
    def _attrs(self, node, cx: _Ctx) -> Dict[str, Any]:
        from onnx import AttributeProto, helper
        out = {}
        for a in node.attribute:
            if a.ref_attr_name:
                cx.unsupported(f"attribute {a.name!r} refers to a function attribute")
            if a.type == AttributeProto.UNDEFINED:
                raise cx.format_error(f"attribute {a.name!r} has no type (corrupt file?)")
            spec = self._schemas.get(node.op_type) if node.domain in _DEFAULT_DOMAINS else None
            want = spec.attributes.get(a.name) if spec is not None else None
            if want is not None and int(want.type) != int(a.type):
                # as onnx.checker: a FLOATS kernel_shape or a STRING ceil_mode would
                # otherwise be truncated or read as true
                raise cx.format_error(
                    f"attribute {a.name!r} is of type {_attr_type_name(a.type)}, but "
                    f"{node.op_type} defines it as {_attr_type_name(int(want.type))}")
            if a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
                cx.unsupported(f"attribute {a.name!r} is a subgraph")
            try:
                val = helper.get_attribute_value(a)
            except Exception as e:
                raise cx.format_error(f"attribute {a.name!r} cannot be read: {e}") from None
            if isinstance(val, bytes):
                val = val.decode("utf-8", "replace")
            elif a.type == AttributeProto.STRINGS:
                val = [s.decode("utf-8", "replace") for s in val]
            elif a.type == AttributeProto.TENSOR:
                val = self._tensor(a.t, f"attribute {a.name!r} of {cx.where}")
            elif a.type == AttributeProto.SPARSE_TENSOR:
                val = self._sparse(a.sparse_tensor)
            elif a.type == AttributeProto.TENSORS:
                cx.unsupported(f"attribute {a.name!r} holds a list of tensors")
            out[a.name] = val
        return out

    def _fold_reference(self, cx: _Ctx, ins: List[Optional[_V]]) -> List[_V]:
        """A node of constant inputs that has no NumPy converter, through onnx.reference."""
        from onnx.reference import ReferenceEvaluator
        node = cx.node
        if any(v is not None and v.kind == "shape" for v in ins) and cx.op not in _SHAPE_SAFE:
            cx.unsupported("its inputs depend on the batch size")

        consts = [None if v is None or v.kind != "const" else np.asarray(v.value) for v in ins]
        if cx.op == "Tile" and len(consts) >= 2 and all(c is not None for c in consts[:2]):
            cx.check_fold_size(int(np.prod(np.asarray(consts[0].shape, np.float64)
                                           * np.abs(consts[1].astype(np.float64).reshape(-1)[
                                               :consts[0].ndim]))), "Tile", unsupported=True)
        if cx.op == "Expand" and len(consts) >= 2 and all(c is not None for c in consts[:2]):
            try:
                out = np.broadcast_shapes(consts[0].shape,
                                          tuple(int(d) for d in consts[1].reshape(-1)))
            except (ValueError, TypeError, OverflowError):
                out = None
            if out is not None:
                cx.check_fold_size(math.prod(out), "Expand", unsupported=True)

        def run(k):
            feeds = {}
            for name, v in zip(node.input, ins):
                if name and v is not None:
                    feeds[name] = v.probes[k] if v.kind == "shape" else v.value
            try:
                ev = ReferenceEvaluator(node, opsets={"": self.opset})
                return [np.asarray(o) for o in ev.run(None, feeds)]
            except Exception as e:
                cx.unsupported(f"its constant inputs could not be evaluated at load "
                               f"({type(e).__name__}: {e})")

        if any(v is not None and v.kind == "shape" for v in ins):
            a, b = run(0), run(1)
            outs = []
            for x, y in zip(a, b):
                if x.shape == y.shape and np.array_equal(x, y):
                    outs.append(_V.const(x))
                elif x.size > _FOLD_LIMIT:
                    cx.unsupported("its value depends on the batch size")
                else:
                    outs.append(_V("shape", probes=(x, y)))
            return outs
        return [_V.const(o) for o in run(0)]

    def _convert(self, k: int) -> None:
        node = self.graph.node[k]
        cx = _Ctx(self, node, k)
        ins: List[Optional[_V]] = [None if not n else self.values[n] for n in node.input]
        outs: List[_V]
        try:
            if any(v is not None and v.kind == "poison" for v in ins):
                # an earlier node failed and has been reported; this one is listed too
                # when fastconv could not convert it anyway
                if node.domain not in _DEFAULT_DOMAINS or cx.version is None or \
                        cx.op not in _CONVERTERS:
                    cx.unsupported("")
                raise _Skip()
            if node.domain not in _DEFAULT_DOMAINS:
                cx.unsupported(f"operators of domain {node.domain!r} are not supported")
            if cx.version is None:
                cx.unsupported(f"not an operator of the default domain at opset {self.opset}")
            for slot in range(len(ins)):
                v = ins[slot]
                if v is not None and v.kind == "pending":
                    v = self.values[v.name]
                    if v.kind == "pending":
                        v = self._materialize(v, self._role(node, slot, ins), cx)
                    ins[slot] = v
            fn = _CONVERTERS.get(cx.op)
            present = [v for v in ins if v is not None]
            all_const = all(v.foldable for v in present)
            if fn is None or (cx.op not in _SELF_FOLDING and present and all_const):
                if cx.op in _NONDETERMINISTIC:
                    cx.unsupported("")
                if fn is None and not all_const:
                    cx.unsupported("")
                if fn is None and not present and cx.op not in ("Range",):
                    cx.unsupported("")
                outs = self._fold_reference(cx, ins)
            else:
                npos, var, kw, req = _SIGNATURES[cx.op]
                attrs = self._attrs(node, cx)
                unknown = sorted(set(attrs) - kw)
                if unknown:
                    cx.unsupported(f"attribute {unknown[0]!r} is not supported")
                missing = sorted(req - set(attrs))
                if missing:
                    raise cx.format_error(f"required attribute {missing[0]!r} is missing")
                if len(ins) > npos and not var:
                    cx.unsupported(f"{len(ins)} inputs (fastconv reads {npos})")
                try:
                    res = fn(cx, *ins, **attrs)
                except (ValueError, TypeError, OverflowError) as e:
                    # layer constructors reject bad attribute values; an attribute of
                    # the wrong kind (a list for a number, inf for an int) fails on
                    # conversion
                    if isinstance(e, (ShapeError, ModelFormatError)):
                        raise
                    raise cx.format_error(f"bad attribute or input: {e}") from None
                outs = list(res) if isinstance(res, (list, tuple)) else [res]
            for i in range(len(outs), len(node.output)):
                if cx.output_used(i):
                    cx.unsupported(f"output #{i} ({node.output[i]!r}) is not supported")
        except _Unsupported as e:
            self.unsupported.append((k, self._describe(cx, e.reason)))
            outs = []
        except _Skip:
            outs = []
        except ShapeError as e:
            self.shape_errors.append(e)
            outs = []
        for i, name in enumerate(node.output):
            if name:
                self.values[name] = outs[i] if i < len(outs) else _POISON

    def _describe(self, cx: _Ctx, reason: str) -> str:
        dom = cx.node.domain
        ver = self.opset if dom in _DEFAULT_DOMAINS else next(
            (int(i.version) for i in self.proto.opset_import if i.domain == dom), "?")
        op = cx.op if dom in _DEFAULT_DOMAINS else f"{dom}.{cx.op}"
        at = f"node {cx.node.name!r}" if cx.node.name else f"op #{cx.idx}"
        return f"{op} (opset {ver}) at {at}" + (f": {reason}" if reason else "")

    def _check_declared(self) -> None:
        """The shapes the model declares (value_info, outputs) against the inferred ones."""
        g = self.graph
        for vi in list(g.value_info) + list(g.output):
            v = self.values.get(vi.name)
            if v is None or v.kind != "rt" or v.name not in self.producer_where:
                continue
            if not vi.type.HasField("tensor_type") or \
                    not vi.type.tensor_type.HasField("shape"):
                continue
            dims = [int(d.dim_value) if d.HasField("dim_value") else None
                    for d in vi.type.tensor_type.shape.dim]
            full = ((None,) if v.batched else ()) + v.shape
            if v.rank != len(full):        # scalar parameters are held as (1,)
                continue
            bad = len(dims) != len(full) or any(
                d is not None and f is not None and d != f for d, f in zip(dims, full))
            if bad:
                shown = ["?" if d is None else d for d in dims]
                raise ShapeError(f"ONNX {self.producer_where[v.name]}: output {vi.name!r} comes "
                                 f"out as {v.full()} but the model declares {shown}")

    def run(self, compile: bool = True, need_model: bool = True) -> _Result:
        from fastconv.graph import Model
        order = self._check_names_and_order()
        self._load_constants()
        self._declare_inputs()
        self.used_names.update(n for node in self.graph.node for n in node.output if n)
        self.used_names.update(self.values)
        for k in order:
            self._convert(k)
        res = self.result
        res.label = self.label
        res.output_names = list(self.graph_outputs)
        model_outputs = []
        for o in self.graph_outputs:
            v = self.values[o]
            if v.kind == "pending":
                try:
                    v = self._materialize(v, "data", None)
                except _Unsupported as e:
                    self.unsupported.append((len(self.graph.node), f"output {o!r}: {e.reason}"))
                    continue
            if v.kind == "poison":
                continue
            if v.kind == "const":
                if need_model:
                    self.unsupported.append((len(self.graph.node), f"output {o!r} is a constant "
                                             f"(computed entirely at load)"))
                res.const_outputs[o] = v.value
            elif v.kind == "shape":
                self.unsupported.append((len(self.graph.node), f"output {o!r} depends on the "
                                         f"batch size as a value (a shape)"))
            elif v.kind == "absent":
                self.unsupported.append((len(self.graph.node), f"output {o!r} is an ignored "
                                         f"input"))
            else:
                if v.name != o:
                    # an output that is another tensor (e.g. a folded Identity)
                    ident = L.Identity(name=o)
                    ident.output_shape([v.shape])
                    self.add_node(o, ident, [v.name], f"output {o!r}")
                    v = _V.rt(o, v.shape, v.batched, v.rank)
                model_outputs.append(o)
                if not v.batched:
                    res.unbatched_outputs.add(o)
        if self.unsupported:
            self.unsupported.sort()
            lines = "\n".join(f"  - {d}" for _, d in self.unsupported)
            extra = ""
            if self.shape_errors:
                extra = f"\n(and {len(self.shape_errors)} node(s) whose shapes do not fit: " \
                        f"{self.shape_errors[0]})"
            n = len(self.unsupported)
            raise UnsupportedOperatorError(
                f"{self.where}: {self.label}: {n} unsupported operator{'s' if n > 1 else ''} "
                f"(fastconv converts {', '.join(sorted(_CONVERTERS))}):\n{lines}{extra}")
        if self.shape_errors:
            raise self.shape_errors[0]
        self._check_declared()
        if not model_outputs:
            if need_model:
                raise ModelFormatError(f"{self.where}: {self.label}: every output is a constant; "
                                       f"there is nothing to run")
            return res
        if not self.model_inputs:
            raise ModelFormatError(f"{self.where}: {self.label}: the graph has no runtime "
                                   f"inputs")
        res.model = Model(self.nodes, dict(self.model_inputs), model_outputs,
                          name=self.graph.name or "model", compile=compile)
        return res


class _Skip(Exception):
    pass


def _import(src, input_shapes=None, compile=True, need_model=True, where="load_onnx") -> _Result:
    proto, label = _parse(src, where)
    return _Importer(proto, label, input_shapes, where).run(compile, need_model)


def load_onnx(src, input_shapes: Optional[Dict[str, Sequence[int]]] = None,
              compile: bool = True):
    """Read an ONNX model (a path, bytes or an onnx.ModelProto) into a fastconv Model.

    input_shapes: optional per-sample shapes {input name: (C, H, W)} for inputs whose
    non-batch dimensions the file leaves symbolic. Raises ModelFormatError for files
    that are not readable ONNX models, UnsupportedOperatorError listing every operator
    fastconv cannot run, ShapeError naming the node whose shapes do not fit."""
    return _import(src, input_shapes, compile).model


# ====================================================================== load_weights

_WEIGHT_KINDS = {"Conv2d": "conv", "Conv1d": "conv", "Linear": "linear",
                 "BatchNorm2d": "batchnorm"}


def load_weights(model, src):
    """Load the weights of an ONNX export (path, bytes or ModelProto) into `model` (a
    fastconv Model built with the same architecture, e.g. fc.models.vgg16()).

    The ONNX file's parameterised layers (Conv, Gemm / MatMul(+Add), BatchNormalization)
    are matched in graph order, kind by kind, to the model's Conv2d/Conv1d, Linear and
    BatchNorm2d layers; every mismatch (a count that differs, a shape that differs) is
    named in one ShapeError and nothing is changed then. BatchNorm epsilons are taken from
    the file too. Returns the model, recompiled."""
    res = _import(src, compile=False, where="load_weights")
    src_model = res.model

    def collect(m):
        out = {"conv": [], "linear": [], "batchnorm": []}
        for n in m.nodes:
            kind = _WEIGHT_KINDS.get(n.layer.kind)
            if kind is not None:
                out[kind].append(n)
        return out

    theirs, ours = collect(src_model), collect(model)
    dyn = [n.name for n in src_model.nodes if n.layer.kind in ("OnnxConv", "OnnxGemm",
                                                                "OnnxBatchNorm")]
    problems = []
    if dyn:
        problems.append(f"the ONNX file feeds the weights of {dyn[:3]} as graph inputs, not "
                        f"initializers")
    pairs = []
    for kind in ("conv", "linear", "batchnorm"):
        a, b = ours[kind], theirs[kind]
        if len(a) != len(b):
            problems.append(f"{kind} layers: the model has {len(a)}, the ONNX file {len(b)}"
                            + (f" (unmatched in the model: {[n.name for n in a[len(b):]]})"
                               if len(a) > len(b) else
                               f" (unmatched in the file: {[n.layer.name for n in b[len(a):]]})"))
        for mine, other in zip(a, b):
            pm, po = mine.layer.params, other.layer.params
            for p in sorted(set(pm) | set(po), key=lambda s: (s != "weight", s)):
                es = tuple(pm[p].shape) if p in pm else None
                fs = tuple(po[p].shape) if p in po else None
                if es != fs:
                    problems.append(f"layer {mine.name!r} ({mine.layer.kind}) {p}: expected "
                                    f"shape {es if es is not None else 'none'}, found "
                                    f"{fs if fs is not None else 'none'} in ONNX node "
                                    f"{other.layer.name!r}")
            pairs.append((mine, other))
    if problems:
        raise ShapeError(f"load_weights: {res.label} does not fit model {model.name!r} "
                         f"({len(problems)} mismatch{'es' if len(problems) > 1 else ''}):\n"
                         + "\n".join(f"  - {p}" for p in problems))
    for mine, other in pairs:
        for p, arr in other.layer.params.items():
            mine.layer.params[p] = np.array(arr, dtype=np.float32, order="C", copy=True)
        if mine.layer.kind == "BatchNorm2d":
            mine.layer.eps = other.layer.eps
    model.compile()
    return model
