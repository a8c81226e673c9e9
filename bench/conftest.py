"""Shared pieces of the fastconv benchmark suite.

Used two ways:

* by pytest (``pytest bench/ --benchmark-only``): fixtures, the parametrisation of every
  benchmark over the shapes in ``bench/shapes/*.csv``, the report header and a throughput
  summary at the end of the run;
* by ``bench/speed_table.py``, which loads this file as a plain module for the shape
  tables, the input makers and the peer implementations (NumPy BLAS, ONNX Runtime), so
  that the suite and the table script time exactly the same calls.

Nothing here asserts a time. The only assertions are on results (each implementation is
checked once against a NumPy reference before it is timed: a fast wrong answer is not a
benchmark).
"""
from __future__ import annotations

import contextlib
import csv
import importlib
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

# The bench modules import the helpers below as `fastconv_bench_conftest`, not `conftest`:
# pytest drops `conftest` from sys.modules before importing another directory's
# conftest.py (tests/ has one too), so that name is not reliable in a combined run.
if __name__ in sys.modules:
    sys.modules.setdefault("fastconv_bench_conftest", sys.modules[__name__])

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
SHAPES_DIR = BENCH_DIR / "shapes"

# ---------------------------------------------------------------- OpenBLAS environment
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE force OpenBLAS onto another kernel family or cache
# model than the one it would pick for this CPU, which makes NumPy's BLAS (the baseline)
# look slower than it is. OpenBLAS reads them once, when the library is loaded, so they
# are removed here if NumPy has not been imported yet; speed_table.py re-executes itself
# without them instead.
OPENBLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def openblas_env_status() -> dict:
    """Which of OPENBLAS_ENV_VARS are set now, and what this module removed."""
    return {
        "set": {k: os.environ[k] for k in OPENBLAS_ENV_VARS if k in os.environ},
        "removed": dict(_REMOVED_OPENBLAS_ENV),
    }


_REMOVED_OPENBLAS_ENV: dict = {}
if "numpy" not in sys.modules:
    for _k in OPENBLAS_ENV_VARS:
        if _k in os.environ:
            _REMOVED_OPENBLAS_ENV[_k] = os.environ.pop(_k)

import numpy as np  # noqa: E402  (after the environment scrub on purpose)


# ---------------------------------------------------------------- importing fastconv
def _put_tree_on_path() -> None:
    """Prefer the fastconv next to bench/ when it has a compiled extension (an in-place
    build), else leave whatever is installed first and fall back to the tree."""
    pkg = ROOT / "fastconv"
    if not pkg.is_dir():
        return
    built = any(pkg.glob("_kernels*.so")) or any(pkg.glob("_kernels*.pyd"))
    root = str(ROOT)
    if root in sys.path:
        return
    if built:
        sys.path.insert(0, root)
    else:
        sys.path.append(root)


_put_tree_on_path()


def import_fastconv():
    """(module, None) or (None, reason it cannot be used)."""
    try:
        fc = importlib.import_module("fastconv")
        fc.conv2d  # noqa: B018  (the functional API must be there)
        return fc, None
    except Exception as e:  # ImportError, AttributeError, a half-built tree, ...
        return None, f"fastconv not importable ({type(e).__name__}: {e}); build it with " \
                     f"'python setup.py build_ext --inplace'"


def import_optional(name: str):
    """(module, None) or (None, reason) for the peers: onnx, onnxruntime, torch, ..."""
    try:
        return importlib.import_module(name), None
    except Exception as e:
        return None, f"{name} not installed ({type(e).__name__}: {e})"


# ---------------------------------------------------------------- threads
def bench_threads() -> int:
    """Thread count for every implementation: FASTCONV_BENCH_THREADS, default 1."""
    raw = os.environ.get("FASTCONV_BENCH_THREADS", "").strip()
    if not raw:
        return 1
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"FASTCONV_BENCH_THREADS={raw!r} is not an integer") from None
    if n < 1:
        raise ValueError(f"FASTCONV_BENCH_THREADS={n} must be >= 1")
    return n


def blas_limits(threads: int):
    """Context that limits NumPy's BLAS to `threads` (threadpoolctl), or does nothing
    when threadpoolctl is missing (then OpenBLAS uses its own default)."""
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


# ---------------------------------------------------------------- shapes
CONV_HEADER = ["name", "batch", "in_channels", "height", "width", "out_channels",
               "kernel_h", "kernel_w", "stride", "padding", "dilation", "groups"]
POOL_HEADER = ["name", "op", "batch", "channels", "height", "width", "kernel", "stride",
               "padding"]


def _out(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@dataclass(frozen=True)
class ConvShape:
    name: str
    batch: int
    in_channels: int
    height: int
    width: int
    out_channels: int
    kernel_h: int
    kernel_w: int
    stride: int
    padding: int      # symmetric, both axes
    dilation: int
    groups: int

    @property
    def out_h(self) -> int:
        return _out(self.height, self.kernel_h, self.stride, self.padding, self.dilation)

    @property
    def out_w(self) -> int:
        return _out(self.width, self.kernel_w, self.stride, self.padding, self.dilation)

    @property
    def input_shape(self):
        return (self.batch, self.in_channels, self.height, self.width)

    @property
    def weight_shape(self):
        return (self.out_channels, self.in_channels // self.groups, self.kernel_h,
                self.kernel_w)

    @property
    def output_shape(self):
        return (self.batch, self.out_channels, self.out_h, self.out_w)

    @property
    def flops(self) -> int:
        """2 * N * Co * Ho * Wo * (Ci/groups) * kh * kw (a multiply-add is 2 FLOPs)."""
        return (2 * self.batch * self.out_channels * self.out_h * self.out_w
                * (self.in_channels // self.groups) * self.kernel_h * self.kernel_w)

    def conv_kwargs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)


@dataclass(frozen=True)
class PoolShape:
    name: str
    op: str           # "max" or "avg" (avg: count_include_pad=False, ONNX's default)
    batch: int
    channels: int
    height: int
    width: int
    kernel: int
    stride: int
    padding: int

    @property
    def out_h(self) -> int:
        return _out(self.height, self.kernel, self.stride, self.padding)

    @property
    def out_w(self) -> int:
        return _out(self.width, self.kernel, self.stride, self.padding)

    @property
    def input_shape(self):
        return (self.batch, self.channels, self.height, self.width)

    @property
    def output_shape(self):
        return (self.batch, self.channels, self.out_h, self.out_w)

    @property
    def bytes_moved(self) -> int:
        """float32 bytes read once plus written once: the floor on memory traffic."""
        return 4 * (math.prod(self.input_shape) + math.prod(self.output_shape))


@dataclass(frozen=True)
class GemmShape:
    name: str
    m: int
    k: int
    n: int

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n


def _read_csv(path: Path, header: list) -> list:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        got = next(reader)
        if got != header:
            raise ValueError(f"{path}: header {got} != {header}")
        rows = [dict(zip(header, r)) for r in reader if r]
    names = [r["name"] for r in rows]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate names")
    return rows


def load_conv_shapes(path: Path = SHAPES_DIR / "conv2d.csv") -> list:
    out = []
    for r in _read_csv(path, CONV_HEADER):
        s = ConvShape(r["name"], *(int(r[k]) for k in CONV_HEADER[1:]))
        if min(getattr(s, k) for k in CONV_HEADER[1:]) < 0 or s.groups < 1 or \
                s.in_channels % s.groups or s.out_channels % s.groups or s.out_h < 1:
            raise ValueError(f"{path}: bad row {r}")
        out.append(s)
    return out


def load_pool_shapes(path: Path = SHAPES_DIR / "pool2d.csv") -> list:
    out = []
    for r in _read_csv(path, POOL_HEADER):
        if r["op"] not in ("max", "avg"):
            raise ValueError(f"{path}: op must be max or avg in {r}")
        out.append(PoolShape(r["name"], r["op"], *(int(r[k]) for k in POOL_HEADER[2:])))
    return out


def gemm_shapes() -> list:
    """The im2col GEMMs of the VGG-16 layers: M = Co, K = Ci*kh*kw, N = Ho*Wo."""
    return [GemmShape(s.name, s.out_channels, s.in_channels * s.kernel_h * s.kernel_w,
                      s.out_h * s.out_w)
            for s in load_conv_shapes() if s.name.startswith("vgg16_")]


# ---------------------------------------------------------------- inputs
def make_conv_inputs(s: ConvShape, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(s.input_shape, dtype=np.float32)
    fan_in = (s.in_channels // s.groups) * s.kernel_h * s.kernel_w
    w = (rng.standard_normal(s.weight_shape, dtype=np.float32)
         * np.float32(1.0 / math.sqrt(fan_in)))
    b = rng.standard_normal(s.out_channels, dtype=np.float32)
    return x, w, b


def make_pool_input(s: PoolShape, seed: int = 0):
    return np.random.default_rng(seed).standard_normal(s.input_shape, dtype=np.float32)


def make_gemm_inputs(s: GemmShape, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((s.m, s.k), dtype=np.float32)
    b = rng.standard_normal((s.k, s.n), dtype=np.float32)
    return a, b


# ---------------------------------------------------------------- NumPy BLAS baseline
def numpy_im2col_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Conv2d as im2col in NumPy (sliding_window_view, one copy into a [Ci*kh*kw, Ho*Wo]
    matrix per image) followed by one float32 BLAS GEMM ``w2d @ cols``. groups == 1."""
    if groups != 1:
        raise NotImplementedError("numpy_im2col_conv2d: groups must be 1")
    n, ci, h, wd = x.shape
    co, _, kh, kw = w.shape
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    eh, ew = dilation * (kh - 1) + 1, dilation * (kw - 1) + 1
    win = np.lib.stride_tricks.sliding_window_view(x, (eh, ew), axis=(2, 3))
    win = win[:, :, ::stride, ::stride, ::dilation, ::dilation]     # [n, ci, ho, wo, kh, kw]
    ho, wo = win.shape[2], win.shape[3]
    cols = np.ascontiguousarray(win.transpose(0, 1, 4, 5, 2, 3)).reshape(n, ci * kh * kw,
                                                                         ho * wo)
    y = np.matmul(w.reshape(co, ci * kh * kw), cols)                # [n, co, ho*wo]
    if b is not None:
        y += b[None, :, None]
    return y.reshape(n, co, ho, wo)


def numpy_pool2d(x, op, kernel, stride, padding):
    """Reference pooling (max; avg with count_include_pad=False)."""
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


def max_rel_err(out, ref) -> float:
    """max |out - ref| / max(1, max |ref|); inf on a shape mismatch."""
    out = np.asarray(out)
    if out.shape != ref.shape:
        return float("inf")
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    return float(np.max(np.abs(out.astype(np.float64) - ref))) / scale if ref.size else 0.0


CONV_TOL = 1e-3   # float32 sums of up to 4608 terms, against a float32 BLAS reference


# ---------------------------------------------------------------- runners
# Each maker returns a zero-argument callable that runs one forward pass on inputs bound
# at creation, so the timed region is the call and nothing else.
def fastconv_conv_runner(fc, s: ConvShape, x, w, b, algo: str):
    kw = s.conv_kwargs()
    return lambda: fc.conv2d(x, w, b, algo=algo, **kw)


def fastconv_prepared_runner(fc, s: ConvShape, x, w, b):
    """algo="auto" with the weights packed once (fc.prepare_conv2d), as a compiled model
    runs a layer and as ONNX Runtime does after creating its session."""
    conv = fc.prepare_conv2d(w, b, algo="auto", **s.conv_kwargs())
    conv(x)  # pack outside the timed calls
    return lambda: conv(x)


def fastconv_pool_runner(fc, s: PoolShape, x):
    if s.op == "max":
        return lambda: fc.max_pool2d(x, s.kernel, stride=s.stride, padding=s.padding)
    return lambda: fc.avg_pool2d(x, s.kernel, stride=s.stride, padding=s.padding,
                                 count_include_pad=False)


def numpy_conv_runner(s: ConvShape, x, w, b):
    kw = s.conv_kwargs()
    return lambda: numpy_im2col_conv2d(x, w, b, **kw)


ONNX_OPSET = 17


def _ort_session(ort, model, threads: int):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ORT's workers would spin after Run() by default; on a 2-core machine a spinning idle
    # worker takes the core that the next (fastconv) trial's second thread needs, which
    # made fastconv's 2-thread times up to 10x slower in the interleaved runs. Turning
    # spinning off costs ORT one wake-up per Run (measured: within noise at 1 and 2
    # threads). FASTCONV_BENCH_ORT_SPIN=1 restores ORT's default.
    if os.environ.get("FASTCONV_BENCH_ORT_SPIN", "0") != "1":
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def _onnx_model(onnx, node, inputs, outputs, initializers):
    from onnx import helper
    graph = helper.make_graph([node], node.op_type.lower(), inputs, outputs,
                              initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                              producer_name="fastconv-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def ort_conv_runner(onnx, ort, s: ConvShape, x, w, b, threads: int):
    from onnx import TensorProto, helper, numpy_helper
    node = helper.make_node(
        "Conv", ["x", "w", "b"], ["y"], kernel_shape=[s.kernel_h, s.kernel_w],
        strides=[s.stride] * 2, pads=[s.padding] * 4, dilations=[s.dilation] * 2,
        group=s.groups)
    model = _onnx_model(
        onnx, node,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(s.input_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(s.output_shape))],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    sess = _ort_session(ort, model, threads)
    feed = {"x": x}
    return lambda: sess.run(None, feed)[0]


def ort_pool_runner(onnx, ort, s: PoolShape, x, threads: int):
    from onnx import TensorProto, helper
    attrs = dict(kernel_shape=[s.kernel] * 2, strides=[s.stride] * 2, pads=[s.padding] * 4)
    if s.op == "avg":
        attrs["count_include_pad"] = 0
    node = helper.make_node("MaxPool" if s.op == "max" else "AveragePool", ["x"], ["y"],
                            **attrs)
    model = _onnx_model(
        onnx, node,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(s.input_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(s.output_shape))], [])
    sess = _ort_session(ort, model, threads)
    feed = {"x": x}
    return lambda: sess.run(None, feed)[0]


def torch_conv_runner(torch, s: ConvShape, x, w, b):
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    f = torch.nn.functional.conv2d
    kw = s.conv_kwargs()

    def run():
        with torch.inference_mode():
            return f(tx, tw, tb, **kw).numpy()
    return run


def torch_pool_runner(torch, s: PoolShape, x):
    tx = torch.from_numpy(x)
    F = torch.nn.functional

    def run():
        with torch.inference_mode():
            if s.op == "max":
                return F.max_pool2d(tx, s.kernel, s.stride, s.padding).numpy()
            return F.avg_pool2d(tx, s.kernel, s.stride, s.padding,
                                count_include_pad=False).numpy()
    return run


TORCH_VERSION = "2.13.0"   # the one torch the peers are measured with (the oracles extra)


def torch_version_ok(torch):
    """None when `torch` is the pinned version (a local build tag such as +cpu is fine),
    else the reason its rows are skipped."""
    v = str(getattr(torch, "__version__", "?"))
    if v.split("+")[0] == TORCH_VERSION:
        return None
    return f"torch {v} is installed; the torch rows are measured with torch=={TORCH_VERSION} only"


def fastconv_sgemm(fc):
    """fastconv._kernels.sgemm, or (None, reason)."""
    try:
        k = importlib.import_module("fastconv._kernels")
        return k.sgemm, None
    except Exception as e:
        return None, f"fastconv._kernels.sgemm unavailable ({type(e).__name__}: {e})"


def fastconv_fma_peak(threads: int, seconds: float):
    """Measured FMA peak in GFLOP/s at `threads` threads, or None."""
    try:
        k = importlib.import_module("fastconv._kernels")
        return float(k.fma_peak(threads, seconds))
    except Exception:
        return None


# ================================================================ pytest part
# Everything below only runs under pytest; speed_table.py never calls it.
try:
    import pytest
except ImportError:  # speed_table.py without pytest installed
    pytest = None

if pytest is not None:
    _RESULTS: list = []      # (group, row, median s, work, unit) for the summary
    _PEAK: dict = {}

    def pytest_configure(config):
        try:
            bench_threads()
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None

    def pytest_generate_tests(metafunc):
        if "conv_shape" in metafunc.fixturenames:
            shapes = load_conv_shapes()
            metafunc.parametrize("conv_shape", shapes, ids=[s.name for s in shapes])
        if "pool_shape" in metafunc.fixturenames:
            shapes = load_pool_shapes()
            metafunc.parametrize("pool_shape", shapes, ids=[s.name for s in shapes])
        if "gemm_shape" in metafunc.fixturenames:
            shapes = gemm_shapes()
            metafunc.parametrize("gemm_shape", shapes, ids=[s.name for s in shapes])

    def pytest_report_header(config):
        lines = [f"fastconv bench: threads={bench_threads()} "
                 f"(FASTCONV_BENCH_THREADS={os.environ.get('FASTCONV_BENCH_THREADS', '')!r})"]
        fc, why = import_fastconv()
        if fc is None:
            lines.append(f"fastconv: {why}")
        else:
            try:
                lines.append(f"fastconv: {fc.__file__} cpu_info={fc.cpu_info()}")
            except Exception as e:
                lines.append(f"fastconv: {fc.__file__} (cpu_info failed: {e})")
        for name in ("onnxruntime", "torch"):
            try:
                from importlib.metadata import version
                lines.append(f"{name}: {version(name)}")
            except Exception:
                lines.append(f"{name}: not installed (its rows will be skipped)")
        st = openblas_env_status()
        if st["removed"]:
            lines.append(f"removed from the environment before loading NumPy's OpenBLAS: "
                         f"{st['removed']}")
        if st["set"]:
            lines.append(f"WARNING: {st['set']} still set (NumPy was imported first): "
                         f"the NumPy rows may not use OpenBLAS's own kernel choice")
        for d in blas_info():
            lines.append(f"NumPy BLAS: {d.get('internal_api')} {d.get('version')} "
                         f"core={d.get('architecture')} threading={d.get('threading_layer')}")
        return lines

    @pytest.fixture(scope="session")
    def threads():
        """The thread count, applied to fastconv, torch and NumPy's BLAS for the session."""
        n = bench_threads()
        fc, _ = import_fastconv()
        if fc is not None:
            fc.set_num_threads(n)
        torch = sys.modules.get("torch")  # not imported here: only the torch rows need it
        if torch is not None:
            torch.set_num_threads(n)
        with blas_limits(n):
            yield n

    @pytest.fixture(scope="session")
    def fc(threads):
        mod, why = import_fastconv()
        if mod is None:
            pytest.skip(why)
        mod.set_num_threads(threads)
        if threads not in _PEAK:  # best of three: the roof, not an average under load
            ps = [p for p in (fastconv_fma_peak(threads, 0.2) for _ in range(3)) if p]
            _PEAK[threads] = max(ps) if ps else None
        return mod

    @pytest.fixture(scope="session")
    def ort(threads):
        onnx, why = import_optional("onnx")
        if onnx is None:
            pytest.skip(why)
        rt, why = import_optional("onnxruntime")
        if rt is None:
            pytest.skip(why)
        return onnx, rt

    @pytest.fixture(scope="session")
    def torch(threads):
        mod, why = import_optional("torch")
        if mod is None:
            pytest.skip(why)
        if torch_version_ok(mod) is not None:
            pytest.skip(torch_version_ok(mod))
        mod.set_num_threads(threads)
        return mod

    @pytest.fixture
    def run_bench(benchmark, threads):
        """run_bench(group, row, fn, ref=None, tol=..., work=..., unit=...): check fn()
        once against ref (an assertion on the result, never on a time), then benchmark
        it in pytest-benchmark group `group`, and record its throughput for the summary."""
        done = []

        def run(group, row, fn, ref=None, tol=CONV_TOL, work=None, unit="GFLOP/s"):
            out = fn()  # warm-up: first-touch allocations, ORT/torch lazy init
            if ref is not None:
                err = max_rel_err(out, ref)
                assert err <= tol, f"{group} / {row}: max relative error {err:.3g} > {tol}"
                benchmark.extra_info["max_rel_err"] = err
            benchmark.group = group
            benchmark.extra_info.update(row=row, threads=threads, unit=unit,
                                        work=work)
            benchmark(fn)
            done.append((group, row, work, unit))

        yield run
        stats = getattr(benchmark, "stats", None)
        for group, row, work, unit in done:
            if stats is not None and work:
                med = stats.stats.median
                rate = work / med * 1e-9
                benchmark.extra_info["median_" + unit.replace("/", "_per_")] = rate
                _RESULTS.append((group, row, med, rate, unit))

    def pytest_terminal_summary(terminalreporter):
        if not _RESULTS:
            return
        tr = terminalreporter
        tr.section(f"fastconv bench throughput (medians, threads={bench_threads()})")
        for t in list(_PEAK):  # measured again at the end: the roof is the best seen
            ps = [p for p in (fastconv_fma_peak(t, 0.2) for _ in range(3)) if p]
            if ps and (_PEAK[t] is None or max(ps) > _PEAK[t]):
                _PEAK[t] = max(ps)
        for t, p in _PEAK.items():
            tr.write_line(f"measured FMA peak at {t} thread(s), best at the session's start "
                          f"and end: {p:.1f} GFLOP/s" if p else f"FMA peak at {t}: n/a")
        peak = _PEAK.get(bench_threads())
        w = max(len(g) for g, *_ in _RESULTS)
        r = max(len(x[1]) for x in _RESULTS)
        for group, row, med, rate, unit in sorted(_RESULTS, key=lambda x: (x[0], x[1])):
            pct = f"  {100 * rate / peak:5.1f}% of peak" if peak and unit == "GFLOP/s" else ""
            tr.write_line(f"{group:<{w}}  {row:<{r}}  {med * 1e3:9.3f} ms  "
                          f"{rate:8.2f} {unit}{pct}")
