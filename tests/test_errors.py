"""Bad input raises the documented exception with a useful message and never crashes."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import run_python

F32 = np.float32


def x4(*shape):
    return np.zeros(shape, F32)


# --------------------------------------------------------------------------- ShapeError


def test_shape_error_is_value_error(fc):
    assert issubclass(fc.ShapeError, ValueError)


SHAPE_CASES = [
    # (id, callable taking fc)
    ("conv2d-channel-mismatch", lambda fc: fc.conv2d(x4(1, 3, 9, 7), x4(4, 2, 3, 3))),
    ("conv2d-output-below-1", lambda fc: fc.conv2d(x4(1, 3, 2, 9), x4(4, 3, 3, 3))),
    ("conv2d-output-below-1-dilation", lambda fc: fc.conv2d(x4(1, 3, 9, 7), x4(4, 3, 3, 3),
                                                             dilation=4)),
    ("conv2d-x-rank-2", lambda fc: fc.conv2d(x4(3, 9), x4(4, 3, 3, 3))),
    ("conv2d-x-rank-5", lambda fc: fc.conv2d(x4(1, 1, 3, 9, 7), x4(4, 3, 3, 3))),
    ("conv2d-weight-rank-3", lambda fc: fc.conv2d(x4(1, 3, 9, 7), x4(4, 3, 3))),
    ("conv2d-zero-channels", lambda fc: fc.conv2d(x4(1, 0, 9, 7), x4(4, 0, 3, 3))),
    ("conv2d-zero-height", lambda fc: fc.conv2d(x4(1, 3, 0, 7), x4(4, 3, 1, 1))),
    ("conv2d-zero-width", lambda fc: fc.conv2d(x4(1, 3, 9, 0), x4(4, 3, 1, 1))),
    ("conv2d-zero-out-channels", lambda fc: fc.conv2d(x4(1, 3, 9, 7), x4(0, 3, 3, 3))),
    ("conv2d-zero-kernel", lambda fc: fc.conv2d(x4(1, 3, 9, 7), x4(4, 3, 0, 3))),
    ("conv2d-groups-not-dividing-in", lambda fc: fc.conv2d(x4(1, 4, 9, 7), x4(4, 2, 3, 3),
                                                            groups=3)),
    ("conv2d-groups-not-dividing-out", lambda fc: fc.conv2d(x4(1, 4, 9, 7), x4(3, 2, 3, 3),
                                                             groups=2)),
    ("conv2d-groups-wrong-weight-channels", lambda fc: fc.conv2d(x4(1, 4, 9, 7), x4(4, 4, 3, 3),
                                                                  groups=2)),
    ("conv2d-bias-length", lambda fc: fc.conv2d(x4(1, 3, 9, 7), x4(4, 3, 3, 3), x4(5))),
    ("conv2d-bias-rank", lambda fc: fc.conv2d(x4(1, 3, 9, 7), x4(4, 3, 3, 3), x4(4, 1))),
    ("conv2d-unbatched-mismatch", lambda fc: fc.conv2d(x4(2, 9, 7), x4(4, 3, 3, 3))),
    ("conv1d-channel-mismatch", lambda fc: fc.conv1d(x4(1, 3, 9), x4(4, 2, 3))),
    ("conv1d-output-below-1", lambda fc: fc.conv1d(x4(1, 3, 2), x4(4, 3, 3))),
    ("conv1d-weight-rank-4", lambda fc: fc.conv1d(x4(1, 3, 9), x4(4, 3, 1, 3))),
    ("conv1d-x-rank-4", lambda fc: fc.conv1d(x4(1, 3, 1, 9), x4(4, 3, 3))),
    ("max_pool2d-output-below-1", lambda fc: fc.max_pool2d(x4(1, 3, 2, 9), 3)),
    ("max_pool2d-rank-2", lambda fc: fc.max_pool2d(x4(9, 7), 2)),
    ("max_pool2d-zero-channels", lambda fc: fc.max_pool2d(x4(1, 0, 9, 7), 2)),
    ("max_pool2d-zero-spatial", lambda fc: fc.max_pool2d(x4(1, 3, 0, 7), 1)),
    ("avg_pool2d-output-below-1", lambda fc: fc.avg_pool2d(x4(1, 3, 9, 2), 3)),
    ("avg_pool2d-rank-5", lambda fc: fc.avg_pool2d(x4(1, 1, 3, 9, 7), 2)),
    ("max_pool1d-output-below-1", lambda fc: fc.max_pool1d(x4(1, 3, 2), 3)),
    ("avg_pool1d-rank-4", lambda fc: fc.avg_pool1d(x4(1, 3, 1, 9), 3)),
    ("global_avg_pool2d-rank-2", lambda fc: fc.global_avg_pool2d(x4(9, 7))),
    ("global_max_pool2d-zero-spatial", lambda fc: fc.global_max_pool2d(x4(1, 3, 0, 7))),
    ("linear-in-mismatch", lambda fc: fc.linear(x4(2, 5), x4(3, 4))),
    ("linear-weight-rank-1", lambda fc: fc.linear(x4(2, 5), x4(5))),
    ("linear-bias-length", lambda fc: fc.linear(x4(2, 5), x4(3, 5), x4(4))),
]


@pytest.mark.parametrize("name,call", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_shape_errors(fc, name, call):
    with pytest.raises(fc.ShapeError) as info:
        call(fc)
    msg = str(info.value)
    func = name.split("-")[0]
    assert func in msg, f"message does not name the function {func!r}: {msg!r}"
    assert any(ch.isdigit() for ch in msg), f"message names no shape: {msg!r}"


def test_shape_error_message_names_shapes_and_rule(fc):
    with pytest.raises(fc.ShapeError) as info:
        fc.conv2d(x4(1, 3, 9, 7), x4(4, 2, 3, 3))
    msg = str(info.value)
    assert "conv2d" in msg
    assert "3" in msg and "2" in msg
    assert "(1, 3, 9, 7)" in msg or "1x3x9x7" in msg or "[1, 3, 9, 7]" in msg, msg
    with pytest.raises(fc.ShapeError) as info:
        fc.conv2d(x4(1, 3, 2, 9), x4(4, 3, 3, 3))
    assert "conv2d" in str(info.value)


# --------------------------------------------------------------------------- TypeError

BAD_DTYPES = [np.int8, np.int32, np.int64, np.uint8, np.bool_, np.complex64, np.complex128,
              object]


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
def test_bad_dtype_raises_type_error(fc, dtype):
    x = np.ones((1, 3, 9, 7), dtype=dtype)
    w = np.ones((4, 3, 3, 3), F32)
    b = np.ones(4, F32)
    calls = {
        "conv2d x": lambda: fc.conv2d(x, w),
        "conv2d weight": lambda: fc.conv2d(np.ones((1, 3, 9, 7), F32),
                                           np.ones((4, 3, 3, 3), dtype=dtype)),
        "conv2d bias": lambda: fc.conv2d(np.ones((1, 3, 9, 7), F32), w, np.ones(4, dtype=dtype)),
        "conv1d": lambda: fc.conv1d(x[:, :, 0, :], w[:, :, 0, :]),
        "max_pool2d": lambda: fc.max_pool2d(x, 2),
        "avg_pool2d": lambda: fc.avg_pool2d(x, 2),
        "max_pool1d": lambda: fc.max_pool1d(x[:, :, 0, :], 2),
        "avg_pool1d": lambda: fc.avg_pool1d(x[:, :, 0, :], 2),
        "global_avg_pool2d": lambda: fc.global_avg_pool2d(x),
        "global_max_pool2d": lambda: fc.global_max_pool2d(x),
        "relu": lambda: fc.relu(x),
        "softmax": lambda: fc.softmax(x),
        "linear x": lambda: fc.linear(x[0, 0], np.ones((4, 7), F32)),
        "linear weight": lambda: fc.linear(np.ones((2, 7), F32), np.ones((4, 7), dtype=dtype)),
        "linear bias": lambda: fc.linear(np.ones((2, 7), F32), np.ones((4, 7), F32), b.astype(dtype)),
    }
    for what, call in calls.items():
        with pytest.raises(TypeError) as info:
            call()
        assert str(info.value), f"{what}: empty TypeError message"


# --------------------------------------------------------------------------- ValueError


BAD_ARGS = [
    ("conv2d-negative-stride", lambda fc, x, w: fc.conv2d(x, w, stride=-1)),
    ("conv2d-zero-stride", lambda fc, x, w: fc.conv2d(x, w, stride=0)),
    ("conv2d-zero-stride-pair", lambda fc, x, w: fc.conv2d(x, w, stride=(1, 0))),
    ("conv2d-zero-dilation", lambda fc, x, w: fc.conv2d(x, w, dilation=0)),
    ("conv2d-negative-dilation", lambda fc, x, w: fc.conv2d(x, w, dilation=(1, -2))),
    ("conv2d-negative-padding", lambda fc, x, w: fc.conv2d(x, w, padding=-1)),
    ("conv2d-negative-padding-quad", lambda fc, x, w: fc.conv2d(x, w, padding=(0, 0, -1, 0))),
    ("conv2d-padding-3-tuple", lambda fc, x, w: fc.conv2d(x, w, padding=(1, 1, 1))),
    ("conv2d-padding-5-tuple", lambda fc, x, w: fc.conv2d(x, w, padding=(1, 1, 1, 1, 1))),
    ("conv2d-padding-bad-string", lambda fc, x, w: fc.conv2d(x, w, padding="full")),
    ("conv2d-padding-same-lower", lambda fc, x, w: fc.conv2d(x, w, padding="SAME_LOWER")),
    ("conv2d-stride-3-tuple", lambda fc, x, w: fc.conv2d(x, w, stride=(1, 1, 1))),
    ("conv2d-bad-algo", lambda fc, x, w: fc.conv2d(x, w, algo="fft")),
    ("conv2d-algo-case", lambda fc, x, w: fc.conv2d(x, w, algo="Direct")),
    ("conv2d-zero-groups", lambda fc, x, w: fc.conv2d(x, w, groups=0)),
    ("conv2d-negative-groups", lambda fc, x, w: fc.conv2d(x, w, groups=-1)),
    ("conv1d-negative-stride", lambda fc, x, w: fc.conv1d(x[:, :, 0], w[:, :, 0], stride=-2)),
    ("conv1d-padding-3-tuple", lambda fc, x, w: fc.conv1d(x[:, :, 0], w[:, :, 0], padding=(1, 1, 1))),
    ("conv1d-bad-algo", lambda fc, x, w: fc.conv1d(x[:, :, 0], w[:, :, 0], algo="gemm")),
    ("max_pool2d-zero-kernel", lambda fc, x, w: fc.max_pool2d(x, 0)),
    ("max_pool2d-negative-kernel", lambda fc, x, w: fc.max_pool2d(x, (2, -1))),
    ("max_pool2d-zero-stride", lambda fc, x, w: fc.max_pool2d(x, 2, stride=0)),
    ("max_pool2d-negative-padding", lambda fc, x, w: fc.max_pool2d(x, 3, padding=-1)),
    ("max_pool2d-zero-dilation", lambda fc, x, w: fc.max_pool2d(x, 2, dilation=0)),
    ("max_pool2d-bad-padding-form", lambda fc, x, w: fc.max_pool2d(x, 2, padding=(1, 1, 1))),
    ("avg_pool2d-zero-kernel", lambda fc, x, w: fc.avg_pool2d(x, (0, 2))),
    ("avg_pool2d-negative-stride", lambda fc, x, w: fc.avg_pool2d(x, 2, stride=-1)),
    ("avg_pool2d-negative-padding", lambda fc, x, w: fc.avg_pool2d(x, 2, padding=(0, -1))),
    ("max_pool1d-zero-kernel", lambda fc, x, w: fc.max_pool1d(x[:, :, 0], 0)),
    ("avg_pool1d-negative-padding", lambda fc, x, w: fc.avg_pool1d(x[:, :, 0], 2, padding=-1)),
]


@pytest.mark.parametrize("name,call", BAD_ARGS, ids=[c[0] for c in BAD_ARGS])
def test_bad_argument_values_raise_value_error(fc, name, call):
    x = np.ones((1, 3, 9, 7), F32)
    w = np.ones((4, 3, 3, 3), F32)
    with pytest.raises(ValueError) as info:
        call(fc, x, w)
    assert len(str(info.value)) > 5, f"{name}: uninformative message {str(info.value)!r}"


def test_bad_algo_message_lists_choices(fc):
    with pytest.raises(ValueError) as info:
        fc.conv2d(np.ones((1, 3, 9, 7), F32), np.ones((4, 3, 3, 3), F32), algo="fft")
    msg = str(info.value)
    assert "fft" in msg or "algo" in msg
    assert "direct" in msg and "im2col" in msg, f"message does not list the choices: {msg!r}"


def test_softmax_bad_axis(fc):
    with pytest.raises((ValueError, IndexError)):
        fc.softmax(np.ones((2, 3), F32), axis=2)
    with pytest.raises((ValueError, IndexError)):
        fc.softmax(np.ones((2, 3), F32), axis=-3)


@pytest.mark.parametrize("n", [0, -1, -8])
def test_set_num_threads_rejects_nonpositive(fc, n):
    before = fc.get_num_threads()
    with pytest.raises(ValueError):
        fc.set_num_threads(n)
    assert fc.get_num_threads() == before


def test_set_num_threads_rejects_non_integers(fc):
    with pytest.raises((TypeError, ValueError)):
        fc.set_num_threads("two")
    with pytest.raises((TypeError, ValueError)):
        fc.set_num_threads(1.5)


def test_set_isa_rejects_unknown_name(kernels):
    before = kernels.get_isa()
    with pytest.raises(ValueError):
        kernels.set_isa("avx512-vnni-quantum")
    assert kernels.get_isa() == before


def test_set_isa_avx2_without_avx2(kernels):
    if kernels.has_avx2():
        kernels.set_isa("avx2")   # works where supported
        assert kernels.get_isa() == "avx2"
    else:
        with pytest.raises((ValueError, RuntimeError)):
            kernels.set_isa("avx2")


def test_set_isa_avx512_without_avx512(kernels):
    before = kernels.get_isa()
    if kernels.has_avx512():
        kernels.set_isa("avx512")   # works where supported
        assert kernels.get_isa() == "avx512"
    else:
        with pytest.raises(ValueError, match="avx512"):
            kernels.set_isa("avx512")
        assert kernels.get_isa() == before   # a refused switch changes nothing


def test_zero_batch_is_not_an_error(fc):
    assert fc.conv2d(x4(0, 3, 9, 7), x4(4, 3, 3, 3)).shape == (0, 4, 7, 5)
    assert fc.conv1d(x4(0, 3, 9), x4(4, 3, 3)).shape == (0, 4, 7)


# --------------------------------------------------------------------------- overflow

OVERFLOW_SCRIPT = textwrap.dedent(r"""
    import json, resource, sys
    # any allocation attempt of an overflowing size must fail, never thrash the machine
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
    import numpy as np
    from numpy.lib.stride_tricks import as_strided
    import fastconv as fc

    def huge(shape):
        # a zero-stride view: every element aliases one float, so no memory is used
        return as_strided(np.zeros(1, np.float32), shape=shape, strides=(0,) * len(shape))

    cases = {
        # workspace queries: shapes only
        "ws-output-overflow": lambda: fc.conv2d_workspace_bytes(
            (2**20, 2**20, 2**20, 2**20), (2**20, 2**20, 1, 1)),
        "ws-huge-dims": lambda: fc.conv2d_workspace_bytes(
            (1, 2**40, 2**40, 2**40), (4, 2**40, 3, 3), algo="im2col"),
        "ws-huge-padding": lambda: fc.conv2d_workspace_bytes(
            (1, 1, 1, 1), (1, 1, 1, 1), padding=2**62),
        # contiguous small inputs whose output cannot exist (padding makes it huge)
        "conv2d-output-count-overflow": lambda: fc.conv2d(
            np.ones((1, 1, 1, 1), np.float32), np.ones((1, 1, 1, 1), np.float32),
            padding=2**31),
        "conv2d-output-padding-2**40": lambda: fc.conv2d(
            np.ones((1, 1, 1, 1), np.float32), np.ones((1, 1, 1, 1), np.float32),
            padding=2**40),
        "conv2d-output-too-big": lambda: fc.conv2d(
            np.ones((1, 1, 1, 1), np.float32), np.ones((4, 1, 1, 1), np.float32),
            padding=2**20),
        "conv2d-im2col-output-too-big": lambda: fc.conv2d(
            np.ones((1, 2, 1, 1), np.float32), np.ones((3, 2, 1, 1), np.float32),
            padding=(2**21, 2**21, 2**21, 2**21), algo="im2col"),
        "conv2d-stride-2**70": lambda: fc.conv2d(
            np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 1, 1), np.float32),
            stride=2**70),
        "conv2d-padding-2**70": lambda: fc.conv2d(
            np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 1, 1), np.float32),
            padding=2**70),
        "max_pool2d-padding-huge": lambda: fc.max_pool2d(
            np.ones((1, 1, 1, 1), np.float32), 1, stride=1, padding=2**31),
        "avg_pool2d-padding-huge": lambda: fc.avg_pool2d(
            np.ones((1, 1, 1, 1), np.float32), 1, stride=1, padding=2**20),
        "max_pool2d-kernel-2**70": lambda: fc.max_pool2d(
            np.ones((1, 1, 4, 4), np.float32), 2**70),
        # zero-stride views of huge shapes (a copy or the output cannot be made)
        "conv2d-zero-stride-view": lambda: fc.conv2d(
            huge((1, 1, 2**30, 2**30)), huge((16, 1, 1, 1))),
        "max_pool2d-zero-stride-view": lambda: fc.max_pool2d(
            huge((2**15, 2**15, 2**14, 2**14)), 1),
        "relu-zero-stride-view": lambda: fc.relu(huge((2**30, 2**30))),
        "linear-zero-stride-view": lambda: fc.linear(huge((2**31, 4)), huge((2**31, 4))),
    }
    out = {}
    for name, call in cases.items():
        try:
            r = call()
            out[name] = ["returned", repr(r)[:80]]
        except (ValueError, MemoryError) as e:
            out[name] = ["ok", type(e).__name__, str(e)[:200]]
        except Exception as e:
            out[name] = ["wrong-exception", type(e).__name__, str(e)[:200]]
        print(json.dumps({name: out[name]}), flush=True)
    print("RESULT " + json.dumps(out))
""")


def test_overflowing_sizes_raise_before_allocating():
    proc = run_python(OVERFLOW_SCRIPT, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"subprocess died (rc={proc.returncode}); last output:\n{proc.stdout[-2000:]}\n"
        f"{proc.stderr[-2000:]}")
    results = json.loads(lines[-1][len("RESULT "):])
    bad = {k: v for k, v in results.items() if v[0] != "ok"}
    # a workspace query may legitimately return a large int if it does not overflow
    assert not bad, f"cases that did not raise ValueError/MemoryError: {bad}"


# --------------------------------------------------------------------------- fuzz: never crash


@given(
    xshape=st.lists(st.integers(0, 6), min_size=0, max_size=5),
    wshape=st.lists(st.integers(0, 4), min_size=0, max_size=5),
    stride=st.one_of(st.integers(-2, 3), st.tuples(st.integers(-1, 3), st.integers(-1, 3)),
                     st.just((1,)), st.just("x")),
    padding=st.one_of(st.integers(-2, 4), st.tuples(st.integers(-1, 3), st.integers(-1, 3)),
                      st.tuples(*[st.integers(-1, 3)] * 4), st.sampled_from(["same", "valid",
                                                                            "zzz"])),
    dilation=st.one_of(st.integers(-1, 3), st.tuples(st.integers(0, 3), st.integers(0, 3))),
    groups=st.integers(-1, 4),
    algo=st.sampled_from(["auto", "direct", "im2col", "none"]),
    dtype=st.sampled_from([np.float32, np.float64, np.int32]),
)
def test_fuzz_conv2d_never_crashes(fc, xshape, wshape, stride, padding, dilation, groups, algo,
                                   dtype):
    x = np.ones(xshape, dtype)
    w = np.ones(wshape, dtype)
    try:
        y = fc.conv2d(x, w, None, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, algo=algo)
    except (ValueError, TypeError) as e:
        assert str(e), "exception without a message"
        return
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    assert dtype != np.int32, "integer input accepted"
    assert algo != "none", "unknown algo accepted"


@given(
    xshape=st.lists(st.integers(0, 6), min_size=0, max_size=5),
    kernel=st.one_of(st.integers(-1, 4), st.tuples(st.integers(-1, 4), st.integers(-1, 4)),
                     st.just((2, 2, 2))),
    stride=st.one_of(st.none(), st.integers(-1, 3), st.tuples(st.integers(0, 3),
                                                              st.integers(0, 3))),
    padding=st.one_of(st.integers(-1, 3), st.tuples(st.integers(-1, 2), st.integers(-1, 2)),
                      st.tuples(*[st.integers(-1, 3)] * 4)),
    dilation=st.one_of(st.integers(-1, 3), st.tuples(st.integers(0, 2), st.integers(0, 2))),
    ceil_mode=st.booleans(), op=st.sampled_from(["max", "avg"]),
)
def test_fuzz_pool2d_never_crashes(fc, xshape, kernel, stride, padding, dilation, ceil_mode, op):
    x = np.ones(xshape, np.float32)
    try:
        if op == "max":
            y = fc.max_pool2d(x, kernel, stride=stride, padding=padding, dilation=dilation,
                              ceil_mode=ceil_mode)
        else:
            y = fc.avg_pool2d(x, kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    except (ValueError, TypeError) as e:
        assert str(e), "exception without a message"
        return
    assert isinstance(y, np.ndarray) and y.dtype == np.float32


# --------------------------------------------------------------------------- private hooks

HOOKS_SCRIPT = textwrap.dedent(r"""
    import json
    import numpy as np
    import fastconv._kernels as k

    f = np.float32
    x = np.ones((1, 8, 9, 7), f)
    w = np.ones((4, 8, 3, 3), f)
    cases = {
        "conv2d-weight-channels": lambda: k.conv2d(x, np.ones((4, 1, 3, 3), f), None, (1, 1),
                                                   (0, 0, 0, 0), (1, 1), 1, "direct"),
        "conv2d-bias-length": lambda: k.conv2d(x, w, np.ones(3, f), (1, 1), (0, 0, 0, 0),
                                               (1, 1), 1, "im2col"),
        "conv2d-zero-stride": lambda: k.conv2d(x, w, None, (0, 1), (0, 0, 0, 0), (1, 1), 1),
        "conv2d-negative-pad": lambda: k.conv2d(x, w, None, (1, 1), (0, -1, 0, 0), (1, 1), 1),
        "conv2d-pads-length": lambda: k.conv2d(x, w, None, (1, 1), (0, 0), (1, 1), 1),
        "conv2d-output-below-1": lambda: k.conv2d(np.ones((1, 8, 2, 2), f), w, None, (1, 1),
                                                  (0, 0, 0, 0), (1, 1), 1),
        "conv2d-groups-zero": lambda: k.conv2d(x, w, None, (1, 1), (0, 0, 0, 0), (1, 1), 0),
        "conv2d-bad-algo": lambda: k.conv2d(x, w, None, (1, 1), (0, 0, 0, 0), (1, 1), 1, "fft"),
        "conv2d-int-input": lambda: k.conv2d(x.astype(np.int32), w, None, (1, 1), (0, 0, 0, 0),
                                             (1, 1), 1),
        "conv2d-noncontiguous": lambda: k.conv2d(np.asfortranarray(x), w, None, (1, 1),
                                                 (0, 0, 0, 0), (1, 1), 1),
        "conv2d-zero-threads": lambda: k.conv2d(x, w, None, (1, 1), (0, 0, 0, 0), (1, 1), 1,
                                                "auto", False, 0),
        "conv2d-huge-padding": lambda: k.conv2d(x, w, None, (1, 1), (2**40,) * 4, (1, 1), 1),
        "ref_conv2d-weight-channels": lambda: k.ref_conv2d(x, np.ones((4, 2, 3, 3), f), None,
                                                           (1, 1), (0, 0, 0, 0), (1, 1), 1),
        "ref_conv2d-huge-dilation": lambda: k.ref_conv2d(x, w, None, (1, 1), (0, 0, 0, 0),
                                                         (2**40, 1), 1),
        "ref_max_pool2d-kernel-too-big": lambda: k.ref_max_pool2d(x, (10, 3), (1, 1),
                                                                  (0, 0, 0, 0), (1, 1), False),
        "ref_max_pool2d-zero-kernel": lambda: k.ref_max_pool2d(x, (0, 3), (1, 1), (0, 0, 0, 0),
                                                               (1, 1), False),
        "ref_avg_pool2d-negative-stride": lambda: k.ref_avg_pool2d(x, (2, 2), (-1, 1),
                                                                   (0, 0, 0, 0), False, True),
        "max_pool2d-rank-3": lambda: k.max_pool2d(x[0], (2, 2), (2, 2), (0, 0, 0, 0), (1, 1),
                                                  False),
        "avg_pool2d-huge-pad": lambda: k.avg_pool2d(x, (2, 2), (1, 1), (2**62, 0, 0, 0), False,
                                                    True),
        "ref_conv2d-zero-stride": lambda: k.ref_conv2d(x, w, None, (1, 0), (0, 0, 0, 0),
                                                       (1, 1), 1),
        "conv2d_workspace_bytes-zero-stride": lambda: k.conv2d_workspace_bytes(
            (1, 8, 9, 7), (4, 8, 3, 3), (0, 1), (0, 0, 0, 0), (1, 1), 1),
        "conv2d-zero-dilation": lambda: k.conv2d(x, w, None, (1, 1), (0, 0, 0, 0), (0, 1), 1),
        "max_pool2d-zero-stride": lambda: k.max_pool2d(x, (2, 2), (0, 1), (0, 0, 0, 0), (1, 1),
                                                       False),
        "ref_avg_pool2d-zero-stride": lambda: k.ref_avg_pool2d(x, (2, 2), (1, 0), (0, 0, 0, 0),
                                                               True, True),
        "out_size-zero-stride": lambda: k.out_size(9, 0, 0, 3, 0, 1, False),
        "set_isa-bad": lambda: k.set_isa("sse9"),
        "set_num_threads-zero": lambda: k.set_num_threads(0),
    }
    import os
    names = list(cases)
    print("NAMES " + json.dumps(names), flush=True)
    for name in names[int(os.environ.get("HOOK_START", "0")):]:
        print("START " + name, flush=True)
        try:
            cases[name]()
            res = ["returned"]
        except (ValueError, TypeError, OverflowError, MemoryError) as e:
            res = ["ok", type(e).__name__, str(e)[:160]]
        except Exception as e:
            res = ["other", type(e).__name__, str(e)[:160]]
        print("CASE " + json.dumps([name, res]), flush=True)
""")


def test_private_hooks_reject_bad_arguments_without_crashing():
    """The binding and the C layer re-validate: bad arguments given straight to
    fastconv._kernels raise a Python exception. Each case runs in a subprocess that is
    restarted after a crash, so one crash does not hide the others."""
    results = {}
    start = 0
    names = None
    while True:
        proc = run_python(HOOKS_SCRIPT, env_extra={"HOOK_START": str(start)})
        current = None
        for ln in proc.stdout.splitlines():
            if ln.startswith("NAMES "):
                names = json.loads(ln[6:])
            elif ln.startswith("START "):
                current = ln[6:]
            elif ln.startswith("CASE "):
                name, res = json.loads(ln[5:])
                results[name] = res
                current = None
        assert names is not None, f"subprocess failed to start: {proc.stderr[-1500:]}"
        if proc.returncode == 0:
            break
        assert current is not None, f"subprocess died outside a case: {proc.stderr[-1500:]}"
        results[current] = ["crash", f"signal {-proc.returncode}" if proc.returncode < 0
                            else f"exit {proc.returncode}", proc.stderr[-300:]]
        start = names.index(current) + 1
        if start >= len(names):
            break
    # a non-contiguous array may be accepted (copied) by the binding
    results.pop("conv2d-noncontiguous", None)
    bad = {k: v for k, v in results.items() if v[0] != "ok"}
    assert not bad, f"private hooks that did not raise a Python exception: {bad}"
