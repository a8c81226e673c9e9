"""pytest-benchmark plumbing of the fastconv speed suite (``pytest bench/ --benchmark-only``):
the parametrisation of every benchmark over the package's layer shapes
(fastconv/data/shapes/*.csv, the files ``fastconv bench`` reads too), the fixtures, the
report header (threads, the ISA fastconv runs, the peers' versions) and a throughput
summary at the end. The shapes, inputs, references and peer runners come from
fastconv._bench_shapes and fastconv._bench_peers, so the suite and ``fastconv bench``
time the same calls.

Nothing here asserts a time. The only assertions are on results (each implementation is
checked once against a NumPy reference before it is timed: a fast wrong answer is not a
benchmark).
"""
from __future__ import annotations

import os
import sys

# ---------------------------------------------------------------- OpenBLAS environment
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE force OpenBLAS onto another kernel family or cache
# model than the one it would pick for this CPU, which makes NumPy's BLAS (the baseline)
# look slower than it is. OpenBLAS reads them once, when the library is loaded, so they
# are removed here if NumPy has not been imported yet; speed_table.py re-executes itself
# without them instead.
OPENBLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REMOVED_OPENBLAS_ENV: dict = {}
if "numpy" not in sys.modules:
    for _k in OPENBLAS_ENV_VARS:
        if _k in os.environ:
            _REMOVED_OPENBLAS_ENV[_k] = os.environ.pop(_k)


def openblas_env_status() -> dict:
    """Which of OPENBLAS_ENV_VARS are set now, and what this module removed."""
    return {"set": {k: os.environ[k] for k in OPENBLAS_ENV_VARS if k in os.environ},
            "removed": dict(_REMOVED_OPENBLAS_ENV)}


import _tree  # noqa: E402  (the repository's fastconv first, after the scrub)

_tree.import_fastconv()
from fastconv import _kernels  # noqa: E402
from fastconv._bench_peers import (blas_info, blas_limits, conv_algorithms,  # noqa: E402
                                   import_optional, isa, max_rel_err, torch_version_ok,
                                   version, CONV_TOL)
from fastconv._bench_shapes import (gemm_shapes, load_conv_shapes,  # noqa: E402
                                    load_pool_shapes)


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


def fma_peak(threads: int, seconds: float = 0.2) -> float:
    """Best of three runs of the extension's FMA loop, GFLOP/s."""
    return max(float(_kernels.fma_peak(threads, seconds)) for _ in range(3))


# ================================================================ pytest
import pytest  # noqa: E402

import fastconv  # noqa: E402

_RESULTS: list = []      # (group, row, median s or None, rate or the why, unit)
_PEAK: dict = {}


def pytest_configure(config):
    try:
        bench_threads()
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None


def pytest_generate_tests(metafunc):
    # the shapes are read here, at collection: a missing file is an error, not 0 tests
    if "conv_shape" in metafunc.fixturenames:
        shapes = load_conv_shapes()
        metafunc.parametrize("conv_shape", shapes, ids=[s.name for s in shapes])
    if "pool_shape" in metafunc.fixturenames:
        shapes = load_pool_shapes()
        metafunc.parametrize("pool_shape", shapes, ids=[s.name for s in shapes])
    if "gemm_shape" in metafunc.fixturenames:
        shapes = gemm_shapes()
        metafunc.parametrize("gemm_shape", shapes, ids=[s.name for s in shapes])
    if "algo" in metafunc.fixturenames:
        metafunc.parametrize("algo", conv_algorithms())


def pytest_report_header(config):
    lines = [f"fastconv bench: threads={bench_threads()} "
             f"(FASTCONV_BENCH_THREADS={os.environ.get('FASTCONV_BENCH_THREADS', '')!r})",
             f"fastconv: {fastconv.__file__}, ISA {isa()}, conv algorithms "
             f"{', '.join(conv_algorithms())}, cpu_info={fastconv.cpu_info()}"]
    for name in ("onnxruntime", "torch"):
        v = version(name)
        lines.append(f"{name}: {v}" if v else f"{name}: not installed (its rows will be "
                                              f"skipped)")
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
    fastconv.set_num_threads(n)
    torch = sys.modules.get("torch")  # not imported here: only the torch rows need it
    if torch is not None:
        torch.set_num_threads(n)
    with blas_limits(n):
        yield n


@pytest.fixture(scope="session")
def fc(threads):
    fastconv.set_num_threads(threads)
    if threads not in _PEAK:  # best of three: the roof, not an average under load
        _PEAK[threads] = fma_peak(threads)
    return fastconv


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
def not_served():
    """not_served(group, row, why): an algorithm that cannot serve this configuration:
    listed as n/a in the summary, and the test skipped with the reason."""
    def mark(group, row, why):
        _RESULTS.append((group, row, None, why, None))
        pytest.skip(f"{row} n/a for {group}: {why}")
    return mark


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
        benchmark.extra_info.update(row=row, threads=threads, unit=unit, work=work,
                                    isa=isa())
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
    tr.section(f"fastconv bench throughput (medians, threads={bench_threads()}, "
               f"ISA {isa()})")
    for t in list(_PEAK):  # measured again at the end: the roof is the best seen
        _PEAK[t] = max(_PEAK[t], fma_peak(t))
    for t, p in _PEAK.items():
        tr.write_line(f"measured FMA peak at {t} thread(s), best at the session's start "
                      f"and end: {p:.1f} GFLOP/s")
    peak = _PEAK.get(bench_threads())
    w = max(len(g) for g, *_ in _RESULTS)
    r = max(len(x[1]) for x in _RESULTS)
    for group, row, med, rate, unit in sorted(_RESULTS, key=lambda x: (x[0], x[1])):
        if med is None:      # an algorithm that cannot serve the layer
            tr.write_line(f"{group:<{w}}  {row:<{r}}  {'n/a':>12}  ({rate})")
            continue
        pct = f"  {100 * rate / peak:5.1f}% of peak" if peak and unit == "GFLOP/s" else ""
        tr.write_line(f"{group:<{w}}  {row:<{r}}  {med * 1e3:9.3f} ms  "
                      f"{rate:8.2f} {unit}{pct}")
