"""SGEMM speed on the im2col GEMMs of the VGG-16 conv layers (M = Co, K = Ci*9,
N = H*W), one pytest-benchmark group per shape.

Rows: fastconv._kernels.sgemm (a [M,K] @ b [K,N], float32, C-contiguous) and
numpy.matmul in float32 (OpenBLAS, limited to FASTCONV_BENCH_THREADS threads through
threadpoolctl; conftest removes OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE before NumPy loads),
plus torch.matmul when installed. No time is asserted.
"""
import functools

import numpy as np
from fastconv import _kernels
from fastconv._bench_shapes import gemm_shapes, make_gemm_inputs

_SHAPES = {s.name: s for s in gemm_shapes()}
_TOL = 1e-3


@functools.lru_cache(maxsize=2)
def _case(name):
    s = _SHAPES[name]
    a, b = make_gemm_inputs(s)
    return a, b, np.matmul(a, b)


def _group(s):
    return f"sgemm {s.name} M={s.m} K={s.k} N={s.n} ({s.flops / 1e9:.2f} GFLOP)"


def test_gemm_fastconv(run_bench, fc, threads, gemm_shape):
    s = gemm_shape
    a, b, ref = _case(s.name)
    run_bench(_group(s), "fastconv_sgemm", lambda: _kernels.sgemm(a, b), ref=ref, tol=_TOL,
              work=s.flops)


def test_gemm_numpy(run_bench, threads, gemm_shape):
    s = gemm_shape
    a, b, ref = _case(s.name)
    run_bench(_group(s), "numpy_matmul", lambda: np.matmul(a, b), work=s.flops)


def test_gemm_torch(run_bench, torch, gemm_shape):
    s = gemm_shape
    a, b, ref = _case(s.name)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    run_bench(_group(s), "torch_matmul", lambda: torch.matmul(ta, tb).numpy(), ref=ref,
              tol=_TOL, work=s.flops)
