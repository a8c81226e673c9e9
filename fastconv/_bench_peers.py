"""The implementations the benchmark times fastconv against, and its own runners: the
NumPy im2col + BLAS baseline (also the conv reference), ONNX Runtime (one-node models and
sessions), OpenVINO (whole ONNX models, for bench/network_table.py), PyTorch (functional
calls, and a replay of a whole fastconv Model), the conv algorithms fastconv has
(``fc.conv_algorithms()``), and the checks of an output against its reference. Shared by
``fastconv bench`` and the pytest-benchmark suite in bench/.
"""
from __future__ import annotations

import contextlib
import importlib
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

import fastconv as fc
from fastconv._bench_shapes import ConvShape, PoolShape

TORCH_VERSION = "2.13.0"          # the torch the peers are measured with (oracles extra)
PEERS = ("onnxruntime", "torch", "numpy")
CONV_TOL = 1e-3                   # float32 sums of thousands of terms vs a float32 BLAS
POOL_TOL = 1e-5                   # max pooling is exact; the average differs by rounding
NET_TOL = 1e-3
ONNX_OPSET = 17
# What a conv algorithm raises for a layer it cannot serve (e.g. winograd off 3x3/1).
CANNOT_SERVE = (ValueError, NotImplementedError)

# ====================================================================== references

def max_rel_err(out, ref) -> float:
    """max |out - ref| / max(1, max |ref|); inf on a shape mismatch."""
    out = np.asarray(out)
    if out.shape != ref.shape:
        return float("inf")
    if not ref.size:
        return 0.0
    scale = max(1.0, float(np.max(np.abs(ref))))
    return float(np.max(np.abs(out.astype(np.float64) - ref))) / scale


def numpy_im2col_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """The BLAS baseline and the conv reference: im2col with sliding_window_view (one
    copy into a [Ci*kh*kw, Ho*Wo] matrix per image), then one float32 GEMM."""
    if groups != 1:
        raise ValueError("the NumPy im2col baseline covers groups=1 only")
    n, ci = x.shape[:2]
    co, _, kh, kw = w.shape
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    eh, ew = dilation * (kh - 1) + 1, dilation * (kw - 1) + 1
    win = np.lib.stride_tricks.sliding_window_view(x, (eh, ew), axis=(2, 3))
    win = win[:, :, ::stride, ::stride, ::dilation, ::dilation]
    ho, wo = win.shape[2], win.shape[3]
    cols = np.ascontiguousarray(win.transpose(0, 1, 4, 5, 2, 3)).reshape(
        n, ci * kh * kw, ho * wo)
    y = np.matmul(w.reshape(co, ci * kh * kw), cols)
    if b is not None:
        y += b[None, :, None]
    return y.reshape(n, co, ho, wo)


def numpy_pool2d(x, op, kernel, stride, padding):
    fill = -np.inf if op == "max" else 0.0
    p = padding
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(xp, (kernel, kernel), axis=(2, 3))
    win = win[:, :, ::stride, ::stride]
    if op == "max":
        return win.max(axis=(4, 5))
    ones = np.pad(np.ones(x.shape[2:], np.float32), p)
    cnt = np.lib.stride_tricks.sliding_window_view(ones, (kernel, kernel))[::stride, ::stride]
    return (win.sum(axis=(4, 5), dtype=np.float64) / cnt.sum(axis=(2, 3))).astype(np.float32)


# ====================================================================== peers

class Peers:
    """The optional peers found: modules and versions, or the reason each is absent."""

    def __init__(self, wanted: Sequence[str]):
        self.onnx = self.ort = self.torch = None
        self.numpy = "numpy" in wanted
        self.why: Dict[str, str] = {}
        if "onnxruntime" in wanted:
            try:
                self.onnx = importlib.import_module("onnx")
                self.ort = importlib.import_module("onnxruntime")
            except Exception as e:
                self.onnx = self.ort = None
                self.why["onnxruntime"] = f"not installed ({type(e).__name__}: {e})"
        if "torch" in wanted:
            try:
                torch = importlib.import_module("torch")
            except Exception as e:
                self.why["torch"] = f"not installed ({type(e).__name__}: {e})"
            else:
                why = torch_version_ok(torch)
                if why:
                    self.why["torch"] = why
                else:
                    self.torch = torch
        for p in wanted:
            if p not in PEERS:
                self.why[p] = f"unknown peer (known: {', '.join(PEERS)})"

    def versions(self) -> dict:
        return {"numpy": np.__version__,
                "onnx": getattr(self.onnx, "__version__", None),
                "onnxruntime": getattr(self.ort, "__version__", None),
                "torch": getattr(self.torch, "__version__", None),
                "threadpoolctl": version("threadpoolctl")}

    def set_threads(self, t: int) -> None:
        fc.set_num_threads(t)
        if self.torch is not None:
            self.torch.set_num_threads(t)


def blas_limits(threads: int):
    """Limit NumPy's BLAS to `threads` (threadpoolctl), or a no-op context without it
    (then OpenBLAS uses its own default)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def blas_info() -> list:
    """threadpoolctl's view of the loaded BLAS libraries ([] when not installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [d for d in threadpool_info() if d.get("user_api") == "blas"]


def version(name: str) -> Optional[str]:
    """The installed distribution's version, or None."""
    try:
        from importlib.metadata import version as _v
        return _v(name)
    except Exception:
        return None


def import_optional(name: str):
    """(module, None) or (None, the reason) for a peer: onnx, onnxruntime, torch, ..."""
    try:
        return importlib.import_module(name), None
    except Exception as e:
        return None, f"{name} not installed ({type(e).__name__}: {e})"


def torch_version_ok(torch) -> Optional[str]:
    """None when `torch` is the pinned version (a local tag such as +cpu is fine), else
    the reason its rows are skipped."""
    v = str(getattr(torch, "__version__", "?"))
    if v.split("+")[0] == TORCH_VERSION:
        return None
    return (f"torch {v} is installed; the torch peer is measured with "
            f"torch=={TORCH_VERSION} only")


def ort_options(ort, threads: int):
    """`threads` intra-op threads, one inter-op, all graph optimisations, and no spinning
    after a run: a spinning idle ORT worker takes the core that the next (fastconv) trial
    needs on a small machine (bench/README.md). FASTCONV_BENCH_ORT_SPIN=1 restores it."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if os.environ.get("FASTCONV_BENCH_ORT_SPIN", "0") != "1":
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


def ort_runner(ort, model_bytes: bytes, threads: int, x: np.ndarray):
    """A zero-argument callable running the ONNX model on x in a fresh session."""
    sess = ort.InferenceSession(model_bytes, ort_options(ort, threads),
                                providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    return lambda: sess.run(None, feed)[0]


# ---------------------------------------------------------------- OpenVINO
OPENVINO_VERSION = "2025.4.0"      # the version of the `openvino` extra (pyproject.toml)
# Read back from the compiled model and reported next to its figures.
OPENVINO_REPORTED = ("INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS",
                     "PERFORMANCE_HINT", "EXECUTION_MODE_HINT", "ENABLE_CPU_PINNING",
                     "ENABLE_HYPER_THREADING", "SCHEDULING_CORE_TYPE",
                     "CPU_DENORMALS_OPTIMIZATION")
# The runtime-model layer types whose precision says what the arithmetic ran in.
_OV_COMPUTE_LAYERS = ("Convolution", "FullyConnected", "MatMul", "Deconvolution")


def openvino_config(threads: int, precision: Optional[str] = "f32") -> Dict[str, str]:
    """compile_model's CPU config for a latency comparison with fastconv and ORT.

    precision "f32": on a CPU with AMX-BF16 or AVX512-BF16 the CPU plugin's default
    inference precision is bf16, which is another computation (8-bit mantissas), not a
    faster float32 one; fastconv and ORT compute in float32. None leaves OpenVINO's
    default (for an informative figure only). One stream of `threads` threads with the
    LATENCY hint: one request at a time, as the other engines run. Pinning off: the
    engines share the process (the infer request's calling thread is fastconv's OpenMP
    master thread too) and the cores with other jobs, and neither fastconv (libgomp,
    no OMP_PROC_BIND) nor ORT pins, so all three leave placement to the kernel.
    Hyper-threading off: `threads` means physical cores, one thread each, as fastconv's
    tables count them (no effect on a CPU without SMT). Core type ANY_CORE: no
    restriction (P/E cores only matter on hybrid client CPUs), like the other two."""
    cfg = {"INFERENCE_NUM_THREADS": str(int(threads)), "NUM_STREAMS": "1",
           "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": "NO",
           "ENABLE_HYPER_THREADING": "NO", "SCHEDULING_CORE_TYPE": "ANY_CORE"}
    if precision is not None:
        cfg["INFERENCE_PRECISION_HINT"] = precision
    return cfg


def openvino_compile(ov, model, threads: int, input_shape=None,
                     precision: Optional[str] = "f32", core=None):
    """An OpenVINO CompiledModel of `model` (ONNX bytes or a path to an .onnx file) on the
    CPU with openvino_config(threads, precision). input_shape: the one input's full
    shape (batch included), made static before compiling (the export's batch axis is
    dynamic; a static shape is how OpenVINO is deployed for a fixed batch)."""
    core = core or ov.Core()
    m = core.read_model(model if isinstance(model, (bytes, bytearray)) else str(model))
    if input_shape is not None:
        m.reshape({0: [int(d) for d in input_shape]})
    return core.compile_model(m, "CPU", openvino_config(threads, precision))


def _ov_str(v) -> str:
    """A property value as text: Type f32 -> "f32", enums without their class."""
    get = getattr(v, "get_type_name", None)
    if callable(get):
        return str(get())
    name = getattr(v, "name", None)
    return str(name) if isinstance(name, str) else str(v)


def openvino_properties(compiled) -> Dict[str, object]:
    """What the compiled model says it runs with: OPENVINO_REPORTED as text, and
    "runtime_precisions" / "runtime_primitives": {layer type: sorted precisions /
    kernel names (e.g. brgconv_avx512_f32)} of its compute layers from the runtime model
    (the kernels actually chosen, not just the hint)."""
    out: Dict[str, object] = {}
    for k in OPENVINO_REPORTED:
        try:
            out[k] = _ov_str(compiled.get_property(k))
        except Exception as e:          # a property this version does not have
            out[k] = f"n/a ({type(e).__name__})"
    found: Dict[str, Dict[str, set]] = {"runtimePrecision": {}, "primitiveType": {}}
    try:
        for op in compiled.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            kind = info["layerType"].astype(str) if "layerType" in info else None
            if kind not in _OV_COMPUTE_LAYERS:
                continue
            for key, per in found.items():
                if key in info:
                    per.setdefault(kind, set()).add(info[key].astype(str))
    except Exception as e:
        out["runtime_precisions"] = out["runtime_primitives"] = \
            f"n/a ({type(e).__name__}: {e})"
    else:
        for name, key in (("runtime_precisions", "runtimePrecision"),
                          ("runtime_primitives", "primitiveType")):
            out[name] = {k: sorted(v) for k, v in sorted(found[key].items())}
    return out


def openvino_runner(ov, compiled, x: np.ndarray):
    """A zero-argument callable running `compiled` on x through one infer request made
    here and reused: the input is bound once as a tensor sharing x's memory (no copy
    per call), and each call is one synchronous `infer()` returning the output as a
    fresh array (as fastconv and ORT return theirs)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    req = compiled.create_infer_request()
    tensor = ov.Tensor(x, shared_memory=True)
    if not np.shares_memory(tensor.data, x):
        raise RuntimeError("openvino.Tensor(shared_memory=True) copied the input")
    req.set_input_tensor(tensor)

    def run(req=req, keep=(x, tensor)):
        return req.infer()[0]
    return run


def _one_node_onnx(onnx, node, x_shape, y_shape, inits) -> bytes:
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [node], node.op_type.lower(),
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(y_shape))],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                              producer_name="fastconv-bench")
    model.ir_version = 8
    return model.SerializeToString()


def onnx_conv(onnx, s: ConvShape, w, b) -> bytes:
    """A one-node Conv model of `s` with weights w, b (serialized)."""
    from onnx import helper, numpy_helper
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"],
                            kernel_shape=[s.kernel_h, s.kernel_w], strides=[s.stride] * 2,
                            pads=[s.padding] * 4, dilations=[s.dilation] * 2, group=s.groups)
    return _one_node_onnx(onnx, node, s.input_shape, s.output_shape,
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])


def onnx_pool(onnx, s: PoolShape) -> bytes:
    """A one-node MaxPool / AveragePool (count_include_pad=0) model of `s`."""
    from onnx import helper
    attrs = dict(kernel_shape=[s.kernel] * 2, strides=[s.stride] * 2, pads=[s.padding] * 4)
    if s.op == "avg":
        attrs["count_include_pad"] = 0
    node = helper.make_node("MaxPool" if s.op == "max" else "AveragePool", ["x"], ["y"],
                            **attrs)
    return _one_node_onnx(onnx, node, s.input_shape, s.output_shape, [])


def torch_model_runner(torch, model, x: np.ndarray):
    """A torch.nn.functional replay of a fastconv Model (same weights, same graph), as a
    zero-argument callable on x. Raises fc.UnsupportedOperatorError naming the layer
    kinds it cannot replay."""
    TF = torch.nn.functional
    T = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    ops, bad = [], []
    for n in model.nodes:
        L, k = n.layer, n.layer.kind
        ins = list(n.inputs)
        in_shape = model.shapes.get(ins[0]) if ins else None
        p = {key: T(v) for key, v in L.params.items()}
        f = None
        if k == "Conv2d":
            t, l, bm, r = L._pads(in_shape[1:])
            sym = t == bm and l == r

            def f(x, L=L, p=p, pads=(l, r, t, bm), sym=sym):
                if not sym:
                    x = TF.pad(x, pads)
                return TF.conv2d(x, p["weight"], p.get("bias"), L.stride,
                                 (pads[2], pads[0]) if sym else 0, L.dilation, L.groups)
        elif k in ("MaxPool2d", "AvgPool2d"):
            t, l, bm, r = L._pads(in_shape[1:])
            kh, kw = L.kernel_size
            if t == bm and l == r and t <= kh // 2 and l <= kw // 2:
                if k == "MaxPool2d":
                    def f(x, L=L, pad=(t, l)):
                        return TF.max_pool2d(x, L.kernel_size, L.stride, pad, L.dilation,
                                             L.ceil_mode)
                elif all(d == 1 for d in L.dilation):
                    def f(x, L=L, pad=(t, l)):
                        return TF.avg_pool2d(x, L.kernel_size, L.stride, pad, L.ceil_mode,
                                             L.count_include_pad)
        elif k == "ReLU":
            f = TF.relu
        elif k == "LeakyReLU":
            def f(x, L=L):
                return TF.leaky_relu(x, L.negative_slope)
        elif k in ("Dropout", "Identity"):
            def f(x):
                return x
        elif k == "BatchNorm2d":
            def f(x, L=L, p=p):
                return TF.batch_norm(x, p["running_mean"], p["running_var"], p["weight"],
                                     p["bias"], False, 0.0, L.eps)
        elif k == "GlobalAvgPool2d":
            def f(x):
                return x.mean(dim=(2, 3), keepdim=True)
        elif k == "GlobalMaxPool2d":
            def f(x):
                return x.amax(dim=(2, 3), keepdim=True)
        elif k == "Flatten" and getattr(L, "start_dim", 1) == 1:
            def f(x):
                return torch.flatten(x, 1)
        elif k == "Reshape":
            def f(x, shape=tuple(model.shapes[n.name])):
                return x.reshape((x.shape[0],) + shape)
        elif k == "Linear":
            def f(x, p=p):
                return TF.linear(x, p["weight"], p.get("bias"))
        elif k == "Softmax":
            def f(x, L=L):
                return torch.softmax(x, dim=L.axis)
        elif k == "Add":
            def f(*xs):
                out = xs[0]
                for v in xs[1:]:
                    out = out + v
                return out
        elif k == "Concat":
            def f(*xs, L=L):
                return torch.cat(xs, dim=L.axis)
        if f is None:
            bad.append(f"{n.name} ({k})")
            continue
        ops.append((n.name, f, ins))
    if bad:
        raise fc.UnsupportedOperatorError(f"no torch replay for: {', '.join(bad)}")
    (in_name,) = model.input_names
    out_name = model.output_names[0]
    tx = torch.from_numpy(x)

    def run():
        with torch.inference_mode():
            env = {in_name: tx}
            for name, f, ins in ops:
                env[name] = f(*(env[i] for i in ins))
            return env[out_name].numpy()
    return run


def torch_conv_runner(torch, s: ConvShape, x, w, b):
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    F = torch.nn.functional

    def run():
        with torch.inference_mode():
            return F.conv2d(tx, tw, tb, s.stride, s.padding, s.dilation, s.groups).numpy()
    return run


def torch_pool_runner(torch, s: PoolShape, x):
    tx, F = torch.from_numpy(x), torch.nn.functional

    def run():
        with torch.inference_mode():
            if s.op == "max":
                return F.max_pool2d(tx, s.kernel, s.stride, s.padding).numpy()
            return F.avg_pool2d(tx, s.kernel, s.stride, s.padding,
                                count_include_pad=False).numpy()
    return run


# ====================================================================== fastconv

def conv_algorithms() -> List[str]:
    """The algorithms the engine has (never "auto"): one row each in every table."""
    return list(fc.conv_algorithms())


def isa() -> str:
    """The kernel family fastconv runs now ("scalar", "avx2", "avx512", ...)."""
    get = getattr(fc, "get_isa", None)
    if get is None:                      # not public (yet): ask the binding
        from fastconv import _kernels
        get = _kernels.get_isa
    return str(get())


def fastconv_conv_runner(s: ConvShape, x, w, b, algo: str, prepared: bool = True):
    """A zero-argument callable running conv2d of `s` with `algo`, run once here so that
    an algorithm that cannot serve the layer raises (one of CANNOT_SERVE) now, not in a
    timed call. prepared: the weights packed once (fc.prepare_conv2d, as a compiled model
    and an ORT session do); else fc.conv2d, which packs on every call."""
    if prepared:
        conv = fc.prepare_conv2d(w, b, algo=algo, **s.kwargs())
        conv(x[:1])
        return lambda: conv(x)
    kw = s.kwargs()
    fc.conv2d(x[:1], w, b, algo=algo, **kw)
    return lambda: fc.conv2d(x, w, b, algo=algo, **kw)


def fastconv_pool_runner(s: PoolShape, x):
    if s.op == "max":
        return lambda: fc.max_pool2d(x, s.kernel, stride=s.stride, padding=s.padding)
    return lambda: fc.avg_pool2d(x, s.kernel, stride=s.stride, padding=s.padding,
                                 count_include_pad=False)


def numpy_conv_runner(s: ConvShape, x, w, b):
    kw = s.kwargs()
    return lambda: numpy_im2col_conv2d(x, w, b, **kw)
