"""Layers: the nodes of a fastconv Model.

A layer knows, for per-sample input shapes (no batch axis: (C, H, W), (C, W) or (F,)),
its output shape (or a ShapeError that names the layer, the input shape and the rule
with the numbers filled in), its parameter count, its multiply-accumulates per sample
and how it changes the receptive field. `forward` runs the plain (unfused) semantics on
batched arrays through fastconv.functional. `config()` gives the JSON-serialisable
constructor arguments, `from_config(config, params)` rebuilds the layer.
"""
from __future__ import annotations

import contextlib
import math
import threading
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Type

import numpy as np

from fastconv import functional as F
from fastconv.errors import ModelFormatError, ShapeError
from fastconv.functional import (_ALGOS, _as_float32, _check_output_axis, _int, _pads1d,
                                 _pads2d, _tuple)

__all__ = [
    "Shape", "ReceptiveField", "Layer", "LAYER_TYPES", "register_layer",
    "Conv2d", "Conv1d", "MaxPool2d", "AvgPool2d", "MaxPool1d", "AvgPool1d",
    "GlobalAvgPool2d", "GlobalMaxPool2d", "ReLU", "LeakyReLU", "BatchNorm2d", "Dropout",
    "Flatten", "Linear", "Softmax", "LRN", "StochasticPool2d", "SpectralPool2d", "Add",
    "Concat", "Reshape", "Identity",
]

Shape = Tuple[int, ...]


class ReceptiveField(NamedTuple):
    """Receptive field of one tensor, one entry per spatial axis (H, W or just W).

    size: input pixels one output element sees; jump: input pixels between two adjacent
    outputs; start: input coordinate of the centre of the first output's field (pixel
    centres sit at 0.5, 1.5, ...). full=True once a layer mixes the whole map (global
    pooling, Flatten, Linear, spectral pooling): size/jump/start then keep the last
    spatial values."""
    size: Tuple[float, ...]
    jump: Tuple[float, ...]
    start: Tuple[float, ...]
    full: bool = False

    @classmethod
    def for_input(cls, shape: Sequence[int]) -> "ReceptiveField":
        """The field of a model input of per-sample shape (C, H, W), (C, W) or (F,):
        size 1, jump 1, start 0.5 on every spatial axis; a feature vector has no
        spatial axes and counts as full."""
        nsp = max(len(shape) - 1, 0)
        return cls((1.0,) * nsp, (1.0,) * nsp, (0.5,) * nsp, nsp == 0)

    def through(self, kernel: Sequence[int], stride: Sequence[int],
                dilation: Sequence[int], pad_begin: Sequence[int]) -> "ReceptiveField":
        """The field after a sliding window (one entry per spatial axis):
        k_eff = d*(k-1)+1; size += (k_eff-1)*jump; start += ((k_eff-1)/2 - p)*jump;
        jump *= s."""
        size, jump, start = [], [], []
        for r, j, s0, k, s, d, p in zip(self.size, self.jump, self.start, kernel, stride,
                                        dilation, pad_begin):
            keff = d * (k - 1) + 1
            size.append(r + (keff - 1) * j)
            start.append(s0 + ((keff - 1) / 2 - p) * j)
            jump.append(j * s)
        return ReceptiveField(tuple(size), tuple(jump), tuple(start), self.full)

    def mixed(self) -> "ReceptiveField":
        """The same values, marked as covering the whole map."""
        return self._replace(full=True)


LAYER_TYPES: Dict[str, Type["Layer"]] = {}


class _Rebuilding(threading.local):
    active = False


# set (per thread) while Model.from_config rebuilds saved layers: see Layer._param
_rebuilding = _Rebuilding()


@contextlib.contextmanager
def params_required():
    """Within this block a layer built without one of its params raises
    ModelFormatError instead of initialising it (used when loading saved models)."""
    old = _rebuilding.active
    _rebuilding.active = True
    try:
        yield
    finally:
        _rebuilding.active = old


def register_layer(cls):
    """Class decorator: make `cls` known by its class name (io, pickle, ONNX import)."""
    LAYER_TYPES[cls.__name__] = cls
    return cls


def _shape_str(shapes) -> str:
    if len(shapes) == 1:
        return f"input shape {tuple(shapes[0])}"
    return "input shapes " + ", ".join(str(tuple(s)) for s in shapes)


def _jsonable(v):
    """Tuples to lists, NumPy scalars to Python ones (recursively)."""
    if isinstance(v, (tuple, list)):
        return [_jsonable(e) for e in v]
    if isinstance(v, dict):
        return {k: _jsonable(e) for k, e in v.items()}
    if isinstance(v, np.generic):
        return v.item()
    return v


def _tuple_arg(v):
    """A config value read back from JSON: lists become tuples again."""
    return tuple(_tuple_arg(e) for e in v) if isinstance(v, list) else v


def _he_normal(shape, fan_in: int, rng: np.random.Generator) -> np.ndarray:
    """He (Kaiming) normal init: N(0, 2 / fan_in), float32 C-contiguous."""
    w = rng.standard_normal(shape, dtype=np.float32)
    w *= np.float32(math.sqrt(2.0 / fan_in))
    return w


class Layer:
    """Base class of every layer (see the module docstring)."""

    num_inputs: int = 1          # Add/Concat: -1 = any number >= 2
    # constructor keyword that receives each param in from_config (param -> kwarg)
    _param_args: Dict[str, str] = {}

    def __init__(self, name: Optional[str] = None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: name must be a str or None, got "
                            f"{type(name).__name__}")
        self.name = name
        self.params: Dict[str, np.ndarray] = {}
        self._last_in_shapes: Optional[List[Shape]] = None

    # ------------------------------------------------------------ identity
    @property
    def kind(self) -> str:
        return type(self).__name__

    @property
    def label(self) -> str:
        """What error messages call this layer: its name, else its kind."""
        return self.name if self.name else self.kind

    def __repr__(self) -> str:
        d = self.describe()
        return f"{self.kind}({self.name!r}{', ' + d if d else ''})"

    # ------------------------------------------------------------ shapes
    def _check_count(self, in_shapes) -> List[Shape]:
        """Normalised per-sample shapes, after checking how many there are and that
        every size is a positive int."""
        if isinstance(in_shapes, tuple) and all(isinstance(s, (int, np.integer))
                                                for s in in_shapes):
            in_shapes = [in_shapes]   # a single shape passed bare
        shapes = []
        for s in in_shapes:
            try:
                shapes.append(tuple(int(v) for v in s))
            except TypeError:
                raise TypeError(f"{self.label}: input shapes must be sequences of ints, got "
                                f"{s!r}") from None
        n = len(shapes)
        if self.num_inputs == -1:
            if n < 2:
                raise ShapeError(f"{self.label}: {self.kind} takes 2 or more inputs, got {n}"
                                 + (f" ({_shape_str(shapes)})" if n else ""))
        elif n != self.num_inputs:
            raise ShapeError(f"{self.label}: {self.kind} takes {self.num_inputs} input(s), "
                             f"got {n}" + (f" ({_shape_str(shapes)})" if n else ""))
        for s in shapes:
            if len(s) == 0:
                raise ShapeError(f"{self.label}: {_shape_str(shapes)}: a per-sample shape "
                                 f"needs at least one axis")
            if any(v < 1 for v in s):
                raise ShapeError(f"{self.label}: {_shape_str(shapes)} has a zero or negative "
                                 f"size")
        return shapes

    def _require_rank(self, shape: Shape, ranks: Sequence[int], what: str) -> None:
        if len(shape) not in ranks:
            raise ShapeError(f"{self.label}: {self.kind} expects {what}, got input shape "
                             f"{shape}")

    def output_shape(self, in_shapes: List[Shape]) -> Shape:
        """Per-sample output shape for per-sample input shapes, or ShapeError."""
        shapes = self._check_count(in_shapes)
        out = self._infer(shapes)
        self._last_in_shapes = shapes   # lets receptive_field resolve "same" padding
        return out

    def _infer(self, shapes: List[Shape]) -> Shape:
        raise NotImplementedError(f"{self.kind} does not define its output shape")

    # ------------------------------------------------------------ costs
    def num_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def macs(self, in_shapes: List[Shape]) -> int:
        """Multiply-accumulates per sample (batch 1); 0 for data movement."""
        return 0

    def receptive_field(self, rfs: List[ReceptiveField],
                        in_shapes: Optional[List[Shape]] = None) -> ReceptiveField:
        """The output's receptive field from the inputs'. Default: unchanged
        (elementwise). `in_shapes` is only needed where padding depends on the size
        ("same" with a stride); without it the shapes of the last output_shape call are
        used."""
        return rfs[0]

    def _shapes_for_rf(self, in_shapes) -> Optional[List[Shape]]:
        if in_shapes is not None:
            return self._check_count(in_shapes)
        return self._last_in_shapes

    # ------------------------------------------------------------ running
    def _check_inputs(self, inputs) -> List[np.ndarray]:
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        arrs = [_as_float32(a, "input", self.label) for a in inputs]
        for a in arrs:
            if a.ndim < 2:
                raise ShapeError(f"{self.label}: a batched input needs a batch axis and at "
                                 f"least one more, got shape {a.shape}")
        if len({a.shape[0] for a in arrs}) > 1:
            raise ShapeError(f"{self.label}: inputs have different batch sizes: "
                             + ", ".join(str(a.shape) for a in arrs))
        self._infer(self._check_count([a.shape[1:] for a in arrs]))
        return arrs

    def forward(self, inputs: List[np.ndarray]) -> np.ndarray:
        """Batched float32 arrays in, a new float32 array out."""
        raise NotImplementedError(f"{self.kind} does not define forward")

    def forward_into(self, inputs, out: np.ndarray) -> None:
        np.copyto(out, self.forward(inputs))

    def __call__(self, *inputs) -> np.ndarray:
        return self.forward(list(inputs))

    # ------------------------------------------------------------ serialisation
    def _config(self) -> dict:
        return {}

    def config(self) -> dict:
        """JSON-serialisable constructor arguments (no weights)."""
        cfg = {"name": self.name}
        cfg.update(self._config())
        return _jsonable(cfg)

    @classmethod
    def from_config(cls, config: dict, params: Optional[Dict[str, np.ndarray]] = None
                    ) -> "Layer":
        kwargs = {k: _tuple_arg(v) for k, v in config.items()}
        params = dict(params or {})
        for pname, arg in cls._param_args.items():
            if pname in params:
                kwargs[arg] = params.pop(pname)
        if params:
            raise ValueError(f"{config.get('name') or cls.__name__}: unexpected params for "
                             f"{cls.__name__}: {sorted(params)}")
        return cls(**kwargs)

    def describe(self) -> str:
        return ""

    # ------------------------------------------------------------ helpers
    def _param(self, value, pname: str, shape: Shape, default) -> np.ndarray:
        """A passed param validated and copied (float32 C-contiguous), or the default."""
        if value is None:
            if getattr(_rebuilding, "active", False):
                # rebuilding a saved model: a missing tensor is an error, reported before
                # a default of the layer's full size is allocated and filled
                raise ModelFormatError(f"{self.label}: tensor '{self.label}/{pname}' (the "
                                       f"{self.kind}'s {pname}, shape {tuple(shape)}) is "
                                       f"missing")
            arr = default()
        else:
            arr = _as_float32(value, pname, self.label)
            if arr.shape != tuple(shape):
                raise ShapeError(f"{self.label}: {pname} must have shape {tuple(shape)}, got "
                                 f"{arr.shape}")
            arr = np.array(arr, dtype=np.float32, order="C", copy=True)
        return arr

    def _weight_and_bias(self, weight, bias_value, wshape, fan_in: int, bshape, seed) -> None:
        """params["weight"] (given, else He-initialised from `seed`) and, when use_bias,
        params["bias"] (given, else zeros): the shared rule of the weighted layers."""
        self.params["weight"] = self._param(
            weight, "weight", wshape,
            lambda: _he_normal(wshape, fan_in, np.random.default_rng(seed)))
        if self.use_bias:
            self.params["bias"] = self._param(bias_value, "bias", bshape,
                                              lambda: np.zeros(bshape, np.float32))
        elif bias_value is not None:
            raise ValueError(f"{self.label}: bias_value given but bias=False")


# ================================================================== convolution

def _padding_config(p):
    """Padding as given, in a JSON-friendly form: strings stay strings."""
    if isinstance(p, str):
        return p
    if isinstance(p, (list, tuple, np.ndarray)):
        return [int(v) for v in p]
    return int(p)


class _ConvBase(Layer):
    _param_args = {"weight": "weight", "bias": "bias_value"}
    _nsp = 2   # spatial axes

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, algo, name, weight, bias_value, seed):
        super().__init__(name)
        where = self.label
        n = self._nsp
        self.in_channels = _int(in_channels, "in_channels", where, 1)
        self.out_channels = _int(out_channels, "out_channels", where, 1)
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", where, 1)
        self.stride = _tuple(stride, n, "stride", where, 1)
        self.dilation = _tuple(dilation, n, "dilation", where, 1)
        self.groups = _int(groups, "groups", where, 1)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"{where}: groups={self.groups} must divide in_channels "
                             f"({self.in_channels}) and out_channels ({self.out_channels})")
        if not isinstance(algo, str) or algo not in _ALGOS:
            raise ValueError(f"{where}: algo must be one of {_ALGOS}, got {algo!r}")
        self.algo = algo
        self._pads((1,) * n, padding)    # validates the padding form
        self.padding = padding if isinstance(padding, str) else (
            tuple(int(v) for v in padding) if isinstance(padding, (list, tuple, np.ndarray))
            else int(padding))
        self.use_bias = bool(bias)
        self.seed = seed
        wshape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        fan_in = math.prod(wshape[1:])
        self._weight_and_bias(weight, bias_value, wshape, fan_in, (self.out_channels,), seed)

    @property
    def weight(self) -> np.ndarray:
        return self.params["weight"]

    @property
    def bias(self) -> Optional[np.ndarray]:
        return self.params.get("bias")

    def _pads(self, spatial, padding=None):
        """Pads as (begins..., ends...) per axis: 2-D (top, left, bottom, right),
        1-D (begin, end)."""
        padding = self.padding if padding is None else padding
        if self._nsp == 2:
            return _pads2d(padding, spatial, self.kernel_size, self.stride, self.dilation,
                           self.label)
        return _pads1d(padding, spatial[0], self.kernel_size[0], self.stride[0],
                       self.dilation[0], self.label)

    def _infer(self, shapes):
        (shape,) = shapes
        n = self._nsp
        self._require_rank(shape, (n + 1,), "(C, H, W)" if n == 2 else "(C, W)")
        c = shape[0]
        if c != self.in_channels:
            raise ShapeError(
                f"{self.label}: input shape {shape} has {c} channels but the layer expects "
                f"in_channels = {self.in_channels} (weight shape {self.weight.shape}, "
                f"groups={self.groups})")
        pads = self._pads(shape[1:])
        axes = ("height", "width") if n == 2 else ("width",)
        out = [_check_output_axis(self.label, axes[i], shape[1 + i], pads[i], pads[n + i],
                                  self.kernel_size[i], self.stride[i], self.dilation[i],
                                  False, shape) for i in range(n)]
        return (self.out_channels,) + tuple(out)

    def macs(self, in_shapes):
        out = self.output_shape(in_shapes)
        return int(math.prod(out) * (self.in_channels // self.groups)
                   * math.prod(self.kernel_size))

    def receptive_field(self, rfs, in_shapes=None):
        return rfs[0].through(self.kernel_size, self.stride, self.dilation,
                              _pad_begins(self, in_shapes))

    def _config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride,
                "padding": _padding_config(self.padding), "dilation": self.dilation,
                "groups": self.groups, "bias": self.use_bias, "algo": self.algo,
                "seed": self.seed}

    def describe(self):
        k = "x".join(map(str, self.kernel_size))
        s = "x".join(map(str, sorted(set(self.stride)))) if len(set(self.stride)) == 1 \
            else "x".join(map(str, self.stride))
        p = self.padding if isinstance(self.padding, str) else (
            "x".join(map(str, self.padding)) if isinstance(self.padding, tuple)
            else str(self.padding))
        extra = ""
        if any(d != 1 for d in self.dilation):
            extra += " d" + "x".join(map(str, self.dilation))
        if self.groups != 1:
            extra += f" g{self.groups}"
        return f"{k} s{s} p{p}{extra}, {self.in_channels}->{self.out_channels}"


def _pad_begins(layer, in_shapes) -> Tuple[int, ...]:
    """The begin padding of each spatial axis of a windowed layer. Only "same" with a
    stride depends on the input size; stride-1 "same" pads (k_eff-1)//2 at any size."""
    n = len(layer.kernel_size)
    padding = layer.padding
    if isinstance(padding, str) and padding.lower() == "same" and any(
            s != 1 for s in layer.stride):
        shapes = layer._shapes_for_rf(in_shapes)
        if shapes is None:
            raise ValueError(f"{layer.label}: the receptive field of 'same' padding with "
                             f"stride {layer.stride} depends on the input size; pass "
                             f"in_shapes (or call output_shape first)")
        spatial = shapes[0][1:]
    else:
        spatial = (1,) * n
    pads = layer._pads(spatial)
    return tuple(pads[:n])


@register_layer
class Conv2d(_ConvBase):
    """2-D convolution (cross-correlation). params: weight [Co, Ci/g, kh, kw], bias [Co]
    (absent when bias=False). Weights default to He init from np.random.default_rng(seed);
    padding as in fc.conv2d."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, algo="auto", name=None, weight=None,
                 bias_value=None, seed=0):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, algo, name, weight, bias_value, seed)

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups, self.algo)


@register_layer
class Conv1d(_ConvBase):
    """1-D convolution. params: weight [Co, Ci/g, k], bias [Co]; padding int,
    (begin, end), "same" or "valid"."""
    _nsp = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, algo="auto", name=None, weight=None,
                 bias_value=None, seed=0):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, algo, name, weight, bias_value, seed)

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.conv1d(x, self.weight, self.bias, self.stride[0], self.padding,
                        self.dilation[0], self.groups, self.algo)


# ================================================================== pooling

class _PoolBase(Layer):
    _nsp = 2
    _is_avg = False

    def __init__(self, kernel_size, stride, padding, dilation, ceil_mode, name):
        super().__init__(name)
        n = self._nsp
        where = self.label
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", where, 1)
        self.stride = self.kernel_size if stride is None else _tuple(stride, n, "stride",
                                                                     where, 1)
        self._stride_given = stride is not None
        self.dilation = _tuple(dilation, n, "dilation", where, 1)
        self.ceil_mode = bool(ceil_mode)
        self._pads((1,) * n, padding)
        self.padding = padding if isinstance(padding, str) else (
            tuple(int(v) for v in padding) if isinstance(padding, (list, tuple, np.ndarray))
            else int(padding))

    _pads = _ConvBase._pads

    def _infer(self, shapes):
        (shape,) = shapes
        n = self._nsp
        self._require_rank(shape, (n + 1,), "(C, H, W)" if n == 2 else "(C, W)")
        pads = self._pads(shape[1:])
        axes = ("height", "width") if n == 2 else ("width",)
        out = [_check_output_axis(self.label, axes[i], shape[1 + i], pads[i], pads[n + i],
                                  self.kernel_size[i], self.stride[i], self.dilation[i],
                                  self.ceil_mode, shape) for i in range(n)]
        return (shape[0],) + tuple(out)

    def macs(self, in_shapes):
        out = self.output_shape(in_shapes)
        # max pooling compares, it does not multiply; average pooling's window adds count
        return int(math.prod(out) * math.prod(self.kernel_size)) if self._is_avg else 0

    def receptive_field(self, rfs, in_shapes=None):
        return rfs[0].through(self.kernel_size, self.stride, self.dilation,
                              _pad_begins(self, in_shapes))

    def _config(self):
        return {"kernel_size": self.kernel_size,
                "stride": self.stride if self._stride_given else None,
                "padding": _padding_config(self.padding), "ceil_mode": self.ceil_mode}

    def describe(self):
        k = "x".join(map(str, self.kernel_size))
        s = "x".join(map(str, sorted(set(self.stride)))) if len(set(self.stride)) == 1 \
            else "x".join(map(str, self.stride))
        p = self.padding if isinstance(self.padding, str) else (
            "x".join(map(str, self.padding)) if isinstance(self.padding, tuple)
            else str(self.padding))
        extra = " ceil" if self.ceil_mode else ""
        if any(d != 1 for d in self.dilation):
            extra += " d" + "x".join(map(str, self.dilation))
        return f"{k} s{s} p{p}{extra}"


@register_layer
class MaxPool2d(_PoolBase):
    """2-D max pooling; stride=None means stride = kernel_size."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 name=None):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode, name)

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode)

    def _config(self):
        cfg = super()._config()
        cfg["dilation"] = self.dilation
        return cfg


@register_layer
class AvgPool2d(_PoolBase):
    """2-D average pooling; stride=None means stride = kernel_size."""
    _is_avg = True

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, name=None):
        super().__init__(kernel_size, stride, padding, 1, ceil_mode, name)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def _config(self):
        cfg = super()._config()
        cfg["count_include_pad"] = self.count_include_pad
        return cfg


@register_layer
class MaxPool1d(_PoolBase):
    """1-D max pooling over (C, W); stride=None means stride = kernel_size."""
    _nsp = 1

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 name=None):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode, name)

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.max_pool1d(x, self.kernel_size[0], self.stride[0], self.padding,
                            self.dilation[0], self.ceil_mode)

    def _config(self):
        cfg = super()._config()
        cfg["dilation"] = self.dilation
        return cfg


@register_layer
class AvgPool1d(_PoolBase):
    """1-D average pooling over (C, W); stride=None means stride = kernel_size."""
    _nsp = 1
    _is_avg = True

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, name=None):
        super().__init__(kernel_size, stride, padding, 1, ceil_mode, name)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.avg_pool1d(x, self.kernel_size[0], self.stride[0], self.padding,
                            self.ceil_mode, self.count_include_pad)

    def _config(self):
        cfg = super()._config()
        cfg["count_include_pad"] = self.count_include_pad
        return cfg


class _GlobalPool(Layer):
    def __init__(self, name=None):
        super().__init__(name)

    def _infer(self, shapes):
        (shape,) = shapes
        self._require_rank(shape, (3,), "(C, H, W)")
        return (shape[0], 1, 1)

    def receptive_field(self, rfs, in_shapes=None):
        return rfs[0].mixed()

    def describe(self):
        return "whole map"


@register_layer
class GlobalAvgPool2d(_GlobalPool):
    """Mean of each map: (C, H, W) -> (C, 1, 1)."""

    def macs(self, in_shapes):
        self.output_shape(in_shapes)
        return int(math.prod(self._check_count(in_shapes)[0]))

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.global_avg_pool2d(x)


@register_layer
class GlobalMaxPool2d(_GlobalPool):
    """Max of each map: (C, H, W) -> (C, 1, 1)."""

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.global_max_pool2d(x)


@register_layer
class StochasticPool2d(Layer):
    """Stochastic pooling (Zeiler & Fergus, 2013), no padding; stride=None means
    stride = kernel_size. Negative activations are treated as 0. Inference: each window
    gives sum(a_i**2) / sum(a_i); training=True samples one activation per window with
    probability a_i / sum(a_j) from np.random.default_rng(seed) (a fresh generator per
    call, so a given seed gives the same draws on every call). See
    fastconv.functional.stochastic_pool2d."""

    def __init__(self, kernel_size, stride=None, training=False, seed=None, name=None):
        super().__init__(name)
        self.kernel_size = _tuple(kernel_size, 2, "kernel_size", self.label, 1)
        self._stride_given = stride is not None
        self.stride = self.kernel_size if stride is None else _tuple(
            stride, 2, "stride", self.label, 1)
        self.training = bool(training)
        self.seed = None if seed is None else _int(seed, "seed", self.label, 0)

    def _infer(self, shapes):
        (shape,) = shapes
        self._require_rank(shape, (3,), "(C, H, W)")
        out = [_check_output_axis(self.label, ax, shape[1 + i], 0, 0, self.kernel_size[i],
                                  self.stride[i], 1, False, shape)
               for i, ax in enumerate(("height", "width"))]
        return (shape[0],) + tuple(out)

    def macs(self, in_shapes):
        # a_i * a_i summed over each window (inference)
        return int(math.prod(self.output_shape(in_shapes)) * math.prod(self.kernel_size))

    def receptive_field(self, rfs, in_shapes=None):
        return rfs[0].through(self.kernel_size, self.stride, (1, 1), (0, 0))

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.stochastic_pool2d(x, self.kernel_size, self.stride, self.training,
                                   self.seed)

    def _config(self):
        return {"kernel_size": self.kernel_size,
                "stride": self.stride if self._stride_given else None,
                "training": self.training, "seed": self.seed}

    def describe(self):
        k = "x".join(map(str, self.kernel_size))
        s = "x".join(map(str, self.stride))
        return f"{k} s{s} {'sampled' if self.training else 'expected'}"


@register_layer
class SpectralPool2d(Layer):
    """Spectral pooling (Rippel, Snoek & Adams, 2015): keep the lowest frequencies of each
    map's DFT, (C, H, W) -> (C, oh, ow). See fastconv.functional.spectral_pool2d (even
    output sizes fold the +-n/2 frequencies into the Nyquist row/column)."""

    def __init__(self, output_size, name=None):
        super().__init__(name)
        self.output_size = _tuple(output_size, 2, "output_size", self.label, 1)

    def _infer(self, shapes):
        (shape,) = shapes
        self._require_rank(shape, (3,), "(C, H, W)")
        oh, ow = self.output_size
        if oh > shape[1] or ow > shape[2]:
            raise ShapeError(f"{self.label}: output_size ({oh}, {ow}) must not exceed the "
                             f"input map: need {oh} <= H = {shape[1]} and {ow} <= W = "
                             f"{shape[2]} (input shape {shape})")
        return (shape[0], oh, ow)

    def macs(self, in_shapes):
        """An estimate: a radix-2 FFT of n points costs about 2 n log2 n real MACs; one
        forward DFT of H*W points and one inverse of oh*ow per map."""
        c, h, w = self._check_count(in_shapes)[0]
        self.output_shape(in_shapes)
        m = self.output_size[0] * self.output_size[1]
        cost = 2 * (h * w * math.log2(h * w) if h * w > 1 else 0) \
            + 2 * (m * math.log2(m) if m > 1 else 0)
        return int(round(c * cost))

    def receptive_field(self, rfs, in_shapes=None):
        return rfs[0].mixed()   # every output sees the whole map

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.spectral_pool2d(x, self.output_size)

    def _config(self):
        return {"output_size": self.output_size}

    def describe(self):
        return f"-> {self.output_size[0]}x{self.output_size[1]}"


# ================================================================== elementwise

class _Elementwise(Layer):
    def _infer(self, shapes):
        return shapes[0]


@register_layer
class ReLU(_Elementwise):
    def __init__(self, name=None):
        super().__init__(name)

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.relu(x)


@register_layer
class LeakyReLU(_Elementwise):
    def __init__(self, negative_slope=0.01, name=None):
        super().__init__(name)
        self.negative_slope = float(negative_slope)

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.leaky_relu(x, self.negative_slope)

    def _config(self):
        return {"negative_slope": self.negative_slope}

    def describe(self):
        return f"slope {self.negative_slope:g}"


@register_layer
class Dropout(_Elementwise):
    """Identity at inference (fastconv only runs inference)."""

    def __init__(self, p=0.5, name=None):
        super().__init__(name)
        p = float(p)
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{self.label}: p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return x.copy()

    def forward_into(self, inputs, out):
        (x,) = self._check_inputs(inputs)
        np.copyto(out, x)

    def _config(self):
        return {"p": self.p}

    def describe(self):
        return f"p={self.p:g} (identity at inference)"


@register_layer
class Identity(_Elementwise):
    def __init__(self, name=None):
        super().__init__(name)

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return x.copy()

    def forward_into(self, inputs, out):
        (x,) = self._check_inputs(inputs)
        np.copyto(out, x)


@register_layer
class BatchNorm2d(Layer):
    """Batch normalisation at inference: (x - running_mean) / sqrt(running_var + eps) *
    weight + bias per channel. Accepts (C, H, W) and (C, W). Defaults: weight 1, bias 0,
    mean 0, var 1. MACs: one multiply-add per element (the folded scale and shift).
    num_params counts weight and bias (2*C), as torch does; params holds all four."""
    _param_args = {"weight": "weight", "bias": "bias", "running_mean": "running_mean",
                   "running_var": "running_var"}

    def __init__(self, num_features, eps=1e-5, name=None, weight=None, bias=None,
                 running_mean=None, running_var=None):
        super().__init__(name)
        c = self.num_features = _int(num_features, "num_features", self.label, 1)
        self.eps = float(eps)
        if not self.eps >= 0:
            raise ValueError(f"{self.label}: eps must be >= 0, got {eps}")
        ones = lambda: np.ones(c, np.float32)    # noqa: E731
        zeros = lambda: np.zeros(c, np.float32)  # noqa: E731
        self.params["weight"] = self._param(weight, "weight", (c,), ones)
        self.params["bias"] = self._param(bias, "bias", (c,), zeros)
        self.params["running_mean"] = self._param(running_mean, "running_mean", (c,), zeros)
        self.params["running_var"] = self._param(running_var, "running_var", (c,), ones)
        if np.any(self.params["running_var"].astype(np.float64) + self.eps <= 0):
            raise ValueError(f"{self.label}: running_var + eps must be > 0")

    def _infer(self, shapes):
        (shape,) = shapes
        self._require_rank(shape, (2, 3), "(C, H, W) or (C, W)")
        if shape[0] != self.num_features:
            raise ShapeError(f"{self.label}: input shape {shape} has {shape[0]} channels but "
                             f"num_features = {self.num_features}")
        return shape

    def num_params(self) -> int:
        """weight and bias only: the running statistics are buffers, not parameters, as
        torch counts them (vgg16_bn: 138,365,992). They are still in `params`, so they
        are saved, loaded and folded like the rest."""
        return 2 * self.num_features

    def macs(self, in_shapes):
        return int(math.prod(self.output_shape(in_shapes)))

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        p = self.params
        return F.batch_norm2d(x, p["weight"], p["bias"], p["running_mean"],
                              p["running_var"], self.eps)

    def _config(self):
        return {"num_features": self.num_features, "eps": self.eps}

    def describe(self):
        return f"{self.num_features} channels, eps {self.eps:g}"


@register_layer
class LRN(Layer):
    """Local response normalisation across channels (AlexNet; ONNX LRN):
    y = x / (k + alpha/size * sum_{c'} x_{c'}**2) ** beta over the channels
    c - floor((size-1)/2) .. c + ceil((size-1)/2), clipped. MACs: size per element
    (the sum of squares)."""

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, name=None):
        super().__init__(name)
        self.size = _int(size, "size", self.label, 1)
        self.alpha, self.beta, self.k = float(alpha), float(beta), float(k)

    def _infer(self, shapes):
        (shape,) = shapes
        self._require_rank(shape, (2, 3), "(C, H, W) or (C, W)")
        return shape

    def macs(self, in_shapes):
        return int(math.prod(self.output_shape(in_shapes)) * self.size)

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.lrn(x, self.size, self.alpha, self.beta, self.k)

    def _config(self):
        return {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}

    def describe(self):
        return f"size {self.size}, alpha {self.alpha:g}, beta {self.beta:g}, k {self.k:g}"


@register_layer
class Softmax(Layer):
    """Softmax along `axis` of the batched array (as fc.softmax; default the last)."""

    def __init__(self, axis=-1, name=None):
        super().__init__(name)
        self.axis = _int(axis, "axis", self.label, -(2**31))

    def _axis(self, shape) -> int:
        nd = len(shape) + 1   # batched rank
        if not -nd <= self.axis < nd:
            raise ShapeError(f"{self.label}: axis {self.axis} is out of range for a batched "
                             f"input of rank {nd} (input shape {shape})")
        return self.axis % nd

    def _infer(self, shapes):
        self._axis(shapes[0])
        return shapes[0]

    def receptive_field(self, rfs, in_shapes=None):
        shapes = self._shapes_for_rf(in_shapes)
        # softmax along a spatial axis makes every output depend on the whole axis
        if shapes is not None and len(shapes[0]) > 1 and self._axis(shapes[0]) >= 2:
            return rfs[0].mixed()
        return rfs[0]

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.softmax(x, self.axis)

    def _config(self):
        return {"axis": self.axis}

    def describe(self):
        return f"axis {self.axis}"


# ================================================================== reshaping, dense

@register_layer
class Flatten(Layer):
    """(C, H, W) -> (C*H*W,) (any per-sample shape to one axis). start_dim counts the
    batch axis, as torch and ONNX do; only start_dim=1 is supported."""

    def __init__(self, start_dim=1, name=None):
        super().__init__(name)
        sd = _int(start_dim, "start_dim", self.label, -(2**31))
        if sd != 1:
            raise ValueError(f"{self.label}: only start_dim=1 is supported (flatten "
                             f"everything but the batch axis), got {start_dim}")
        self.start_dim = sd

    def _infer(self, shapes):
        return (int(math.prod(shapes[0])),)

    def receptive_field(self, rfs, in_shapes=None):
        return rfs[0].mixed()

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return x.reshape(x.shape[0], -1).copy()

    def forward_into(self, inputs, out):
        (x,) = self._check_inputs(inputs)
        np.copyto(out, x.reshape(out.shape))

    def _config(self):
        return {"start_dim": self.start_dim}


@register_layer
class Linear(Layer):
    """y = x @ weight.T + bias on (F,) features. params: weight [out, in], bias [out].
    Weights default to He init (fan_in = in_features) from np.random.default_rng(seed)."""
    _param_args = {"weight": "weight", "bias": "bias_value"}

    def __init__(self, in_features, out_features, bias=True, name=None, weight=None,
                 bias_value=None, seed=0):
        super().__init__(name)
        self.in_features = _int(in_features, "in_features", self.label, 1)
        self.out_features = _int(out_features, "out_features", self.label, 1)
        self.use_bias = bool(bias)
        self.seed = seed
        wshape = (self.out_features, self.in_features)
        self._weight_and_bias(weight, bias_value, wshape, self.in_features,
                              (self.out_features,), seed)

    @property
    def weight(self) -> np.ndarray:
        return self.params["weight"]

    @property
    def bias(self) -> Optional[np.ndarray]:
        return self.params.get("bias")

    def _infer(self, shapes):
        (shape,) = shapes
        if len(shape) != 1:
            raise ShapeError(
                f"{self.label}: Linear takes a feature vector (F,), got input shape {shape}; "
                f"put a Flatten before it (it would give {math.prod(shape)} features, "
                f"in_features = {self.in_features})")
        if shape[0] != self.in_features:
            raise ShapeError(
                f"{self.label}: Flatten -> Linear mismatch: the input has {shape[0]} features "
                f"(input shape {shape}) but in_features = {self.in_features} (weight shape "
                f"{self.weight.shape})")
        return (self.out_features,)

    def macs(self, in_shapes):
        self.output_shape(in_shapes)
        return self.in_features * self.out_features

    def receptive_field(self, rfs, in_shapes=None):
        return rfs[0].mixed()

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.linear(x, self.weight, self.bias)

    def _config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.use_bias, "seed": self.seed}

    def describe(self):
        return f"{self.in_features}->{self.out_features}"


@register_layer
class Reshape(Layer):
    """Per-sample reshape to `shape` (no batch axis); one entry may be -1. The element
    count must match."""

    def __init__(self, shape, name=None):
        super().__init__(name)
        shape = tuple(_int(s, "shape", self.label, -1) for s in shape)
        if shape.count(-1) > 1:
            raise ValueError(f"{self.label}: at most one entry of shape may be -1, got "
                             f"{shape}")
        if 0 in shape or not shape:
            raise ValueError(f"{self.label}: shape entries must be >= 1 or -1, got {shape}")
        self.shape = shape

    def _infer(self, shapes):
        (shape,) = shapes
        n = math.prod(shape)
        known = math.prod(s for s in self.shape if s != -1)
        if -1 in self.shape:
            if n % known:
                raise ShapeError(f"{self.label}: cannot reshape input shape {shape} "
                                 f"({n} elements) to {self.shape}: {n} is not a multiple "
                                 f"of {known}")
            return tuple(n // known if s == -1 else s for s in self.shape)
        if n != known:
            raise ShapeError(f"{self.label}: cannot reshape input shape {shape} ({n} "
                             f"elements) to {self.shape} ({known} elements)")
        return self.shape

    def receptive_field(self, rfs, in_shapes=None):
        shapes = self._shapes_for_rf(in_shapes)
        # keeping the channel and spatial axes keeps the field; anything else mixes them
        if shapes is not None and self._infer(shapes) == shapes[0]:
            return rfs[0]
        return rfs[0].mixed()

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        out = self._infer([x.shape[1:]])
        return x.reshape((x.shape[0],) + out).copy()

    def forward_into(self, inputs, out):
        (x,) = self._check_inputs(inputs)
        np.copyto(out, x.reshape(out.shape))

    def _config(self):
        return {"shape": self.shape}

    def describe(self):
        return f"-> {self.shape}"


# ================================================================== merging

def _merge_rf(rfs: List[ReceptiveField]) -> ReceptiveField:
    """Merge layers: per axis, the field of the input that sees the most (max size)."""
    if len({len(r.size) for r in rfs}) > 1:
        best = max(rfs, key=lambda r: len(r.size))
        return best._replace(full=any(r.full for r in rfs))
    size, jump, start = [], [], []
    for ax in range(len(rfs[0].size)):
        r = max(rfs, key=lambda r: r.size[ax])
        size.append(r.size[ax])
        jump.append(r.jump[ax])
        start.append(r.start[ax])
    return ReceptiveField(tuple(size), tuple(jump), tuple(start), any(r.full for r in rfs))


@register_layer
class Add(Layer):
    """Elementwise sum of 2 or more inputs of equal shape (no broadcasting). MACs: one
    add per element per extra input."""
    num_inputs = -1

    def __init__(self, name=None):
        super().__init__(name)

    def _infer(self, shapes):
        for i, s in enumerate(shapes[1:], 1):
            if s != shapes[0]:
                raise ShapeError(f"{self.label}: Add needs equal input shapes, got "
                                 f"{shapes[0]} (input 0) and {s} (input {i})")
        return shapes[0]

    def macs(self, in_shapes):
        shapes = self._check_count(in_shapes)
        return int(math.prod(self._infer(shapes)) * (len(shapes) - 1))

    def receptive_field(self, rfs, in_shapes=None):
        return _merge_rf(rfs)

    def forward(self, inputs):
        arrs = self._check_inputs(inputs)
        y = arrs[0].copy()
        for a in arrs[1:]:
            y += a
        return y

    def forward_into(self, inputs, out):
        arrs = self._check_inputs(inputs)
        np.add(arrs[0], arrs[1], out=out)    # safe when out is one of the inputs
        for a in arrs[2:]:
            out += a


@register_layer
class Concat(Layer):
    """Concatenation of 2 or more inputs along `axis` of the batched array (default 1,
    the channel axis); the other axes must match."""
    num_inputs = -1

    def __init__(self, axis=1, name=None):
        super().__init__(name)
        self.axis = _int(axis, "axis", self.label, -(2**31))
        if self.axis == 0:
            raise ValueError(f"{self.label}: Concat along the batch axis (0) is not "
                             f"supported")

    def _per_sample_axis(self, shape) -> int:
        nd = len(shape) + 1
        if not -nd <= self.axis < nd or self.axis % nd == 0:
            raise ShapeError(f"{self.label}: axis {self.axis} is out of range (or the batch "
                             f"axis) for a batched input of rank {nd} (input shape {shape})")
        return self.axis % nd - 1

    def _infer(self, shapes):
        ax = self._per_sample_axis(shapes[0])
        first = shapes[0]
        for i, s in enumerate(shapes[1:], 1):
            if len(s) != len(first) or any(a != b for j, (a, b) in enumerate(zip(s, first))
                                           if j != ax):
                raise ShapeError(f"{self.label}: Concat along axis {self.axis} needs the "
                                 f"other axes equal, got {first} (input 0) and {s} "
                                 f"(input {i})")
        out = list(first)
        out[ax] = sum(s[ax] for s in shapes)
        return tuple(out)

    def receptive_field(self, rfs, in_shapes=None):
        return _merge_rf(rfs)

    def forward(self, inputs):
        arrs = self._check_inputs(inputs)
        return np.concatenate(arrs, axis=self.axis)

    def forward_into(self, inputs, out):
        arrs = self._check_inputs(inputs)
        np.concatenate(arrs, axis=self.axis, out=out)

    def _config(self):
        return {"axis": self.axis}

    def describe(self):
        return f"axis {self.axis}"


# ================================================================== locally connected

from fastconv import _kernels  # noqa: E402  (forward_into writes through the binding)

__all__ += ["LocallyConnected2d"]


@register_layer
class LocallyConnected2d(Layer):
    """Locally connected 2-D layer: a convolution without weight sharing (each output
    position has its own filter bank), as fc.locally_connected2d. Its weights depend on
    the output size, so the layer is built for one input_size (H, W).

    params: weight [Ho, Wo, Co, Ci, kh, kw] (the bank of output position (oh, ow) is
    weight[oh, ow], laid out as a Conv2d weight), bias [Co, Ho, Wo] (one per output unit;
    absent when bias=False). Weights default to He init (fan_in = Ci*kh*kw) from
    np.random.default_rng(seed). num_params = Ho*Wo*Co*(Ci*kh*kw + 1) with bias; macs are
    a convolution's, Co*Ho*Wo*Ci*kh*kw (the same arithmetic, Ho*Wo times the weights)."""
    _param_args = {"weight": "weight", "bias": "bias_value"}

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 input_size=None, bias=True, name=None, weight=None, bias_value=None, seed=0):
        super().__init__(name)
        where = self.label
        self.in_channels = _int(in_channels, "in_channels", where, 1)
        self.out_channels = _int(out_channels, "out_channels", where, 1)
        self.kernel_size = _tuple(kernel_size, 2, "kernel_size", where, 1)
        self.stride = _tuple(stride, 2, "stride", where, 1)
        self.dilation = (1, 1)
        if input_size is None:
            raise ValueError(f"{where}: LocallyConnected2d needs input_size=(H, W): its "
                             f"weights hold one filter bank per output position")
        self.input_size = _tuple(input_size, 2, "input_size", where, 1)
        self._pads((1, 1), padding)      # validates the padding form
        self.padding = padding if isinstance(padding, str) else (
            tuple(int(v) for v in padding) if isinstance(padding, (list, tuple, np.ndarray))
            else int(padding))
        pads = self._pads(self.input_size)
        shape = (self.in_channels,) + self.input_size
        self.out_size = tuple(
            _check_output_axis(where, axis, self.input_size[i], pads[i], pads[2 + i],
                               self.kernel_size[i], self.stride[i], 1, False, shape)
            for i, axis in enumerate(("height", "width")))
        self.use_bias = bool(bias)
        self.seed = seed
        wshape = self.out_size + (self.out_channels, self.in_channels) + self.kernel_size
        fan_in = self.in_channels * math.prod(self.kernel_size)
        F._check_alloc(wshape, where)
        self._weight_and_bias(weight, bias_value, wshape, fan_in,
                              (self.out_channels,) + self.out_size, seed)

    @classmethod
    def from_conv(cls, conv: "Conv2d", input_size, name: Optional[str] = None
                  ) -> "LocallyConnected2d":
        """The locally connected layer that computes what `conv` computes on inputs of
        input_size: its weight and bias copied to every output position (groups and
        dilation must be 1)."""
        if conv.groups != 1 or conv.dilation != (1, 1):
            raise ValueError(f"{conv.label}: only a conv with groups=1 and dilation=1 maps "
                             f"onto a LocallyConnected2d (got groups={conv.groups}, "
                             f"dilation={conv.dilation})")
        shape = (conv.in_channels,) + _tuple(input_size, 2, "input_size", conv.label, 1)
        ho, wo = conv.output_shape([shape])[1:]
        w = np.broadcast_to(conv.weight, (ho, wo) + conv.weight.shape)
        b = None if conv.bias is None else np.broadcast_to(conv.bias[:, None, None],
                                                           (conv.out_channels, ho, wo))
        return cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                   conv.padding, shape[1:], bias=b is not None, name=name, weight=w,
                   bias_value=b)

    @property
    def weight(self) -> np.ndarray:
        return self.params["weight"]

    @property
    def bias(self) -> Optional[np.ndarray]:
        return self.params.get("bias")

    def _pads(self, spatial, padding=None):
        padding = self.padding if padding is None else padding
        return _pads2d(padding, spatial, self.kernel_size, self.stride, (1, 1), self.label)

    def _infer(self, shapes):
        (shape,) = shapes
        self._require_rank(shape, (3,), "(C, H, W)")
        if shape[0] != self.in_channels:
            raise ShapeError(
                f"{self.label}: input shape {shape} has {shape[0]} channels but the layer "
                f"expects in_channels = {self.in_channels} (weight shape {self.weight.shape} "
                f"[Ho, Wo, Co, Ci, kh, kw])")
        if tuple(shape[1:]) != self.input_size:
            raise ShapeError(
                f"{self.label}: input shape {shape} has a {shape[1]}x{shape[2]} map but the "
                f"layer was built for input_size {self.input_size[0]}x{self.input_size[1]}: "
                f"a locally connected layer has one filter bank per output position "
                f"({self.out_size[0]}x{self.out_size[1]}), so its input size is fixed")
        return (self.out_channels,) + self.out_size

    def macs(self, in_shapes):
        out = self.output_shape(in_shapes)
        return int(math.prod(out) * self.in_channels * math.prod(self.kernel_size))

    def receptive_field(self, rfs, in_shapes=None):
        return rfs[0].through(self.kernel_size, self.stride, (1, 1),
                              _pad_begins(self, in_shapes))

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        return F.locally_connected2d(x, self.weight, self.bias, self.stride, self.padding)

    def forward_into(self, inputs, out):
        (x,) = self._check_inputs(inputs)
        x, w, b, stride, pads = F._lc_setup(x, self.weight, self.bias, self.stride,
                                            self.padding, self.label)
        _kernels.locally_connected2d(x, w, b, stride, pads, out=out)

    def _config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride,
                "padding": _padding_config(self.padding), "input_size": self.input_size,
                "bias": self.use_bias, "seed": self.seed}

    def describe(self):
        k = "x".join(map(str, self.kernel_size))
        s = "x".join(map(str, sorted(set(self.stride)))) if len(set(self.stride)) == 1 \
            else "x".join(map(str, self.stride))
        p = self.padding if isinstance(self.padding, str) else (
            "x".join(map(str, self.padding)) if isinstance(self.padding, tuple)
            else str(self.padding))
        return (f"{k} s{s} p{p}, {self.in_channels}->{self.out_channels}, unshared "
                f"{self.out_size[0]}x{self.out_size[1]}")
