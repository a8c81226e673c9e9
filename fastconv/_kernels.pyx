# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Thin binding over the C kernels (src_c/fastconv.h).

It checks dtype, rank and contiguity, allocates outputs and workspaces as NumPy arrays,
releases the GIL around every kernel call and turns C status codes into exceptions. No
argument normalisation and no algorithm logic: that is fastconv.functional's job.

Preallocated memory (a compiled model's activation arena): the kernels take keyword-only
`out=` (a float32 C-contiguous writeable array of exactly the result's shape, which is
filled and returned) and, where they use scratch memory, `workspace=` (a uint8 1-D
C-contiguous writeable array of at least the bytes the matching *_workspace_bytes query
returns). `out` may not overlap any input (relu: it may be the input itself); neither
may the workspace overlap an input or `out`. The C side aligns the workspace pointer to
FC_ALIGN (64) itself and its byte counts include that slack, so a workspace may start at
any address. One workspace must not serve two calls running at the same time (the GIL
is released during the kernel).
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t

from fastconv.errors import ShapeError

cnp.import_array()

_ALGOS = {"auto": FC_CONV_AUTO, "direct": FC_CONV_DIRECT, "im2col": FC_CONV_IM2COL,
          "winograd": FC_CONV_WINOGRAD, "winograd2": FC_CONV_WINOGRAD2}
_ALGO_NAMES = {int(FC_CONV_DIRECT): "direct", int(FC_CONV_IM2COL): "im2col",
               int(FC_CONV_WINOGRAD): "winograd", int(FC_CONV_WINOGRAD2): "winograd2"}

cdef int _num_threads = fc_default_num_threads()


# ------------------------------------------------------------------ status and checks

cdef int _raise(fc_status st, str where) except -1:
    msg = f"{where}: {fc_status_string(st).decode()}"
    if st == FC_ESHAPE:
        raise ShapeError(msg)
    if st == FC_ENOMEM:
        raise MemoryError(msg)
    if st == FC_EOVERFLOW:
        raise ValueError(msg + " (element or byte count exceeds the address space)")
    raise ValueError(msg)


cdef inline int _check(fc_status st, str where) except -1:
    if st != FC_OK:
        _raise(st, where)
    return 0


cdef cnp.ndarray _f32(object a, int ndim, str name, str where):
    """`a` as a float32 C-contiguous array of rank ndim (the functional layer converts;
    here anything else is a caller bug and raises)."""
    if (isinstance(a, cnp.ndarray) and cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32 and
            cnp.PyArray_ISNOTSWAPPED(a) and cnp.PyArray_NDIM(a) == ndim and
            cnp.PyArray_IS_C_CONTIGUOUS(a)):
        return a  # the common case, checked through the C API (no Python attributes)
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{where}: {name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != np.float32:
        raise TypeError(f"{where}: {name} must be float32, got {a.dtype}")
    if a.ndim != ndim:
        raise ShapeError(f"{where}: {name} must have {ndim} dimensions, got shape {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{where}: {name} must be C-contiguous")
    return a


cdef inline const float *_ptr(cnp.ndarray a):
    """Data pointer of a validated array, NULL for None (taken while holding the GIL)."""
    if a is None:
        return NULL
    return <const float *>cnp.PyArray_DATA(a)


cdef inline float *_wptr(cnp.ndarray a):
    return <float *>cnp.PyArray_DATA(a)


cdef cnp.ndarray _workspace(size_t nbytes):
    return np.empty(max(<Py_ssize_t>nbytes, 1), dtype=np.uint8)


cdef bint _overlaps(object a, object b):
    """True if a and b may touch the same bytes (None touches nothing). The address-range
    test is exact for contiguous arrays; strided ones get the exact test, bounded, and
    count as overlapping when that is too hard to decide."""
    cdef char *pa
    cdef char *pb
    if a is None or b is None:
        return False
    if (isinstance(a, cnp.ndarray) and isinstance(b, cnp.ndarray) and
            cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_IS_C_CONTIGUOUS(b)):
        # both cover every byte of their address ranges: the range test is exact, and
        # cheap (np.may_share_memory was ~0.6 us a call, five calls per conv step)
        pa, pb = <char *>cnp.PyArray_DATA(a), <char *>cnp.PyArray_DATA(b)
        return (cnp.PyArray_NBYTES(a) > 0 and cnp.PyArray_NBYTES(b) > 0 and
                pa < pb + cnp.PyArray_NBYTES(b) and pb < pa + cnp.PyArray_NBYTES(a))
    if not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=1 << 20))
    except np.exceptions.TooHardError:
        return True


cdef cnp.ndarray _result(object out, tuple shape, str where, tuple inputs):
    """A new float32 array of `shape`, or `out` once checked: float32 (TypeError), exactly
    `shape` (ShapeError), C-contiguous and writeable, no overlap with any of the (name,
    array) pairs in inputs (ValueError)."""
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if (isinstance(out, cnp.ndarray) and cnp.PyArray_TYPE(out) == cnp.NPY_FLOAT32 and
            cnp.PyArray_ISNOTSWAPPED(out) and cnp.PyArray_IS_C_CONTIGUOUS(out) and cnp.PyArray_ISWRITEABLE(out) and
            out.shape == shape):
        for name, a in inputs:
            if _overlaps(out, a):
                raise ValueError(f"{where}: out overlaps the memory of {name}")
        return out
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{where}: out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != np.float32:
        raise TypeError(f"{where}: out must be float32, got {out.dtype}")
    if tuple(out.shape) != shape:
        raise ShapeError(f"{where}: out has shape {tuple(out.shape)}, expected {shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{where}: out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{where}: out is read-only")
    for name, a in inputs:
        if _overlaps(out, a):
            raise ValueError(f"{where}: out overlaps the memory of {name}")
    return out


cdef cnp.ndarray _use_workspace(object workspace, size_t nbytes, str where, tuple others):
    """A new workspace of nbytes, or `workspace` once checked: uint8 (TypeError), 1-D,
    C-contiguous, writeable, at least nbytes long, no overlap with the (name, array) pairs
    in others (ValueError). Its start needs no alignment: the C side aligns it."""
    if workspace is None:
        return _workspace(nbytes)
    if (isinstance(workspace, cnp.ndarray) and cnp.PyArray_TYPE(workspace) == cnp.NPY_UINT8
            and cnp.PyArray_NDIM(workspace) == 1 and cnp.PyArray_IS_C_CONTIGUOUS(workspace)
            and cnp.PyArray_ISWRITEABLE(workspace)
            and <size_t>cnp.PyArray_DIM(workspace, 0) >= nbytes):
        for name, a in others:
            if _overlaps(workspace, a):
                raise ValueError(f"{where}: workspace overlaps the memory of {name}")
        return workspace
    if not isinstance(workspace, np.ndarray):
        raise TypeError(f"{where}: workspace must be a numpy.ndarray, "
                        f"got {type(workspace).__name__}")
    if workspace.dtype != np.uint8:
        raise TypeError(f"{where}: workspace must be uint8, got {workspace.dtype}")
    if workspace.ndim != 1:
        raise ValueError(f"{where}: workspace must be 1-D, got shape {workspace.shape}")
    if not workspace.flags.c_contiguous:
        raise ValueError(f"{where}: workspace must be C-contiguous")
    if not workspace.flags.writeable:
        raise ValueError(f"{where}: workspace is read-only")
    if <size_t>workspace.shape[0] < nbytes:
        raise ValueError(f"{where}: workspace has {workspace.shape[0]} bytes, "
                         f"needs at least {nbytes}")
    for name, a in others:
        if _overlaps(workspace, a):
            raise ValueError(f"{where}: workspace overlaps the memory of {name}")
    return workspace


# ------------------------------------------------------------------ CPU and threads

def has_avx2():
    """True if the CPU can run the AVX2/FMA kernels (CPUID + XGETBV)."""
    return bool(fc_cpu_has_avx2_fma())


def has_avx512():
    """True if the CPU can run the AVX-512 kernels: AVX-512 F, VL, DQ and BW, with the
    opmask and ZMM state enabled by the OS (CPUID + XGETBV)."""
    return bool(fc_cpu_has_avx512())


def set_isa(str name):
    """Select the kernel family: "scalar", "avx2" or "avx512"."""
    if name == "scalar":
        st = fc_set_isa(FC_ISA_SCALAR)
    elif name == "avx2":
        st = fc_set_isa(FC_ISA_AVX2)
    elif name == "avx512":
        st = fc_set_isa(FC_ISA_AVX512)
    else:
        raise ValueError(f"set_isa: unknown ISA {name!r}; expected 'scalar', 'avx2' or "
                         f"'avx512'")
    if st == FC_EUNSUPPORTED:
        need = ("AVX-512 F/VL/DQ/BW with ZMM state saved by the OS" if name == "avx512"
                else "AVX2 and FMA with YMM state saved by the OS")
        raise ValueError(f"set_isa: this CPU cannot run the {name!r} kernels (needs {need})")
    _check(st, "set_isa")


def get_isa():
    return fc_isa_name(fc_get_isa()).decode()


def have_openmp():
    return bool(fc_have_openmp())


def compiler():
    return fc_compiler().decode()


def default_num_threads():
    return fc_default_num_threads()


def release_thread_pool():
    """Release the calling thread's OpenMP pool (fastconv calls it before os.fork, so a
    forked child can start its own); the next kernel call starts a new one."""
    return fc_release_thread_pool()


def set_num_threads(int n):
    global _num_threads
    if n < 1:
        raise ValueError(f"set_num_threads: need n >= 1, got {n}")
    _num_threads = n


def get_num_threads():
    return _num_threads


def fma_peak(int num_threads, double seconds=0.2):
    """Measured GFLOP/s of an FMA loop on num_threads threads (the machine's peak)."""
    cdef double r
    if num_threads < 1:
        raise ValueError("fma_peak: num_threads must be >= 1")
    with nogil:
        r = fc_measure_fma_peak(num_threads, seconds)
    return r


def out_size(int64_t n, int64_t pad_begin, int64_t pad_end, int64_t kernel, int64_t stride,
             int64_t dilation, bint ceil_mode):
    """The output-size rule (one definition, in C): may return <= 0 for no output."""
    if kernel < 1 or stride < 1 or dilation < 1 or n < 0 or pad_begin < 0 or pad_end < 0:
        raise ValueError(f"out_size: need kernel, stride, dilation >= 1 and sizes, pads >= 0; "
                         f"got n={n}, pads=({pad_begin}, {pad_end}), kernel={kernel}, "
                         f"stride={stride}, dilation={dilation}")
    return fc_out_size(n, pad_begin, pad_end, kernel, stride, dilation, ceil_mode)


# ------------------------------------------------------------------ GEMM

def sgemm_workspace_bytes(int64_t m, int64_t n, int64_t k, num_threads=None):
    """Bytes of scratch memory an sgemm call of these sizes uses (0 when m, n or k is 0:
    such a call runs no kernel)."""
    cdef fc_gemm_args g
    cdef size_t nbytes
    if m < 0 or n < 0 or k < 0:
        raise ValueError(f"sgemm_workspace_bytes: sizes must be >= 0, got m={m}, n={n}, k={k}")
    if m == 0 or n == 0 or k == 0:
        return 0
    g.m, g.n, g.k = m, n, k
    g.num_threads = _num_threads if num_threads is None else num_threads
    _check(fc_sgemm_workspace_size(&g, &nbytes), "sgemm")
    return nbytes


def sgemm(a, b, bias_m=None, bias_n=None, bint relu=False, num_threads=None, *,
          out=None, workspace=None):
    """c[m, n] = a[m, k] @ b[k, n] (+ bias_m[:, None]) (+ bias_n[None, :]) (then ReLU).
    a and b are float32 2-D arrays with any element strides (e.g. b = w.T). out: (m, n)
    float32 C-contiguous, overlapping no input; workspace: sgemm_workspace_bytes(m, n, k)
    bytes at least."""
    cdef cnp.ndarray A, B, C, BM = None, BN = None, ws
    cdef fc_gemm_args g
    cdef size_t nbytes
    cdef fc_status st
    cdef void *wsp
    for name, arr in (("a", a), ("b", b)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.ndim != 2:
            raise TypeError(f"sgemm: {name} must be a 2-D float32 array")
        if any(s % 4 for s in arr.strides):
            raise ValueError(f"sgemm: {name} strides must be whole float32 elements")
    A, B = a, b
    if A.shape[1] != B.shape[0]:
        raise ShapeError(f"sgemm: a is {a.shape} and b is {b.shape}: inner sizes differ")
    m, k, n = A.shape[0], A.shape[1], B.shape[1]
    inputs = (("a", a), ("b", b), ("bias_m", bias_m), ("bias_n", bias_n))
    C = _result(out, (m, n), "sgemm", inputs)
    if (m == 0 or n == 0 or k == 0) and workspace is not None:
        _use_workspace(workspace, 0, "sgemm", inputs + (("out", C),))  # checked, unused
    if m == 0 or n == 0:
        return C
    if k == 0:  # an empty sum: the result is the bias terms alone
        C[...] = 0
        if bias_m is not None:
            C += np.asarray(bias_m, dtype=np.float32).reshape(m, 1)
        if bias_n is not None:
            C += np.asarray(bias_n, dtype=np.float32).reshape(1, n)
        return np.maximum(C, 0, out=C) if relu else C
    if bias_m is not None:
        BM = _f32(bias_m, 1, "bias_m", "sgemm")
        if BM.shape[0] != m:
            raise ShapeError(f"sgemm: bias_m has {BM.shape[0]} entries, expected {m}")
    if bias_n is not None:
        BN = _f32(bias_n, 1, "bias_n", "sgemm")
        if BN.shape[0] != n:
            raise ShapeError(f"sgemm: bias_n has {BN.shape[0]} entries, expected {n}")
    g.m, g.n, g.k = m, n, k
    g.a = _ptr(A); g.rs_a = A.strides[0] // 4; g.cs_a = A.strides[1] // 4
    g.b = _ptr(B); g.rs_b = B.strides[0] // 4; g.cs_b = B.strides[1] // 4
    g.c = _wptr(C); g.rs_c = n
    g.bias_m = _ptr(BM)
    g.bias_n = _ptr(BN)
    g.relu = relu
    g.accumulate = 0
    g.num_threads = _num_threads if num_threads is None else num_threads
    _check(fc_sgemm_workspace_size(&g, &nbytes), "sgemm")
    ws = _use_workspace(workspace, nbytes, "sgemm", inputs + (("out", C),))
    nbytes = ws.shape[0]
    wsp = cnp.PyArray_DATA(ws)
    with nogil:
        st = fc_sgemm(&g, wsp, nbytes)
    _check(st, "sgemm")
    return C


# ------------------------------------------------------------------ convolution

cdef int _conv_params(fc_conv2d_params *p, tuple xs, tuple ws, stride, pads,
                      dilation, int64_t groups, bint relu, int num_threads) except -1:
    """Fill p from the shapes of x [N,C,H,W] and w [Co,C/groups,kh,kw]."""
    if len(xs) != 4 or len(ws) != 4:
        raise ShapeError(f"conv2d: x {xs} and weight {ws} must both have 4 dimensions")
    p.batch, p.in_channels, p.in_h, p.in_w = xs
    p.out_channels, p.kernel_h, p.kernel_w = ws[0], ws[2], ws[3]
    p.stride_h, p.stride_w = stride
    p.pad_top, p.pad_left, p.pad_bottom, p.pad_right = pads
    p.dilation_h, p.dilation_w = dilation
    p.groups = groups
    p.relu = relu
    p.num_threads = num_threads
    p.out_h = fc_out_size(p.in_h, p.pad_top, p.pad_bottom, p.kernel_h, p.stride_h, p.dilation_h, 0)
    p.out_w = fc_out_size(p.in_w, p.pad_left, p.pad_right, p.kernel_w, p.stride_w, p.dilation_w, 0)
    if groups < 1 or ws[1] * groups != xs[1]:
        raise ShapeError(f"conv2d: input has {xs[1]} channels but weight {ws} "
                         f"with groups={groups} expects {ws[1] * groups}")
    return 0


cdef fc_conv_algo _algo(str algo) except *:
    if algo not in _ALGOS:
        raise ValueError(f"conv2d: unknown algo {algo!r}; expected one of {sorted(_ALGOS)}")
    return _ALGOS[algo]


cdef int _check_supports(fc_conv2d_params *p, fc_conv_algo a, str algo, str where) except -1:
    """ValueError saying why if the algorithm cannot serve p."""
    cdef fc_status st = fc_conv2d_supports(p, a)
    if st == FC_EUNSUPPORTED:
        why = ""
        if a == FC_CONV_WINOGRAD or a == FC_CONV_WINOGRAD2:
            why = (f": Winograd serves 3x3 kernels at stride 1, dilation 1, groups 1 only; "
                   f"this is a {p.kernel_h}x{p.kernel_w} kernel, stride "
                   f"({p.stride_h}, {p.stride_w}), dilation ({p.dilation_h}, {p.dilation_w}), "
                   f"groups {p.groups}")
        raise ValueError(f"{where}: algo={algo!r} cannot serve this configuration{why}")
    _check(st, where)
    return 0


def conv2d_choose(tuple x_shape, tuple w_shape, stride, pads, dilation, int64_t groups):
    """The algorithm name that algo="auto" resolves to for this configuration."""
    cdef fc_conv2d_params p
    _conv_params(&p, x_shape, w_shape, stride, pads, dilation, groups, False, _num_threads)
    _check(fc_conv2d_check(&p), "conv2d")
    return _ALGO_NAMES[int(fc_conv2d_choose(&p))]


def conv2d_workspace_bytes(tuple x_shape, tuple w_shape, stride, pads, dilation,
                           int64_t groups, str algo="auto", num_threads=None):
    """Bytes of scratch memory a conv2d call with these shapes (and team size) uses."""
    cdef fc_conv2d_params p
    cdef size_t nbytes
    _conv_params(&p, x_shape, w_shape, stride, pads, dilation, groups, False,
                 _num_threads if num_threads is None else num_threads)
    _check(fc_conv2d_workspace_size(&p, _algo(algo), &nbytes), "conv2d")
    return nbytes


def conv2d(x, w, bias, stride, pads, dilation, int64_t groups, str algo="auto",
           bint relu=False, num_threads=None, *, out=None, workspace=None):
    """y = conv2d(x [N,C,H,W], w [Co,C/groups,kh,kw]) + bias, all float32 C-contiguous.
    stride and dilation are (h, w) pairs, pads is (top, left, bottom, right). out: the
    [N,Co,Ho,Wo] result array; workspace: conv2d_workspace_bytes(...) bytes at least."""
    cdef cnp.ndarray X = _f32(x, 4, "x", "conv2d"), W = _f32(w, 4, "weight", "conv2d")
    cdef cnp.ndarray B = None, Y, ws
    cdef fc_conv2d_params p
    cdef fc_conv_algo a = _algo(algo)
    cdef size_t nbytes
    cdef fc_status st
    cdef const float *xp
    cdef const float *wp
    cdef const float *bp
    cdef float *yp
    cdef void *wsp
    _conv_params(&p, tuple(x.shape), tuple(w.shape), stride, pads, dilation, groups, relu,
                 _num_threads if num_threads is None else num_threads)
    if bias is not None:
        B = _f32(bias, 1, "bias", "conv2d")
        if B.shape[0] != p.out_channels:
            raise ShapeError(f"conv2d: bias has {B.shape[0]} entries, expected {p.out_channels}")
    _check(fc_conv2d_check(&p), "conv2d")
    _check_supports(&p, a, algo, "conv2d")
    _check(fc_conv2d_workspace_size(&p, a, &nbytes), "conv2d")
    inputs = (("x", X), ("weight", W), ("bias", B))
    Y = _result(out, (p.batch, p.out_channels, p.out_h, p.out_w), "conv2d", inputs)
    if p.batch == 0:  # nothing to run: a given workspace is checked, none is allocated
        if workspace is not None:
            _use_workspace(workspace, nbytes, "conv2d", inputs + (("out", Y),))
        return Y
    ws = _use_workspace(workspace, nbytes, "conv2d", inputs + (("out", Y),))
    nbytes = ws.shape[0]
    xp, wp, bp, yp, wsp = _ptr(X), _ptr(W), _ptr(B), _wptr(Y), cnp.PyArray_DATA(ws)
    with nogil:
        st = fc_conv2d(&p, a, xp, wp, bp, yp, wsp, nbytes)
    _check(st, "conv2d")
    return Y


cdef cnp.ndarray _aligned_bytes(size_t nbytes):
    """A uint8 array of nbytes whose data starts on a 64-byte boundary (FC_ALIGN)."""
    cdef cnp.ndarray buf = np.empty(nbytes + 64, dtype=np.uint8)
    cdef size_t addr = <size_t>cnp.PyArray_DATA(buf)
    cdef Py_ssize_t off = <Py_ssize_t>((64 - addr % 64) % 64)
    return buf[off:off + nbytes]


def conv2d_pack(tuple x_shape, w, bias, stride, pads, dilation, int64_t groups,
                str algo="auto"):
    """Pack w (and bias) once for the algorithm `algo` resolves to for inputs of x_shape and
    for the ISA in use. Returns (blob, algo name); the blob is what conv2d_run takes."""
    cdef cnp.ndarray W = _f32(w, 4, "weight", "conv2d_pack"), B = None, blob
    cdef fc_conv2d_params p
    cdef size_t nbytes
    cdef fc_status st
    cdef fc_conv_algo a = _algo(algo)
    cdef const float *wp
    cdef const float *bp
    cdef void *dst
    _conv_params(&p, x_shape, tuple(w.shape), stride, pads, dilation, groups, False, _num_threads)
    if bias is not None:
        B = _f32(bias, 1, "bias", "conv2d_pack")
        if B.shape[0] != p.out_channels:
            raise ShapeError(f"conv2d: bias has {B.shape[0]} entries, expected {p.out_channels}")
    _check(fc_conv2d_check(&p), "conv2d")
    _check_supports(&p, a, algo, "conv2d_pack")
    _check(fc_conv2d_packed_size(&p, a, &nbytes), "conv2d_pack")
    blob = _aligned_bytes(nbytes)
    wp, bp, dst = _ptr(W), _ptr(B), cnp.PyArray_DATA(blob)
    with nogil:
        st = fc_conv2d_pack(&p, a, wp, bp, dst, nbytes)
    _check(st, "conv2d_pack")
    return blob, _ALGO_NAMES[int(fc_conv2d_packed_algo(dst, nbytes))]


cdef size_t _run_workspace_size(fc_conv2d_params *p, cnp.ndarray BL, bint maxpool2) except? 0:
    cdef size_t nbytes
    cdef fc_status st
    if maxpool2:
        st = fc_conv2d_run_maxpool2_workspace_size(p, cnp.PyArray_DATA(BL), BL.shape[0],
                                                   &nbytes)
    else:
        st = fc_conv2d_run_workspace_size(p, cnp.PyArray_DATA(BL), BL.shape[0], &nbytes)
    if st == FC_EINVAL:
        raise ValueError("conv2d_run: the packed weights do not match this call (another "
                         "weight shape, or packed for another ISA): pack them again")
    _check(st, "conv2d_run")
    return nbytes


cdef cnp.ndarray _blob(object blob):
    if not isinstance(blob, np.ndarray) or blob.dtype != np.uint8 or blob.ndim != 1:
        raise TypeError("conv2d_run: blob must be the uint8 array conv2d_pack returned")
    return blob


cdef int _check_maxpool2(fc_conv2d_params *p, bint maxpool2) except -1:
    if maxpool2 and (p.out_h < 2 or p.out_w < 2):
        raise ShapeError(f"conv2d_run: maxpool2 needs a conv output of at least 2x2 for a "
                         f"2x2 window, got {p.out_h}x{p.out_w}")
    return 0


def conv2d_run_workspace_bytes(tuple x_shape, blob, tuple w_shape, stride, pads, dilation,
                               int64_t groups, num_threads=None, *, bint maxpool2=False):
    """Bytes of scratch memory a conv2d_run call with these shapes, this blob (and team
    size) and this maxpool2 uses."""
    cdef cnp.ndarray BL = _blob(blob)
    cdef fc_conv2d_params p
    _conv_params(&p, x_shape, w_shape, stride, pads, dilation, groups, False,
                 _num_threads if num_threads is None else num_threads)
    _check(fc_conv2d_check(&p), "conv2d")
    _check_maxpool2(&p, maxpool2)
    return _run_workspace_size(&p, BL, maxpool2)


def conv2d_run(x, blob, tuple w_shape, stride, pads, dilation, int64_t groups,
               bint relu=False, num_threads=None, *, out=None, workspace=None,
               bint maxpool2=False):
    """y = conv2d(x, the packed weights and bias of blob) (then ReLU); w_shape is the shape
    of the weights that were packed. Fails with ValueError if the blob does not match
    (another weight shape, or packed for another ISA). out: the [N,Co,Ho,Wo] result
    array; workspace: conv2d_run_workspace_bytes(...) bytes at least. maxpool2: then a
    2x2 stride-2 max pool (no padding, floor mode) in the same call, out [N,Co,Ho//2,
    Wo//2]; bit for bit max_pool2d of the unpooled result (fc_conv2d_run_maxpool2)."""
    cdef cnp.ndarray X = _f32(x, 4, "x", "conv2d"), Y, ws, BL
    cdef fc_conv2d_params p
    cdef size_t nbytes, pbytes
    cdef fc_status st
    cdef const float *xp
    cdef const void *bl
    cdef float *yp
    cdef void *wsp
    BL = _blob(blob)
    _conv_params(&p, tuple(x.shape), w_shape, stride, pads, dilation, groups, relu,
                 _num_threads if num_threads is None else num_threads)
    _check(fc_conv2d_check(&p), "conv2d")
    pbytes = BL.shape[0]
    bl = cnp.PyArray_DATA(BL)
    _check_maxpool2(&p, maxpool2)
    nbytes = _run_workspace_size(&p, BL, maxpool2)
    inputs = (("x", X), ("blob", BL))
    Y = _result(out, (p.batch, p.out_channels, p.out_h // 2, p.out_w // 2) if maxpool2 else
                (p.batch, p.out_channels, p.out_h, p.out_w), "conv2d_run", inputs)
    if p.batch == 0:  # nothing to run: a given workspace is checked, none is allocated
        if workspace is not None:
            _use_workspace(workspace, nbytes, "conv2d_run", inputs + (("out", Y),))
        return Y
    ws = _use_workspace(workspace, nbytes, "conv2d_run", inputs + (("out", Y),))
    nbytes = ws.shape[0]
    xp, yp, wsp = _ptr(X), _wptr(Y), cnp.PyArray_DATA(ws)
    with nogil:
        if maxpool2:
            st = fc_conv2d_run_maxpool2(&p, xp, bl, pbytes, yp, wsp, nbytes)
        else:
            st = fc_conv2d_run(&p, xp, bl, pbytes, yp, wsp, nbytes)
    _check(st, "conv2d_run")
    return Y


def conv2d_nchw8c_pack(tuple x_shape, w, bias, stride, pads, dilation):
    """Pack w [Co,Ci,kh,kw] (and bias) once for conv2d_nchw8c_run on inputs of the NCHW
    shape x_shape, for the ISA in use. groups must be 1."""
    cdef cnp.ndarray W = _f32(w, 4, "weight", "conv2d_nchw8c_pack"), B = None, blob
    cdef fc_conv2d_params p
    cdef size_t nbytes
    cdef fc_status st
    cdef const float *wp
    cdef const float *bp
    cdef void *dst
    _conv_params(&p, x_shape, tuple(w.shape), stride, pads, dilation, 1, False, _num_threads)
    if bias is not None:
        B = _f32(bias, 1, "bias", "conv2d_nchw8c_pack")
        if B.shape[0] != p.out_channels:
            raise ShapeError(f"conv2d: bias has {B.shape[0]} entries, expected {p.out_channels}")
    _check(fc_conv2d_check(&p), "conv2d")
    _check(fc_conv2d_nchw8c_packed_size(&p, &nbytes), "conv2d_nchw8c_pack")
    blob = _aligned_bytes(nbytes)
    wp, bp, dst = _ptr(W), _ptr(B), cnp.PyArray_DATA(blob)
    with nogil:
        st = fc_conv2d_nchw8c_pack(&p, wp, bp, dst, nbytes)
    _check(st, "conv2d_nchw8c_pack")
    return blob


cdef tuple _nchw8c_x_shape(object x, tuple w_shape, str where):
    """(the NCHW shape x stands for, 1 if x is blocked else 0)."""
    if not isinstance(x, np.ndarray) or x.ndim != 5:
        return tuple(x.shape) if isinstance(x, np.ndarray) else (), 0
    if len(w_shape) != 4 or x.shape[1] != (w_shape[1] + 7) // 8 or x.shape[4] != 8:
        raise ShapeError(f"{where}: a blocked x of shape {tuple(x.shape)} does not hold the "
                         f"{w_shape[1] if len(w_shape) == 4 else '?'} input channels of "
                         f"weight {w_shape} as [N, ceil(C/8), H, W, 8]")
    return (x.shape[0], w_shape[1], x.shape[2], x.shape[3]), 1


def conv2d_nchw8c_workspace_bytes(tuple x_shape, tuple w_shape, stride, pads, dilation,
                                  bint x_blocked):
    """Bytes of scratch memory conv2d_nchw8c_run needs for an input of the NCHW shape
    x_shape, stored blocked or not (0 on most layers)."""
    cdef fc_conv2d_params p
    cdef size_t nbytes
    _conv_params(&p, x_shape, w_shape, stride, pads, dilation, 1, False, _num_threads)
    _check(fc_conv2d_check(&p), "conv2d")
    _check(fc_conv2d_nchw8c_run_workspace_size(&p, x_blocked, &nbytes),
           "conv2d_nchw8c_workspace_bytes")
    return nbytes


def conv2d_nchw8c_run(x, blob, tuple w_shape, stride, pads, dilation, bint relu=False,
                      num_threads=None, *, out=None, workspace=None):
    """Direct conv with a blocked result: y [N, ceil(Co/8), Ho, Wo, 8] (lanes past Co
    zero). x is NCHW [N, Ci, H, W] (4-D) or NCHW8c [N, ceil(Ci/8), H, W, 8] (5-D, only
    the lanes of real channels are read); w_shape is the packed weights' shape.
    workspace: conv2d_nchw8c_workspace_bytes(...) bytes at least."""
    cdef cnp.ndarray X, Y, ws, BL = _blob(blob)
    cdef fc_conv2d_params p
    cdef fc_status st
    cdef int blocked
    cdef const float *xp
    cdef float *yp
    cdef const void *bl
    cdef void *wsp
    cdef size_t pbytes, nbytes
    xs, blocked = _nchw8c_x_shape(x, w_shape, "conv2d_nchw8c_run")
    X = _f32(x, 5 if blocked else 4, "x", "conv2d_nchw8c_run")
    _conv_params(&p, xs, w_shape, stride, pads, dilation, 1, relu,
                 _num_threads if num_threads is None else num_threads)
    _check(fc_conv2d_check(&p), "conv2d")
    _check(fc_conv2d_nchw8c_run_workspace_size(&p, blocked, &nbytes), "conv2d_nchw8c_run")
    inputs = (("x", X), ("blob", BL))
    Y = _result(out, (p.batch, (p.out_channels + 7) // 8, p.out_h, p.out_w, 8),
                "conv2d_nchw8c_run", inputs)
    ws = _use_workspace(workspace, nbytes, "conv2d_nchw8c_run", inputs + (("out", Y),))
    nbytes = ws.shape[0]
    pbytes = BL.shape[0]
    xp, yp, bl, wsp = _ptr(X), _wptr(Y), cnp.PyArray_DATA(BL), cnp.PyArray_DATA(ws)
    with nogil:
        st = fc_conv2d_nchw8c_run(&p, blocked, xp, bl, pbytes, yp, wsp, nbytes)
    if st == FC_EINVAL:
        raise ValueError("conv2d_nchw8c_run: the packed weights do not match this call "
                         "(another weight shape, or packed for another ISA): pack them again")
    _check(st, "conv2d_nchw8c_run")
    return Y


def ref_conv2d(x, w, bias, stride, pads, dilation, int64_t groups):
    """The naive C oracle (src_c/ref): same arguments and result as conv2d."""
    cdef cnp.ndarray X = _f32(x, 4, "x", "ref_conv2d"), W = _f32(w, 4, "weight", "ref_conv2d")
    cdef cnp.ndarray B = None, Y
    cdef fc_conv2d_params p
    cdef fc_status st
    cdef const float *xp
    cdef const float *wp
    cdef const float *bp
    cdef float *yp
    _conv_params(&p, tuple(x.shape), tuple(w.shape), stride, pads, dilation, groups, False, 1)
    if bias is not None:
        B = _f32(bias, 1, "bias", "ref_conv2d")
        if B.shape[0] != p.out_channels:
            raise ShapeError(f"ref_conv2d: bias has {B.shape[0]} entries, expected {p.out_channels}")
    _check(fc_conv2d_check(&p), "ref_conv2d")
    Y = np.empty((p.batch, p.out_channels, p.out_h, p.out_w), dtype=np.float32)
    if p.batch == 0:
        return Y
    xp, wp, bp, yp = _ptr(X), _ptr(W), _ptr(B), _wptr(Y)
    with nogil:
        st = fc_ref_conv2d(&p, xp, wp, bp, yp)
    _check(st, "ref_conv2d")
    return Y


# ------------------------------------------------------------------ pooling

cdef int _pool_params(fc_pool2d_params *p, cnp.ndarray x, kernel, stride, pads, dilation,
                      bint ceil_mode, bint count_include_pad, int num_threads) except -1:
    p.batch, p.channels, p.in_h, p.in_w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    p.kernel_h, p.kernel_w = kernel
    p.stride_h, p.stride_w = stride
    p.pad_top, p.pad_left, p.pad_bottom, p.pad_right = pads
    p.dilation_h, p.dilation_w = dilation
    p.ceil_mode = ceil_mode
    p.count_include_pad = count_include_pad
    p.num_threads = num_threads
    p.out_h = fc_out_size(p.in_h, p.pad_top, p.pad_bottom, p.kernel_h, p.stride_h, p.dilation_h, ceil_mode)
    p.out_w = fc_out_size(p.in_w, p.pad_left, p.pad_right, p.kernel_w, p.stride_w, p.dilation_w, ceil_mode)
    return 0


def _pool(str op, x, kernel, stride, pads, dilation, bint ceil_mode, bint count_include_pad,
          bint reference, num_threads, out=None):
    cdef cnp.ndarray X = _f32(x, 4, "x", op), Y
    cdef fc_pool2d_params p
    cdef fc_status st
    cdef int is_max = op.endswith("max_pool2d")
    cdef const float *xp
    cdef float *yp
    _pool_params(&p, X, kernel, stride, pads, dilation, ceil_mode, count_include_pad,
                 _num_threads if num_threads is None else num_threads)
    _check(fc_pool2d_check(&p), op)
    Y = _result(out, (p.batch, p.channels, p.out_h, p.out_w), op, (("x", X),))
    if p.batch == 0:
        return Y
    xp, yp = _ptr(X), _wptr(Y)
    with nogil:
        if reference:
            st = fc_ref_max_pool2d(&p, xp, yp) if is_max else fc_ref_avg_pool2d(&p, xp, yp)
        else:
            st = fc_max_pool2d(&p, xp, yp) if is_max else fc_avg_pool2d(&p, xp, yp)
    _check(st, op)
    return Y


def max_pool2d(x, kernel, stride, pads, dilation, bint ceil_mode, num_threads=None, *,
               out=None):
    return _pool("max_pool2d", x, kernel, stride, pads, dilation, ceil_mode, False, False,
                 num_threads, out)


def avg_pool2d(x, kernel, stride, pads, bint ceil_mode, bint count_include_pad, num_threads=None,
               *, out=None):
    return _pool("avg_pool2d", x, kernel, stride, pads, (1, 1), ceil_mode, count_include_pad,
                 False, num_threads, out)


def ref_max_pool2d(x, kernel, stride, pads, dilation, bint ceil_mode):
    return _pool("ref_max_pool2d", x, kernel, stride, pads, dilation, ceil_mode, False, True, 1)


def ref_avg_pool2d(x, kernel, stride, pads, bint ceil_mode, bint count_include_pad):
    return _pool("ref_avg_pool2d", x, kernel, stride, pads, (1, 1), ceil_mode,
                 count_include_pad, True, 1)


def global_pool(x, str op, num_threads=None, *, out=None):
    """Mean ("avg") or max over each plane of x viewed as [planes, size] -> [planes]
    (out: a (planes,) array)."""
    cdef cnp.ndarray X = _f32(x, 2, "x", "global_pool"), Y
    cdef int64_t planes = X.shape[0], size = X.shape[1]
    cdef int t = _num_threads if num_threads is None else num_threads
    cdef fc_status st
    cdef int is_max = op == "max"
    cdef const float *xp
    cdef float *yp
    if op not in ("avg", "max"):
        raise ValueError(f"global_pool: op must be 'avg' or 'max', got {op!r}")
    Y = _result(out, (planes,), "global_pool", (("x", X),))
    if planes == 0:
        return Y
    xp, yp = _ptr(X), _wptr(Y)
    with nogil:
        st = fc_global_max_pool(planes, size, xp, yp, t) if is_max else \
             fc_global_avg_pool(planes, size, xp, yp, t)
    _check(st, f"global_{op}_pool2d")
    return Y


# ------------------------------------------------------------------ NCHW8c
# Channel-blocked activations: [N, ceil(C/8), H, W, 8], channel c at block c // 8, lane
# c % 8, the lanes past C zero (src_c/fastconv.h). Declared here rather than in
# _kernels.pxd: this section is self-contained.

cdef extern from "fastconv.h" nogil:
    fc_status fc_reorder_nchw_to_nchw8c(int64_t batch, int64_t channels, int64_t hw,
                                        const float *x, float *y, int num_threads)
    fc_status fc_reorder_nchw8c_to_nchw(int64_t batch, int64_t channels, int64_t hw,
                                        const float *x, float *y, int num_threads)
    fc_status fc_max_pool2d_nchw8c(const fc_pool2d_params *p, const float *x, float *y)
    fc_status fc_avg_pool2d_nchw8c(const fc_pool2d_params *p, const float *x, float *y)


cdef cnp.ndarray _blocked(object x, int64_t channels, str where):
    """x as a float32 C-contiguous blocked array [N, ceil(channels/8), H, W, 8]."""
    cdef cnp.ndarray X = _f32(x, 5, "x", where)
    if channels < 1:
        raise ShapeError(f"{where}: channels must be >= 1, got {channels} (x has shape "
                         f"{tuple(x.shape)})")
    cdef int64_t cb = (channels + 7) // 8
    if X.shape[1] != cb or X.shape[4] != 8:
        raise ShapeError(f"{where}: x has shape {tuple(x.shape)}, but {channels} channels "
                         f"blocked by 8 are [N, {cb}, H, W, 8]")
    if X.shape[2] < 1 or X.shape[3] < 1:
        raise ShapeError(f"{where}: x has shape {tuple(x.shape)}; H and W must be >= 1")
    return X


def to_nchw8c(x, num_threads=None, *, out=None):
    """x float32 [N, C, H, W] -> blocked [N, ceil(C/8), H, W, 8], tail lanes zero."""
    cdef cnp.ndarray X = _f32(x, 4, "x", "to_nchw8c"), Y
    cdef int64_t n = X.shape[0], c = X.shape[1], h = X.shape[2], w = X.shape[3]
    cdef int t = _num_threads if num_threads is None else num_threads
    cdef fc_status st
    cdef const float *xp
    cdef float *yp
    if c < 1 or h < 1 or w < 1:
        raise ShapeError(f"to_nchw8c: x has shape {tuple(x.shape)}; C, H and W must be >= 1")
    Y = _result(out, (n, (c + 7) // 8, h, w, 8), "to_nchw8c", (("x", X),))
    if n == 0:
        return Y
    xp, yp = _ptr(X), _wptr(Y)
    with nogil:
        st = fc_reorder_nchw_to_nchw8c(n, c, h * w, xp, yp, t)
    _check(st, "to_nchw8c")
    return Y


def from_nchw8c(x, int64_t channels, num_threads=None, *, out=None):
    """Blocked x [N, ceil(channels/8), H, W, 8] -> [N, channels, H, W] (tail lanes dropped)."""
    cdef cnp.ndarray X = _blocked(x, channels, "from_nchw8c"), Y
    cdef int64_t n = X.shape[0], h = X.shape[2], w = X.shape[3]
    cdef int t = _num_threads if num_threads is None else num_threads
    cdef fc_status st
    cdef const float *xp
    cdef float *yp
    Y = _result(out, (n, channels, h, w), "from_nchw8c", (("x", X),))
    if n == 0:
        return Y
    xp, yp = _ptr(X), _wptr(Y)
    with nogil:
        st = fc_reorder_nchw8c_to_nchw(n, channels, h * w, xp, yp, t)
    _check(st, "from_nchw8c")
    return Y


def _pool_nchw8c(str op, x, int64_t channels, kernel, stride, pads, dilation, bint ceil_mode,
                 bint count_include_pad, num_threads, out):
    cdef cnp.ndarray X = _blocked(x, channels, op), Y
    cdef fc_pool2d_params p
    cdef fc_status st
    cdef int is_max = op.startswith("max")
    cdef const float *xp
    cdef float *yp
    # x.shape[2:4] are H, W as in NCHW; the channel count is the real one, not the blocks
    _pool_params(&p, X, kernel, stride, pads, dilation, ceil_mode, count_include_pad,
                 _num_threads if num_threads is None else num_threads)
    p.channels = channels
    _check(fc_pool2d_check(&p), op)
    Y = _result(out, (p.batch, X.shape[1], p.out_h, p.out_w, 8), op, (("x", X),))
    if p.batch == 0:
        return Y
    xp, yp = _ptr(X), _wptr(Y)
    with nogil:
        st = fc_max_pool2d_nchw8c(&p, xp, yp) if is_max else fc_avg_pool2d_nchw8c(&p, xp, yp)
    _check(st, op)
    return Y


def max_pool2d_nchw8c(x, int64_t channels, kernel, stride, pads, dilation, bint ceil_mode,
                      num_threads=None, *, out=None):
    """max_pool2d on a blocked [N, ceil(channels/8), H, W, 8] tensor -> [N, CB, Ho, Wo, 8];
    bit for bit max_pool2d of the NCHW tensor on the real lanes, tail lanes 0."""
    return _pool_nchw8c("max_pool2d_nchw8c", x, channels, kernel, stride, pads, dilation,
                        ceil_mode, False, num_threads, out)


def avg_pool2d_nchw8c(x, int64_t channels, kernel, stride, pads, bint ceil_mode,
                      bint count_include_pad, num_threads=None, *, out=None):
    """avg_pool2d on a blocked tensor, as max_pool2d_nchw8c (bit for bit avg_pool2d)."""
    return _pool_nchw8c("avg_pool2d_nchw8c", x, channels, kernel, stride, pads, (1, 1),
                        ceil_mode, count_include_pad, num_threads, out)


# ------------------------------------------------------------------ elementwise

def relu(x, num_threads=None, *, out=None):
    """max(0, x) of a float32 C-contiguous array of any shape (NaN stays NaN). out: an
    array of x's shape; it may be x itself (in place), but not partly overlap it."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or not x.flags.c_contiguous:
        raise TypeError("relu: x must be a float32 C-contiguous array")
    cdef cnp.ndarray X = x
    # elementwise, so exactly the same memory is fine (fc_relu allows x == y)
    same = (isinstance(out, np.ndarray) and out.shape == x.shape and X.size > 0 and
            cnp.PyArray_DATA(<cnp.ndarray>out) == cnp.PyArray_DATA(X))
    cdef cnp.ndarray Y = np.empty_like(X) if out is None else \
        _result(out, tuple(x.shape), "relu", () if same else (("x", X),))
    cdef int64_t n = X.size
    cdef int t = _num_threads if num_threads is None else num_threads
    cdef fc_status st
    cdef const float *xp
    cdef float *yp
    if n == 0:
        return Y
    xp, yp = _ptr(X), _wptr(Y)
    with nogil:
        st = fc_relu(n, xp, yp, t)
    _check(st, "relu")
    return Y


def softmax(x, int64_t outer, int64_t length, int64_t inner, num_threads=None, *, out=None):
    """Softmax over the middle axis of x viewed as [outer, length, inner] (out: an array of
    x's shape, not overlapping x)."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or not x.flags.c_contiguous:
        raise TypeError("softmax: x must be a float32 C-contiguous array")
    cdef cnp.ndarray X = x
    cdef cnp.ndarray Y
    cdef int t = _num_threads if num_threads is None else num_threads
    cdef fc_status st
    if outer * length * inner != X.size:
        raise ShapeError(f"softmax: [{outer}, {length}, {inner}] does not match size {X.size}")
    Y = np.empty_like(X) if out is None else _result(out, tuple(x.shape), "softmax", (("x", X),))
    cdef const float *xp
    cdef float *yp
    if X.size == 0:
        return Y
    xp, yp = _ptr(X), _wptr(Y)
    with nogil:
        st = fc_softmax(outer, length, inner, xp, yp, t)
    _check(st, "softmax")
    return Y


# ------------------------------------------------------------------ locally connected
# Declared here rather than in _kernels.pxd: this section is self-contained.

cdef extern from "fastconv.h" nogil:
    ctypedef struct fc_lc2d_params:
        int64_t batch, in_channels, in_h, in_w
        int64_t out_channels, kernel_h, kernel_w
        int64_t stride_h, stride_w
        int64_t pad_top, pad_left, pad_bottom, pad_right
        int64_t out_h, out_w
        int num_threads
    fc_status fc_locally_connected2d_check(const fc_lc2d_params *p)
    fc_status fc_locally_connected2d_workspace_size(const fc_lc2d_params *p, size_t *bytes)
    fc_status fc_locally_connected2d(const fc_lc2d_params *p, const float *x, const float *w,
                                     const float *bias, float *y, void *workspace,
                                     size_t workspace_bytes)


cdef int _lc_params(fc_lc2d_params *p, tuple xs, tuple ws, stride, pads,
                    int num_threads) except -1:
    """Fill p from x [N, Ci, H, W], w [Ho, Wo, Co, Ci, kh, kw], stride (sh, sw) and pads
    (top, left, bottom, right); checks that w's shape fits x and the output-size rule."""
    if len(xs) != 4 or len(ws) != 6:
        raise ShapeError(f"locally_connected2d: x must be 4-D and weight 6-D, got shapes "
                         f"{xs} and {ws}")
    p.batch, p.in_channels, p.in_h, p.in_w = xs
    p.out_channels, p.kernel_h, p.kernel_w = ws[2], ws[4], ws[5]
    p.stride_h, p.stride_w = stride
    p.pad_top, p.pad_left, p.pad_bottom, p.pad_right = pads
    p.num_threads = num_threads
    if p.kernel_h < 1 or p.kernel_w < 1 or p.stride_h < 1 or p.stride_w < 1 or min(pads) < 0:
        raise ValueError(f"locally_connected2d: need kernel and stride >= 1, pads >= 0; got "
                         f"weight {ws}, stride {stride}, pads {pads}")
    p.out_h = fc_out_size(p.in_h, p.pad_top, p.pad_bottom, p.kernel_h, p.stride_h, 1, 0)
    p.out_w = fc_out_size(p.in_w, p.pad_left, p.pad_right, p.kernel_w, p.stride_w, 1, 0)
    if ws[3] != p.in_channels or ws[0] != p.out_h or ws[1] != p.out_w:
        raise ShapeError(f"locally_connected2d: weight {ws} does not fit input {xs}: expected "
                         f"[Ho, Wo, Co, Ci, kh, kw] with Ci = {p.in_channels}, "
                         f"(Ho, Wo) = ({p.out_h}, {p.out_w})")
    return 0


def locally_connected2d_workspace_bytes(tuple x_shape, tuple w_shape, stride, pads,
                                        num_threads=None):
    """Bytes of scratch memory (per-thread patch buffers) a locally_connected2d call with
    these shapes and team size uses."""
    cdef fc_lc2d_params p
    cdef size_t nbytes
    _lc_params(&p, x_shape, w_shape, stride, pads,
               _num_threads if num_threads is None else num_threads)
    _check(fc_locally_connected2d_workspace_size(&p, &nbytes), "locally_connected2d")
    return nbytes


def locally_connected2d(x, w, bias, stride, pads, num_threads=None, *, out=None,
                        workspace=None):
    """y [N, Co, Ho, Wo] = locally connected x [N, Ci, H, W] with w [Ho, Wo, Co, Ci, kh, kw]
    (+ bias [Co, Ho, Wo]), all float32 C-contiguous; stride (sh, sw), pads (top, left,
    bottom, right). out: the result array; workspace:
    locally_connected2d_workspace_bytes(...) bytes at least."""
    cdef cnp.ndarray X = _f32(x, 4, "x", "locally_connected2d")
    cdef cnp.ndarray W = _f32(w, 6, "weight", "locally_connected2d")
    cdef cnp.ndarray B = None, Y, ws
    cdef fc_lc2d_params p
    cdef size_t nbytes
    cdef fc_status st
    cdef const float *xp
    cdef const float *wp
    cdef const float *bp
    cdef float *yp
    cdef void *wsp
    _lc_params(&p, tuple(x.shape), tuple(w.shape), stride, pads,
               _num_threads if num_threads is None else num_threads)
    if bias is not None:
        B = _f32(bias, 3, "bias", "locally_connected2d")
        if tuple(bias.shape) != (p.out_channels, p.out_h, p.out_w):
            raise ShapeError(f"locally_connected2d: bias has shape {tuple(bias.shape)}, expected "
                             f"{(p.out_channels, p.out_h, p.out_w)} [Co, Ho, Wo]")
    _check(fc_locally_connected2d_workspace_size(&p, &nbytes), "locally_connected2d")
    inputs = (("x", X), ("weight", W), ("bias", B))
    Y = _result(out, (p.batch, p.out_channels, p.out_h, p.out_w), "locally_connected2d",
                inputs)
    if p.batch == 0:
        if workspace is not None:
            _use_workspace(workspace, nbytes, "locally_connected2d", inputs + (("out", Y),))
        return Y
    ws = _use_workspace(workspace, nbytes, "locally_connected2d", inputs + (("out", Y),))
    nbytes = ws.shape[0]
    xp, wp, bp, yp, wsp = _ptr(X), _ptr(W), _ptr(B), _wptr(Y), cnp.PyArray_DATA(ws)
    with nogil:
        st = fc_locally_connected2d(&p, xp, wp, bp, yp, wsp, nbytes)
    _check(st, "locally_connected2d")
    return Y


# ------------------------------------------------------------------ memory bandwidth

cdef extern from "fastconv.h" nogil:
    double fc_stream_triad(float *a, float *b, float *c, int64_t n, float scalar,
                           int repeats, int num_threads)


def _last_level_cache_bytes():
    """Size of the largest CPU cache in bytes (L3 where there is one), 0 if unknown."""
    import glob
    import os
    try:
        v = os.sysconf("SC_LEVEL3_CACHE_SIZE")
        if v and v > 0:
            return int(v)
    except (ValueError, OSError, AttributeError):
        pass
    best = 0
    for path in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        try:
            with open(path) as f:
                txt = f.read().strip().upper()
            mult = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}.get(txt[-1:], 1)
            best = max(best, int(txt.rstrip("KMG")) * mult)
        except (OSError, ValueError):
            continue
    return best


def stream_default_megabytes():
    """Default size of each triad array in MB (1e6 bytes): the three arrays together
    hold four times the last-level cache (STREAM's rule), at least 64 MB each."""
    llc = _last_level_cache_bytes()
    return max(64, -(-4 * llc // (3 * 1000000)))


def stream_triad(int num_threads, megabytes=None, int repeats=5):
    """Best GB/s of `repeats` passes of the triad a[i] = b[i] + 3 c[i] on num_threads
    threads (src_c/fc_stream.c), each of the three float32 arrays `megabytes` MB
    (default stream_default_megabytes()); 12 bytes counted per element."""
    if num_threads < 1:
        raise ValueError("stream_triad: num_threads must be >= 1")
    if repeats < 1:
        raise ValueError("stream_triad: repeats must be >= 1")
    mb = stream_default_megabytes() if megabytes is None else float(megabytes)
    if not (mb > 0) or mb > 1e6:
        raise ValueError(f"stream_triad: megabytes must be in (0, 1e6], got {megabytes!r}")
    cdef int64_t n = max(<int64_t>(mb * 1e6 / 4), 16)
    cdef cnp.ndarray A = np.empty(n, np.float32)   # untouched: the kernel's threads
    cdef cnp.ndarray B = np.empty(n, np.float32)   # first-touch their own slices
    cdef cnp.ndarray C = np.empty(n, np.float32)
    cdef float *ap = _wptr(A)
    cdef float *bp = _wptr(B)
    cdef float *cp = _wptr(C)
    cdef double r
    with nogil:
        r = fc_stream_triad(ap, bp, cp, n, 3.0, repeats, num_threads)
    if r < 0:
        _check(<fc_status><int>r, "stream_triad")
    return r
