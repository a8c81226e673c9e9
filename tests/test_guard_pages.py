"""Inputs placed right against a no-access page: a SIMD over-read past the end of an input
(an edge tile, a vector tail, a masked load done wrong) faults instead of passing
silently. Each case runs in a subprocess so that a fault is reported as a failure with
the case named, rather than taking the test session down."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import available_isas, run_python

if not sys.platform.startswith("linux"):
    pytest.skip("guard pages use mmap/mprotect through ctypes (Linux only)",
                allow_module_level=True)

GUARD_SCRIPT = r'''
import ctypes, json, mmap, os, sys
import numpy as np
import fastconv as fc

PAGE = mmap.PAGESIZE
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
keep = []

def guarded(a):
    """A read-only copy of `a` whose last byte is followed by a PROT_NONE page."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    nbytes = a.nbytes
    pages = (nbytes + PAGE - 1) // PAGE + 1
    m = mmap.mmap(-1, pages * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    guard = base + (pages - 1) * PAGE
    if libc.mprotect(ctypes.c_void_p(guard), PAGE, 0) != 0:
        raise OSError(ctypes.get_errno(), "mprotect failed")
    start = (pages - 1) * PAGE - nbytes
    out = np.frombuffer(m, dtype=np.uint8, count=nbytes, offset=start).view(np.float32)
    out = out.reshape(a.shape)
    out[...] = a
    out.flags.writeable = False
    keep.append(m)
    return out

rng = np.random.default_rng(0)
cases = json.loads(os.environ["GUARD_CASES"])
for c in cases:
    print("START", c["name"], flush=True)
    fc._kernels.set_isa(c["isa"])
    fc.set_num_threads(c["threads"])
    x = rng.standard_normal(c["x"]).astype(np.float32)
    if c["op"] == "conv":
        w = rng.standard_normal(c["w"]).astype(np.float32)
        b = rng.standard_normal(c["w"][0]).astype(np.float32)
        y_free = fc.conv2d(x, w, b, **c["kw"])
        y_guard = fc.conv2d(guarded(x), guarded(w), guarded(b), **c["kw"])
        conv = fc.prepare_conv2d(guarded(w), guarded(b), **c["kw"])
        assert np.array_equal(conv(guarded(x)), y_free), c["name"] + " prepared"
    elif c["op"] == "maxpool":
        y_free = fc.max_pool2d(x, **c["kw"])
        y_guard = fc.max_pool2d(guarded(x), **c["kw"])
    elif c["op"] == "avgpool":
        y_free = fc.avg_pool2d(x, **c["kw"])
        y_guard = fc.avg_pool2d(guarded(x), **c["kw"])
    elif c["op"] == "linear":
        w = rng.standard_normal(c["w"]).astype(np.float32)
        b = rng.standard_normal(c["w"][0]).astype(np.float32)
        y_free = fc.linear(x, w, b)
        y_guard = fc.linear(guarded(x), guarded(w), guarded(b))
    elif c["op"] == "elementwise":
        y_free = np.concatenate([fc.relu(x).ravel(), fc.softmax(x).ravel(),
                                 fc.global_max_pool2d(x).ravel(),
                                 fc.global_avg_pool2d(x).ravel()])
        g = guarded(x)
        y_guard = np.concatenate([fc.relu(g).ravel(), fc.softmax(g).ravel(),
                                  fc.global_max_pool2d(g).ravel(),
                                  fc.global_avg_pool2d(g).ravel()])
    elif c["op"] == "nchw8c":   # reorders and blocked pools (max args, avg args)
        k, ch = fc._kernels, c["x"][1]

        def blocked_ops(xin, xb):
            return np.concatenate([k.to_nchw8c(xin).ravel(), k.from_nchw8c(xb, ch).ravel(),
                                   k.max_pool2d_nchw8c(xb, ch, *c["max"]).ravel(),
                                   k.avg_pool2d_nchw8c(xb, ch, *c["avg"]).ravel()])
        xb = k.to_nchw8c(x)
        y_free = blocked_ops(x, xb)
        y_guard = blocked_ops(guarded(x), guarded(xb))
    elif c["op"] == "conv8c":   # the blocked direct conv, from NCHW and from NCHW8c
        k, a = fc._kernels, c["args"]
        w = rng.standard_normal(c["w"]).astype(np.float32)
        b = rng.standard_normal(c["w"][0]).astype(np.float32)

        def conv8c(xn, xb, w, b):
            blob = k.conv2d_nchw8c_pack(tuple(xn.shape), w, b, *a)
            return np.concatenate([k.conv2d_nchw8c_run(xn, blob, w.shape, *a, True).ravel(),
                                   k.conv2d_nchw8c_run(xb, blob, w.shape, *a).ravel()])
        xb = k.to_nchw8c(x)
        y_free = conv8c(x, xb, w, b)
        y_guard = conv8c(guarded(x), guarded(xb), guarded(w), guarded(b))
    assert np.array_equal(y_free, y_guard, equal_nan=True), c["name"] + " differs"
    print("DONE", c["name"], flush=True)
'''


def _cases(isa):
    cases = []
    for t in (1, 2):
        for algo in ("direct", "im2col"):
            for i, (x, w, kw) in enumerate([
                ((1, 3, 9, 7), (5, 3, 3, 3), dict(padding=1)),
                ((2, 13, 18, 17), (24, 13, 3, 3), dict(padding=(0, 2, 1, 0))),
                ((1, 15, 7, 9), (17, 15, 5, 3), dict(stride=2, padding=2, dilation=(1, 2))),
                ((1, 24, 11, 13), (24, 1, 3, 3), dict(padding=1, groups=24)),
                ((1, 16, 6, 5), (33, 16, 1, 1), {}),
                ((1, 3, 23, 21), (64, 3, 7, 7), dict(stride=2, padding=3)),
                # AVX-512 edges: 29 = 2 x 14 + 1 rows; 25 pixels = a 32-wide panel whose
                # right half holds 9; a 1x1 conv whose 16 pixels leave that half empty
                ((1, 13, 5, 5), (29, 13, 3, 3), dict(padding=1)),
                ((3, 7, 4, 4), (15, 7, 1, 1), {}),
                # two 16-channel blocks + an 8-wide one; 31 columns = 14 + 17 (split 9 + 8)
                ((1, 5, 4, 31), (40, 5, 3, 3), dict(padding=1)),
            ]):
                cases.append(dict(name=f"conv{i}-{algo}-t{t}-{isa}", op="conv", x=x, w=w,
                                  kw=dict(kw, algo=algo), isa=isa, threads=t))
        for i, (x, kw) in enumerate([
            ((1, 3, 9, 7), dict(kernel_size=2)),
            ((2, 5, 18, 17), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
            ((1, 7, 13, 31), dict(kernel_size=(2, 3), stride=1, dilation=(1, 2))),
        ]):
            cases.append(dict(name=f"maxpool{i}-t{t}-{isa}", op="maxpool", x=x, kw=kw,
                              isa=isa, threads=t))
        for i, (x, kw) in enumerate([
            ((1, 3, 9, 7), dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
            ((2, 5, 18, 17), dict(kernel_size=2, ceil_mode=True)),
        ]):
            cases.append(dict(name=f"avgpool{i}-t{t}-{isa}", op="avgpool", x=x, kw=kw,
                              isa=isa, threads=t))
        for i, (x, w) in enumerate([((1, 37), (11, 37)), ((3, 100), (17, 100)),
                                    ((7, 33), (65, 33)), ((2, 45), (70, 45)),
                                    ((15, 19), (33, 19))]):
            cases.append(dict(name=f"linear{i}-t{t}-{isa}", op="linear", x=x, w=w, isa=isa,
                              threads=t))
        cases.append(dict(name=f"elementwise-t{t}-{isa}", op="elementwise", x=(2, 3, 5, 7),
                          isa=isa, threads=t))
        for i, (x, mx, av) in enumerate([
            ((1, 3, 9, 7), ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False),
             ((3, 3), (1, 1), (1, 1, 1, 1), False, False)),
            ((2, 13, 18, 17), ((3, 3), (2, 2), (1, 1, 1, 1), (2, 1), True),
             ((2, 2), (2, 2), (0, 0, 0, 0), True, True)),
        ]):
            cases.append(dict(name=f"nchw8c{i}-t{t}-{isa}", op="nchw8c", x=x, max=mx, avg=av,
                              isa=isa, threads=t))
        for i, (x, w, args) in enumerate([
            # (stride, pads, dilation): border tiles on the right edge; the padded copy
            # (14x14, many channels); a strided, dilated one with odd channels
            ((1, 3, 9, 7), (5, 3, 3, 3), ((1, 1), (1, 1, 1, 1), (1, 1))),
            ((1, 24, 14, 14), (40, 24, 3, 3), ((1, 1), (1, 1, 1, 1), (1, 1))),
            ((2, 13, 11, 17), (17, 13, 3, 2), ((2, 1), (0, 2, 1, 0), (1, 2))),
        ]):
            cases.append(dict(name=f"conv8c{i}-t{t}-{isa}", op="conv8c", x=x, w=w, args=args,
                              isa=isa, threads=t))
    return cases


def test_no_kernel_reads_past_its_inputs(kernels):
    isas = available_isas()
    cases = [c for isa in isas for c in _cases(isa)]
    proc = run_python(GUARD_SCRIPT, env_extra={"GUARD_CASES": json.dumps(cases)}, timeout=300)
    started = [ln[6:] for ln in proc.stdout.splitlines() if ln.startswith("START ")]
    done = {ln[5:] for ln in proc.stdout.splitlines() if ln.startswith("DONE ")}
    failed = [n for n in started if n not in done]
    assert proc.returncode == 0 and not failed, (
        f"case {failed[:1]} did not complete (exit code {proc.returncode}; a negative code "
        f"is the signal, -11 = SIGSEGV: a read past the input):\n{proc.stderr[-2000:]}")
    assert len(done) == len(cases)
