"""Layers that the ONNX importer needs beyond fastconv.layers.

ONNX graphs (the ONNX node tests above all) may feed a convolution's weights, a Gemm's
operands or BatchNormalization's statistics as graph inputs instead of initializers, add
tensors of different shapes with NumPy broadcasting, and average-pool with dilations.
These layers cover those cases. Like every fastconv layer they work on per-sample shapes
and batched arrays; an operand that arrives as an input is batched like every model input
(the importer gives a parameter input its whole ONNX shape as the per-sample shape and the
caller broadcasts it along the batch), so each sample may carry its own weights. When
every sample carries the same weights (the usual case) one kernel call serves the batch.

They are registered with register_layer, so models using them save, load and pickle.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from fastconv import functional as F
from fastconv.errors import ShapeError
from fastconv.functional import _check_output_axis, _int, _tuple
from fastconv.layers import Layer, _merge_rf, register_layer

__all__ = ["OnnxConv", "OnnxGemm", "OnnxAdd", "OnnxBatchNorm", "OnnxAvgPool"]


def _same_for_all(a: np.ndarray) -> bool:
    """True when every sample of the batched array `a` equals the first one (a weight
    broadcast along the batch)."""
    return a.shape[0] <= 1 or bool(np.array_equal(a, np.broadcast_to(a[:1], a.shape)))


def _opt_param(layer: Layer, value, pname: str, shape) -> None:
    if value is not None:
        layer.params[pname] = layer._param(value, pname, tuple(shape), None)


# ================================================================== convolution

@register_layer
class OnnxConv(Layer):
    """ONNX Conv (1-D or 2-D) whose weight and/or bias arrive as inputs.

    Inputs in order: x, then the weight when `weight_input`, then the bias when
    `bias_input`. A weight or bias that does not arrive as an input is a param
    (`weight` [Co, Ci/g, k...], `bias` [Co]); `bias_input=False` with no bias param
    means no bias. pads: (begins..., ends...) as ONNX orders them."""
    _param_args = {"weight": "weight", "bias": "bias"}

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, pads=0, dilation=1,
                 groups=1, weight_input=True, bias_input=False, name=None, weight=None,
                 bias=None):
        super().__init__(name)
        where = self.label
        self.kernel_size = tuple(_int(k, "kernel_size", where, 1) for k in kernel_size)
        n = self.nsp = len(self.kernel_size)
        if n not in (1, 2):
            raise ValueError(f"{where}: OnnxConv is 1-D or 2-D, got kernel {self.kernel_size}")
        self.in_channels = _int(in_channels, "in_channels", where, 1)
        self.out_channels = _int(out_channels, "out_channels", where, 1)
        self.stride = _tuple(stride, n, "stride", where, 1)
        self.dilation = _tuple(dilation, n, "dilation", where, 1)
        self.pads = _tuple(pads, 2 * n, "pads", where, 0)
        self.groups = _int(groups, "groups", where, 1)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ShapeError(f"{where}: groups={self.groups} must divide the input channels "
                             f"({self.in_channels}) and the output channels "
                             f"({self.out_channels})")
        self.weight_input = bool(weight_input)
        self.bias_input = bool(bias_input)
        self.wshape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        if self.weight_input:
            if weight is not None:
                raise ValueError(f"{where}: weight given both as a param and as an input")
        elif weight is None:
            raise ValueError(f"{where}: weight_input=False needs a weight param")
        _opt_param(self, weight, "weight", self.wshape)
        if self.bias_input and bias is not None:
            raise ValueError(f"{where}: bias given both as a param and as an input")
        _opt_param(self, bias, "bias", (self.out_channels,))
        self.num_inputs = 1 + self.weight_input + self.bias_input

    def _infer(self, shapes):
        x = shapes[0]
        n = self.nsp
        self._require_rank(x, (n + 1,), "(C, H, W)" if n == 2 else "(C, W)")
        if x[0] != self.in_channels:
            raise ShapeError(f"{self.label}: input shape {x} has {x[0]} channels but the weight "
                             f"{self.wshape} with groups={self.groups} expects "
                             f"{self.wshape[1]} x {self.groups} = {self.in_channels}")
        k = 1
        if self.weight_input:
            if shapes[k] != self.wshape:
                raise ShapeError(f"{self.label}: the weight input has shape {shapes[k]}, "
                                 f"expected {self.wshape}")
            k += 1
        if self.bias_input and shapes[k] != (self.out_channels,):
            raise ShapeError(f"{self.label}: the bias input has shape {shapes[k]}, expected "
                             f"({self.out_channels},)")
        axes = ("height", "width") if n == 2 else ("width",)
        out = [_check_output_axis(self.label, axes[i], x[1 + i], self.pads[i],
                                  self.pads[n + i], self.kernel_size[i], self.stride[i],
                                  self.dilation[i], False, x) for i in range(n)]
        return (self.out_channels,) + tuple(out)

    def macs(self, in_shapes):
        out = self.output_shape(in_shapes)
        return int(math.prod(out) * self.wshape[1] * math.prod(self.kernel_size))

    def receptive_field(self, rfs, in_shapes=None):
        return rfs[0].through(self.kernel_size, self.stride, self.dilation,
                              self.pads[:self.nsp])

    def _conv(self, x, w, b):
        if self.nsp == 2:
            return F.conv2d(x, w, b, self.stride, self.pads, self.dilation, self.groups)
        return F.conv1d(x, w, b, self.stride[0], self.pads, self.dilation[0], self.groups)

    def forward(self, inputs):
        arrs = self._check_inputs(inputs)
        x, k = arrs[0], 1
        w = self.params.get("weight")
        if self.weight_input:
            w, k = arrs[k], k + 1
        b = arrs[k] if self.bias_input else self.params.get("bias")
        n = x.shape[0]
        out_shape = (n,) + self._infer([a.shape[1:] for a in arrs])
        if n == 0:
            return np.zeros(out_shape, np.float32)
        per_w = self.weight_input and not _same_for_all(w)
        per_b = self.bias_input and not _same_for_all(b)
        if not per_w and not per_b:
            return self._conv(x, w[0] if self.weight_input else w,
                              b[0] if self.bias_input else b)
        # each sample with its own weights
        y = np.empty(out_shape, np.float32)
        for i in range(n):
            y[i] = self._conv(x[i:i + 1], w[i] if self.weight_input else w,
                              b[i] if self.bias_input else b)[0]
        return y

    def _config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride, "pads": self.pads,
                "dilation": self.dilation, "groups": self.groups,
                "weight_input": self.weight_input, "bias_input": self.bias_input}

    def describe(self):
        k = "x".join(map(str, self.kernel_size))
        src = "weight input" if self.weight_input else "weight param"
        return f"{k} s{'x'.join(map(str, self.stride))}, {self.in_channels}->" \
               f"{self.out_channels}, {src}"


# ================================================================== Gemm / MatMul

@register_layer
class OnnxGemm(Layer):
    """ONNX Gemm / 2-D MatMul per sample: y = alpha * a @ op(B) + beta * C, with a the
    sample's feature vector (K,), op(B) = B.T when trans_b, C broadcast to (N,).

    Inputs in order: a, then B when `b_input`, then C when `c_input`. A B or C that
    is not an input is a param (`b` as ONNX gives it, `c` of a shape that broadcasts to
    (N,)); no C param and c_input=False means no C term."""
    _param_args = {"b": "b", "c": "c"}

    def __init__(self, in_features, out_features, alpha=1.0, beta=1.0, trans_b=False,
                 b_input=True, c_input=False, c_shape=None, name=None, b=None, c=None):
        super().__init__(name)
        where = self.label
        self.in_features = _int(in_features, "in_features", where, 1)
        self.out_features = _int(out_features, "out_features", where, 1)
        self.alpha, self.beta = float(alpha), float(beta)
        self.trans_b = bool(trans_b)
        self.b_input, self.c_input = bool(b_input), bool(c_input)
        self.bshape = (self.out_features, self.in_features) if self.trans_b else \
            (self.in_features, self.out_features)
        if self.b_input == (b is not None):
            raise ValueError(f"{where}: B must be either an input or a param")
        _opt_param(self, b, "b", self.bshape)
        if c is not None:
            if self.c_input:
                raise ValueError(f"{where}: C given both as a param and as an input")
            c = np.asarray(c)
            self._check_c(c.shape)
            _opt_param(self, c, "c", c.shape)
        self.c_shape = None if c_shape is None else tuple(int(s) for s in c_shape)
        self.num_inputs = 1 + self.b_input + self.c_input

    def _check_c(self, shape):
        try:
            ok = len(shape) <= 1 and np.broadcast_shapes(tuple(shape), (self.out_features,)) \
                == (self.out_features,)
        except ValueError:
            ok = False
        if not ok:
            raise ShapeError(f"{self.label}: C has per-sample shape {tuple(shape)}, which does "
                             f"not broadcast to the output ({self.out_features},)")

    def _infer(self, shapes):
        a = shapes[0]
        if a != (self.in_features,):
            raise ShapeError(f"{self.label}: A has per-sample shape {a}, expected "
                             f"({self.in_features},) (B has shape {self.bshape}, "
                             f"trans_b={int(self.trans_b)})")
        k = 1
        if self.b_input:
            if shapes[k] != self.bshape:
                raise ShapeError(f"{self.label}: B has shape {shapes[k]}, expected "
                                 f"{self.bshape} for A of shape {a}")
            k += 1
        if self.c_input:
            self._check_c(shapes[k])
        return (self.out_features,)

    def macs(self, in_shapes):
        self.output_shape(in_shapes)
        return self.in_features * self.out_features

    def receptive_field(self, rfs, in_shapes=None):
        return rfs[0].mixed()

    def forward(self, inputs):
        arrs = self._check_inputs(inputs)
        a, k = arrs[0], 1
        b = self.params.get("b")
        if self.b_input:
            b, k = arrs[k], k + 1
        c = arrs[k] if self.c_input else self.params.get("c")
        n = a.shape[0]
        self._infer([t.shape[1:] for t in arrs])
        if self.b_input and not _same_for_all(b):
            bt = np.swapaxes(b, 1, 2) if self.trans_b else b        # [n, K, N]
            y = np.matmul(a.astype(np.float64)[:, None, :], bt.astype(np.float64))[:, 0, :]
        else:
            bb = b[0] if self.b_input else b
            if n == 0:
                y = np.zeros((0, self.out_features))
            else:
                w = bb if self.trans_b else bb.T                   # [N, K]
                y = F.linear(a, w).astype(np.float64)
        if self.alpha != 1.0:
            y = y * self.alpha
        if c is not None and self.beta != 0.0:
            y = y + self.beta * c.astype(np.float64)
        return np.ascontiguousarray(np.broadcast_to(y, (n, self.out_features)),
                                    dtype=np.float32)

    def _config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "alpha": self.alpha, "beta": self.beta, "trans_b": self.trans_b,
                "b_input": self.b_input, "c_input": self.c_input, "c_shape": self.c_shape}

    def describe(self):
        return f"{self.in_features}->{self.out_features}, alpha {self.alpha:g}, " \
               f"beta {self.beta:g}" + (", B input" if self.b_input else "")


# ================================================================== broadcasting add

@register_layer
class OnnxAdd(Layer):
    """Elementwise sum with NumPy broadcasting of the per-sample shapes (aligned on the
    right, as ONNX does), plus an optional constant param `constant` of a per-sample
    shape. num_inputs: how many runtime inputs (>= 1)."""
    _param_args = {"constant": "constant"}

    def __init__(self, num_inputs=2, name=None, constant=None):
        super().__init__(name)
        self.num_inputs = _int(num_inputs, "num_inputs", self.label, 1)
        if constant is not None:
            c = np.asarray(constant)
            self.params["constant"] = self._param(c, "constant", c.shape, None)
        if self.num_inputs == 1 and constant is None:
            raise ValueError(f"{self.label}: one input needs a constant to add")

    def _out_shape(self, shapes) -> Tuple[int, ...]:
        all_shapes = list(shapes)
        if "constant" in self.params:
            all_shapes.append(self.params["constant"].shape)
        try:
            out = np.broadcast_shapes(*[tuple(s) for s in all_shapes])
        except ValueError:
            raise ShapeError(f"{self.label}: shapes " + ", ".join(str(tuple(s)) for s in
                             all_shapes) + " do not broadcast (ONNX/NumPy rule: aligned "
                             "on the right, each axis equal or 1)") from None
        return tuple(int(s) for s in out)

    def _infer(self, shapes):
        out = self._out_shape(shapes)
        if not out:
            out = (1,)
        return out

    def macs(self, in_shapes):
        out = self.output_shape(in_shapes)
        return int(math.prod(out) * max(len(in_shapes) - 1 + ("constant" in self.params), 0))

    def receptive_field(self, rfs, in_shapes=None):
        return _merge_rf(rfs)

    def forward(self, inputs):
        arrs = self._check_inputs(inputs)
        out = self._infer([a.shape[1:] for a in arrs])
        n = arrs[0].shape[0]
        r = len(out)
        y = np.zeros((n,) + out, np.float32)
        for a in arrs:
            ps = a.shape[1:]
            y += a.reshape((n,) + (1,) * (r - len(ps)) + ps)
        if "constant" in self.params:
            y += self.params["constant"]
        return y

    def _config(self):
        return {"num_inputs": self.num_inputs}

    def describe(self):
        return "broadcast add" + (" + constant" if "constant" in self.params else "")


# ================================================================== batch normalisation

_BN_PARAMS = ("weight", "bias", "running_mean", "running_var")


@register_layer
class OnnxBatchNorm(Layer):
    """Inference BatchNormalization over a (C, ...) sample of any rank, with any of
    scale (weight), B (bias), mean and var arriving as inputs (after x, in that order,
    for the names listed in `inputs`); the others are params."""
    _param_args = {p: p for p in _BN_PARAMS}

    def __init__(self, num_features, eps=1e-5, inputs=(), name=None, weight=None, bias=None,
                 running_mean=None, running_var=None):
        super().__init__(name)
        c = self.num_features = _int(num_features, "num_features", self.label, 1)
        self.eps = float(eps)
        self.inputs = tuple(str(i) for i in inputs)
        unknown = set(self.inputs) - set(_BN_PARAMS)
        if unknown:
            raise ValueError(f"{self.label}: unknown BatchNormalization inputs {sorted(unknown)}")
        given = dict(zip(_BN_PARAMS, (weight, bias, running_mean, running_var)))
        for p in _BN_PARAMS:
            if p in self.inputs:
                if given[p] is not None:
                    raise ValueError(f"{self.label}: {p} given both as a param and an input")
            else:
                if given[p] is None:
                    raise ValueError(f"{self.label}: {p} is neither an input nor a param")
                self.params[p] = self._param(given[p], p, (c,), None)
        self.num_inputs = 1 + len(self.inputs)

    def _infer(self, shapes):
        x = shapes[0]
        if x[0] != self.num_features:
            raise ShapeError(f"{self.label}: input shape {x} has {x[0]} channels but the "
                             f"statistics have {self.num_features}")
        for p, s in zip(self.inputs, shapes[1:]):
            if s != (self.num_features,):
                raise ShapeError(f"{self.label}: input {p} has shape {s}, expected "
                                 f"({self.num_features},)")
        return x

    def macs(self, in_shapes):
        return int(math.prod(self.output_shape(in_shapes)[:1] + self._check_count(
            in_shapes)[0][1:]))

    def forward(self, inputs):
        arrs = self._check_inputs(inputs)
        x = arrs[0]
        vals = dict(zip(self.inputs, arrs[1:]))
        n = x.shape[0]
        if n == 0:
            return x.copy()
        if all(_same_for_all(v) for v in vals.values()):
            p = {k: (vals[k][0] if k in vals else self.params[k]) for k in _BN_PARAMS}
            xs = x if x.ndim >= 3 else x.reshape(n, -1, 1)
            return F.batch_norm2d(xs, p["weight"], p["bias"], p["running_mean"],
                                  p["running_var"], self.eps).reshape(x.shape)
        # per-sample statistics, in float64
        shape = (n, self.num_features) + (1,) * (x.ndim - 2)
        p = {k: (vals[k] if k in vals else self.params[k][None]).astype(np.float64)
             .reshape(shape) for k in _BN_PARAMS}
        y = (x - p["running_mean"]) / np.sqrt(p["running_var"] + self.eps) * p["weight"] \
            + p["bias"]
        return y.astype(np.float32)

    def _config(self):
        return {"num_features": self.num_features, "eps": self.eps, "inputs": self.inputs}

    def describe(self):
        return f"{self.num_features} channels, eps {self.eps:g}" + (
            f", inputs {', '.join(self.inputs)}" if self.inputs else "")


# ================================================================== dilated average pooling

@register_layer
class OnnxAvgPool(Layer):
    """ONNX AveragePool with dilations (opset 19+), 1-D or 2-D, in NumPy (fastconv's
    average-pooling kernel has no dilation). pads: (begins..., ends...). Output size and
    the divisor follow fastconv's rules: ceil_mode drops a last window that would start
    in the end padding; count_include_pad counts the taps inside [-pad_begin, size +
    pad_end), otherwise the taps inside the input."""

    def __init__(self, kernel_size, stride=1, pads=0, dilation=1, ceil_mode=False,
                 count_include_pad=False, name=None):
        super().__init__(name)
        where = self.label
        self.kernel_size = tuple(_int(k, "kernel_size", where, 1) for k in kernel_size)
        n = self.nsp = len(self.kernel_size)
        if n not in (1, 2):
            raise ValueError(f"{where}: OnnxAvgPool is 1-D or 2-D")
        self.stride = _tuple(stride, n, "stride", where, 1)
        self.dilation = _tuple(dilation, n, "dilation", where, 1)
        self.pads = _tuple(pads, 2 * n, "pads", where, 0)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def _infer(self, shapes):
        (x,) = shapes
        n = self.nsp
        self._require_rank(x, (n + 1,), "(C, H, W)" if n == 2 else "(C, W)")
        axes = ("height", "width") if n == 2 else ("width",)
        out = [_check_output_axis(self.label, axes[i], x[1 + i], self.pads[i],
                                  self.pads[n + i], self.kernel_size[i], self.stride[i],
                                  self.dilation[i], self.ceil_mode, x) for i in range(n)]
        return (x[0],) + tuple(out)

    def macs(self, in_shapes):
        return int(math.prod(self.output_shape(in_shapes)) * math.prod(self.kernel_size))

    def receptive_field(self, rfs, in_shapes=None):
        return rfs[0].through(self.kernel_size, self.stride, self.dilation,
                              self.pads[:self.nsp])

    def forward(self, inputs):
        (x,) = self._check_inputs(inputs)
        out = self._infer([x.shape[1:]])
        n = self.nsp
        x64 = x.astype(np.float64)
        spatial = x.shape[2:]
        pad_width = [(0, 0), (0, 0)]
        for i in range(n):
            need = (out[1 + i] - 1) * self.stride[i] + self.dilation[i] * (
                self.kernel_size[i] - 1) + 1
            end = max(self.pads[n + i], need - spatial[i] - self.pads[i])
            pad_width.append((self.pads[i], end))
        xp = np.pad(x64, pad_width)
        # masks over the padded grid: inside the input, and inside the declared padding
        in_mask = np.zeros(xp.shape[2:])
        pad_mask = np.zeros(xp.shape[2:])
        in_idx = tuple(slice(self.pads[i], self.pads[i] + spatial[i]) for i in range(n))
        pad_idx = tuple(slice(0, self.pads[i] + spatial[i] + self.pads[n + i])
                        for i in range(n))
        in_mask[in_idx] = 1.0
        pad_mask[pad_idx] = 1.0
        mask = pad_mask if self.count_include_pad else in_mask
        total = np.zeros(x.shape[:2] + out[1:])
        count = np.zeros(out[1:])
        for taps in np.ndindex(*self.kernel_size):
            idx = tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in
                        zip(taps, self.dilation, self.stride, out[1:]))
            total += xp[(Ellipsis,) + idx]
            count += mask[idx]
        return (total / np.maximum(count, 1.0)).astype(np.float32)

    def _config(self):
        return {"kernel_size": self.kernel_size, "stride": self.stride, "pads": self.pads,
                "dilation": self.dilation, "ceil_mode": self.ceil_mode,
                "count_include_pad": self.count_include_pad}

    def describe(self):
        k = "x".join(map(str, self.kernel_size))
        return f"{k} s{'x'.join(map(str, self.stride))} d{'x'.join(map(str, self.dilation))}"
