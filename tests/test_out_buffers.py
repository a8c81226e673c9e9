"""Preallocated outputs and workspaces in the binding (`out=` / `workspace=`), as a compiled
model's activation arena uses them: the same bits as a call that allocates, the very
`out` object returned, every bad buffer rejected with the function named, and workspaces
of exactly the queried size accepted wherever they start (the C side aligns them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import pytest

from conftest import num_threads, rand
from fastconv._kernels import (avg_pool2d, conv2d, conv2d_pack, conv2d_run,
                               conv2d_run_workspace_bytes, conv2d_workspace_bytes, global_pool,
                               max_pool2d, relu, sgemm, sgemm_workspace_bytes, softmax)
from fastconv.errors import ShapeError

RNG_SEED = 1234


@dataclass
class Case:
    """One binding call: `call(inputs, **kw)` runs it on the arrays of `inputs` (which the
    overlap tests replace by copies placed in an arena); `ws_bytes(inputs)` is the
    workspace query, None for kernels without scratch memory."""
    name: str
    fname: str                              # the function name the messages must carry
    inputs: Dict[str, np.ndarray]
    call: Callable[..., np.ndarray]
    ws_bytes: Optional[Callable[[Dict[str, np.ndarray]], int]] = None
    # input key -> the argument name the binding's messages use (when they differ)
    arg_names: Dict[str, str] = field(default_factory=dict)
    # inputs made for the ISA in use (a packed blob belongs to one ISA)
    fresh: Optional[Callable[[], Dict[str, np.ndarray]]] = None
    out_shape: Tuple[int, ...] = field(default=())

    def __post_init__(self):
        self.out_shape = tuple(self.call(self.inputs).shape)

    def current_inputs(self):
        return self.fresh() if self.fresh else self.inputs


def _conv_case(name, xs, ws, stride, pads, dil, groups, algo, relu_=False, bias=True):
    rng = np.random.default_rng(RNG_SEED)
    inputs = {"x": rand(rng, *xs), "weight": rand(rng, *ws)}
    if bias:
        inputs["bias"] = rand(rng, ws[0])
    args = (stride, pads, dil, groups)

    def call(i, **kw):
        return conv2d(i["x"], i["weight"], i.get("bias"), *args, algo, relu_, **kw)

    def nbytes(i):
        return conv2d_workspace_bytes(i["x"].shape, i["weight"].shape, *args, algo)

    return Case(name, "conv2d", inputs, call, nbytes)


def _run_case(name, xs, ws, stride, pads, dil, groups, algo, relu_=False):
    rng = np.random.default_rng(RNG_SEED + 1)
    x, w, b = rand(rng, *xs), rand(rng, *ws), rand(rng, ws[0])
    args = (stride, pads, dil, groups)
    def fresh():
        blob, got = conv2d_pack(xs, w, b, *args, algo)
        assert got == algo
        return {"x": x, "blob": blob}

    def call(i, **kw):
        return conv2d_run(i["x"], i["blob"], ws, *args, relu_, **kw)

    def nbytes(i):
        return conv2d_run_workspace_bytes(i["x"].shape, i["blob"], ws, *args)

    return Case(name, "conv2d_run", fresh(), call, nbytes, fresh=fresh)


def _sgemm_case(name, m, k, n, transposed_b=False, bias_m=False, bias_n=False, relu_=False):
    rng = np.random.default_rng(RNG_SEED + 2)
    inputs = {"a": rand(rng, m, k)}
    # a transposed operand (as linear passes w.T) is stored as w and viewed in the call
    inputs["w" if transposed_b else "b"] = rand(rng, n, k) if transposed_b else rand(rng, k, n)
    if bias_m:
        inputs["bias_m"] = rand(rng, m)
    if bias_n:
        inputs["bias_n"] = rand(rng, n)

    def call(i, **kw):
        b = i["w"].T if transposed_b else i["b"]
        return sgemm(i["a"], b, i.get("bias_m"), i.get("bias_n"), relu_, **kw)

    def nbytes(i):
        return sgemm_workspace_bytes(m, n, k)

    return Case(name, "sgemm", inputs, call, nbytes, arg_names={"w": "b"})


def _cases():
    rng = np.random.default_rng(RNG_SEED + 3)
    x_pool = rand(rng, 2, 3, 9, 11)
    x_flat = rand(rng, 6, 35)
    x_soft = rand(rng, 2, 5, 7)
    return [
        _conv_case("conv3x3_direct", (2, 5, 9, 10), (18, 5, 3, 3), (1, 1), (1, 1, 1, 1),
                   (1, 1), 1, "direct", relu_=True),
        _conv_case("conv3x3_im2col", (2, 5, 9, 10), (18, 5, 3, 3), (1, 1), (1, 1, 1, 1),
                   (1, 1), 1, "im2col"),
        _conv_case("conv_grouped_strided_direct", (1, 8, 11, 9), (8, 2, 3, 3), (2, 2),
                   (0, 1, 2, 1), (1, 1), 4, "direct", bias=False),
        _conv_case("conv_dilated_im2col", (2, 4, 10, 10), (20, 2, 3, 3), (1, 2),
                   (2, 2, 2, 2), (2, 2), 2, "im2col"),
        _run_case("run_direct", (2, 5, 9, 10), (18, 5, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1,
                  "direct", relu_=True),
        _run_case("run_im2col", (3, 6, 7, 8), (12, 6, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1,
                  "im2col"),
        _sgemm_case("sgemm_small_m", 3, 17, 29, bias_n=True),
        _sgemm_case("sgemm_general", 37, 45, 50, transposed_b=True, bias_m=True, relu_=True),
        _sgemm_case("sgemm_k0", 4, 0, 5, bias_m=True, bias_n=True),
        Case("max_pool2d", "max_pool2d", {"x": x_pool},
             lambda i, **kw: max_pool2d(i["x"], (3, 2), (2, 2), (1, 0, 1, 1), (1, 2), True,
                                        **kw)),
        Case("avg_pool2d", "avg_pool2d", {"x": x_pool},
             lambda i, **kw: avg_pool2d(i["x"], (3, 3), (2, 1), (1, 1, 1, 1), False, True, **kw)),
        Case("global_avg", "global_pool", {"x": x_flat},
             lambda i, **kw: global_pool(i["x"], "avg", **kw)),
        Case("global_max", "global_pool", {"x": x_flat},
             lambda i, **kw: global_pool(i["x"], "max", **kw)),
        Case("relu", "relu", {"x": x_soft}, lambda i, **kw: relu(i["x"], **kw)),
        Case("softmax", "softmax", {"x": x_soft},
             lambda i, **kw: softmax(i["x"], 2, 5, 7, **kw)),
    ]


CASES = _cases()
WS_CASES = [c for c in CASES if c.ws_bytes is not None]


def _ids(cases):
    return [c.name for c in cases]


def _bytes_arena(nbytes, align=64):
    """A zeroed uint8 array of nbytes starting on an `align`-byte boundary."""
    raw = np.zeros(nbytes + align, dtype=np.uint8)
    off = (-raw.ctypes.data) % align
    return raw[off:off + nbytes]


def _placed(inputs, name, extra_bytes):
    """inputs with `name` replaced by a copy at the start of a fresh 64-byte-aligned arena
    that has extra_bytes after it; returns (inputs, arena)."""
    a = inputs[name]
    arena = _bytes_arena(a.nbytes + extra_bytes)
    copy = arena[:a.nbytes].view(a.dtype).reshape(a.shape)
    copy[...] = a
    return dict(inputs, **{name: copy}), arena


# --------------------------------------------------------------------------- results


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_out_gives_the_same_bits_and_is_returned(case):
    y0 = case.call(case.inputs)
    out = np.full(case.out_shape, np.nan, dtype=np.float32)  # every element must be written
    got = case.call(case.inputs, out=out)
    assert got is out
    assert np.array_equal(out, y0)
    # an arena slot is reused: a second call into the same out, same bits
    out[...] = -7.0
    assert case.call(case.inputs, out=out) is out
    assert np.array_equal(out, y0)


@pytest.mark.parametrize("case", WS_CASES, ids=_ids(WS_CASES))
def test_out_and_workspace_together_under_each_isa(case, isa):
    inputs = case.current_inputs()
    y0 = case.call(inputs)
    ws = np.full(case.ws_bytes(inputs) + 1000, 0xFF, dtype=np.uint8)
    out = np.empty(case.out_shape, dtype=np.float32)
    assert case.call(inputs, out=out, workspace=ws) is out
    assert np.array_equal(out, y0)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("offset", [0, 1, 3, 17, 63])
@pytest.mark.parametrize("case", WS_CASES, ids=_ids(WS_CASES))
def test_exact_size_workspace_at_any_alignment(case, offset, threads):
    """The queried size is enough wherever the buffer starts, and nothing outside it is
    touched (guard bytes on both sides)."""
    guard = 128
    with num_threads(threads):
        y0 = case.call(case.inputs)
        need = case.ws_bytes(case.inputs)
        assert need >= 0
        buf = _bytes_arena(guard + offset + need + guard)
        buf[...] = 0xA5
        ws = buf[guard + offset:guard + offset + need]
        assert need == 0 or ws.ctypes.data % 64 == offset
        ws[...] = 0xFF  # NaN patterns: the kernels may not rely on a zeroed workspace
        y = case.call(case.inputs, workspace=ws)
        assert np.array_equal(y, y0)
        assert np.all(buf[:guard + offset] == 0xA5), "bytes before the workspace written"
        assert np.all(buf[guard + offset + need:] == 0xA5), "bytes after the workspace written"
        # the same workspace serves the next call (no state kept in it)
        assert np.array_equal(case.call(case.inputs, workspace=ws), y0)


@pytest.mark.parametrize("case", [c for c in WS_CASES if c.ws_bytes(c.inputs) > 0],
                         ids=_ids([c for c in WS_CASES if c.ws_bytes(c.inputs) > 0]))
def test_workspace_one_byte_short_raises(case):
    need = case.ws_bytes(case.inputs)
    for ws in (np.zeros(need - 1, dtype=np.uint8), np.zeros(1, dtype=np.uint8),
               np.zeros(need + 1, dtype=np.uint8)[1:-1]):
        with pytest.raises(ValueError) as e:
            case.call(case.inputs, workspace=ws)
        msg = str(e.value)
        assert case.fname in msg and str(need) in msg and "workspace" in msg, msg


def test_workspace_size_follows_the_thread_count():
    """The query takes num_threads: a workspace sized for one thread may be too small for
    several (per-thread packing blocks), and the call says how many bytes it needs."""
    rng = np.random.default_rng(5)
    a, b = rand(rng, 200, 300), rand(rng, 300, 400)
    one, four = sgemm_workspace_bytes(200, 400, 300, 1), sgemm_workspace_bytes(200, 400, 300, 4)
    assert four > one
    y0 = sgemm(a, b, num_threads=1)
    assert np.array_equal(sgemm(a, b, num_threads=1, workspace=np.empty(one, np.uint8)), y0)
    assert np.array_equal(sgemm(a, b, num_threads=4, workspace=np.empty(four, np.uint8)), y0)
    with pytest.raises(ValueError, match=f"sgemm: .*needs at least {four}"):
        sgemm(a, b, num_threads=4, workspace=np.empty(one, np.uint8))
    assert sgemm_workspace_bytes(0, 5, 5) == 0 and sgemm_workspace_bytes(5, 5, 0) == 0
    with pytest.raises(ValueError):
        sgemm_workspace_bytes(-1, 5, 5)


def test_conv_workspace_queries_take_num_threads():
    rng = np.random.default_rng(6)
    xs, wsh = (2, 16, 20, 20), (64, 16, 1, 1)
    w = rand(rng, *wsh)
    args = ((1, 1), (0, 0, 0, 0), (1, 1), 1)
    n1 = conv2d_workspace_bytes(xs, wsh, *args, "im2col", num_threads=1)
    n4 = conv2d_workspace_bytes(xs, wsh, *args, "im2col", num_threads=4)
    assert n4 >= n1 > 0
    blob, _ = conv2d_pack(xs, w, None, *args, "im2col")
    r1 = conv2d_run_workspace_bytes(xs, blob, wsh, *args, num_threads=1)
    r4 = conv2d_run_workspace_bytes(xs, blob, wsh, *args, num_threads=4)
    assert r4 >= r1 > 0
    x = rand(rng, *xs)
    y0 = conv2d_run(x, blob, wsh, *args, num_threads=4)
    assert np.array_equal(conv2d_run(x, blob, wsh, *args, num_threads=4,
                                     workspace=np.empty(r4, np.uint8)), y0)


def test_run_workspace_query_rejects_a_foreign_blob():
    rng = np.random.default_rng(7)
    args = ((1, 1), (1, 1, 1, 1), (1, 1), 1)
    blob, _ = conv2d_pack((1, 4, 8, 8), rand(rng, 8, 4, 3, 3), None, *args, "direct")
    with pytest.raises(ValueError, match="conv2d_run: the packed weights do not match"):
        conv2d_run_workspace_bytes((1, 4, 8, 8), blob, (8, 4, 5, 5), (1, 1), (2, 2, 2, 2),
                                   (1, 1), 1)
    with pytest.raises(TypeError, match="conv2d_run: blob"):
        conv2d_run_workspace_bytes((1, 4, 8, 8), blob.view(np.int8), (8, 4, 3, 3), *args)


# --------------------------------------------------------------------------- bad out


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_out_of_another_dtype_raises_type_error(case):
    for out in (np.empty(case.out_shape, np.float64), np.empty(case.out_shape, np.float16),
                np.empty(case.out_shape, ">f4"), np.empty(case.out_shape, np.int32)):
        with pytest.raises(TypeError, match=f"{case.fname}: out must be float32"):
            case.call(case.inputs, out=out)
    with pytest.raises(TypeError, match=f"{case.fname}: out must be a numpy.ndarray"):
        case.call(case.inputs, out=np.zeros(case.out_shape).tolist())


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_out_of_another_shape_raises_shape_error(case):
    shape = case.out_shape
    wrong = [shape[:-1] + (shape[-1] + 1,), shape + (1,), (int(np.prod(shape)),)]
    for bad in wrong:
        if bad == shape:
            continue
        with pytest.raises(ShapeError) as e:
            case.call(case.inputs, out=np.empty(bad, np.float32))
        msg = str(e.value)
        assert msg.startswith(case.fname + ":") and str(shape) in msg and str(bad) in msg, msg
        assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_out_not_contiguous_or_read_only_raises_value_error(case):
    strided = np.empty(case.out_shape[:-1] + (2 * case.out_shape[-1],), np.float32)[..., ::2]
    if strided.size > 1 and case.out_shape[-1] > 1:
        assert not strided.flags.c_contiguous
        with pytest.raises(ValueError, match=f"{case.fname}: out must be C-contiguous"):
            case.call(case.inputs, out=strided)
    if len(case.out_shape) >= 2 and min(case.out_shape[-2:]) > 1:
        fortran = np.empty(case.out_shape, np.float32, order="F")
        with pytest.raises(ValueError, match=f"{case.fname}: out must be C-contiguous"):
            case.call(case.inputs, out=fortran)
    ro = np.zeros(case.out_shape, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=f"{case.fname}: out is read-only"):
        case.call(case.inputs, out=ro)
    assert not ro.any(), "a rejected out was written"


def _overlap_names(case):
    return [n for n, a in case.inputs.items() if a.size > 0]


OVERLAP = [(c, n) for c in CASES for n in _overlap_names(c)]


@pytest.mark.parametrize("case,name", OVERLAP, ids=[f"{c.name}-{n}" for c, n in OVERLAP])
def test_out_overlapping_an_input_raises(case, name):
    y0 = case.call(case.inputs)
    out_bytes = int(np.prod(case.out_shape)) * 4
    # out's first element on the input's last four bytes: the smallest possible overlap
    inputs, arena = _placed(case.inputs, name, out_bytes)
    nb = case.inputs[name].nbytes
    before = arena.copy()
    start = nb - 4
    out = arena[start:start + out_bytes].view(np.float32).reshape(case.out_shape)
    with pytest.raises(ValueError) as e:
        case.call(inputs, out=out)
    msg = str(e.value)
    assert msg.startswith(case.fname + ":"), msg
    assert msg.endswith("overlaps the memory of " + case.arg_names.get(name, name)), msg
    assert np.array_equal(arena, before), "the rejected call wrote something"
    # right after the input (touching, not overlapping) is fine
    out = arena[nb:nb + out_bytes].view(np.float32).reshape(case.out_shape)
    assert case.call(inputs, out=out) is out
    assert np.array_equal(out, y0)


def test_relu_in_place():
    rng = np.random.default_rng(8)
    x = rand(rng, 3, 4, 5)
    x[0, 0, 0] = np.nan
    x[0, 0, 1] = -0.0
    y0 = relu(x)
    assert relu(x, out=x) is x
    assert np.array_equal(x, y0, equal_nan=True)
    # another view of exactly the same memory is in place too
    x2 = rand(rng, 2, 6)
    y2 = relu(x2)
    view = x2.view()
    assert relu(x2, out=view) is view
    assert np.array_equal(x2, y2)


def test_relu_partial_overlap_raises():
    rng = np.random.default_rng(9)
    buf = rand(rng, 41)
    x, out = buf[:40].reshape(5, 8), buf[1:41].reshape(5, 8)
    before = buf.copy()
    with pytest.raises(ValueError, match="relu: out overlaps the memory of x"):
        relu(x, out=out)
    assert np.array_equal(buf, before)


def test_softmax_in_place_is_rejected():
    """Only relu may write over its input (the rule of the binding, kept for softmax
    although its C kernel would allow it)."""
    x = rand(np.random.default_rng(10), 2, 5)
    with pytest.raises(ValueError, match="softmax: out overlaps the memory of x"):
        softmax(x, 2, 5, 1, out=x)


def test_sgemm_out_overlapping_a_strided_operand_is_decided_exactly():
    """out inside the address range of a strided operand but on none of its elements is
    accepted; on one of them it is not."""
    rng = np.random.default_rng(11)
    buf = rand(rng, 8, 6)
    a = buf[0:8:4]                                 # rows 0 and 4; its range spans rows 0..4
    b = rand(rng, 6, 6)
    y0 = sgemm(a.copy(), b)
    disjoint = buf[1:3]                            # rows 1, 2: inside the range, not in a
    assert sgemm(a, b, out=disjoint) is disjoint
    assert np.array_equal(disjoint, y0)
    before = buf.copy()
    with pytest.raises(ValueError, match="sgemm: out overlaps the memory of a"):
        sgemm(a, b, out=buf[3:5])                  # row 4 is a's second row
    assert np.array_equal(buf, before)


# --------------------------------------------------------------------------- bad workspace


@pytest.mark.parametrize("case", WS_CASES, ids=_ids(WS_CASES))
def test_bad_workspace_raises(case):
    need = max(case.ws_bytes(case.inputs), 1)
    f = case.fname
    with pytest.raises(TypeError, match=f"{f}: workspace must be uint8"):
        case.call(case.inputs, workspace=np.zeros(need, np.int8))
    with pytest.raises(TypeError, match=f"{f}: workspace must be a numpy.ndarray"):
        case.call(case.inputs, workspace=bytearray(need))
    with pytest.raises(ValueError, match=f"{f}: workspace must be 1-D"):
        case.call(case.inputs, workspace=np.zeros((need, 1), np.uint8))
    with pytest.raises(ValueError, match=f"{f}: workspace must be C-contiguous"):
        case.call(case.inputs, workspace=np.zeros(2 * need + 2, np.uint8)[::2])
    ro = np.zeros(need, np.uint8)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=f"{f}: workspace is read-only"):
        case.call(case.inputs, workspace=ro)
    # the workspace over out's bytes, or over an input's
    out = np.empty(case.out_shape, np.float32)
    raw = np.zeros(out.nbytes + need, np.uint8)
    out = raw[:out.nbytes].view(np.float32).reshape(case.out_shape)
    if out.size:
        with pytest.raises(ValueError, match=f"{f}: workspace overlaps the memory of out"):
            case.call(case.inputs, out=out, workspace=raw)
    name = _overlap_names(case)[0]
    inputs, arena = _placed(case.inputs, name, need)
    before = arena.copy()
    arg = case.arg_names.get(name, name)
    with pytest.raises(ValueError, match=f"{f}: workspace overlaps the memory of {arg}"):
        case.call(inputs, workspace=arena)
    assert np.array_equal(arena, before)


# --------------------------------------------------------------------------- empty batches


def test_batch_zero_with_out_and_workspace():
    rng = np.random.default_rng(12)
    args = ((1, 1), (1, 1, 1, 1), (1, 1), 1)
    x0 = np.empty((0, 4, 6, 7), np.float32)
    w, b = rand(rng, 8, 4, 3, 3), rand(rng, 8)
    for algo in ("direct", "im2col"):
        out = np.empty((0, 8, 6, 7), np.float32)
        need = conv2d_workspace_bytes(x0.shape, w.shape, *args, algo)
        ws = np.empty(need + 1, np.uint8)[1:]
        assert conv2d(x0, w, b, *args, algo, out=out, workspace=ws) is out
        with pytest.raises(ShapeError, match=r"conv2d: out has shape \(1, 8, 6, 7\)"):
            conv2d(x0, w, b, *args, algo, out=np.empty((1, 8, 6, 7), np.float32))
        blob, _ = conv2d_pack((2, 4, 6, 7), w, b, *args, algo)
        need = conv2d_run_workspace_bytes(x0.shape, blob, w.shape, *args)
        assert conv2d_run(x0, blob, w.shape, *args, out=out,
                          workspace=np.empty(need, np.uint8)) is out
        with pytest.raises(ValueError, match="conv2d_run: workspace has 0 bytes"):
            conv2d_run(x0, blob, w.shape, *args, workspace=np.empty(0, np.uint8))
    xp = np.empty((0, 3, 8, 8), np.float32)
    out = np.empty((0, 3, 4, 4), np.float32)
    assert max_pool2d(xp, (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False, out=out) is out
    assert avg_pool2d(xp, (2, 2), (2, 2), (0, 0, 0, 0), False, True, out=out) is out
    with pytest.raises(ShapeError, match="avg_pool2d: out has shape"):
        avg_pool2d(xp, (2, 2), (2, 2), (0, 0, 0, 0), False, True,
                   out=np.empty((0, 3, 4, 5), np.float32))
    g = np.empty(0, np.float32)
    assert global_pool(np.empty((0, 9), np.float32), "avg", out=g) is g
    e = np.empty((0, 5), np.float32)
    assert relu(np.empty((0, 5), np.float32), out=e) is e
    assert softmax(np.empty((0, 5), np.float32), 0, 5, 1, out=e) is e
    c = np.empty((0, 7), np.float32)
    assert sgemm(np.empty((0, 3), np.float32), rand(rng, 3, 7), out=c,
                 workspace=np.empty(0, np.uint8)) is c


def test_defaults_unchanged_without_out():
    """Without out/workspace each call still allocates a fresh result."""
    for case in CASES:
        y1, y2 = case.call(case.inputs), case.call(case.inputs)
        assert y1 is not y2 and not np.shares_memory(y1, y2)
        assert y1.dtype == np.float32 and y1.flags.c_contiguous and y1.shape == case.out_shape
        for a in case.inputs.values():
            assert not np.shares_memory(y1, a), case.name
