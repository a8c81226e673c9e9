"""The functional API: PyTorch-like functions over the C kernels.

This layer normalises arguments (int, pair, 4-tuple, "same"/"valid"), converts dtypes,
computes and checks output shapes with messages that show the rule and the numbers,
and calls the binding (fastconv._kernels), which does no argument handling of its own.
"""
from __future__ import annotations

import math
import operator
import sys
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from fastconv import _kernels
from fastconv.errors import ShapeError

__all__ = [
    "conv2d", "conv1d", "max_pool2d", "avg_pool2d", "max_pool1d", "avg_pool1d",
    "global_avg_pool2d", "global_max_pool2d", "relu", "softmax", "linear",
    "conv2d_workspace_bytes", "prepare_conv2d", "PreparedConv2d", "set_num_threads",
    "get_num_threads", "cpu_info", "conv_algorithms",
    "stochastic_pool2d", "spectral_pool2d", "leaky_relu", "batch_norm2d", "lrn",
    "to_nchw8c", "from_nchw8c",
]

IntOrPair = Union[int, Tuple[int, int]]
Padding = Union[int, str, Sequence[int]]

# Every size must fit in 31 bits (the C layer's limit, which keeps its int64 size
# arithmetic free of overflow).
_DIM_LIMIT = 2**31 - 1
_FLOAT_KINDS = (np.float16, np.float32, np.float64)
_ALGOS = ("auto", "direct", "im2col", "winograd", "winograd2")


# ------------------------------------------------------------------ argument helpers

def _as_float32(a, name: str, where: str) -> np.ndarray:
    """`a` as a C-contiguous float32 array; float16/float64 convert (documented),
    integer, bool, complex and object arrays raise TypeError."""
    arr = a if isinstance(a, np.ndarray) else np.asarray(a)
    if arr.dtype.type not in _FLOAT_KINDS:
        raise TypeError(f"{where}: {name} must be a float32 array (float16 and float64 are "
                        f"converted), got dtype {arr.dtype}")
    # np.asarray(order="C"), not np.ascontiguousarray, which turns a 0-d array into
    # shape (1,) and so hides it from the rank checks
    return np.asarray(arr, dtype=np.float32, order="C")


def _int(v, name: str, where: str, minimum: int) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be an int, got {v!r}")
    try:
        i = operator.index(v)
    except TypeError:
        raise TypeError(f"{where}: {name} must be an int, got {type(v).__name__} {v!r}") from None
    if i < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {i}")
    if i > _DIM_LIMIT:
        raise ValueError(f"{where}: {name} = {i} is larger than {_DIM_LIMIT}")
    return i


def _tuple(v, n: int, name: str, where: str, minimum: int) -> Tuple[int, ...]:
    """An int repeated n times, or a sequence of exactly n ints."""
    if isinstance(v, (list, tuple, np.ndarray)):
        if len(v) != n:
            raise ValueError(f"{where}: {name} must be an int or {n} ints, got {tuple(v)!r}")
        return tuple(_int(e, name, where, minimum) for e in v)
    return (_int(v, name, where, minimum),) * n


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> Tuple[int, int]:
    """ONNX SAME_UPPER: output = ceil(size / stride), odd pixel of padding at the end."""
    total = max(0, (-(-size // stride) - 1) * stride + dilation * (kernel - 1) + 1 - size)
    return total // 2, total - total // 2


def _pads2d(padding, in_hw, kernel, stride, dilation, where) -> Tuple[int, int, int, int]:
    """(top, left, bottom, right) from int, (ph, pw), (top, left, bottom, right), 'same',
    'valid'."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0, 0, 0)
        if mode == "same":
            (t, b), (l, r) = (_same_pads(in_hw[i], kernel[i], stride[i], dilation[i])
                              for i in range(2))
            return (t, l, b, r)
        raise ValueError(f"{where}: padding must be an int, a pair, 4 ints, 'same' or "
                         f"'valid', got {padding!r}")
    if isinstance(padding, (list, tuple, np.ndarray)):
        if len(padding) == 2:
            ph, pw = _tuple(padding, 2, "padding", where, 0)
            return (ph, pw, ph, pw)
        if len(padding) == 4:
            return _tuple(padding, 4, "padding", where, 0)
        raise ValueError(f"{where}: padding must be an int, (ph, pw) or (top, left, bottom, "
                         f"right), got {tuple(padding)!r}")
    p = _int(padding, "padding", where, 0)
    return (p, p, p, p)


def _pads1d(padding, size, kernel, stride, dilation, where) -> Tuple[int, int]:
    """(begin, end) from int, (begin, end), 'same', 'valid'."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0)
        if mode == "same":
            return _same_pads(size, kernel, stride, dilation)
        raise ValueError(f"{where}: padding must be an int, (begin, end), 'same' or 'valid', "
                         f"got {padding!r}")
    if isinstance(padding, (list, tuple, np.ndarray)):
        return _tuple(padding, 2, "padding", where, 0)
    p = _int(padding, "padding", where, 0)
    return (p, p)


def _check_output_axis(where, axis, size, pb, pe, k, s, d, ceil_mode, x_shape) -> int:
    """The output size of one axis, or a ShapeError that shows the rule with numbers."""
    out = _kernels.out_size(size, pb, pe, k, s, d, ceil_mode)
    if out < 1:
        rnd = "ceil" if ceil_mode else "floor"
        span = size + pb + pe - d * (k - 1) - 1
        out = (-(-span // s) if ceil_mode else span // s) + 1  # the rule's value, unclipped
        raise ShapeError(
            f"{where}: output {axis} = {rnd}((in + pad_begin + pad_end - dilation*(kernel-1)"
            f" - 1) / stride) + 1 = {rnd}(({size} + {pb} + {pe} - {d}*({k}-1) - 1) / {s}) + 1"
            f" = {out} < 1 (input shape {tuple(x_shape)}): the kernel is larger than the "
            f"padded input")
    return out


def _check_spatial_input(x: np.ndarray, rank: int, where: str, what: str) -> None:
    if x.ndim != rank:
        raise ShapeError(f"{where}: input must be {rank}-D {what}, got shape {x.shape}")
    if any(s == 0 for s in x.shape[1:]):
        raise ShapeError(f"{where}: input shape {x.shape} has a zero channel or spatial size")
    for s in x.shape[1:]:
        if s > _DIM_LIMIT:
            raise ValueError(f"{where}: input size {s} is larger than {_DIM_LIMIT}")


def _check_alloc(shape, where: str) -> None:
    """Refuse an output whose byte count cannot exist, before anything is allocated."""
    n = 4
    for s in shape:
        n *= int(s)
    if n > sys.maxsize:
        raise ValueError(f"{where}: output shape {tuple(shape)} needs {n} bytes, more than "
                         f"the address space")


# ------------------------------------------------------------------ convolution

def _conv_setup(x, weight, bias, stride, padding, dilation, groups, algo, where):
    """Validate a 2-D convolution; returns (x, weight, bias, stride, pads, dilation,
    groups) in the binding's form (pads as (top, left, bottom, right))."""
    x = _as_float32(x, "input", where)
    weight = _as_float32(weight, "weight", where)
    _check_spatial_input(x, 4, where, "[N, C, H, W]")
    if weight.ndim != 4:
        raise ShapeError(f"{where}: weight must be 4-D [Co, C/groups, kh, kw], got shape "
                         f"{weight.shape}")
    if any(s == 0 for s in weight.shape):
        raise ShapeError(f"{where}: weight shape {weight.shape} has a zero size")
    groups = _int(groups, "groups", where, 1)
    if not isinstance(algo, str) or algo not in _ALGOS:
        raise ValueError(f"{where}: algo must be one of {_ALGOS}, got {algo!r}")
    n, c, h, w = x.shape
    co, cig, kh, kw = weight.shape
    if c % groups or co % groups:
        raise ShapeError(f"{where}: groups={groups} must divide the input channels ({c}) and "
                         f"the output channels ({co})")
    if cig * groups != c:
        raise ShapeError(f"{where}: input {x.shape} has {c} channels but weight "
                         f"{weight.shape} with groups={groups} expects weight.shape[1] x groups"
                         f" = {cig} x {groups} = {cig * groups}")
    if bias is not None:
        bias = _as_float32(bias, "bias", where)
        if bias.shape != (co,):
            raise ShapeError(f"{where}: bias must have shape ({co},) for {co} output channels, "
                             f"got {bias.shape}")
    stride = _tuple(stride, 2, "stride", where, 1)
    dilation = _tuple(dilation, 2, "dilation", where, 1)
    pads = _pads2d(padding, (h, w), (kh, kw), stride, dilation, where)
    oh = _check_output_axis(where, "height", h, pads[0], pads[2], kh, stride[0], dilation[0],
                            False, x.shape)
    ow = _check_output_axis(where, "width", w, pads[1], pads[3], kw, stride[1], dilation[1],
                            False, x.shape)
    _check_alloc((n, co, oh, ow), where)
    return x, weight, bias, stride, pads, dilation, groups


def _conv_call(x, weight, bias, stride, pads, dilation, groups, algo, relu, where):
    try:
        return _kernels.conv2d(x, weight, bias, stride, pads, dilation, groups, algo, relu)
    except ValueError as e:
        if isinstance(e, ShapeError) or where == "conv2d":
            raise
        raise type(e)(str(e).replace("conv2d", where, 1)) from None


def conv2d(x, weight, bias=None, stride: IntOrPair = 1, padding: Padding = 0,
           dilation: IntOrPair = 1, groups: int = 1, algo: str = "auto") -> np.ndarray:
    """2-D convolution (cross-correlation, as PyTorch and ONNX define Conv).

    x: [N, C, H, W] (or unbatched [C, H, W]); weight: [Co, C/groups, kh, kw];
    bias: [Co] or None. padding: int, (ph, pw), (top, left, bottom, right), "same"
    (ONNX SAME_UPPER) or "valid". algo: "auto", "direct", "im2col", "winograd"
    (F(4x4, 3x3)) or "winograd2" (F(2x2, 3x3)); the two Winograd ones serve 3x3 stride-1
    dilation-1 ungrouped convolutions only and raise ValueError for anything else.
    Returns float32 [N, Co, Ho, Wo] (or [Co, Ho, Wo])."""
    unbatched = np.ndim(x) == 3
    if unbatched:
        x = np.asarray(x)[None]
    x, weight, bias, stride, pads, dilation, groups = _conv_setup(
        x, weight, bias, stride, padding, dilation, groups, algo, "conv2d")
    y = _conv_call(x, weight, bias, stride, pads, dilation, groups, algo, False, "conv2d")
    return y[0] if unbatched else y


def conv1d(x, weight, bias=None, stride: int = 1, padding: Padding = 0, dilation: int = 1,
           groups: int = 1, algo: str = "auto") -> np.ndarray:
    """1-D convolution. x: [N, C, W] (or [C, W]); weight: [Co, C/groups, k];
    padding: int, (begin, end), "same" or "valid". Returns [N, Co, Wo]."""
    where = "conv1d"
    unbatched = np.ndim(x) == 2
    x = _as_float32(np.asarray(x)[None] if unbatched else x, "input", where)
    weight = _as_float32(weight, "weight", where)
    _check_spatial_input(x, 3, where, "[N, C, W]")
    if weight.ndim != 3:
        raise ShapeError(f"{where}: weight must be 3-D [Co, C/groups, k], got shape "
                         f"{weight.shape}")
    s = _tuple(stride, 1, "stride", where, 1)[0]
    d = _tuple(dilation, 1, "dilation", where, 1)[0]
    k = weight.shape[2]
    pb, pe = _pads1d(padding, x.shape[2], max(k, 1), s, d, where)
    x4, w4 = x[:, :, None, :], weight[:, :, None, :]
    x4, w4, bias, stride2, pads, dil2, groups = _conv_setup(
        x4, w4, bias, (1, s), (0, pb, 0, pe), (1, d), groups, algo, where)
    y = _conv_call(x4, w4, bias, stride2, pads, dil2, groups, algo, False, where)[:, :, 0, :]
    return y[0] if unbatched else y


class PreparedConv2d:
    """A conv2d whose weights (and bias) are packed once and reused on every call, as a
    compiled model does and as ONNX Runtime does when it creates a session. Call it like
    conv2d: `prepare_conv2d(w, b, padding=1)(x)` equals `conv2d(x, w, b, padding=1)`
    (bit for bit, with the same algorithm), with `relu=True` adding a fused ReLU.

    The weights are copied: changing the caller's array afterwards changes nothing. Packs
    are made lazily per (ISA, algorithm), so `algo="auto"` may hold one per algorithm the
    rule picks for the input shapes seen."""

    def __init__(self, weight, bias=None, stride: IntOrPair = 1, padding: Padding = 0,
                 dilation: IntOrPair = 1, groups: int = 1, algo: str = "auto",
                 relu: bool = False):
        where = "prepare_conv2d"
        self.weight = np.array(_as_float32(weight, "weight", where), copy=True)
        if self.weight.ndim != 4 or 0 in self.weight.shape:
            raise ShapeError(f"{where}: weight must be 4-D [Co, C/groups, kh, kw] with no zero "
                             f"size, got shape {self.weight.shape}")
        self.bias = None if bias is None else np.array(_as_float32(bias, "bias", where), copy=True)
        if self.bias is not None and self.bias.shape != (self.weight.shape[0],):
            raise ShapeError(f"{where}: bias must have shape ({self.weight.shape[0]},), got "
                             f"{self.bias.shape}")
        self.stride = _tuple(stride, 2, "stride", where, 1)
        self.dilation = _tuple(dilation, 2, "dilation", where, 1)
        self.groups = _int(groups, "groups", where, 1)
        if not isinstance(algo, str) or algo not in _ALGOS:
            raise ValueError(f"{where}: algo must be one of {_ALGOS}, got {algo!r}")
        self.algo = algo
        self.padding = padding
        _pads2d(padding, (1, 1), self.weight.shape[2:], self.stride, self.dilation, where)
        self.relu = bool(relu)
        self._packs = {}

    def __call__(self, x) -> np.ndarray:
        unbatched = np.ndim(x) == 3
        if unbatched:
            x = np.asarray(x)[None]
        x, w, b, stride, pads, dilation, groups = _conv_setup(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
            self.algo, "conv2d")
        algo = self.algo
        if algo == "auto":
            algo = _kernels.conv2d_choose(x.shape, w.shape, stride, pads, dilation, groups)
        key = (_kernels.get_isa(), algo)
        blob = self._packs.get(key)
        if blob is None:
            blob, _ = _kernels.conv2d_pack(x.shape, w, b, stride, pads, dilation, groups, algo)
            self._packs[key] = blob
        y = _kernels.conv2d_run(x, blob, w.shape, stride, pads, dilation, groups, self.relu)
        return y[0] if unbatched else y

    @property
    def packed_bytes(self) -> int:
        """Bytes held by the packs made so far."""
        return sum(b.nbytes for b in self._packs.values())


def prepare_conv2d(weight, bias=None, stride: IntOrPair = 1, padding: Padding = 0,
                   dilation: IntOrPair = 1, groups: int = 1, algo: str = "auto",
                   relu: bool = False) -> PreparedConv2d:
    """Pack a convolution's weights once; see PreparedConv2d."""
    return PreparedConv2d(weight, bias, stride, padding, dilation, groups, algo, relu)


def conv2d_workspace_bytes(x_shape, weight_shape, stride: IntOrPair = 1,
                           padding: Padding = 0, dilation: IntOrPair = 1, groups: int = 1,
                           algo: str = "auto") -> int:
    """Bytes of scratch memory conv2d uses for these shapes (im2col tiles are bounded, so
    this stays small for any image size)."""
    where = "conv2d_workspace_bytes"
    x_shape = tuple(_int(s, "x_shape", where, 0) for s in x_shape)
    weight_shape = tuple(_int(s, "weight_shape", where, 1) for s in weight_shape)
    if len(x_shape) != 4 or len(weight_shape) != 4:
        raise ShapeError(f"{where}: x_shape {x_shape} and weight_shape {weight_shape} must "
                         f"have 4 entries")
    stride = _tuple(stride, 2, "stride", where, 1)
    dilation = _tuple(dilation, 2, "dilation", where, 1)
    pads = _pads2d(padding, x_shape[2:], weight_shape[2:], stride, dilation, where)
    if not isinstance(algo, str) or algo not in _ALGOS:
        raise ValueError(f"{where}: algo must be one of {_ALGOS}, got {algo!r}")
    return _kernels.conv2d_workspace_bytes(x_shape, weight_shape, stride, pads, dilation,
                                           _int(groups, "groups", where, 1), algo)


# ------------------------------------------------------------------ pooling

def _pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, where):
    x = _as_float32(x, "input", where)
    _check_spatial_input(x, 4, where, "[N, C, H, W]")
    kernel = _tuple(kernel_size, 2, "kernel_size", where, 1)
    stride = kernel if stride is None else _tuple(stride, 2, "stride", where, 1)
    dilation = _tuple(dilation, 2, "dilation", where, 1)
    pads = _pads2d(padding, x.shape[2:], kernel, stride, dilation, where)
    ceil_mode = bool(ceil_mode)
    oh = _check_output_axis(where, "height", x.shape[2], pads[0], pads[2], kernel[0],
                            stride[0], dilation[0], ceil_mode, x.shape)
    ow = _check_output_axis(where, "width", x.shape[3], pads[1], pads[3], kernel[1],
                            stride[1], dilation[1], ceil_mode, x.shape)
    _check_alloc((x.shape[0], x.shape[1], oh, ow), where)
    return x, kernel, stride, pads, dilation, ceil_mode


def max_pool2d(x, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: Padding = 0, dilation: IntOrPair = 1,
               ceil_mode: bool = False) -> np.ndarray:
    """2-D max pooling over [N, C, H, W]; stride=None means stride = kernel_size.
    Padding never wins a max; a window holding a NaN gives NaN."""
    x, k, s, p, d, c = _pool2d(x, kernel_size, stride, padding, dilation, ceil_mode,
                               "max_pool2d")
    return _kernels.max_pool2d(x, k, s, p, d, c)


def avg_pool2d(x, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: Padding = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> np.ndarray:
    """2-D average pooling over [N, C, H, W]; stride=None means stride = kernel_size.
    count_include_pad divides by the taps inside [-pad_begin, size + pad_end)."""
    x, k, s, p, _, c = _pool2d(x, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    return _kernels.avg_pool2d(x, k, s, p, c, bool(count_include_pad))


def _pool1d_args(x, kernel_size, stride, padding, dilation, where):
    x = _as_float32(x, "input", where)
    _check_spatial_input(x, 3, where, "[N, C, W]")
    k = _tuple(kernel_size, 1, "kernel_size", where, 1)[0]
    s = k if stride is None else _tuple(stride, 1, "stride", where, 1)[0]
    d = _tuple(dilation, 1, "dilation", where, 1)[0]
    pb, pe = _pads1d(padding, x.shape[2], k, s, d, where)
    return x[:, :, None, :], (1, k), (1, s), (0, pb, 0, pe), (1, d)


def max_pool1d(x, kernel_size: int, stride: Optional[int] = None, padding: Padding = 0,
               dilation: int = 1, ceil_mode: bool = False) -> np.ndarray:
    """1-D max pooling over [N, C, W]; same arguments as max_pool2d, one axis."""
    x4, k, s, p, d = _pool1d_args(x, kernel_size, stride, padding, dilation, "max_pool1d")
    x4, k, s, p, d, c = _pool2d(x4, k, s, p, d, ceil_mode, "max_pool1d")
    return _kernels.max_pool2d(x4, k, s, p, d, c)[:, :, 0, :]


def avg_pool1d(x, kernel_size: int, stride: Optional[int] = None, padding: Padding = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> np.ndarray:
    """1-D average pooling over [N, C, W]; same arguments as avg_pool2d, one axis."""
    x4, k, s, p, _ = _pool1d_args(x, kernel_size, stride, padding, 1, "avg_pool1d")
    x4, k, s, p, _, c = _pool2d(x4, k, s, p, 1, ceil_mode, "avg_pool1d")
    return _kernels.avg_pool2d(x4, k, s, p, c, bool(count_include_pad))[:, :, 0, :]


def _global_pool(x, op, where):
    x = _as_float32(x, "input", where)
    _check_spatial_input(x, 4, where, "[N, C, H, W]")
    n, c, h, w = x.shape
    y = _kernels.global_pool(x.reshape(n * c, h * w), op)
    return y.reshape(n, c, 1, 1)


def global_avg_pool2d(x) -> np.ndarray:
    """Mean over each [H, W] plane: [N, C, H, W] -> [N, C, 1, 1]."""
    return _global_pool(x, "avg", "global_avg_pool2d")


def global_max_pool2d(x) -> np.ndarray:
    """Max over each [H, W] plane: [N, C, H, W] -> [N, C, 1, 1] (NaN propagates)."""
    return _global_pool(x, "max", "global_max_pool2d")


# ------------------------------------------------------------------ NCHW8c layout

def to_nchw8c(x) -> np.ndarray:
    """Reorder an NCHW tensor into the channel-blocked layout NCHW8c.

    x: [N, C, H, W] -> float32 [N, ceil(C/8), H, W, 8]: channel c of pixel (h, w) goes
    to block c // 8, lane c % 8 (8 channels side by side, as one SIMD vector). The lanes
    past C in the last block are zero. This is the layout the blocked kernels read and
    write (from_nchw8c is the inverse).
    """
    where = "to_nchw8c"
    x = _as_float32(x, "input", where)
    _check_spatial_input(x, 4, where, "[N, C, H, W]")
    n, c, h, w = x.shape
    _check_alloc((n, -(-c // 8), h, w, 8), where)
    return _kernels.to_nchw8c(x)


def from_nchw8c(x, channels: int) -> np.ndarray:
    """Reorder a channel-blocked NCHW8c tensor back to NCHW.

    x: [N, ceil(channels/8), H, W, 8] -> float32 [N, channels, H, W]; the zero lanes past
    `channels` are dropped. The block count must match `channels` (ShapeError otherwise):
    the blocked layout does not record how many of the last block's lanes are real.
    """
    where = "from_nchw8c"
    channels = _int(channels, "channels", where, 1)
    x = _as_float32(x, "input", where)
    if x.ndim != 5 or x.shape[4] != 8:
        raise ShapeError(f"{where}: input must be 5-D [N, CB, H, W, 8], got shape {x.shape}")
    cb = -(-channels // 8)
    if x.shape[1] != cb:
        raise ShapeError(f"{where}: input shape {x.shape} has {x.shape[1]} channel blocks, "
                         f"but {channels} channels need ceil({channels}/8) = {cb}")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ShapeError(f"{where}: input shape {x.shape} has a zero spatial size")
    return _kernels.from_nchw8c(x, channels)


# ------------------------------------------------------------------ elementwise, linear

def relu(x) -> np.ndarray:
    """max(0, x) elementwise, any shape; relu(NaN) is NaN."""
    x = _as_float32(x, "input", "relu")
    return _kernels.relu(x)


def softmax(x, axis: int = -1) -> np.ndarray:
    """exp(x - max) / sum(exp(x - max)) along `axis` (numerically stable)."""
    x = _as_float32(x, "input", "softmax")
    if x.ndim == 0:
        raise ShapeError("softmax: input must have at least 1 dimension, got a 0-d array")
    ax = _int(axis, "axis", "softmax", -x.ndim)
    if ax >= x.ndim:
        raise ValueError(f"softmax: axis {axis} is out of range for shape {x.shape}")
    ax %= x.ndim
    outer = math.prod(x.shape[:ax])
    inner = math.prod(x.shape[ax + 1:])
    return _kernels.softmax(x, outer, x.shape[ax], inner)


def linear(x, weight, bias=None) -> np.ndarray:
    """y = x @ weight.T + bias. x: [..., in]; weight: [out, in]; bias: [out] or None."""
    where = "linear"
    x = _as_float32(x, "input", where)
    weight = _as_float32(weight, "weight", where)
    if x.ndim < 1:
        raise ShapeError(f"{where}: input must have at least 1 dimension, got a 0-d array")
    if weight.ndim != 2:
        raise ShapeError(f"{where}: weight must be 2-D [out, in], got shape {weight.shape}")
    out_f, in_f = weight.shape
    if x.shape[-1] != in_f:
        raise ShapeError(f"{where}: input has {x.shape[-1]} features (shape {x.shape}) but "
                         f"weight {weight.shape} expects {in_f}")
    if in_f == 0 or out_f == 0:
        raise ShapeError(f"{where}: weight shape {weight.shape} has a zero size")
    if bias is not None:
        bias = _as_float32(bias, "bias", where)
        if bias.shape != (out_f,):
            raise ShapeError(f"{where}: bias must have shape ({out_f},), got {bias.shape}")
    lead = x.shape[:-1]
    _check_alloc(lead + (out_f,), where)
    y = _kernels.sgemm(x.reshape(-1, in_f), weight.T, bias_n=bias)
    return y.reshape(lead + (out_f,))


# ------------------------------------------------------------------ runtime

def set_num_threads(n: int) -> None:
    """Threads used by every kernel call (default: OMP_NUM_THREADS or all cores)."""
    _kernels.set_num_threads(_int(n, "n", "set_num_threads", 1))


def get_num_threads() -> int:
    return _kernels.get_num_threads()


def conv_algorithms() -> tuple:
    """The conv algorithms the engine has, in order, without "auto" (the per-layer
    rule that picks among them): each is a valid `algo=` for conv2d / prepare_conv2d,
    though it may refuse (ValueError) a layer it cannot serve."""
    return tuple(a for a in _ALGOS if a != "auto")


def cpu_info() -> dict:
    """What runs the kernels: ISA in use, AVX2 and AVX-512 availability, threads,
    compiler, OpenMP."""
    return {
        "isa": _kernels.get_isa(),
        "has_avx2": _kernels.has_avx2(),
        "has_avx512": _kernels.has_avx512(),
        "num_threads": _kernels.get_num_threads(),
        "default_num_threads": _kernels.default_num_threads(),
        "openmp": _kernels.have_openmp(),
        "compiler": _kernels.compiler(),
    }


# ------------------------------------------------------------------ NumPy-only layers
# Operators without a C kernel (rare in the networks fastconv targets, or cheap next to
# the convolutions around them): written with NumPy, float32 in and out.

def leaky_relu(x, negative_slope: float = 0.01) -> np.ndarray:
    """x where x >= 0, negative_slope * x elsewhere, elementwise, any shape; NaN
    propagates."""
    x = _as_float32(x, "input", "leaky_relu")
    slope = np.float32(negative_slope)
    return np.where(x >= 0, x, x * slope)


def _channel_vector(a, name: str, c: int, where: str) -> np.ndarray:
    a = _as_float32(a, name, where)
    if a.shape != (c,):
        raise ShapeError(f"{where}: {name} must have shape ({c},) for an input with {c} "
                         f"channels, got {a.shape}")
    return a


def batch_norm2d(x, weight, bias, running_mean, running_var, eps: float = 1e-5) -> np.ndarray:
    """Batch normalisation at inference over [N, C, H, W] (or [N, C, W], [N, C]):
    (x - running_mean) / sqrt(running_var + eps) * weight + bias, per channel."""
    where = "batch_norm2d"
    x = _as_float32(x, "input", where)
    if x.ndim < 2:
        raise ShapeError(f"{where}: input must be [N, C, ...] with a channel axis, got shape "
                         f"{x.shape}")
    c = x.shape[1]
    w, b, m, v = (_channel_vector(a, nm, c, where) for a, nm in (
        (weight, "weight"), (bias, "bias"), (running_mean, "running_mean"),
        (running_var, "running_var")))
    denom = v.astype(np.float64) + float(eps)
    if np.any(denom <= 0):
        raise ValueError(f"{where}: running_var + eps must be > 0 (eps={eps}, smallest "
                         f"running_var {float(np.min(v))})")
    # scale in float64, applied as (x - mean) * scale + bias in float32: subtracting the
    # mean first avoids cancelling two large terms when x sits near the mean
    bshape = (1, c) + (1,) * (x.ndim - 2)
    scale = (w.astype(np.float64) / np.sqrt(denom)).astype(np.float32).reshape(bshape)
    y = x - m.reshape(bshape)
    y *= scale
    y += b.reshape(bshape)
    return y


def lrn(x, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0) -> np.ndarray:
    """Local response normalisation across channels (AlexNet; ONNX's LRN):
    y = x / (k + alpha/size * sum_{c'} x[c']**2) ** beta, with c' running over
    c - floor((size-1)/2) .. c + ceil((size-1)/2) clipped to the channels.
    x: [N, C, ...] (channel axis 1)."""
    where = "lrn"
    x = _as_float32(x, "input", where)
    size = _int(size, "size", where, 1)
    if x.ndim < 2:
        raise ShapeError(f"{where}: input must be [N, C, ...] with a channel axis, got shape "
                         f"{x.shape}")
    c = x.shape[1]
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    # windowed sum of squares as a difference of prefix sums along C (float64, so the
    # difference does not lose the small channels next to large ones)
    sq = np.square(x, dtype=np.float64)
    pref = np.zeros((x.shape[0], c + 1) + x.shape[2:])
    np.cumsum(sq, axis=1, out=pref[:, 1:])
    ch = np.arange(c)
    top = np.minimum(ch + hi, c - 1) + 1
    bot = np.maximum(ch - lo, 0)
    win = pref[:, top] - pref[:, bot]
    return (x / (float(k) + float(alpha) / size * win) ** float(beta)).astype(np.float32)


def _window_view(x, kernel, stride):
    """[N, C, Ho, Wo, kh, kw] view of the windows of x (no padding, no dilation)."""
    from numpy.lib.stride_tricks import sliding_window_view
    win = sliding_window_view(x, kernel, axis=(2, 3))
    return win[:, :, ::stride[0], ::stride[1]]


def stochastic_pool2d(x, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                      training: bool = False, seed: Optional[int] = None) -> np.ndarray:
    """Stochastic pooling (Zeiler & Fergus, 2013) over [N, C, H, W], no padding;
    stride=None means stride = kernel_size.

    Each window's activations a_i define probabilities p_i = a_i / sum_j a_j. Negative
    activations are treated as 0 (the method assumes post-ReLU inputs). Inference
    (training=False): the probability-weighted average sum_i p_i a_i =
    sum a_i**2 / sum a_i. training=True: one activation per window, drawn with
    probability p_i from np.random.default_rng(seed) (the same draws for the same seed
    and shapes). A window whose sum is 0 gives 0 in both modes; NaN propagates."""
    where = "stochastic_pool2d"
    x = _as_float32(x, "input", where)
    _check_spatial_input(x, 4, where, "[N, C, H, W]")
    kernel = _tuple(kernel_size, 2, "kernel_size", where, 1)
    stride = kernel if stride is None else _tuple(stride, 2, "stride", where, 1)
    oh = _check_output_axis(where, "height", x.shape[2], 0, 0, kernel[0], stride[0], 1,
                            False, x.shape)
    ow = _check_output_axis(where, "width", x.shape[3], 0, 0, kernel[1], stride[1], 1,
                            False, x.shape)
    _check_alloc((x.shape[0], x.shape[1], oh, ow), where)
    win = _window_view(x, kernel, stride)
    # [N, C, Ho, Wo, kh*kw] in float64, negatives clipped to 0 (NaN kept)
    a = win.reshape(win.shape[:4] + (kernel[0] * kernel[1],)).astype(np.float64)
    np.maximum(a, 0.0, out=a)
    if not training:
        total = a.sum(axis=-1)
        sq = np.einsum("...k,...k->...", a, a)
        y = np.zeros_like(total)
        with np.errstate(invalid="ignore"):     # inf / inf: replaced just below
            np.divide(sq, total, out=y, where=total > 0)
        y[np.isnan(total)] = np.nan
        y[np.isinf(total)] = np.inf      # a window holding +inf weighs it with p = 1
        return y.astype(np.float32)
    # sampling: u ~ U[0, total); the chosen tap is the first whose running sum exceeds u,
    # which has a_i > 0 and is chosen with probability a_i / total
    rng = np.random.default_rng(seed)
    cs = np.cumsum(a, axis=-1)
    total = cs[..., -1]
    u = rng.random(total.shape) * total
    idx = np.argmax(cs > u[..., None], axis=-1)
    y = np.take_along_axis(a, idx[..., None], axis=-1)[..., 0]
    y[~(total > 0)] = 0.0
    y[np.isnan(total)] = np.nan
    y[np.isinf(total)] = np.inf          # an infinite activation takes all the probability
    return y.astype(np.float32)


def _spectral_truncate(spec: np.ndarray, m: int, axis: int) -> np.ndarray:
    """Keep the m lowest frequencies of an (unshifted) spectrum along `axis`.

    Odd m keeps -(m-1)/2 .. (m-1)/2. Even m keeps -(m/2-1) .. m/2-1 and folds the two
    frequencies +m/2 and -m/2 into the output's Nyquist bin (their sum): both alias to the
    same alternating pattern on the output grid, and the sum keeps a real map real, since
    for a real map they are complex conjugates (the choice scipy.signal.resample makes)."""
    n = spec.shape[axis]
    if m == n:
        return spec
    h = m // 2
    if m % 2:
        idx = np.r_[0:h + 1, n - h:n]
        return np.take(spec, idx, axis=axis)
    pos = np.take(spec, np.arange(0, h), axis=axis)
    nyq = np.take(spec, [h], axis=axis) + np.take(spec, [n - h], axis=axis)
    neg = np.take(spec, np.arange(n - h + 1, n), axis=axis)
    return np.concatenate([pos, nyq, neg], axis=axis)


def spectral_pool2d(x, output_size: IntOrPair) -> np.ndarray:
    """Spectral pooling (Rippel, Snoek & Adams, 2015) over [N, C, H, W]: the 2-D DFT of
    each map (numpy.fft), cropped to the lowest (oh, ow) frequencies, inverse DFT at the
    output size, real part, scaled by (oh*ow)/(H*W) so that a constant map keeps its value.
    For an even output size the +n/2 and -n/2 input frequencies are summed into the output's
    Nyquist row/column (see _spectral_truncate), so a real input gives a real output.
    output_size: int or (oh, ow), each at most the input size."""
    where = "spectral_pool2d"
    x = _as_float32(x, "input", where)
    _check_spatial_input(x, 4, where, "[N, C, H, W]")
    oh, ow = _tuple(output_size, 2, "output_size", where, 1)
    h, w = x.shape[2:]
    if oh > h or ow > w:
        raise ShapeError(f"{where}: output_size ({oh}, {ow}) is larger than the input map "
                         f"({h}, {w}) (input shape {x.shape}); spectral pooling only shrinks")
    if x.shape[0] == 0:
        return np.zeros((0, x.shape[1], oh, ow), np.float32)
    spec = np.fft.fft2(x.astype(np.float64), axes=(2, 3))
    spec = _spectral_truncate(_spectral_truncate(spec, oh, 2), ow, 3)
    y = np.fft.ifft2(spec, axes=(2, 3)).real
    y *= (oh * ow) / (h * w)
    return y.astype(np.float32)


# ------------------------------------------------------------------ locally connected
# A convolution without weight sharing (the textbook middle ground between a fully
# connected layer and a convolution): every output position has its own filter bank.

__all__ += ["locally_connected2d"]


def _lc_setup(x, weight, bias, stride, padding, where):
    """Validate a locally connected layer; returns (x, weight, bias, stride, pads) in the
    binding's form (pads as (top, left, bottom, right))."""
    x = _as_float32(x, "input", where)
    weight = _as_float32(weight, "weight", where)
    _check_spatial_input(x, 4, where, "[N, C, H, W]")
    if weight.ndim != 6:
        raise ShapeError(f"{where}: weight must be 6-D [Ho, Wo, Co, Ci, kh, kw] (one "
                         f"[Co, Ci, kh, kw] filter bank per output position), got shape "
                         f"{weight.shape}")
    if any(s == 0 for s in weight.shape):
        raise ShapeError(f"{where}: weight shape {weight.shape} has a zero size")
    n, c, h, w = x.shape
    wh, ww, co, ci, kh, kw = weight.shape
    if ci != c:
        raise ShapeError(f"{where}: input {x.shape} has {c} channels but weight "
                         f"{weight.shape} [Ho, Wo, Co, Ci, kh, kw] expects Ci = {ci}")
    stride = _tuple(stride, 2, "stride", where, 1)
    pads = _pads2d(padding, (h, w), (kh, kw), stride, (1, 1), where)
    oh = _check_output_axis(where, "height", h, pads[0], pads[2], kh, stride[0], 1, False,
                            x.shape)
    ow = _check_output_axis(where, "width", w, pads[1], pads[3], kw, stride[1], 1, False,
                            x.shape)
    if (wh, ww) != (oh, ow):
        raise ShapeError(
            f"{where}: weight {weight.shape} holds filter banks for a {wh}x{ww} output, but "
            f"input {x.shape} with kernel {kh}x{kw}, stride {stride} and pads "
            f"(top, left, bottom, right) = {pads} gives a {oh}x{ow} output (output size = "
            f"floor((in + pad_begin + pad_end - kernel) / stride) + 1)")
    if bias is not None:
        bias = _as_float32(bias, "bias", where)
        if bias.shape != (co, oh, ow):
            raise ShapeError(f"{where}: bias must have shape (Co, Ho, Wo) = {(co, oh, ow)} "
                             f"(one bias per output unit), got {bias.shape}")
    _check_alloc((n, co, oh, ow), where)
    return x, weight, bias, stride, pads


def locally_connected2d(x, weight, bias=None, stride: IntOrPair = 1,
                        padding: Padding = 0) -> np.ndarray:
    """Locally connected 2-D layer: a convolution whose filters are not shared, so every
    output position (oh, ow) has its own bank weight[oh, ow] of shape [Co, Ci, kh, kw]:

        y[n, co, oh, ow] = bias[co, oh, ow] + sum over (ci, i, j) of
            weight[oh, ow, co, ci, i, j] * x[n, ci, oh*sh - pad_top + i, ow*sw - pad_left + j]

    (cross-correlation, zeros outside the input). x: [N, Ci, H, W] (or unbatched
    [Ci, H, W]); weight: [Ho, Wo, Co, Ci, kh, kw], Ho and Wo being the output size, so
    the weights fix the input size; bias: [Co, Ho, Wo] or None. padding as in conv2d
    (int, (ph, pw), (top, left, bottom, right), "same", "valid"); no dilation or groups.
    A conv2d weight w copied to every position, np.broadcast_to(w, (Ho, Wo) + w.shape),
    gives conv2d's output. Each output element is summed in a fixed order, so results
    are the same bits for any thread count and any batch the image is part of.
    Returns float32 [N, Co, Ho, Wo] (or [Co, Ho, Wo])."""
    unbatched = np.ndim(x) == 3
    if unbatched:
        x = np.asarray(x)[None]
    x, weight, bias, stride, pads = _lc_setup(x, weight, bias, stride, padding,
                                              "locally_connected2d")
    y = _kernels.locally_connected2d(x, weight, bias, stride, pads)
    return y[0] if unbatched else y
