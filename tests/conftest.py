"""Shared fixtures, float64 NumPy references and helpers for the fastconv test suite.

The references here are written independently of the C code: they work in float64 on
explicitly padded arrays and loop over the kernel taps only, so each tap is one strided
slice of the padded input contracted with one kernel column (np.tensordot / np.einsum).
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# --------------------------------------------------------------------------- hypothesis

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    database=None,          # derandomized: the same examples every run, nothing to store
    max_examples=60,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
settings.register_profile(
    "thorough",
    parent=settings.get_profile("ci"),
    derandomize=False,
    database=None,
    max_examples=400,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Numbers used across the suite.
CONV_RTOL = 1e-4          # conv / linear: max abs err <= 1e-4 * max(1, max|ref|)
AVG_RTOL = 1e-5           # average pooling: a short float32 sum and one division
SOFTMAX_ATOL = 1e-5

ODD_CHANNELS = (1, 3, 13, 15, 24)
ODD_MAPS = ((9, 7), (18, 17), (5, 5), (7, 9), (1, 6), (6, 1), (3, 41), (2, 65))
# medium problems that cross the SIMD, register-tile and cache-block boundaries
MEDIUM_CHANNELS = (16, 17, 31, 32, 33, 48, 64)
MEDIUM_MAPS = ((40, 37), (23, 29), (16, 16), (11, 70))

TESTS_DIR = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- package


@pytest.fixture(scope="session")
def fc():
    import fastconv

    return fastconv


@pytest.fixture(scope="session")
def kernels():
    import fastconv._kernels as k

    return k


def _kernels():
    import fastconv._kernels as k

    return k


def available_isas():
    k = _kernels()
    isas = ["scalar"]
    if k.has_avx2():
        isas.append("avx2")
    if k.has_avx512():
        isas.append("avx512")
    return isas


@contextlib.contextmanager
def use_isa(name):
    """Run a block under ISA `name`, restoring the previous ISA afterwards."""
    k = _kernels()
    old = k.get_isa()
    k.set_isa(name)
    try:
        assert k.get_isa() == name
        yield name
    finally:
        k.set_isa(old)


@contextlib.contextmanager
def num_threads(n):
    import fastconv

    old = fastconv.get_num_threads()
    fastconv.set_num_threads(n)
    try:
        yield n
    finally:
        fastconv.set_num_threads(old)


@pytest.fixture(params=["scalar", "avx2", "avx512"])
def isa(request):
    """Run the test once under each instruction set, restoring the ISA afterwards."""
    k = _kernels()
    if request.param == "avx2" and not k.has_avx2():
        pytest.skip("this CPU has no AVX2+FMA (or the OS does not save YMM state)")
    if request.param == "avx512" and not k.has_avx512():
        pytest.skip("this CPU has no AVX-512 F/VL/DQ/BW (or the OS does not save ZMM state)")
    with use_isa(request.param):
        yield request.param


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Whatever a test does to the ISA or the thread count is undone afterwards."""
    try:
        import fastconv
        import fastconv._kernels as k
    except Exception:  # import failure is reported by the tests themselves
        yield
        return
    old_isa = k.get_isa()
    old_threads = fastconv.get_num_threads()
    try:
        yield
    finally:
        k.set_isa(old_isa)
        fastconv.set_num_threads(old_threads)


# --------------------------------------------------------------------------- helpers


def rand(rng, *shape, lo=-1.0, hi=1.0, dtype=np.float32):
    return rng.uniform(lo, hi, size=shape).astype(dtype)


def assert_close(got, ref, rtol=CONV_RTOL, what=""):
    """max |got - ref| <= rtol * max(1, max |ref|), same shape, float32 result."""
    got = np.asarray(got)
    ref = np.asarray(ref)
    assert got.dtype == np.float32, f"{what}: dtype {got.dtype}, expected float32"
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    if ref.size == 0:
        return
    assert np.all(np.isfinite(got)), f"{what}: non-finite values in output"
    scale = max(1.0, float(np.max(np.abs(ref))))
    err = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
    assert err <= rtol * scale, (
        f"{what}: max abs error {err:.3e} > {rtol:g} * {scale:.3e}; "
        f"worst at {np.unravel_index(np.argmax(np.abs(got - ref)), ref.shape)}"
    )


def assert_bitequal(a, b, what=""):
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtypes {a.dtype} vs {b.dtype}"
    same = np.array_equal(a.view(np.uint32), b.view(np.uint32)) if a.dtype == np.float32 \
        else np.array_equal(a, b, equal_nan=True)
    if not same:
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        raise AssertionError(
            f"{what}: not bit-identical; {int(np.sum(a != b))} of {a.size} elements differ, "
            f"max diff {np.nanmax(diff):.3e}"
        )


def _pair(v, name="value"):
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = tuple(int(t) for t in v)
    assert len(v) == 2, name
    return v


def out_size(n, pad_begin, pad_end, k, stride, dilation=1, ceil_mode=False):
    """The output-size rule of DESIGN.md, with PyTorch's drop of a last window that
    would start inside the end padding (ceil_mode only). Returns <= 0 when invalid."""
    span = n + pad_begin + pad_end - dilation * (k - 1) - 1
    if span < 0:
        return 0
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= n + pad_begin:
            out -= 1
    else:
        out = span // stride + 1
    return out


def same_pads(n, k, stride, dilation):
    """ONNX SAME_UPPER: (begin, end) with the odd pixel at the end; total never < 0."""
    total = max(0, (math.ceil(n / stride) - 1) * stride + dilation * (k - 1) + 1 - n)
    return total // 2, total - total // 2


def pads2d(padding, in_hw, k_hw, stride, dilation):
    """Normalise a 2-D padding argument to (top, left, bottom, right)."""
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        assert padding == "same"
        t, b = same_pads(in_hw[0], k_hw[0], sh, dh)
        l, r = same_pads(in_hw[1], k_hw[1], sw, dw)
        return (t, l, b, r)
    if isinstance(padding, (int, np.integer)):
        p = int(padding)
        return (p, p, p, p)
    padding = tuple(int(v) for v in padding)
    if len(padding) == 2:
        return (padding[0], padding[1], padding[0], padding[1])
    assert len(padding) == 4
    return padding


# --------------------------------------------------------------------------- references


def _tap_slices(xp, kh, kw, sh, sw, dh, dw, ho, wo):
    """Yield (i, j, view) with view[..., a, b] = xp[..., a*sh + i*dh, b*sw + j*dw]."""
    for i in range(kh):
        for j in range(kw):
            r0 = i * dh
            c0 = j * dw
            yield i, j, xp[..., r0: r0 + sh * (ho - 1) + 1: sh, c0: c0 + sw * (wo - 1) + 1: sw]


def ref_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """float64 cross-correlation, NCHW (or unbatched CHW); padding in any API form."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    n, c, h, wd = x.shape
    co, cg, kh, kw = w.shape
    assert c == cg * groups and co % groups == 0
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    t, l, bo, r = pads2d(padding, (h, wd), (kh, kw), (sh, sw), (dh, dw))
    ho = out_size(h, t, bo, kh, sh, dh)
    wo = out_size(wd, l, r, kw, sw, dw)
    assert ho >= 1 and wo >= 1
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (l, r)))
    cog = co // groups
    y = np.zeros((n, groups, cog, ho, wo))
    wg = w.reshape(groups, cog, cg, kh, kw)
    for i, j, v in _tap_slices(xp, kh, kw, sh, sw, dh, dw, ho, wo):
        vg = v.reshape(n, groups, cg, ho, wo)
        if groups == 1:
            # [n, c, ho, wo] x [co, c] -> [n, ho, wo, co]
            y[:, 0] += np.moveaxis(np.tensordot(vg[:, 0], wg[0, :, :, i, j], axes=([1], [1])), -1, 1)
        else:
            y += np.einsum("ngchw,goc->ngohw", vg, wg[:, :, :, i, j])
    y = y.reshape(n, co, ho, wo)
    if b is not None:
        y += np.asarray(b, dtype=np.float64)[None, :, None, None]
    return y[0] if unbatched else y


def ref_conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    x = np.asarray(x, dtype=np.float64)
    unbatched = x.ndim == 2
    if unbatched:
        x = x[None]
    n, c, wd = x.shape
    k = w.shape[-1]
    s = int(stride) if not isinstance(stride, tuple) else stride[0]
    d = int(dilation) if not isinstance(dilation, tuple) else dilation[0]
    if isinstance(padding, str):
        pb, pe = (0, 0) if padding == "valid" else same_pads(wd, k, s, d)
    elif isinstance(padding, (int, np.integer)):
        pb = pe = int(padding)
    else:
        pb, pe = padding
    y = ref_conv2d(x[:, :, None, :], np.asarray(w)[:, :, None, :], b, (1, s), (0, pb, 0, pe),
                   (1, d), groups)[:, :, 0, :]
    return y[0] if unbatched else y


def _pool_prepare(x, kernel, stride, padding, dilation, ceil_mode, fill):
    """Pad x (float64, NCHW) so that every window of the output exists, with `fill`
    outside the input. Returns (xp, inside_input_mask, inside_padded_mask, geometry)."""
    x = np.asarray(x, dtype=np.float64)
    n, c, h, w = x.shape
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride if stride is not None else kernel)
    dh, dw = _pair(dilation)
    t, l, b, r = pads2d(padding, (h, w), (kh, kw), (sh, sw), (dh, dw))
    ho = out_size(h, t, b, kh, sh, dh, ceil_mode)
    wo = out_size(w, l, r, kw, sw, dw, ceil_mode)
    assert ho >= 1 and wo >= 1, "reference: output size < 1"
    need_h = (ho - 1) * sh + dh * (kh - 1) + 1
    need_w = (wo - 1) * sw + dw * (kw - 1) + 1
    eb = max(b, need_h - h - t)
    er = max(r, need_w - w - l)
    xp = np.pad(x, ((0, 0), (0, 0), (t, eb), (l, er)), constant_values=fill)
    inside = np.zeros((xp.shape[2], xp.shape[3]))
    inside[t: t + h, l: l + w] = 1.0
    padded = np.zeros_like(inside)
    padded[: t + h + b, : l + w + r] = 1.0
    return xp, inside, padded, (kh, kw, sh, sw, dh, dw, ho, wo)


def ref_max_pool2d(x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    xp, _, _, (kh, kw, sh, sw, dh, dw, ho, wo) = _pool_prepare(
        x, kernel, stride, padding, dilation, ceil_mode, -np.inf)
    y = np.full(xp.shape[:2] + (ho, wo), -np.inf)
    for _, _, v in _tap_slices(xp, kh, kw, sh, sw, dh, dw, ho, wo):
        y = np.maximum(y, v)   # np.maximum propagates NaN
    return y


def ref_avg_pool2d(x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    xp, inside, padded, (kh, kw, sh, sw, dh, dw, ho, wo) = _pool_prepare(
        x, kernel, stride, padding, 1, ceil_mode, 0.0)
    s = np.zeros(xp.shape[:2] + (ho, wo))
    cnt = np.zeros((ho, wo))
    mask = padded if count_include_pad else inside
    for _, _, v in _tap_slices(xp, kh, kw, sh, sw, dh, dw, ho, wo):
        s += v
    for _, _, v in _tap_slices(mask, kh, kw, sh, sw, dh, dw, ho, wo):
        cnt += v
    return s / cnt


def ref_softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def ref_linear(x, w, b=None):
    y = np.asarray(x, np.float64) @ np.asarray(w, np.float64).T
    if b is not None:
        y = y + np.asarray(b, np.float64)
    return y


# --------------------------------------------------------------------------- subprocess


def package_root():
    import fastconv

    return str(Path(fastconv.__file__).resolve().parent.parent)


def run_python(code, env_extra=None, timeout=120):
    """Run `code` in a fresh interpreter that imports the same fastconv build."""
    env = dict(os.environ)
    env.pop("FASTCONV_ISA", None)
    env["PYTHONPATH"] = package_root() + os.pathsep + env.get("PYTHONPATH", "")
    if env_extra:
        env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True,
        timeout=timeout, cwd=package_root(),
    )
