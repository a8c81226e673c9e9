"""fastconv: a CPU inference engine for convolutional networks.

C kernels (OpenMP threads, AVX2/FMA SIMD with a portable fallback) under a Cython
binding; this package is the functional API over them. See DESIGN.md for the contract.
"""
import os as _os

from fastconv import _kernels
from fastconv.errors import ModelFormatError, ShapeError, UnsupportedOperatorError
from fastconv.functional import (
    avg_pool1d, avg_pool2d, conv1d, conv2d, conv2d_workspace_bytes, cpu_info,
    PreparedConv2d, get_num_threads, global_avg_pool2d, global_max_pool2d, linear, max_pool1d,
    max_pool2d, prepare_conv2d, relu, set_num_threads, softmax,
    stochastic_pool2d, spectral_pool2d, leaky_relu, batch_norm2d, lrn, conv_algorithms,
)
from fastconv.functional import locally_connected2d
from fastconv.functional import from_nchw8c, to_nchw8c

from fastconv import layers
from fastconv.layers import LocallyConnected2d
from fastconv.graph import Model, Node, Sequential
from fastconv.io import load_model as load
from fastconv import models

__version__ = "0.1.0"


def load_onnx(src, input_shapes=None, compile: bool = True) -> Model:
    """A Model from an ONNX file path, its bytes or an onnx.ModelProto; input_shapes
    ({name: per-sample shape}) fixes dimensions the file leaves symbolic. See
    fastconv.onnx_import (onnx is imported on first use, not with fastconv)."""
    from fastconv.onnx_import import load_onnx as _load_onnx
    return _load_onnx(src, input_shapes=input_shapes, compile=compile)


def _select_isa() -> None:
    """Pick the kernel family once: FASTCONV_ISA=scalar|avx2|avx512 forces one, otherwise
    the best the CPU and OS can run (CPUID and XGETBV): AVX-512, else AVX2, else the
    portable scalar kernels."""
    forced = _os.environ.get("FASTCONV_ISA", "").strip().lower()
    if forced:
        if forced not in ("scalar", "avx2", "avx512"):
            raise ImportError(f"FASTCONV_ISA={forced!r}: expected 'scalar', 'avx2' or 'avx512'")
        if forced == "avx2" and not _kernels.has_avx2():
            raise ImportError("FASTCONV_ISA=avx2, but this CPU (or OS) cannot run AVX2/FMA")
        if forced == "avx512" and not _kernels.has_avx512():
            raise ImportError("FASTCONV_ISA=avx512, but this CPU (or OS) cannot run AVX-512 "
                              "F/VL/DQ/BW")
        _kernels.set_isa(forced)
    elif _kernels.has_avx512():
        _kernels.set_isa("avx512")
    else:
        _kernels.set_isa("avx2" if _kernels.has_avx2() else "scalar")


_select_isa()

# GNU libgomp keeps its thread pool across fork(); a child (multiprocessing's fork start
# method) would then wait forever in its first parallel region. Releasing the forking
# thread's pool first lets the child start its own (the parent's next call does too).
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(before=_kernels.release_thread_pool)

__all__ = [
    "conv2d", "conv1d", "max_pool2d", "avg_pool2d", "max_pool1d", "avg_pool1d",
    "global_avg_pool2d", "global_max_pool2d", "relu", "softmax", "linear",
    "conv2d_workspace_bytes", "prepare_conv2d", "PreparedConv2d", "set_num_threads",
    "get_num_threads", "cpu_info", "conv_algorithms",
    "stochastic_pool2d", "spectral_pool2d", "leaky_relu", "batch_norm2d", "lrn",
    "locally_connected2d", "LocallyConnected2d", "to_nchw8c", "from_nchw8c",
    "ShapeError", "UnsupportedOperatorError", "ModelFormatError",
    "Model", "Node", "Sequential", "layers", "models", "load", "load_onnx",
]
