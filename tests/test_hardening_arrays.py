"""Hostile arrays through the Model path (model(x), model.run) and the functional gaps that
tests/test_errors.py does not cover: broadcast (zero-stride) views, negative strides,
read-only, unaligned and byte-swapped buffers, 0-d arrays and Python scalars, NaN and
Inf (classified exactly like the float64 reference: NaN / +inf / -inf / finite at the
same positions), denormals (correct within tolerance whether or not the kernels flush
them to zero), and views of absurd size (ValueError / MemoryError before anything is
allocated). A strange view must give the same bits as its contiguous copy."""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import fastconv as fc
from fastconv import layers as L
from fastconv.graph import Model, Node

from conftest import (assert_bitequal, available_isas, ref_avg_pool2d, ref_conv2d, ref_linear,
                      ref_max_pool2d, ref_softmax, run_python, use_isa)

F32 = np.float32
TINY = float(np.finfo(F32).tiny)          # the smallest normal float32


def _model(algo="auto"):
    """conv+relu (fused), max pool, conv (no relu), avg pool, flatten, linear+relu, linear."""
    return fc.Sequential([
        L.Conv2d(3, 6, 3, padding=1, algo=algo, seed=1), L.ReLU(), L.MaxPool2d(2),
        L.Conv2d(6, 8, 3, padding=1, algo=algo, seed=2), L.AvgPool2d(2),
        L.Flatten(), L.Linear(8 * 3 * 2, 12, seed=3), L.ReLU(), L.Linear(12, 4, seed=4),
    ], input_shape=(3, 12, 8))


def _branchy():
    """Two inputs, a shared stem, Add and Concat, two outputs (one of them a view)."""
    nodes = [Node("stem", L.Conv2d(2, 4, 3, padding=1, seed=5), ("a",)),
             Node("relu", L.ReLU(), ("stem",)),
             Node("side", L.Conv2d(2, 4, 1, seed=6), ("b",)),
             Node("sum", L.Add(), ("relu", "side")),
             Node("cat", L.Concat(axis=1), ("sum", "relu")),
             Node("flat", L.Flatten(), ("cat",))]
    return Model(nodes, {"a": (2, 5, 7), "b": (2, 5, 7)}, ["flat", "sum"])


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).uniform(-1, 1, (4, 3, 12, 8)).astype(F32)


def _unaligned(a):
    """A C-contiguous float32 copy of `a` whose data starts 1 byte past an aligned address."""
    buf = np.zeros(a.nbytes + 8, np.uint8)
    off = (-buf.ctypes.data) % 8 + 1
    out = buf[off:off + a.nbytes].view(F32).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


def _readonly(a):
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


# strange views of the same values: name -> f(x) with np.array_equal(f(x), x)
VIEWS = {
    "negative-strides-hw": lambda a: np.ascontiguousarray(a[:, :, ::-1, ::-1])[:, :, ::-1, ::-1],
    "negative-strides-batch": lambda a: np.ascontiguousarray(a[::-1])[::-1],
    "negative-strides-channels": lambda a: np.ascontiguousarray(a[:, ::-1])[:, ::-1],
    "fortran": np.asfortranarray,
    "step-2": lambda a: np.repeat(np.repeat(a, 2, axis=2), 2, axis=3)[:, :, ::2, ::2],
    "transposed-copy": lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),
    "read-only": _readonly,
    "unaligned": _unaligned,
    "big-endian": lambda a: a.astype(">f4"),
    "list": lambda a: a.tolist(),
    "masked": lambda a: np.ma.masked_array(a, mask=np.zeros(a.shape, bool)),
}


# --------------------------------------------------------------------------- views: same bits


@pytest.mark.parametrize("view", list(VIEWS))
def test_model_views_give_the_contiguous_bits(model, x, view):
    ref = model(x)
    v = VIEWS[view](x)
    if isinstance(v, np.ndarray):
        assert np.array_equal(np.asarray(v), x)
    before = np.array(v, copy=True)
    y = model(v)
    assert_bitequal(y, ref, f"model({view})")
    assert_bitequal(model.run({"input": v})[model.output_names[0]], ref, f"run({view})")
    assert np.array_equal(np.asarray(v), before), f"{view}: the input was modified"
    assert y.flags.writeable and y.flags.c_contiguous


def test_model_broadcast_batch_views(model, x):
    """np.broadcast_to along the batch axis (stride 0): every sample is the first one."""
    b = np.broadcast_to(x[:1], (5,) + x.shape[1:])
    assert b.strides[0] == 0 and not b.flags.writeable
    y = model(b)
    assert_bitequal(y, model(np.ascontiguousarray(b)), "broadcast batch")
    # (a sample's bits may depend on the batch size it runs in, not on its neighbours)
    for i in range(1, 5):
        assert_bitequal(y[i], y[0], f"broadcast sample {i}")
    np.testing.assert_allclose(y[0], model(x[:1])[0], rtol=1e-5, atol=1e-6)
    # every element aliasing one float (all strides 0)
    c = as_strided(np.array([0.375], F32), shape=x.shape, strides=(0,) * 4)
    assert_bitequal(model(c), model(np.full(x.shape, 0.375, F32)), "all-zero-stride view")


def test_multi_input_run_with_hostile_views():
    m = _branchy()
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, (3, 2, 5, 7)).astype(F32)
    b = rng.uniform(-1, 1, (3, 2, 5, 7)).astype(F32)
    ref = m.run({"a": a, "b": b})
    feeds = {"a": _readonly(a)[:, :, ::-1][:, :, ::-1], "b": _unaligned(b)}
    got = m.run(feeds)
    assert set(got) == {"flat", "sum"}
    for k in ref:
        assert_bitequal(got[k], ref[k], k)
        assert not np.shares_memory(got[k], feeds["a"]) and not np.shares_memory(got[k], feeds["b"])
    bb = np.broadcast_to(b[:1], b.shape)
    got = m.run({"a": a, "b": bb})
    assert_bitequal(got["sum"], m.run({"a": a, "b": np.ascontiguousarray(bb)})["sum"], "bcast b")


def test_outputs_are_fresh_for_each_call(model, x):
    y1 = model(x)
    keep = y1.copy()
    y1[...] = 12345.0            # the caller owns what it was given
    assert_bitequal(model(x), keep, "a run after the previous output was overwritten")


# --------------------------------------------------------------------------- dtypes and ranks


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.bool_,
                                   np.complex64, np.complex128, object, "U3", "V4",
                                   "datetime64[s]", np.longdouble], ids=str)
def test_model_bad_dtypes_raise_type_error(model, x, dtype):
    bad = np.zeros(x.shape, dtype=dtype)
    for call in (lambda: model(bad), lambda: model.run({"input": bad})):
        with pytest.raises(TypeError) as ei:
            call()
        assert "float32" in str(ei.value) and model.name in str(ei.value), str(ei.value)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_model_other_float_dtypes_are_converted(model, x, dtype):
    v = x.astype(dtype)
    assert_bitequal(model(v), model(v.astype(F32)), f"{np.dtype(dtype).name} input")


@pytest.mark.parametrize("value", [np.float32(2.0), np.array(2.0, F32), 2.0, np.float64(2.0)],
                         ids=["np.float32", "0-d array", "python float", "np.float64"])
def test_model_scalars_and_0d_raise_shape_error(model, value):
    for call in (lambda: model(value), lambda: model.run({"input": value})):
        with pytest.raises(fc.ShapeError) as ei:
            call()
        msg = str(ei.value)
        assert "[N, 3, 12, 8]" in msg and "got ()" in msg, msg


@pytest.mark.parametrize("shape", [(3, 12, 8), (1, 1, 3, 12, 8), (2, 4, 12, 8), (2, 3, 8, 12),
                                   (2, 3, 12, 0), (2, 0, 12, 8), (12, 8), (2,)])
def test_model_wrong_shapes_name_both_shapes(model, shape):
    with pytest.raises(fc.ShapeError) as ei:
        model(np.zeros(shape, F32))
    msg = str(ei.value)
    assert str(tuple(shape)) in msg and "[N, 3, 12, 8]" in msg, msg


def test_model_ragged_and_non_numeric_inputs(model):
    with pytest.raises((TypeError, ValueError)):
        model([[1.0, 2.0], [3.0]])
    with pytest.raises(TypeError):
        model("not an array")
    with pytest.raises(TypeError):
        model(None)


def test_model_zero_batch_from_strange_views(model, x):
    for v in (x[:0], x[:0, :, ::-1], np.broadcast_to(x[:1], (0,) + x.shape[1:]),
              _readonly(x[:0])):
        y = model(v)
        assert y.shape == (0, 4) and y.dtype == F32


# --------------------------------------------------------------------------- functional gaps


def test_functional_0d_inputs():
    for v in (np.array(-3.0, F32), np.float32(-3.0), -3.0):
        r = fc.relu(v)
        assert r.shape == () and r.dtype == F32 and float(r) == 0.0
        r = fc.leaky_relu(v, 0.5)
        assert r.shape == () and float(r) == -1.5
        with pytest.raises(fc.ShapeError, match="0-d"):
            fc.softmax(v)
        with pytest.raises(fc.ShapeError, match="0-d"):
            fc.linear(v, np.ones((1, 1), F32))
        for f in (lambda a: fc.conv2d(a, np.ones((1, 1, 1, 1), F32)),
                  lambda a: fc.conv1d(a, np.ones((1, 1, 1), F32)),
                  lambda a: fc.max_pool2d(a, 1), lambda a: fc.avg_pool1d(a, 1),
                  lambda a: fc.global_avg_pool2d(a)):
            with pytest.raises(fc.ShapeError, match=r"got shape \(\)"):
                f(v)
    with pytest.raises(fc.ShapeError):      # a 0-d bias is not a (1,) bias
        fc.conv2d(np.ones((1, 1, 2, 2), F32), np.ones((1, 1, 1, 1), F32), np.float32(1.0))


def _flip(a):
    """Same values, negative strides on every axis."""
    return np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])[
        (slice(None, None, -1),) * a.ndim]


def _functional_cases(rng):
    x = rng.uniform(-1, 1, (2, 4, 9, 7)).astype(F32)
    w = rng.uniform(-1, 1, (6, 4, 3, 3)).astype(F32)
    b = rng.uniform(-1, 1, 6).astype(F32)
    x1 = rng.uniform(-1, 1, (2, 4, 11)).astype(F32)
    w1 = rng.uniform(-1, 1, (3, 4, 3)).astype(F32)
    lx = rng.uniform(-1, 1, (5, 17)).astype(F32)
    lw = rng.uniform(-1, 1, (9, 17)).astype(F32)
    lb = rng.uniform(-1, 1, 9).astype(F32)
    g = rng.uniform(0.5, 1.5, 4).astype(F32)
    return {
        "conv2d": (lambda a, c, d: fc.conv2d(a, c, d, padding=1, stride=(1, 2)), (x, w, b)),
        "conv2d-im2col": (lambda a, c, d: fc.conv2d(a, c, d, padding=1, algo="im2col"),
                          (x, w, b)),
        "conv2d-prepared": (lambda a, c, d: fc.prepare_conv2d(c, d, padding=1)(a), (x, w, b)),
        "conv1d": (lambda a, c: fc.conv1d(a, c, padding=(1, 2)), (x1, w1)),
        "max_pool2d": (lambda a: fc.max_pool2d(a, 3, 2, 1, ceil_mode=True), (x,)),
        "avg_pool2d": (lambda a: fc.avg_pool2d(a, 2, 1, count_include_pad=False), (x,)),
        "global_max_pool2d": (fc.global_max_pool2d, (x,)),
        "relu": (fc.relu, (x,)),
        "softmax": (lambda a: fc.softmax(a, axis=1), (x,)),
        "linear": (fc.linear, (lx, lw, lb)),
        "batch_norm2d": (lambda a, s, t: fc.batch_norm2d(a, s, t, t, s), (x, g, g - 1)),
        "lrn": (lambda a: fc.lrn(a, 3), (x,)),
    }


@pytest.mark.parametrize("view", ["flip", "readonly", "broadcast", "unaligned", "fortran"])
def test_functional_views_give_the_contiguous_bits(view):
    rng = np.random.default_rng(7)
    for name, (f, args) in _functional_cases(rng).items():
        ref = f(*args)
        if view == "broadcast":
            # every argument as a zero-stride broadcast of its first slice along axis 0
            args = tuple(np.broadcast_to(a[:1], a.shape) for a in args)
            ref = f(*[np.ascontiguousarray(a) for a in args])
        else:
            conv = {"flip": _flip, "readonly": _readonly, "unaligned": _unaligned,
                    "fortran": np.asfortranarray}[view]
            args = tuple(conv(a) for a in args)
        assert_bitequal(f(*args), ref, f"{name} with {view} arguments")


# --------------------------------------------------------------------------- NaN and Inf


def _classes(a):
    """0 finite, 1 +inf, 2 -inf, 3 NaN."""
    a = np.asarray(a, np.float64)
    return np.select([np.isnan(a), np.isposinf(a), np.isneginf(a)], [3, 1, 2], 0)


def _check_special(got, ref, what, rtol=1e-4):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape, what
    cg, cr = _classes(got), _classes(ref)
    bad = np.argwhere(cg != cr)
    assert bad.size == 0, (f"{what}: {len(bad)} elements classed differently from the "
                           f"float64 reference (0 finite, 1 +inf, 2 -inf, 3 NaN), e.g. at "
                           f"{tuple(bad[0])}: got {got[tuple(bad[0])]}, reference "
                           f"{ref[tuple(bad[0])]}")
    fin = cr == 0
    if fin.any():
        scale = max(1.0, float(np.max(np.abs(ref[fin]))))
        err = float(np.max(np.abs(got[fin].astype(np.float64) - ref[fin])))
        assert err <= rtol * scale, f"{what}: finite values off by {err:.3g}"


def _poisoned(rng, shape):
    x = rng.uniform(-1, 1, shape).astype(F32)
    x[0, 1, 4, 4] = np.nan
    x[0, 0, 0, 7] = np.inf
    x[0, 2, 11, 0] = -np.inf
    x[0, 0, 6, 2] = np.inf
    x[0, 0, 6, 3] = -np.inf      # +inf next to -inf: windows holding both give NaN
    return x


@pytest.mark.parametrize("algo", ["direct", "im2col"])
def test_nan_inf_through_the_model_like_the_reference(isa, algo):
    """Sample 0 holds NaN, +inf and -inf; sample 1 is finite and must stay so. Each tensor
    of the compiled model (conv+relu fused, max pool) matches the float64 reference class
    by class."""
    rng = np.random.default_rng(11)
    x = _poisoned(rng, (2, 3, 12, 8))
    w = rng.uniform(0.1, 1, (5, 3, 3, 3)).astype(F32)        # positive: inf stays inf
    w[1] = -w[1]
    w[3, 0] = -w[3, 0]                                      # mixed signs: inf - inf = NaN
    b = rng.uniform(-1, 1, 5).astype(F32)
    nodes = [Node("conv", L.Conv2d(3, 5, 3, padding=1, weight=w, bias_value=b, algo=algo),
                  ("x",)),
             Node("relu", L.ReLU(), ("conv",)),
             Node("pool", L.MaxPool2d(2), ("relu",)),
             Node("conv_b", L.Conv2d(3, 5, 3, padding=1, weight=w, bias_value=b, algo=algo),
                  ("x",))]
    m = Model(nodes, {"x": (3, 12, 8)}, ["pool", "conv_b"])
    assert "relu" in m.plan.node_info["conv"]["fused"]
    out = m.run({"x": x})
    with np.errstate(invalid="ignore"):
        conv = ref_conv2d(x, w, b, padding=1)
        pool = ref_max_pool2d(np.maximum(conv, 0), 2)
    _check_special(out["conv_b"], conv, f"conv ({algo}, {isa})")
    _check_special(out["pool"], pool, f"conv+relu+maxpool ({algo}, {isa})")
    assert {1, 2, 3} <= set(np.unique(_classes(conv[0]))), "the case exercises every class"
    assert np.all(np.isfinite(out["pool"][1])) and np.all(np.isfinite(out["conv_b"][1]))


def test_nan_inf_in_the_other_operators(isa):
    rng = np.random.default_rng(12)
    x = _poisoned(rng, (2, 3, 12, 8))
    with np.errstate(invalid="ignore"):
        _check_special(fc.max_pool2d(x, 3, 1, 1), ref_max_pool2d(x, 3, 1, 1), "max_pool2d")
        _check_special(fc.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                       ref_avg_pool2d(x, 3, 2, 1, count_include_pad=False), "avg_pool2d",
                       rtol=1e-5)
        _check_special(fc.global_avg_pool2d(x)[:, :, 0, 0],
                       x.astype(np.float64).mean(axis=(2, 3)), "global_avg_pool2d")
        _check_special(fc.global_max_pool2d(x)[:, :, 0, 0],
                       x.astype(np.float64).max(axis=(2, 3)), "global_max_pool2d")
        _check_special(fc.relu(x), np.maximum(x.astype(np.float64), 0), "relu")
        rows = np.array([[1, np.nan, 2], [1, np.inf, 2], [-np.inf, 0, 1],
                         [np.inf, np.inf, 0], [-np.inf] * 3, [np.inf, -np.inf, 0]], F32)
        _check_special(fc.softmax(rows), ref_softmax(rows), "softmax", rtol=1e-5)
        lx = rng.uniform(-1, 1, (4, 40)).astype(F32)
        lx[0, 3], lx[1, 5], lx[2, 0] = np.nan, np.inf, -np.inf
        lw = rng.uniform(-1, 1, (9, 40)).astype(F32)
        _check_special(fc.linear(lx, lw), ref_linear(lx, lw), "linear")
        assert np.all(np.isfinite(fc.linear(lx, lw)[3]))
        # NaN in the weights reaches every output that reads them, and only those
        w = rng.uniform(-1, 1, (4, 3, 3, 3)).astype(F32)
        w[2, 1, 1, 1] = np.nan
        xf = rng.uniform(-1, 1, (1, 3, 6, 6)).astype(F32)
        for algo in ("direct", "im2col"):
            y = fc.conv2d(xf, w, padding=1, algo=algo)
            assert np.all(np.isnan(y[0, 2])) and np.all(np.isfinite(y[0, [0, 1, 3]])), algo


# --------------------------------------------------------------------------- denormals


def test_denormal_inputs_are_computed_or_flushed(isa):
    """Subnormal inputs or weights: each output equals the float64 reference within the
    usual tolerance plus what flushing subnormals to zero may lose (DESIGN allows FTZ/DAZ
    inside kernels); nothing becomes NaN or Inf. (Their speed is measured by a script,
    see SECURITY.md, not here.)"""
    rng = np.random.default_rng(13)
    x = rng.uniform(0.5, 1, (1, 8, 9, 7)).astype(F32)
    w = rng.uniform(-1, 1, (6, 8, 3, 3)).astype(F32)
    tiny = F32(1e-41)
    xd = (x * tiny).astype(F32)
    assert np.all((xd > 0) & (xd < TINY))
    taps = 8 * 9
    for algo in ("direct", "im2col"):
        for xi, wi in ((xd, w), (x, (w * tiny).astype(F32)), (xd * F32(1e3), w)):
            got = fc.conv2d(xi, wi, padding=1, algo=algo)
            ref = ref_conv2d(xi, wi, padding=1)
            assert np.all(np.isfinite(got)), algo
            err = float(np.max(np.abs(got.astype(np.float64) - ref)))
            assert err <= 1e-4 * float(np.max(np.abs(ref))) + 2 * taps * TINY, (algo, err)
    got = fc.max_pool2d(xd, 2)
    assert np.array_equal(got, ref_max_pool2d(xd, 2).astype(F32)) or \
        np.all(got == 0), "max pooling compares subnormals exactly (or flushes them)"
    lx = (rng.uniform(0.5, 1, (3, 50)) * 1e-40).astype(F32)
    lw = rng.uniform(-1, 1, (7, 50)).astype(F32)
    got = fc.linear(lx, lw)
    assert np.max(np.abs(got - ref_linear(lx, lw))) <= 2 * 50 * TINY


def _caller_keeps_gradual_underflow() -> bool:
    """True while this thread's MXCSR still has FTZ and DAZ off: NumPy's float32
    arithmetic on subnormals gives subnormals, not 0."""
    a = np.array([1e-41, 3e-41], dtype=F32)
    return bool(np.all(a * F32(0.5) > 0)) and bool(np.all(a + a > 0))


@pytest.mark.parametrize("threads", [1, 2])
def test_kernels_flush_subnormals_and_restore_the_callers_mode(isa, threads):
    """The arithmetic kernels run with flush-to-zero and denormals-are-zero (the documented
    fix for the 100x slowdown subnormals cause): an all-subnormal input gives exact zeros
    through conv (both algorithms), linear and average pooling, while max pooling keeps
    the values exactly; afterwards the calling thread still has IEEE gradual underflow."""
    rng = np.random.default_rng(5)
    xd = (rng.uniform(0.5, 1, (2, 16, 9, 9)) * 1e-41).astype(F32)
    w = rng.uniform(0.5, 1, (24, 16, 3, 3)).astype(F32)
    old = fc.get_num_threads()
    fc.set_num_threads(threads)
    try:
        assert _caller_keeps_gradual_underflow()
        for algo in ("direct", "im2col"):
            assert np.all(fc.conv2d(xd, w, padding=1, algo=algo) == 0), algo
            assert _caller_keeps_gradual_underflow(), algo
        dw = rng.uniform(0.5, 1, (16, 1, 3, 3)).astype(F32)      # width kernel path
        assert np.all(fc.conv2d(xd, dw, padding=1, groups=16, algo="direct") == 0)
        lx = (rng.uniform(0.5, 1, (1, 40)) * 1e-40).astype(F32)   # the dot-product path
        lw = rng.uniform(0.5, 1, (9, 40)).astype(F32)
        assert np.all(fc.linear(lx, lw) == 0)
        assert np.all(fc.linear(np.repeat(lx, 16, 0), lw) == 0)   # the packed GEMM path
        assert np.all(fc.avg_pool2d(xd, 3, stride=1, padding=1) == 0)
        assert np.array_equal(fc.max_pool2d(xd, 2), ref_max_pool2d(xd, 2).astype(F32))
        assert _caller_keeps_gradual_underflow()
    finally:
        fc.set_num_threads(old)


# --------------------------------------------------------------------------- absurd sizes

HUGE_SCRIPT = textwrap.dedent(r"""
    import json, resource
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
    import numpy as np
    from numpy.lib.stride_tricks import as_strided
    import fastconv as fc
    from fastconv import layers as L

    def huge(shape):
        # every element aliases one float: no memory behind the view
        return as_strided(np.zeros(1, np.float32), shape=shape, strides=(0,) * len(shape))

    m = fc.Sequential([L.Conv2d(3, 4, 3, padding=1), L.ReLU(), L.GlobalAvgPool2d(),
                       L.Flatten(), L.Linear(4, 2)], (3, 16, 16))
    cases = {
        "model-batch-2**31": lambda: m(huge((2**31, 3, 16, 16))),
        "model-batch-2**40": lambda: m.run({"input": huge((2**40, 3, 16, 16))}),
        "model-batch-2**24-float64": lambda: m(as_strided(np.zeros(1), shape=(2**24, 3, 16, 16),
                                                          strides=(0,) * 4)),
        "model-batch-2**22-arena": lambda: m(huge((2**22, 3, 16, 16))),
    }
    out = {}
    for name, call in cases.items():
        try:
            r = call()
            out[name] = ["returned", str(getattr(r, "shape", r))]
        except (ValueError, MemoryError) as e:
            out[name] = ["ok", type(e).__name__, str(e)[:200]]
        except Exception as e:
            out[name] = ["wrong-exception", type(e).__name__, str(e)[:200]]
        print(json.dumps({name: out[name]}), flush=True)
    # still usable after the failed allocations
    y = m(np.ones((2, 3, 16, 16), np.float32))
    out["after"] = ["ok" if y.shape == (2, 2) else "bad"]
    print("RESULT " + json.dumps(out))
""")


def test_model_absurd_batch_views_raise_before_allocating():
    proc = run_python(HUGE_SCRIPT, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"subprocess died (rc={proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    res = json.loads(lines[-1][len("RESULT "):])
    bad = {k: v for k, v in res.items() if v[0] != "ok"}
    assert not bad, f"cases without ValueError/MemoryError: {bad}"
