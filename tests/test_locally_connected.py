"""Locally connected 2-D layer: fc.locally_connected2d (C kernel) and LocallyConnected2d.

The reference is written independently of the C code: float64, an explicitly padded input
and a loop over output positions, each one patch matrix times that position's own bank.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from conftest import (ODD_CHANNELS, assert_bitequal, assert_close, num_threads, pads2d,
                      rand, ref_conv2d)


def ref_lc2d(x, w, b=None, stride=1, padding=0):
    """float64 locally connected layer: for each output position, [N, K] patches times
    the position's [Co, K] bank."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, c, h, wd = x.shape
    ho, wo, co, ci, kh, kw = w.shape
    assert ci == c
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    t, l, bo, r = pads2d(padding, (h, wd), (kh, kw), (sh, sw), (1, 1))
    assert (h + t + bo - kh) // sh + 1 == ho and (wd + l + r - kw) // sw + 1 == wo
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (l, r)))
    y = np.zeros((n, co, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(n, -1)
            y[:, :, i, j] = patch @ w[i, j].reshape(co, -1).T
    if b is not None:
        y += np.asarray(b, np.float64)[None]
    return y


def out_hw(h, w, k, stride, padding):
    kh, kw = (k, k) if np.isscalar(k) else k
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    t, l, b, r = pads2d(padding, (h, w), (kh, kw), (sh, sw), (1, 1))
    return (h + t + b - kh) // sh + 1, (w + l + r - kw) // sw + 1


def make(rng, n, c, h, w, co, k, stride=1, padding=0, bias=True):
    kh, kw = (k, k) if np.isscalar(k) else k
    ho, wo = out_hw(h, w, (kh, kw), stride, padding)
    x = rand(rng, n, c, h, w)
    wt = rand(rng, ho, wo, co, c, kh, kw)
    b = rand(rng, co, ho, wo) if bias else None
    return x, wt, b


# N covers the 4-image blocks, the odd images, and more than one 16-image gather block;
# Co covers the 4-channel blocks and their tails; Ci*kh*kw covers K % 8 == 0 and != 0.
CASES = [
    # n, c, h, w, co, k, stride, padding
    (1, 1, 5, 5, 1, 5, 1, 0),
    (1, 3, 9, 7, 13, 3, 1, 1),
    (5, 3, 9, 7, 6, (3, 2), (1, 2), (1, 0, 2, 1)),
    (4, 8, 6, 6, 8, 1, 1, 0),
    (17, 13, 7, 9, 5, 3, 2, "same"),
    (3, 15, 18, 17, 4, (2, 3), (2, 1), (0, 1)),
    (2, 24, 1, 6, 3, (1, 3), 1, "valid"),
]


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_against_float64_reference(fc, isa, case):
    n, c, h, w, co, k, stride, padding = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x, wt, b = make(rng, n, c, h, w, co, k, stride, padding)
    y = fc.locally_connected2d(x, wt, b, stride=stride, padding=padding)
    assert_close(y, ref_lc2d(x, wt, b, stride, padding), what=f"{isa} {case}")
    y0 = fc.locally_connected2d(x, wt, None, stride=stride, padding=padding)
    assert_close(y0, ref_lc2d(x, wt, None, stride, padding), what=f"{isa} {case} no bias")


@pytest.mark.parametrize("c", ODD_CHANNELS)
def test_odd_channels_against_reference(fc, c):
    rng = np.random.default_rng(c)
    x, wt, b = make(rng, 2, c, 9, 7, 7, 3, 1, 1)
    assert_close(fc.locally_connected2d(x, wt, b, padding=1), ref_lc2d(x, wt, b, 1, 1))


CONV_CASES = [
    # c, h, w, co, k, stride, padding
    (3, 9, 7, 5, 3, 1, 1),
    (4, 10, 11, 9, (3, 5), (2, 1), "same"),
    (2, 8, 8, 16, 1, 1, 0),
    (5, 7, 6, 3, 2, 2, (1, 0, 0, 1)),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_conv_weights_copied_to_every_position_give_the_conv(fc, isa, case):
    c, h, w, co, k, stride, padding = case
    rng = np.random.default_rng(7)
    kh, kw = (k, k) if np.isscalar(k) else k
    x = rand(rng, 3, c, h, w)
    cw = rand(rng, co, c, kh, kw)
    cb = rand(rng, co)
    conv = fc.conv2d(x, cw, cb, stride=stride, padding=padding)
    ho, wo = conv.shape[2:]
    lw = np.broadcast_to(cw, (ho, wo) + cw.shape)
    lb = np.broadcast_to(cb[:, None, None], (co, ho, wo))
    y = fc.locally_connected2d(x, lw, lb, stride=stride, padding=padding)
    assert_close(y, ref_conv2d(x, cw, cb, stride, padding), what=f"{case} vs float64 conv")
    assert_close(y, conv.astype(np.float64), what=f"{case} vs fc.conv2d")


def test_layer_from_conv_matches_conv_layer(fc):
    conv = fc.layers.Conv2d(3, 6, 3, stride=2, padding=1, seed=3)
    conv.params["bias"][:] = np.linspace(-1, 1, 6, dtype=np.float32)
    lc = fc.LocallyConnected2d.from_conv(conv, (11, 8))
    x = rand(np.random.default_rng(1), 2, 3, 11, 8)
    assert lc.out_size == (6, 4)
    assert_close(lc(x), conv(x).astype(np.float64))
    assert lc.num_params() == 6 * 4 * 6 * (3 * 9 + 1)
    assert lc.macs([(3, 11, 8)]) == conv.macs([(3, 11, 8)])
    assert lc.receptive_field([fc.layers.ReceptiveField.for_input((3, 11, 8))]) == \
        conv.receptive_field([fc.layers.ReceptiveField.for_input((3, 11, 8))])
    with pytest.raises(ValueError, match="groups=1 and dilation=1"):
        fc.LocallyConnected2d.from_conv(fc.layers.Conv2d(4, 4, 3, groups=2), (8, 8))


@pytest.mark.parametrize("case", [(9, 3, 12, 12, 8, 3, 1, 1), (6, 16, 3, 3, 20, 3, 1, 0),
                                  (5, 8, 2, 2, 64, 2, 1, 0)])
def test_threads_bit_identical(fc, isa, case):
    """Parallel over positions and (with few positions) channel blocks: 1, 2 and 3
    threads give the same bits."""
    n, c, h, w, co, k, stride, padding = case
    x, wt, b = make(np.random.default_rng(5), n, c, h, w, co, k, stride, padding)
    runs = []
    for t in (1, 2, 3):
        with num_threads(t):
            runs.append(fc.locally_connected2d(x, wt, b, stride=stride, padding=padding))
    assert_bitequal(runs[0], runs[1], "1 vs 2 threads")
    assert_bitequal(runs[0], runs[2], "1 vs 3 threads")


def test_result_does_not_depend_on_the_batch(fc, isa):
    """An image's output is the same bits alone, in a batch of 5, or of 21 (the 4-image
    blocks, the odd images and the 16-image gather blocks all sum in one order)."""
    x, wt, b = make(np.random.default_rng(11), 21, 5, 8, 7, 7, 3, 1, 1)
    full = fc.locally_connected2d(x, wt, b, padding=1)
    part = fc.locally_connected2d(x[3:8], wt, b, padding=1)
    assert_bitequal(full[3:8], part, "batch 21 vs 5")
    for i in (0, 6, 20):
        assert_bitequal(full[i:i + 1], fc.locally_connected2d(x[i:i + 1], wt, b, padding=1),
                        f"image {i} alone")


def test_unbatched_empty_and_dtypes(fc):
    x, wt, b = make(np.random.default_rng(2), 2, 3, 6, 5, 4, 3, 1, 1)
    y = fc.locally_connected2d(x, wt, b, padding=1)
    assert_bitequal(fc.locally_connected2d(x[0], wt, b, padding=1), y[0], "unbatched")
    e = fc.locally_connected2d(x[:0], wt, b, padding=1)
    assert e.shape == (0, 4, 6, 5) and e.dtype == np.float32
    y64 = fc.locally_connected2d(x.astype(np.float64), wt.astype(np.float64), b, padding=1)
    assert_bitequal(y64, y, "float64 inputs converted")
    xt = np.asfortranarray(x)
    assert_bitequal(fc.locally_connected2d(xt, wt, b, padding=1), y, "non-contiguous")
    with pytest.raises(TypeError, match="float32"):
        fc.locally_connected2d(x.astype(np.int32), wt, b, padding=1)


def test_functional_errors(fc):
    x, wt, b = make(np.random.default_rng(3), 2, 3, 6, 5, 4, 3, 1, 1)
    with pytest.raises(fc.ShapeError, match=r"6-D \[Ho, Wo, Co, Ci, kh, kw\]"):
        fc.locally_connected2d(x, wt[0], b, padding=1)
    with pytest.raises(fc.ShapeError, match="3 channels but weight .* expects Ci = 2"):
        fc.locally_connected2d(x, wt[:, :, :, :2], b, padding=1)
    with pytest.raises(fc.ShapeError, match=r"6x5 output, but input .* gives a 4x3 output"):
        fc.locally_connected2d(x, wt, b, padding=0)
    with pytest.raises(fc.ShapeError, match=r"bias must have shape \(Co, Ho, Wo\) = "
                                            r"\(4, 6, 5\)"):
        fc.locally_connected2d(x, wt, b[0], padding=1)
    with pytest.raises(fc.ShapeError, match=r"output height = floor.*= -1 < 1"):
        fc.locally_connected2d(x[:, :, :1], np.zeros((1, 3, 4, 3, 3, 3), np.float32))
    with pytest.raises(fc.ShapeError, match="4-D"):
        fc.locally_connected2d(x[0, 0], wt, b, padding=1)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        fc.locally_connected2d(x, wt, b, stride=0, padding=1)


def test_binding_out_and_workspace(fc, kernels):
    x, wt, b = make(np.random.default_rng(4), 3, 2, 5, 5, 3, 3, 1, 1)
    pads, stride = (1, 1, 1, 1), (1, 1)
    y = kernels.locally_connected2d(x, wt, b, stride, pads)
    out = np.full_like(y, np.nan)
    ws = np.zeros(kernels.locally_connected2d_workspace_bytes(x.shape, wt.shape, stride, pads),
                  np.uint8)
    got = kernels.locally_connected2d(x, wt, b, stride, pads, out=out, workspace=ws)
    assert got is out
    assert_bitequal(out, y, "out=")
    with pytest.raises(fc.ShapeError, match="out has shape"):
        kernels.locally_connected2d(x, wt, b, stride, pads, out=out[:2])
    with pytest.raises(ValueError, match="needs at least"):
        kernels.locally_connected2d(x, wt, b, stride, pads, workspace=ws[:8])
    with pytest.raises(ValueError, match="overlaps the memory of weight"):
        kernels.locally_connected2d(x, wt, b, stride, pads,
                                    out=wt.reshape(-1)[:y.size].reshape(y.shape))
    with pytest.raises(fc.ShapeError, match="does not fit input"):
        kernels.locally_connected2d(x, wt, b, (2, 2), pads)
    with pytest.raises(TypeError, match="float32"):
        kernels.locally_connected2d(x.astype(np.float64), wt, b, stride, pads)


def test_layer_errors_name_the_layer(fc):
    lc = fc.LocallyConnected2d(3, 4, 3, padding=1, input_size=(6, 5), name="lc7")
    with pytest.raises(fc.ShapeError, match=r"lc7: input shape \(3, 7, 5\) has a 7x5 map but "
                                            r"the layer was built for input_size 6x5"):
        lc.output_shape([(3, 7, 5)])
    with pytest.raises(fc.ShapeError, match=r"lc7: input shape \(2, 6, 5\) has 2 channels"):
        lc.output_shape([(2, 6, 5)])
    with pytest.raises(fc.ShapeError, match="lc7: LocallyConnected2d expects"):
        lc.output_shape([(3, 6)])
    with pytest.raises(fc.ShapeError, match="lc7"):
        lc(rand(np.random.default_rng(0), 1, 3, 5, 5))
    with pytest.raises(ValueError, match="needs input_size"):
        fc.LocallyConnected2d(3, 4, 3)
    with pytest.raises(fc.ShapeError, match=r"lc8: weight must have shape \(6, 5, 4, 3, 3, 3\)"):
        fc.LocallyConnected2d(3, 4, 3, padding=1, input_size=(6, 5), name="lc8",
                              weight=np.zeros((6, 5, 4, 3, 2, 2), np.float32))
    with pytest.raises(fc.ShapeError, match=r"lc9: output width = floor"):
        fc.LocallyConnected2d(3, 4, 5, input_size=(6, 3), name="lc9")
    with pytest.raises(ValueError, match="bias_value given but bias=False"):
        fc.LocallyConnected2d(3, 4, 3, input_size=(6, 5), bias=False,
                              bias_value=np.zeros((4, 4, 3), np.float32))
    with pytest.raises(fc.ShapeError, match=r"lc1: input shape \(3, 6, 6\) has a 6x6 map"):
        fc.Sequential([fc.layers.Conv2d(3, 3, 3, name="c1"),
                       fc.LocallyConnected2d(3, 2, 3, input_size=(8, 8), name="lc1")],
                      (3, 8, 8))


def test_layer_params_costs_config(fc):
    lc = fc.LocallyConnected2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0), input_size=(7, 6),
                               name="lc", seed=5)
    assert lc.out_size == (4, 5)
    assert lc.weight.shape == (4, 5, 4, 3, 3, 2) and lc.bias.shape == (4, 4, 5)
    assert lc.num_params() == 4 * 5 * 4 * (3 * 3 * 2 + 1)
    assert lc.macs([(3, 7, 6)]) == 4 * 4 * 5 * 3 * 3 * 2
    assert lc.output_shape([(3, 7, 6)]) == (4, 4, 5)
    # He init: std sqrt(2 / fan_in), fan_in = Ci*kh*kw = 18
    assert abs(float(lc.weight.std()) - np.sqrt(2 / 18)) < 0.05
    assert np.array_equal(lc.weight, fc.LocallyConnected2d(
        3, 4, (3, 2), stride=(2, 1), padding=(1, 0), input_size=(7, 6), seed=5).weight)
    rf = lc.receptive_field([fc.layers.ReceptiveField.for_input((3, 7, 6))])
    assert rf.size == (3.0, 2.0) and rf.jump == (2.0, 1.0) and rf.start == (0.5, 1.0)
    cfg = lc.config()
    assert cfg["input_size"] == [7, 6] and cfg["padding"] == [1, 0]
    back = fc.LocallyConnected2d.from_config(cfg, lc.params)
    assert back.config() == cfg
    assert_bitequal(back.weight, lc.weight, "from_config weight")
    x = rand(np.random.default_rng(0), 2, 3, 7, 6)
    assert_bitequal(back(x), lc(x), "from_config forward")
    assert "unshared 4x5" in lc.describe()
    nb = fc.LocallyConnected2d(3, 4, 3, input_size=(5, 5), bias=False)
    assert "bias" not in nb.params and nb.num_params() == 3 * 3 * 4 * 27
    assert fc.layers.LAYER_TYPES["LocallyConnected2d"] is fc.LocallyConnected2d


@pytest.fixture(scope="module")
def lc_model():
    import fastconv as fc
    layers = [
        fc.layers.Conv2d(3, 6, 3, padding=1, name="conv1", seed=1),
        fc.layers.ReLU(name="relu1"),
        fc.layers.MaxPool2d(2, name="pool1"),
        fc.LocallyConnected2d(6, 5, 3, padding=1, input_size=(5, 4), name="lc1", seed=2),
        fc.layers.ReLU(name="relu2"),
        fc.layers.Flatten(name="flat"),
        fc.layers.Linear(5 * 5 * 4, 3, name="fc", seed=3),
    ]
    layers[3].params["bias"][:] = rand(np.random.default_rng(9), 5, 5, 4)
    return fc.Sequential(layers, (3, 11, 9), name="lcnet")


def test_layer_in_a_model(fc, lc_model):
    x = rand(np.random.default_rng(6), 4, 3, 11, 9)
    y = lc_model(x)
    h = x
    for n in lc_model.nodes:   # layer by layer, unfused
        h = n.layer.forward([h])
    assert_bitequal(y, h, "compiled model vs layer.forward chain")
    h = x
    for n in lc_model.nodes[:3]:   # conv1, relu1, pool1
        h = n.layer.forward([h])
    lc = lc_model.node("lc1").layer
    assert_close(lc.forward([h]), ref_lc2d(h, lc.weight, lc.bias, 1, 1), what="lc1 in the model")
    assert lc_model.shapes["lc1"] == (5, 5, 4)
    s = lc_model.summary(print_fn=None)
    row = next(r for r in s.rows if r["name"] == "lc1")
    assert row["type"] == "LocallyConnected2d" and row["params"] == 5 * 4 * 5 * (6 * 9 + 1)
    assert lc_model(x[:0]).shape == (0, 3)


def test_model_save_load_and_pickle(fc, lc_model, tmp_path):
    x = rand(np.random.default_rng(8), 3, 3, 11, 9)
    y = lc_model(x)
    p = tmp_path / "lc.fcz"
    lc_model.save(p)
    loaded = fc.load(p)
    assert loaded.to_config() == lc_model.to_config()
    assert_bitequal(loaded.node("lc1").layer.weight, lc_model.node("lc1").layer.weight, "weight")
    assert_bitequal(loaded(x), y, "fc.load")
    back = pickle.loads(pickle.dumps(lc_model))
    assert_bitequal(back(x), y, "pickle")
    assert back.node("lc1").layer.config() == lc_model.node("lc1").layer.config()


GUARD_SCRIPT = r'''
import ctypes, mmap, sys
import numpy as np
import fastconv as fc

PAGE = mmap.PAGESIZE
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
keep = []

def guarded(a):
    """A read-only copy of a whose last byte is followed by a PROT_NONE page."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    pages = (a.nbytes + PAGE - 1) // PAGE + 1
    m = mmap.mmap(-1, pages * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    assert libc.mprotect(ctypes.c_void_p(base + (pages - 1) * PAGE), PAGE, 0) == 0
    out = np.frombuffer(m, np.uint8, a.nbytes, (pages - 1) * PAGE - a.nbytes)
    out = out.view(np.float32).reshape(a.shape)
    out[...] = a
    out.flags.writeable = False
    keep.append(m)
    return out

rng = np.random.default_rng(0)
isas = (["scalar"] + (["avx2"] if fc._kernels.has_avx2() else [])
        + (["avx512"] if fc._kernels.has_avx512() else []))
# K = Ci*kh*kw = 15, 7 and 9: every weight row ends in a tail shorter than 8 floats
for isa in isas:
    fc._kernels.set_isa(isa)
    for n, c, h, w, co, k, pad in [(1, 5, 4, 5, 3, (1, 3), 0), (5, 7, 3, 3, 6, 1, 0),
                                   (2, 1, 6, 6, 5, 3, 1)]:
        kh, kw = (k, k) if isinstance(k, int) else k
        ho, wo = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = rng.standard_normal((ho, wo, co, c, kh, kw)).astype(np.float32)
        b = rng.standard_normal((co, ho, wo)).astype(np.float32)
        free = fc.locally_connected2d(x, wt, b, padding=pad)
        got = fc.locally_connected2d(guarded(x), guarded(wt), guarded(b), padding=pad)
        assert np.array_equal(free, got), (isa, n, c)
print("OK")
'''


def test_no_read_past_the_inputs():
    """Inputs (read-only) against a no-access page: the weight tail and the patch gather
    read nothing past x, weight or bias (a fault fails this subprocess)."""
    import sys
    if not sys.platform.startswith("linux"):
        pytest.skip("guard pages use mmap/mprotect through ctypes (Linux only)")
    from conftest import run_python
    r = run_python(GUARD_SCRIPT)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
