"""fastconv.layers: every layer against a float64 NumPy reference written here, shape
rules and their error messages, parameter counts, MACs, receptive fields (also checked
against the pixels that really reach an output), config round trips, and the NumPy-only
functional additions (stochastic and spectral pooling, LRN, batch norm, leaky ReLU).

The references below are deliberately written differently from the implementations:
convolution and pooling loop over output positions, stochastic pooling loops over
windows, spectral pooling builds explicit DFT matrices, LRN loops over channels.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastconv as fc
from fastconv import layers as L
from fastconv.layers import ReceptiveField

from strategies import conv2d_configs, pool2d_configs

RTOL = 1e-4          # conv / linear: max abs err <= RTOL * max(1, max |ref|)
ELEM_RTOL = 2e-6     # short elementwise float32 formulas


# =========================================================================== helpers

def close(got, ref, rtol=RTOL, what=""):
    got = np.asarray(got)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.dtype == np.float32, f"{what}: dtype {got.dtype}"
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    if ref.size == 0:
        return
    scale = max(1.0, float(np.max(np.abs(ref))))
    err = float(np.max(np.abs(got.astype(np.float64) - ref)))
    assert err <= rtol * scale, f"{what}: max abs error {err:.3e} > {rtol:g} * {scale:.3e}"


def uniform(rng, *shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def norm_pads(padding, in_sp, kernel, stride, dilation):
    """Per spatial axis (begin, end) from an API padding form (own implementation)."""
    n = len(in_sp)
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * n
        out = []
        for size, k, s, d in zip(in_sp, kernel, stride, dilation):
            want = (size + s - 1) // s                    # SAME_UPPER: ceil(size / s)
            tot = max(0, (want - 1) * s + d * (k - 1) + 1 - size)
            out.append((tot // 2, tot - tot // 2))
        return out
    if isinstance(padding, int):
        return [(padding, padding)] * n
    padding = tuple(padding)
    if n == 1:
        return [padding]
    if len(padding) == 2:
        return [(padding[0], padding[0]), (padding[1], padding[1])]
    return [(padding[0], padding[2]), (padding[1], padding[3])]


def as_pair(v, n=2):
    return (v,) * n if isinstance(v, int) else tuple(v)


def axis_out(size, pb, pe, k, s, d, ceil_mode=False):
    span = size + pb + pe - d * (k - 1) - 1
    if span < 0:
        return 0
    if not ceil_mode:
        return span // s + 1
    o = -(-span // s) + 1
    return o - 1 if (o - 1) * s >= size + pb else o   # last window may not start in the end pad


# =========================================================================== references

def ref_conv(x, w, b, stride, padding, dilation, groups):
    """float64 convolution over any number of spatial axes (1 or 2), one output position
    at a time: the patch [N, Ci, k...] contracted with the weights per group."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    nsp = x.ndim - 2
    k = w.shape[2:]
    stride, dilation = as_pair(stride, nsp), as_pair(dilation, nsp)
    pads = norm_pads(padding, x.shape[2:], k, stride, dilation)
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    outs = [axis_out(x.shape[2 + i], *pads[i], k[i], stride[i], dilation[i])
            for i in range(nsp)]
    n, c = x.shape[:2]
    co, cg = w.shape[:2]
    wg = w.reshape((groups, co // groups, cg) + k)
    y = np.zeros((n, co) + tuple(outs))
    for pos in np.ndindex(*outs):
        sl = tuple(slice(p * s, p * s + d * (kk - 1) + 1, d)
                   for p, s, d, kk in zip(pos, stride, dilation, k))
        patch = xp[(slice(None), slice(None)) + sl].reshape((n, groups, cg) + k)
        letters = "hw"[:nsp]
        val = np.einsum(f"ngc{letters},goc{letters}->ngo", patch, wg).reshape(n, co)
        y[(slice(None), slice(None)) + pos] = val
    if b is not None:
        y += np.asarray(b, np.float64).reshape((1, co) + (1,) * nsp)
    return y


def ref_pool(x, kind, kernel, stride, padding, dilation=1, ceil_mode=False,
             count_include_pad=True):
    """float64 max / average pooling over 1 or 2 spatial axes by output position."""
    x = np.asarray(x, np.float64)
    nsp = x.ndim - 2
    k = as_pair(kernel, nsp)
    s = k if stride is None else as_pair(stride, nsp)
    d = as_pair(dilation, nsp)
    pads = norm_pads(padding, x.shape[2:], k, s, d)
    outs = [axis_out(x.shape[2 + i], *pads[i], k[i], s[i], d[i], ceil_mode)
            for i in range(nsp)]
    y = np.zeros(x.shape[:2] + tuple(outs))
    for pos in np.ndindex(*outs):
        taps_in, n_counted = [], 1
        idx_axes = []
        for i in range(nsp):
            start = pos[i] * s[i] - pads[i][0]
            coords = [start + t * d[i] for t in range(k[i])]
            idx_axes.append([c for c in coords if 0 <= c < x.shape[2 + i]])
            # count_include_pad counts taps inside [-pad_begin, size + pad_end)
            n_counted *= sum(1 for c in coords
                             if -pads[i][0] <= c < x.shape[2 + i] + pads[i][1])
        window = x[(slice(None), slice(None)) + np.ix_(*idx_axes)]
        window = window.reshape(x.shape[:2] + (-1,))
        if kind == "max":
            val = window.max(axis=-1)
        else:
            div = n_counted if count_include_pad else window.shape[-1]
            val = window.sum(axis=-1) / div
        y[(slice(None), slice(None)) + pos] = val
    return y


def ref_stochastic_expected(x, kernel, stride):
    """sum_i p_i a_i with p_i = a_i / sum a_j over each window (negatives as 0), by loops."""
    x = np.asarray(x, np.float64)
    kh, kw = as_pair(kernel)
    sh, sw = (kh, kw) if stride is None else as_pair(stride)
    n, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    y = np.zeros((n, c, oh, ow))
    for b in range(n):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    a = [max(float(v), 0.0) for v in
                         x[b, ch, i * sh:i * sh + kh, j * sw:j * sw + kw].ravel()]
                    tot = sum(a)
                    y[b, ch, i, j] = sum((v / tot) * v for v in a) if tot > 0 else 0.0
    return y


def spectral_matrix(n, m):
    """The 1-D spectral-pooling operator as an m x n matrix from explicit DFT matrices:
    keep the frequencies f with |f| <= m/2 (both +-m/2 for even m, as distinct bins of the
    n-point DFT), evaluate them on the m-point output grid, divide by n."""
    bins = {}
    for f in range(-(m // 2), m // 2 + 1):
        bins.setdefault(f % n, f)                 # m == n: +-n/2 is one bin, counted once
    freqs = np.array(sorted(bins.values()), dtype=np.float64)
    t = np.arange(n)
    j = np.arange(m)
    dft = np.exp(-2j * np.pi * np.outer(freqs, t) / n)        # [F, n] analysis
    synth = np.exp(2j * np.pi * np.outer(j, freqs) / m) / n   # [m, F] synthesis
    return synth @ dft


def ref_spectral(x, oh, ow):
    x = np.asarray(x, np.float64)
    ah = spectral_matrix(x.shape[2], oh)
    aw = spectral_matrix(x.shape[3], ow)
    y = np.einsum("ih,nchw,jw->ncij", ah, x, aw)
    assert np.max(np.abs(y.imag)) <= 1e-9 * max(1.0, np.max(np.abs(y.real))), "not real"
    return y.real


def ref_lrn(x, size, alpha, beta, k):
    x = np.asarray(x, np.float64)
    c = x.shape[1]
    y = np.empty_like(x)
    for ch in range(c):
        lo = max(0, ch - (size - 1) // 2)
        hi = min(c - 1, ch + math.ceil((size - 1) / 2))
        sq = np.sum(x[:, lo:hi + 1] ** 2, axis=1)
        y[:, ch] = x[:, ch] / (k + alpha / size * sq) ** beta
    return y


def ref_bn(x, w, b, m, v, eps):
    x = np.asarray(x, np.float64)
    sh = (1, -1) + (1,) * (x.ndim - 2)
    f = lambda a: np.asarray(a, np.float64).reshape(sh)  # noqa: E731
    return (x - f(m)) / np.sqrt(f(v) + eps) * f(w) + f(b)


def ref_softmax(x, axis):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# =========================================================================== forward

@given(cfg=conv2d_configs())
def test_conv2d_layer_matches_reference(cfg):
    rng = np.random.default_rng(cfg["seed"])
    layer = L.Conv2d(cfg["c"], cfg["co"], (cfg["kh"], cfg["kw"]), cfg["stride"],
                     cfg["padding"], cfg["dilation"], cfg["groups"], bias=cfg["bias"],
                     seed=cfg["seed"] % 1000)
    if cfg["bias"]:
        layer.params["bias"][:] = uniform(rng, cfg["co"])
    x = uniform(rng, cfg["n"], cfg["c"], cfg["h"], cfg["w"])
    assert layer.output_shape([(cfg["c"], cfg["h"], cfg["w"])]) == (cfg["co"],) + cfg["out"]
    ref = ref_conv(x, layer.weight, layer.bias, cfg["stride"], cfg["padding"],
                   cfg["dilation"], cfg["groups"])
    close(layer.forward([x]), ref, what=str(cfg))


@pytest.mark.parametrize("c,co,k,stride,padding,dilation,groups,w", [
    (3, 5, 3, 1, 0, 1, 1, 11), (4, 6, 5, 2, (2, 1), 1, 2, 17), (6, 6, 3, 1, "same", 2, 6, 9),
    (2, 3, 4, 3, "same", 1, 1, 10), (5, 4, 1, 1, "valid", 1, 1, 7)])
def test_conv1d_layer_matches_reference(c, co, k, stride, padding, dilation, groups, w):
    rng = np.random.default_rng(w)
    layer = L.Conv1d(c, co, k, stride, padding, dilation, groups, seed=3)
    layer.params["bias"][:] = uniform(rng, co)
    x = uniform(rng, 2, c, w)
    ref = ref_conv(x, layer.weight, layer.bias, stride, padding, dilation, groups)
    assert layer.output_shape([(c, w)]) == ref.shape[1:]
    close(layer.forward([x]), ref, what="conv1d")


@given(cfg=pool2d_configs())
def test_max_pool2d_layer_matches_reference(cfg):
    rng = np.random.default_rng(cfg["seed"])
    layer = L.MaxPool2d(cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"],
                        cfg["ceil_mode"])
    x = uniform(rng, cfg["n"], cfg["c"], cfg["h"], cfg["w"], lo=-4, hi=4)
    ref = ref_pool(x, "max", cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"],
                   cfg["ceil_mode"])
    assert layer.output_shape([x.shape[1:]]) == ref.shape[1:]
    got = layer.forward([x])
    assert got.shape == ref.shape and np.array_equal(got, ref.astype(np.float32)), str(cfg)


@given(cfg=pool2d_configs(with_dilation=False))
def test_avg_pool2d_layer_matches_reference(cfg):
    rng = np.random.default_rng(cfg["seed"])
    layer = L.AvgPool2d(cfg["kernel"], cfg["stride"], cfg["padding"], cfg["ceil_mode"],
                        cfg["count_include_pad"])
    x = uniform(rng, cfg["n"], cfg["c"], cfg["h"], cfg["w"], lo=-4, hi=4)
    ref = ref_pool(x, "avg", cfg["kernel"], cfg["stride"], cfg["padding"], 1,
                   cfg["ceil_mode"], cfg["count_include_pad"])
    assert layer.output_shape([x.shape[1:]]) == ref.shape[1:]
    close(layer.forward([x]), ref, rtol=1e-5, what=str(cfg))


@pytest.mark.parametrize("k,s,p,ceil_mode", [(3, 2, 1, False), (2, None, 0, True),
                                             (4, 1, (2, 1), False), (3, 3, "same", True)])
def test_pool1d_layers_match_reference(k, s, p, ceil_mode):
    x = uniform(np.random.default_rng(k), 2, 3, 13, lo=-3, hi=3)
    mx = L.MaxPool1d(k, s, p, 1, ceil_mode)
    av = L.AvgPool1d(k, s, p, ceil_mode, count_include_pad=False)
    got_m, got_a = mx.forward([x]), av.forward([x])
    ref_m = ref_pool(x, "max", k, s, p, 1, ceil_mode)
    assert mx.output_shape([(3, 13)]) == ref_m.shape[1:]
    assert np.array_equal(got_m, ref_m.astype(np.float32))
    close(got_a, ref_pool(x, "avg", k, s, p, 1, ceil_mode, False), rtol=1e-5)


def test_global_pools_and_elementwise_layers():
    rng = np.random.default_rng(1)
    x = uniform(rng, 2, 5, 7, 6, lo=-3, hi=3)
    x64 = x.astype(np.float64)
    close(L.GlobalAvgPool2d().forward([x]), x64.mean(axis=(2, 3), keepdims=True), 1e-6)
    assert np.array_equal(L.GlobalMaxPool2d().forward([x]),
                          x.max(axis=(2, 3), keepdims=True))
    assert np.array_equal(L.ReLU().forward([x]), np.maximum(x, 0))
    close(L.LeakyReLU(0.2).forward([x]), np.where(x64 >= 0, x64, 0.2 * x64), ELEM_RTOL)
    for lay in (L.Dropout(0.3), L.Identity()):
        y = lay.forward([x])
        assert np.array_equal(y, x) and y is not x
    assert np.array_equal(L.Flatten().forward([x]), x.reshape(2, -1))
    assert np.array_equal(L.Reshape((-1, 6)).forward([x]), x.reshape(2, 35, 6))
    close(L.Softmax(1).forward([x]), ref_softmax(x64, 1), 1e-5)
    close(L.Softmax().forward([x]), ref_softmax(x64, -1), 1e-5)
    y = L.Add().forward([x, 2 * x, x[:, ::-1]])
    close(y, x64 + 2 * x64 + x64[:, ::-1], ELEM_RTOL)
    cat = L.Concat().forward([x, x[:, :2]])
    assert np.array_equal(cat, np.concatenate([x, x[:, :2]], axis=1))
    cat3 = L.Concat(axis=3).forward([x, x[..., :1]])
    assert cat3.shape == (2, 5, 7, 7)


def test_leaky_relu_nan_and_dtype():
    x = np.array([[-2.0, -0.0, 0.0, 3.0, np.nan, -np.inf]], np.float64)
    y = fc.leaky_relu(x, 0.5)
    assert y.dtype == np.float32
    assert np.array_equal(y[0, [0, 2, 3, 5]], np.array([-1.0, 0.0, 3.0, -np.inf], np.float32))
    assert np.isnan(y[0, 4])
    with pytest.raises(TypeError):
        fc.leaky_relu(np.arange(4))


def test_linear_layer_matches_reference():
    rng = np.random.default_rng(2)
    lay = L.Linear(37, 11, seed=5)
    lay.params["bias"][:] = uniform(rng, 11)
    x = uniform(rng, 4, 37)
    ref = x.astype(np.float64) @ lay.weight.astype(np.float64).T + lay.bias
    close(lay.forward([x]), ref)
    nobias = L.Linear(37, 11, bias=False, seed=5)
    assert "bias" not in nobias.params
    close(nobias.forward([x]), x.astype(np.float64) @ nobias.weight.astype(np.float64).T)


@pytest.mark.parametrize("shape", [(2, 6, 5, 4), (3, 4, 9)])
def test_batch_norm_matches_reference(shape):
    rng = np.random.default_rng(len(shape))
    c = shape[1]
    w, b, m = (uniform(rng, c) for _ in range(3))
    v = uniform(rng, c, lo=0.1, hi=2.0)
    lay = L.BatchNorm2d(c, eps=1e-3, weight=w, bias=b, running_mean=m, running_var=v)
    x = uniform(rng, *shape, lo=-3, hi=3)
    assert lay.output_shape([shape[1:]]) == shape[1:]
    close(lay.forward([x]), ref_bn(x, w, b, m, v, 1e-3), 1e-5)
    close(fc.batch_norm2d(x, w, b, m, v, 1e-3), ref_bn(x, w, b, m, v, 1e-3), 1e-5)
    # defaults are the identity up to eps
    close(L.BatchNorm2d(c, eps=0.0).forward([x]), x.astype(np.float64), ELEM_RTOL)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6])
def test_lrn_matches_reference(size):
    rng = np.random.default_rng(size)
    x = uniform(rng, 2, 7, 4, 3, lo=-5, hi=5)
    lay = L.LRN(size, alpha=0.5, beta=0.75, k=1.5)
    close(lay.forward([x]), ref_lrn(x, size, 0.5, 0.75, 1.5), 1e-5)
    x1 = uniform(rng, 2, 3, 5)     # (C, W) input, fewer channels than the window
    close(L.LRN(size, 1e-2, 0.6, 2.0).forward([x1]), ref_lrn(x1, size, 1e-2, 0.6, 2.0), 1e-5)


def test_lrn_matches_onnxruntime():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper
    # (onnx.reference's LRN loops over the batch axis instead of the channels, so it is
    # no oracle; onnxruntime implements the ONNX definition, odd sizes only; the even
    # sizes' window is checked against ref_lrn above)
    x = uniform(np.random.default_rng(9), 2, 6, 3, 3, lo=-4, hi=4)
    for size in (1, 3, 5, 7):
        node = helper.make_node("LRN", ["x"], ["y"], size=size, alpha=0.3, beta=0.7, bias=1.2)
        graph = helper.make_graph([node], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, x.shape)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = min(model.ir_version, 9)
        sess = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        (want,) = sess.run(None, {"x": x})
        close(fc.lrn(x, size, 0.3, 0.7, 1.2), want.astype(np.float64), 1e-5,
              what=f"size {size}")


# =========================================================================== stochastic

@given(h=st.integers(1, 9), w=st.integers(1, 9), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.one_of(st.none(), st.integers(1, 3)), seed=st.integers(0, 2**31 - 1))
def test_stochastic_pool_inference_matches_reference(h, w, kh, kw, sh, seed):
    if kh > h or kw > w:
        with pytest.raises(fc.ShapeError, match="< 1"):
            L.StochasticPool2d((kh, kw), sh, name="sp").output_shape([(2, h, w)])
        return
    rng = np.random.default_rng(seed)
    x = uniform(rng, 2, 3, h, w, lo=-1, hi=2)
    x[0, 0] = 0.0               # all-zero windows
    x[0, 1] = -np.abs(x[0, 1])  # windows with only negative activations
    stride = None if sh is None else (sh, 1 + seed % 2)
    lay = L.StochasticPool2d((kh, kw), stride)
    ref = ref_stochastic_expected(x, (kh, kw), stride)
    assert lay.output_shape([x.shape[1:]]) == ref.shape[1:]
    got = lay.forward([x])
    close(got, ref, 1e-5)
    assert np.all(got[0, :2] == 0)


def _windows(x, k, s):
    n, c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    return [[[[set(x[b, ch, i * s:i * s + k, j * s:j * s + k].ravel().tolist())
               for j in range(ow)] for i in range(oh)] for ch in range(c)] for b in range(n)]


def test_stochastic_pool_training_samples_window_values_reproducibly():
    rng = np.random.default_rng(0)
    x = uniform(rng, 2, 4, 12, 10, lo=0.0, hi=1.0)
    x[1, 2] = 0.0                                   # all-zero windows give 0
    x[1, 3] = -x[1, 3]                              # so do all-negative ones
    lay = L.StochasticPool2d(2, training=True, seed=123)
    y1, y2 = lay.forward([x]), lay.forward([x])
    assert y1.shape == (2, 4, 6, 5) and y1.dtype == np.float32
    assert np.array_equal(y1, y2), "same seed must give the same draws"
    y_other = L.StochasticPool2d(2, training=True, seed=124).forward([x])
    assert not np.array_equal(y1, y_other), "another seed should give other draws"
    assert np.array_equal(fc.stochastic_pool2d(x, 2, training=True, seed=123), y1)
    wins = _windows(x, 2, 2)
    for idx in np.ndindex(*y1.shape):
        b, c, i, j = idx
        if (b, c) in ((1, 2), (1, 3)):
            assert y1[idx] == 0.0
        else:
            assert float(y1[idx]) in wins[b][c][i][j], f"{y1[idx]} not in window {idx}"
    # overlapping windows (stride 1) too
    y3 = fc.stochastic_pool2d(x[:1], 3, stride=1, training=True, seed=5)
    wins3 = _windows(x[:1], 3, 1)
    assert all(float(y3[idx]) in wins3[idx[0]][idx[1]][idx[2]][idx[3]]
               for idx in np.ndindex(*y3.shape))


def test_stochastic_pool_training_follows_the_window_probabilities():
    # 20000 copies of one 2x2 window (1, 2, 3, 4) and a (0, 5, -1, 5) window: the draws'
    # frequencies must approach p_i = a_i / sum a_j (the generator is seeded: no flakiness)
    n = 20000
    x = np.empty((n, 2, 2, 2), np.float32)
    x[:, 0] = np.array([[1, 2], [3, 4]], np.float32)
    x[:, 1] = np.array([[0, 5], [-1, 5]], np.float32)
    y = fc.stochastic_pool2d(x, 2, training=True, seed=7)[:, :, 0, 0]
    freq = np.array([np.mean(y[:, 0] == v) for v in (1, 2, 3, 4)])
    assert np.all(np.abs(freq - np.array([0.1, 0.2, 0.3, 0.4])) < 0.015), freq
    assert set(np.unique(y[:, 1]).tolist()) == {5.0}
    # the mean of the draws approaches the inference value sum(a^2)/sum(a) = 3
    assert abs(float(y[:, 0].mean()) - 3.0) < 0.03


def test_stochastic_pool_special_values():
    x = np.zeros((1, 1, 2, 4), np.float32)
    x[0, 0, :, :2] = [[np.nan, 1], [2, 3]]
    x[0, 0, :, 2:] = [[np.inf, 1], [0, 0]]
    y = fc.stochastic_pool2d(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and y[0, 0, 0, 1] == np.inf
    assert fc.stochastic_pool2d(np.zeros((0, 3, 4, 4), np.float32), 2).shape == (0, 3, 2, 2)
    with pytest.raises(TypeError):
        fc.stochastic_pool2d(np.ones((1, 1, 4, 4), np.int32), 2)


# =========================================================================== spectral

@given(h=st.integers(1, 12), w=st.integers(1, 12), dh=st.integers(0, 6),
       dw=st.integers(0, 6), seed=st.integers(0, 2**31 - 1))
def test_spectral_pool_matches_dft_matrix_reference(h, w, dh, dw, seed):
    oh, ow = max(1, h - dh), max(1, w - dw)
    x = uniform(np.random.default_rng(seed), 2, 2, h, w)
    lay = L.SpectralPool2d((oh, ow))
    assert lay.output_shape([(2, h, w)]) == (2, oh, ow)
    close(lay.forward([x]), ref_spectral(x, oh, ow), 1e-5, what=f"{(h, w)} -> {(oh, ow)}")


def test_spectral_pool_properties():
    rng = np.random.default_rng(4)
    # a constant map stays the same constant at every output size
    c = np.full((1, 2, 9, 8), 2.5, np.float32)
    for size in [(1, 1), (4, 4), (5, 3), (9, 8)]:
        y = fc.spectral_pool2d(c, size)
        assert np.allclose(y, 2.5, atol=1e-6), size
    # the same size is the identity
    x = uniform(rng, 2, 3, 8, 7)
    close(fc.spectral_pool2d(x, (8, 7)), x.astype(np.float64), 1e-6)
    # a band-limited map is resampled exactly on the coarser grid
    n, m, f = 16, 6, 2
    t = np.arange(n)
    j = np.arange(m)
    img = np.cos(2 * np.pi * f * t / n)[:, None] * np.cos(2 * np.pi * 1 * t / n)[None, :]
    want = np.cos(2 * np.pi * f * j / m)[:, None] * np.cos(2 * np.pi * 1 * j / m)[None, :]
    close(fc.spectral_pool2d(img[None, None], m), want[None, None], 1e-5)
    # an int output_size means (s, s); batch 0 works
    assert fc.spectral_pool2d(x, 3).shape == (2, 3, 3, 3)
    assert fc.spectral_pool2d(np.zeros((0, 3, 8, 7), np.float32), 4).shape == (0, 3, 4, 4)
    with pytest.raises(fc.ShapeError, match=r"larger than the input map \(8, 7\)"):
        fc.spectral_pool2d(x, (4, 8))


# =========================================================================== shape rules

def test_output_shapes():
    cases = [
        (L.Conv2d(3, 64, 3, padding=1), (3, 224, 224), (64, 224, 224)),
        (L.Conv2d(3, 8, 7, stride=2, padding=3), (3, 225, 224), (8, 113, 112)),
        (L.Conv2d(4, 8, 3, stride=2, padding="same"), (4, 9, 8), (8, 5, 4)),
        (L.Conv2d(4, 8, 3, dilation=2, padding=(1, 0, 2, 3)), (4, 10, 10), (8, 9, 9)),
        (L.Conv1d(4, 8, 5, stride=2, padding=(2, 1)), (4, 20), (8, 10)),
        (L.MaxPool2d(3, 2, ceil_mode=True), (8, 10, 10), (8, 5, 5)),
        (L.MaxPool2d(2), (8, 7, 7), (8, 3, 3)),
        (L.AvgPool2d(3, 1, 1), (8, 7, 6), (8, 7, 6)),
        (L.MaxPool1d(2), (5, 9), (5, 4)),
        (L.GlobalAvgPool2d(), (512, 7, 7), (512, 1, 1)),
        (L.Flatten(), (512, 7, 7), (25088,)),
        (L.Linear(25088 // 49, 10), (512,), (10,)),
        (L.Reshape((-1, 7)), (512, 7, 7), (3584, 7)),
        (L.StochasticPool2d(3, 2), (4, 9, 10), (4, 4, 4)),
        (L.SpectralPool2d((3, 5)), (2, 8, 8), (2, 3, 5)),
        (L.BatchNorm2d(6), (6, 11), (6, 11)),
        (L.LRN(), (96, 55, 55), (96, 55, 55)),
    ]
    for layer, shape, want in cases:
        assert layer.output_shape([shape]) == want, layer
    assert L.Add().output_shape([(3, 4, 4)] * 3) == (3, 4, 4)
    assert L.Concat().output_shape([(3, 4, 4), (5, 4, 4), (1, 4, 4)]) == (9, 4, 4)
    assert L.Concat(axis=-1).output_shape([(3, 4, 4), (3, 4, 2)]) == (3, 4, 6)


def _raises(layer, shapes, *fragments):
    with pytest.raises(fc.ShapeError) as ei:
        layer.output_shape(shapes)
    msg = str(ei.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg


def test_broken_configurations_name_the_layer_the_shape_and_the_rule():
    _raises(L.Conv2d(16, 8, 5, name="conv4"), [(16, 3, 3)], "conv4:",
            "output height = floor((in + pad_begin + pad_end - dilation*(kernel-1) - 1) / "
            "stride) + 1 = floor((3 + 0 + 0 - 1*(5-1) - 1) / 1) + 1 = -1 < 1",
            "(input shape (16, 3, 3))")
    _raises(L.Conv2d(64, 128, 3, padding=1, name="conv2_1"), [(32, 56, 56)], "conv2_1:",
            "(32, 56, 56) has 32 channels", "in_channels = 64")
    _raises(L.Linear(4096, 10, name="fc6"), [(25088,)], "fc6:", "Flatten -> Linear",
            "25088 features", "in_features = 4096")
    _raises(L.Linear(4096, 10, name="fc6"), [(512, 7, 7)], "fc6:", "(512, 7, 7)", "Flatten",
            "25088", "4096")
    _raises(L.MaxPool2d(3, name="pool1"), [(8, 2, 2)], "pool1:", "(input shape (8, 2, 2))",
            "floor((2 + 0 + 0 - 1*(3-1) - 1) / 3) + 1 = 0 < 1")
    _raises(L.Conv2d(1, 1, 3, dilation=(1, 3), name="dil"), [(1, 9, 5)], "dil:",
            "output width", "floor((5 + 0 + 0 - 3*(3-1) - 1) / 1) + 1 = -1 < 1")
    _raises(L.AvgPool2d(4, 2, ceil_mode=True, name="ap"), [(3, 2, 9)], "ap:",
            "ceil((2 + 0 + 0 - 1*(4-1) - 1) / 2) + 1 = 0 < 1")
    _raises(L.Add(name="res3"), [(8, 4, 4), (8, 4, 5)], "res3:", "(8, 4, 4)", "(8, 4, 5)")
    _raises(L.Add(name="res3"), [(8, 4, 4)], "res3:", "2 or more", "got 1")
    _raises(L.Concat(name="cat"), [(8, 4, 4), (3, 5, 4)], "cat:", "(8, 4, 4)", "(3, 5, 4)",
            "axis 1")
    _raises(L.Reshape((5, 5), name="rs"), [(4, 3)], "rs:", "(4, 3)", "12 elements",
            "25 elements")
    _raises(L.Reshape((-1, 5), name="rs"), [(4, 3)], "rs:", "12 is not a multiple of 5")
    _raises(L.BatchNorm2d(16, name="bn1"), [(8, 4, 4)], "bn1:", "8 channels",
            "num_features = 16")
    _raises(L.SpectralPool2d(10, name="spec"), [(3, 8, 12)], "spec:", "10 <= H = 8",
            "(3, 8, 12)")
    _raises(L.StochasticPool2d(5, name="sto"), [(1, 4, 9)], "sto:", "(input shape (1, 4, 9))",
            "< 1")
    _raises(L.Conv1d(3, 4, 3, name="c1d"), [(3, 8, 8)], "c1d:", "(C, W)", "(3, 8, 8)")
    _raises(L.GlobalMaxPool2d(name="gmp"), [(3, 8)], "gmp:", "(C, H, W)", "(3, 8)")
    _raises(L.Softmax(axis=4, name="sm"), [(10,)], "sm:", "axis 4", "(10,)")
    _raises(L.ReLU(name="r"), [(3, 0, 4)], "r:", "(3, 0, 4)", "zero")
    # an unnamed layer is called by its kind
    _raises(L.Conv2d(3, 4, 5), [(4, 8, 8)], "Conv2d:", "4 channels", "in_channels = 3")


def test_forward_checks_shapes_and_dtypes():
    lay = L.Conv2d(3, 4, 3, name="c")
    with pytest.raises(fc.ShapeError, match="c: input shape .5, 8, 8. has 5 channels"):
        lay.forward([np.zeros((1, 5, 8, 8), np.float32)])
    with pytest.raises(TypeError):
        lay.forward([np.zeros((1, 3, 8, 8), np.int64)])
    with pytest.raises(fc.ShapeError, match="different batch sizes"):
        L.Add().forward([np.zeros((1, 3), np.float32), np.zeros((2, 3), np.float32)])
    y = lay.forward([np.ones((2, 3, 8, 8), np.float64)])     # float64 converts
    assert y.dtype == np.float32 and y.shape == (2, 4, 6, 6)
    out = np.empty((2, 4, 6, 6), np.float32)
    lay.forward_into([np.ones((2, 3, 8, 8), np.float32)], out)
    assert np.array_equal(out, y)
    assert lay.forward([np.zeros((0, 3, 8, 8), np.float32)]).shape == (0, 4, 6, 6)


def test_constructor_argument_errors():
    with pytest.raises(ValueError, match="groups=4 must divide in_channels .6."):
        L.Conv2d(6, 8, 3, groups=4)
    with pytest.raises(ValueError, match="algo"):
        L.Conv2d(3, 4, 3, algo="fft")
    with pytest.raises(ValueError, match="padding"):
        L.Conv2d(3, 4, 3, padding=(1, 2, 3))
    with pytest.raises(ValueError, match="start_dim"):
        L.Flatten(start_dim=2)
    with pytest.raises(ValueError):
        L.Reshape((-1, -1))
    with pytest.raises(ValueError):
        L.Dropout(1.5)
    with pytest.raises(ValueError):
        L.Concat(axis=0)


# =========================================================================== params, init

def test_parameter_counts():
    assert L.Conv2d(3, 64, 3).num_params() == 1792
    assert L.Conv2d(3, 64, 3, bias=False).num_params() == 1728
    assert L.Conv2d(8, 16, 3, groups=4).num_params() == (3 * 3 * 2 + 1) * 16
    assert L.Conv2d(512, 512, 3).num_params() == 2359808
    assert L.Conv1d(4, 6, 5, groups=2).num_params() == (5 * 2 + 1) * 6
    assert L.Linear(4096, 1000).num_params() == 4097000
    # BatchNorm: weight and bias are parameters, the running statistics buffers (torch)
    assert L.BatchNorm2d(64).num_params() == 128
    assert list(L.BatchNorm2d(2).params) == ["weight", "bias", "running_mean", "running_var"]
    for lay in (L.ReLU(), L.MaxPool2d(2), L.LRN(), L.Flatten(), L.SpectralPool2d(2), L.Add()):
        assert lay.num_params() == 0 and lay.params == {}


def test_he_initialisation_and_passed_weights():
    conv = L.Conv2d(64, 128, 3, seed=0)
    w = conv.weight
    assert w.dtype == np.float32 and w.flags.c_contiguous and w.shape == (128, 64, 3, 3)
    assert abs(float(w.std()) / math.sqrt(2 / 576) - 1) < 0.02
    assert abs(float(w.mean())) < 0.002
    assert np.all(conv.bias == 0)
    assert np.array_equal(L.Conv2d(64, 128, 3, seed=0).weight, w)
    assert not np.array_equal(L.Conv2d(64, 128, 3, seed=1).weight, w)
    g = L.Conv2d(16, 32, 3, groups=4, seed=2).weight           # fan_in = 16/4 * 9
    assert abs(float(g.std()) / math.sqrt(2 / 36) - 1) < 0.05
    lin = L.Linear(2000, 300, seed=3)
    assert abs(float(lin.weight.std()) / math.sqrt(2 / 2000) - 1) < 0.02
    assert np.all(lin.bias == 0)
    # passed arrays: validated, converted, copied
    mine = np.random.default_rng(0).standard_normal((4, 3, 2, 2))
    c = L.Conv2d(3, 4, 2, weight=mine, bias_value=np.arange(4.0))
    assert c.weight.dtype == np.float32 and np.array_equal(c.weight, mine.astype(np.float32))
    mine[:] = 0
    assert np.any(c.weight != 0), "the layer must hold its own copy"
    assert np.array_equal(c.bias, np.arange(4, dtype=np.float32))
    with pytest.raises(fc.ShapeError, match=r"weight must have shape \(4, 3, 2, 2\), got"):
        L.Conv2d(3, 4, 2, weight=np.zeros((4, 3, 3, 3), np.float32), name="w")
    with pytest.raises(TypeError):
        L.Conv2d(3, 4, 2, weight=np.zeros((4, 3, 2, 2), np.int32))
    with pytest.raises(TypeError):
        L.Linear(3, 4, bias_value=np.zeros(4, np.int64))
    with pytest.raises(fc.ShapeError, match="bias"):
        L.Linear(3, 4, bias_value=np.zeros(5, np.float32))
    with pytest.raises(TypeError):
        L.BatchNorm2d(3, running_var=np.ones(3, np.int32))


def test_macs():
    assert L.Conv2d(3, 64, 3, padding=1).macs([(3, 224, 224)]) == 64 * 224 * 224 * 27
    assert L.Conv2d(8, 16, 3, groups=4, stride=2).macs([(8, 9, 9)]) == 16 * 4 * 4 * 2 * 9
    assert L.Conv1d(4, 6, 3).macs([(4, 10)]) == 6 * 8 * 4 * 3
    assert L.Linear(25088 // 49, 4096).macs([(512,)]) == 512 * 4096
    assert L.MaxPool2d(2).macs([(64, 8, 8)]) == 0
    assert L.AvgPool2d(2).macs([(4, 8, 8)]) == 4 * 4 * 4 * 4
    assert L.AvgPool1d(3, 1).macs([(2, 10)]) == 2 * 8 * 3
    assert L.GlobalAvgPool2d().macs([(4, 7, 7)]) == 4 * 49
    assert L.GlobalMaxPool2d().macs([(4, 7, 7)]) == 0
    assert L.ReLU().macs([(4, 7, 7)]) == 0
    assert L.BatchNorm2d(4).macs([(4, 7, 7)]) == 4 * 49
    assert L.Add().macs([(4, 7, 7)] * 3) == 2 * 4 * 49
    assert L.StochasticPool2d(2).macs([(3, 8, 8)]) == 3 * 16 * 4
    with pytest.raises(fc.ShapeError):
        L.Conv2d(3, 4, 3).macs([(5, 8, 8)])


# =========================================================================== VGG-16 by hand

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
         512, 512, 512, "M"]


def test_vgg16_chained_by_hand():
    """Shapes, parameters, MACs and receptive fields of VGG-16 at 224x224, layer by layer
    (the classifier's 123.6 M weights are real arrays: ~0.5 GB for a second)."""
    shape = (3, 224, 224)
    rf = ReceptiveField.for_input(shape)
    assert rf == ReceptiveField((1.0, 1.0), (1.0, 1.0), (0.5, 0.5), False)
    c, params, macs, sizes = 3, 0, 0, []
    for v in VGG16:
        lay = L.MaxPool2d(2, 2) if v == "M" else L.Conv2d(c, v, 3, padding=1)
        if v != "M":
            c = v
        params += lay.num_params()
        macs += lay.macs([shape])
        rf = lay.receptive_field([rf], [shape])
        shape = lay.output_shape([shape])
        sizes.append(rf.size[0])
    assert sizes[16] == 196 and sizes[17] == 212, sizes       # conv5_3, pool5
    assert sizes[:6] == [3, 5, 6, 10, 14, 16]
    assert rf.jump == (32.0, 32.0) and rf.start == (16.0, 16.0) and not rf.full
    assert shape == (512, 7, 7)
    assert params == 14714688
    for lay in (L.Flatten(), L.Linear(25088, 4096), L.ReLU(), L.Dropout(),
                L.Linear(4096, 4096), L.ReLU(), L.Dropout(), L.Linear(4096, 1000),
                L.Softmax()):
        params += lay.num_params()
        macs += lay.macs([shape])
        rf = lay.receptive_field([rf], [shape])
        shape = lay.output_shape([shape])
        if isinstance(lay, L.Linear) and lay.in_features == 25088:
            assert lay.num_params() == 102764544
        del lay
    assert shape == (1000,)
    assert params == 138357544
    assert macs == 15470264320          # about 15.47 GMACs
    assert rf.full and rf.size == (212.0, 212.0)


# =========================================================================== receptive fields

def test_receptive_field_rules():
    base = ReceptiveField((5.0, 5.0), (2.0, 2.0), (1.0, 1.0))
    # k_eff = 2*(3-1)+1 = 5; size 5 + 4*2 = 13; start 1 + (2 - 1)*2 = 3; jump 2*2 = 4
    rf = L.Conv2d(1, 1, 3, stride=2, padding=1, dilation=2).receptive_field([base])
    assert rf == ReceptiveField((13.0, 13.0), (4.0, 4.0), (3.0, 3.0), False)
    # asymmetric pads, per axis: (top, left, bottom, right) = (0, 2, 1, 1)
    rf = L.Conv2d(1, 1, (3, 5), padding=(0, 2, 1, 1)).receptive_field(
        [ReceptiveField.for_input((1, 9, 9))])
    assert rf.size == (3.0, 5.0) and rf.start == (1.5, 0.5)
    # 1-D
    rf = L.MaxPool1d(3, 2, 1).receptive_field([ReceptiveField.for_input((4, 20))])
    assert rf == ReceptiveField((3.0,), (2.0,), (0.5,), False)
    # whole-map layers keep the values and set full
    for lay in (L.GlobalAvgPool2d(), L.GlobalMaxPool2d(), L.Flatten(), L.SpectralPool2d(2)):
        assert lay.receptive_field([base]) == base._replace(full=True)
    assert L.Linear(3, 4).receptive_field([base._replace(full=True)]).full
    for lay in (L.ReLU(), L.BatchNorm2d(3), L.LRN(), L.Dropout(), L.Identity()):
        assert lay.receptive_field([base]) == base
    # merges take the larger field
    small = ReceptiveField((3.0, 7.0), (1.0, 2.0), (0.5, 1.5))
    assert L.Add().receptive_field([small, base]) == ReceptiveField(
        (5.0, 7.0), (2.0, 2.0), (1.0, 1.5), False)
    # "same" with a stride depends on the input size: resolved from in_shapes
    same = L.Conv2d(1, 1, 3, stride=2, padding="same")
    rf_in = ReceptiveField.for_input((1, 9, 8))
    rf = same.receptive_field([rf_in], [(1, 9, 8)])
    assert rf.start == (0.5, 1.5)            # pads begin (1, 0): 9 -> total 2, 8 -> total 1
    with pytest.raises(ValueError, match="in_shapes"):
        L.Conv2d(1, 1, 3, stride=2, padding="same").receptive_field([rf_in])
    # stride-1 "same" needs no shape
    assert L.Conv2d(1, 1, 5, padding="same").receptive_field([rf_in]).start == (0.5, 0.5)
    # a softmax along a spatial axis sees the whole axis
    sm = L.Softmax(axis=2)
    assert sm.receptive_field([rf_in], [(1, 9, 8)]).full
    assert not L.Softmax(axis=1).receptive_field([rf_in], [(1, 9, 8)]).full


@st.composite
def window_chains(draw):
    layers, shape = [], (1, 21, 19)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(("conv", "conv", "max", "avg")))
        k = (draw(st.integers(1, 4)), draw(st.integers(1, 3)))
        s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        p = tuple(draw(st.integers(0, (k[i % 2] - 1) // 2 + (i % 2 == 0))) for i in range(4))
        if kind == "conv":
            d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
            pad = draw(st.sampled_from((p, "same")))
            lay = L.Conv2d(1, 1, k, s, pad, d, bias=False)
            lay.params["weight"][:] = 1.0
        elif kind == "max":
            lay = L.MaxPool2d(k, s, tuple(min(v, k[i % 2] // 2) for i, v in enumerate(p)))
        else:
            lay = L.AvgPool2d(k, s, tuple(min(v, k[i % 2] // 2) for i, v in enumerate(p)))
        try:
            shape2 = lay.output_shape([shape])
        except fc.ShapeError:
            break
        layers.append(lay)
        shape = shape2
    return layers


@given(layers=window_chains())
def test_receptive_field_matches_the_pixels_that_reach_an_output(layers):
    """Put a 1 on each input pixel in turn (a batch of delta images); the pixels that reach
    an output form a box whose size is the field's size and whose centre is start +
    index * jump, wherever the box is not cut by the image border."""
    h, w = 21, 19
    shape, rf = (1, h, w), ReceptiveField.for_input((1, h, w))
    for lay in layers:
        rf = lay.receptive_field([rf], [shape])
        shape = lay.output_shape([shape])
    deltas = np.zeros((h * w, 1, h, w), np.float32)
    deltas[np.arange(h * w), 0, np.arange(h * w) // w, np.arange(h * w) % w] = 1.0
    y = deltas
    for lay in layers:
        y = lay.forward([y])
    reach = y[:, 0] > 0                                     # [pixel, oh, ow]
    seen = reach.any(axis=0)
    assert seen.all(), "every output sees at least one pixel"
    coords = (np.arange(h * w) // w, np.arange(h * w) % w)
    for ax, n in enumerate((h, w)):
        c = coords[ax][:, None, None].astype(np.float64)
        lo = np.where(reach, c, np.inf).min(axis=0)
        hi = np.where(reach, c, -np.inf).max(axis=0) + 1
        o = np.indices(shape[1:])[ax]
        centre = rf.start[ax] + o * rf.jump[ax]
        box_lo, box_hi = centre - rf.size[ax] / 2, centre + rf.size[ax] / 2
        inside = (box_lo >= 0) & (box_hi <= n)
        # a box inside the image is exactly what is seen; a box cut by the border holds it
        assert np.array_equal(lo[inside], box_lo[inside]), (ax, rf, layers)
        assert np.array_equal(hi[inside], box_hi[inside]), (ax, rf, layers)
        assert np.all(box_lo <= lo) and np.all(hi <= box_hi), (ax, rf, layers)


# =========================================================================== config, describe

def _all_layers():
    rng = np.random.default_rng(11)
    bn = L.BatchNorm2d(4, eps=1e-3, weight=uniform(rng, 4), bias=uniform(rng, 4),
                       running_mean=uniform(rng, 4), running_var=uniform(rng, 4, lo=0.5, hi=2))
    return [
        (L.Conv2d(4, 6, 3, 2, (1, 0, 2, 1), 1, 2, name="conv", seed=4), (2, 4, 9, 8)),
        (L.Conv2d(4, 4, (3, 1), padding="same", bias=False, algo="im2col"), (2, 4, 9, 8)),
        (L.Conv1d(4, 3, 3, padding=(1, 0), dilation=2, seed=2), (2, 4, 9)),
        (L.MaxPool2d(3, 2, 1, 1, True, name="pool"), (2, 4, 9, 8)),
        (L.AvgPool2d((2, 3), None, (1, 1), False, False), (2, 4, 9, 8)),
        (L.MaxPool1d(2), (2, 4, 9)), (L.AvgPool1d(3, 2, 1), (2, 4, 9)),
        (L.GlobalAvgPool2d(), (2, 4, 9, 8)), (L.GlobalMaxPool2d(), (2, 4, 9, 8)),
        (L.ReLU(), (2, 4, 9, 8)), (L.LeakyReLU(0.3), (2, 4, 9, 8)), (bn, (2, 4, 9, 8)),
        (L.Dropout(0.1), (2, 4, 9, 8)), (L.Flatten(), (2, 4, 9, 8)),
        (L.Linear(8, 5, seed=9), (2, 8)), (L.Softmax(1), (2, 4, 9, 8)),
        (L.LRN(3, 1e-3, 0.7, 1.0), (2, 4, 9, 8)),
        (L.StochasticPool2d(2, 1), (2, 4, 9, 8)),
        (L.StochasticPool2d(3, training=True, seed=8), (2, 4, 9, 8)),
        (L.SpectralPool2d((4, 5)), (2, 4, 9, 8)), (L.Reshape((-1, 8)), (2, 4, 9, 8)),
        (L.Identity(), (2, 4, 9, 8)),
        (L.LocallyConnected2d(4, 3, 3, stride=2, padding=1, input_size=(9, 8), seed=5),
         (2, 4, 9, 8)),
    ]


def test_config_round_trip_gives_identical_output():
    rng = np.random.default_rng(12)
    seen = set()
    for lay, shape in _all_layers():
        x = uniform(rng, *shape, lo=-1, hi=2)
        cfg = json.loads(json.dumps(lay.config()))      # JSON-serialisable, survives JSON
        cls = L.LAYER_TYPES[lay.kind]
        assert cls is type(lay)
        back = cls.from_config(cfg, lay.params)
        assert back.config() == lay.config()
        assert back.output_shape([shape[1:]]) == lay.output_shape([shape[1:]])
        assert np.array_equal(back.forward([x]), lay.forward([x])), lay.kind
        assert back.params.keys() == lay.params.keys()
        # forward_into (the compiled model's path) writes the same values
        y = lay.forward([x])
        out = np.full(y.shape, np.nan, np.float32)
        lay.forward_into([x], out)
        assert np.array_equal(out, y), lay.kind
        seen.add(lay.kind)
    for merge in (L.Add(name="a"), L.Concat(axis=2)):
        xs = [uniform(rng, 2, 3, 4, 4) for _ in range(3)]
        back = type(merge).from_config(json.loads(json.dumps(merge.config())), {})
        y = merge.forward(xs)
        assert np.array_equal(back.forward(xs), y)
        out = np.full(y.shape, np.nan, np.float32)
        merge.forward_into(xs, out)
        assert np.array_equal(out, y)
        seen.add(merge.kind)
    # every layer class of fastconv.layers (other modules may register more types)
    ours = {n for n, c in vars(L).items() if isinstance(c, type) and issubclass(c, L.Layer)
            and c.__module__ == L.__name__ and not n.startswith("_") and n != "Layer"}
    assert ours <= set(L.LAYER_TYPES) and seen == ours, ours ^ seen
    # padding strings stay strings, tuples become lists
    cfg = L.Conv2d(3, 4, 3, padding="same").config()
    assert cfg["padding"] == "same" and cfg["kernel_size"] == [3, 3]
    # the seed alone rebuilds the same weights
    conv = L.Conv2d(3, 4, 3, seed=17)
    assert np.array_equal(L.Conv2d.from_config(conv.config(), {}).weight, conv.weight)
    with pytest.raises(ValueError, match="unexpected params"):
        L.ReLU.from_config({"name": None}, {"weight": np.ones(2, np.float32)})


def test_register_layer_and_describe():
    @L.register_layer
    class Twice(L.Layer):
        def _infer(self, shapes):
            return shapes[0]

        def forward(self, inputs):
            return 2 * self._check_inputs(inputs)[0]

    try:
        assert L.LAYER_TYPES["Twice"] is Twice
        t = Twice.from_config({"name": "t2"}, {})
        assert t.name == "t2" and t.kind == "Twice" and t.output_shape([(3, 4)]) == (3, 4)
        assert np.array_equal(t.forward([np.ones((1, 3), np.float32)]), np.full((1, 3), 2.0))
    finally:
        del L.LAYER_TYPES["Twice"]
    assert L.Conv2d(64, 128, 3, padding=1).describe() == "3x3 s1 p1, 64->128"
    assert L.Conv2d(3, 8, 7, stride=2, padding=3, groups=1).describe() == "7x7 s2 p3, 3->8"
    assert L.MaxPool2d(2).describe() == "2x2 s2 p0"
    assert L.Linear(25088 // 49, 10).describe() == "512->10"
    assert "identity" in L.Dropout().describe()
    for lay, _ in _all_layers():
        assert isinstance(lay.describe(), str) and lay.kind in repr(lay)
