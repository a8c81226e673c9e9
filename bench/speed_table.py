#!/usr/bin/env python
"""Print the README's speed tables (markdown) for fastconv on this machine.

    python bench/speed_table.py [--quick] [--threads 1,2] [--repeats N] [--json out.json]
                                [--sections conv,gemm,pool]

(a) conv: every row of bench/shapes/conv2d.csv at each thread count: median ms, GFLOP/s
    and % of the FMA peak measured in this run, for fastconv `direct` and `im2col`; ONNX
    Runtime ms; the ratio of speeds fastconv-best / ORT (>1 = fastconv faster); the
    speedup over the first thread count.
(b) gemm: the 9 VGG-16 im2col GEMMs (M = Co, K = Ci*9, N = H*W), fastconv._kernels.sgemm
    against numpy.matmul in float32 (OpenBLAS), with the geometric mean of the ratios.
(c) pool: bench/shapes/pool2d.csv, fastconv against ORT, ms, GB/s and ratio.

Method: every implementation is run once and checked against a NumPy reference, then
timed in trials interleaved within each repeat (direct, im2col, ORT, direct, ... with the
starting point rotated every repeat), so slow drift of a shared machine hits all of them
alike; a trial repeats the call until it lasts ~50 ms and counts the mean; the tables show
the median over repeats. The FMA peak is the best of three measurements per thread count.

OpenBLAS reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE once when it is loaded; the script
re-executes itself without them so that NumPy runs the kernels OpenBLAS picks for this
CPU, and says so in its output.
"""
import os
import sys

_OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REEXEC_MARK = "FASTCONV_SPEED_TABLE_REMOVED_ENV"

if __name__ == "__main__":
    _present = {k: os.environ[k] for k in _OPENBLAS_VARS if k in os.environ}
    if _present and _REEXEC_MARK not in os.environ:
        _env = {k: v for k, v in os.environ.items() if k not in _OPENBLAS_VARS}
        _env[_REEXEC_MARK] = " ".join(f"{k}={v}" for k, v in _present.items())
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable,
                  [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], _env)

import argparse  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def _load_common():
    """bench/conftest.py as a plain module: the shapes, inputs and peer runners that the
    pytest suite uses, so both time the same calls."""
    name = "fastconv_bench_conftest"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parent / "conftest.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


C = _load_common()
np = C.np

# How often each distinct shape occurs in VGG-16 (for the whole-stack line).
VGG16_MULTIPLICITY = {"vgg16_conv3_2": 2, "vgg16_conv4_2": 2, "vgg16_conv5_1": 3}


# ---------------------------------------------------------------- timing
SETTLE_S = 0.01  # idle gap before each trial: longer than libgomp's spin-wait (ORT's
# workers are told not to spin, bench/conftest.py)
# OpenBLAS's worker threads spin for about 2**28 cycles (0.1 s here) after a call before
# they sleep; at 2 threads a shorter gap left them spinning on the core that the next
# fastconv trial needed (measured: fastconv's 2-thread SGEMM at 1-thread speed).
OPENBLAS_SETTLE_S = 0.3


def time_interleaved(runners, repeats, min_trial, settle=SETTLE_S):
    """runners: {name: zero-arg callable}, each already warm. Returns {name: [seconds per
    call, one per repeat]}: trials alternate between runners inside every repeat, the
    first runner rotating from one repeat to the next. Before each trial the process
    sleeps `settle` seconds, so worker threads that the previous library leaves
    spin-waiting (OpenMP, ORT's pool, OpenBLAS) have gone to sleep and do not steal the
    cores from the next trial."""
    names = list(runners)
    calls = {}
    for n in names:                      # calibrate: calls per trial for ~min_trial s
        t0 = time.perf_counter()
        runners[n]()
        dt = time.perf_counter() - t0
        calls[n] = max(1, min(1000, math.ceil(min_trial / max(dt, 1e-7))))
    out = {n: [] for n in names}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeats):
            k = r % len(names)
            for n in names[k:] + names[:k]:
                f, m = runners[n], calls[n]
                if settle:
                    time.sleep(settle)
                t0 = time.perf_counter()
                for _ in range(m):
                    f()
                out[n].append((time.perf_counter() - t0) / m)
    finally:
        if gc_was:
            gc.enable()
    return out


def summarise(times, errs, label, digits=2):
    """Per-runner record of one (shape, thread count) and a progress line for it."""
    progress(f"  {label}: " + "  ".join(
        f"{k} {med(v) * 1e3:.{digits}f} ms" for k, v in times.items()))
    return {k: {"median_s": med(v), "trials_s": v, "max_rel_err": errs.get(k)}
            for k, v in times.items()}


def med(v):
    return statistics.median(v) if v else None


def gmean(v):
    v = [x for x in v if x and x > 0]
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else None


# ---------------------------------------------------------------- formatting
def f_ms(s):
    return "n/a" if s is None else (f"{s * 1e3:.2f}" if s * 1e3 < 100 else f"{s * 1e3:.1f}")


def f_num(x, nd=1):
    return "n/a" if x is None else f"{x:.{nd}f}"


def f_ratio(x):
    return "n/a" if x is None else f"{x:.2f}x"


def table(header, rows, left=1):
    """Markdown table; the first `left` columns left-aligned, the rest right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def say(*a):
    """Markdown output (stdout)."""
    print(*a, flush=True)


def progress(*a):
    """Progress lines (stderr, so stdout stays pasteable markdown)."""
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- sections
class Ctx:
    def __init__(self, args, fc, onnx, ort):
        self.args, self.fc, self.onnx, self.ort = args, fc, onnx, ort
        self.peaks = {}
        self.peak_runs = {}
        self._notes = {}      # (what, message) -> [where, ...], in order of appearance
        self.result = {}

    def note(self, what, message, where=None):
        """where: (shape name, threads) or None; repeated notes are merged."""
        lst = self._notes.setdefault((what, message), [])
        if where and where not in lst:
            lst.append(where)

    @property
    def notes(self):
        out = []
        for (what, msg), wh in self._notes.items():
            ts = {}
            for name, t in wh:
                ts.setdefault(name, []).append(t)
            groups = {}  # same thread counts -> shape names
            for name, tl in ts.items():
                groups.setdefault(tuple(tl), []).append(name)
            where = "; ".join(f"{', '.join(names)} at t={','.join(map(str, tl))}"
                              for tl, names in groups.items())
            out.append(f"{what}: {msg}" + (f" ({where})" if where else ""))
        return out


def pick(ctx, shapes):
    """The shapes whose name contains one of --only's substrings (all without --only)."""
    only = ctx.args.only
    return [s for s in shapes if not only or any(o in s.name for o in only)]


def _try_runner(ctx, what, where, make, ref, tol):
    """Build and run once; (callable, max_rel_err), or (None, None) and a note."""
    try:
        fn = make()
        out = fn()
    except Exception as e:
        ctx.note(what, f"{type(e).__name__}: {e}", where)
        return None, None
    err = C.max_rel_err(out, ref) if ref is not None else None
    if err is not None and err > tol:
        ctx.note(what, f"WRONG RESULT, max relative error {err:.3g} > {tol}; timed anyway, "
                       f"marked !", where)
    return fn, err


def conv_section(ctx):
    a, fc = ctx.args, ctx.fc
    shapes = pick(ctx, C.load_conv_shapes())
    res = {s.name: {"shape": s.__dict__, "flops": s.flops, "threads": {}} for s in shapes}
    for s in shapes:
        x, w, b = C.make_conv_inputs(s)
        ref = C.numpy_im2col_conv2d(x, w, b, **s.conv_kwargs())
        for t in a.threads:
            fc.set_num_threads(t)
            runners, errs = {}, {}
            for algo in ("direct", "im2col"):
                fn, errs[algo] = _try_runner(
                    ctx, f"fastconv conv2d algo={algo}", (s.name, t),
                    lambda algo=algo: C.fastconv_conv_runner(fc, s, x, w, b, algo),
                    ref, C.CONV_TOL)
                if fn:
                    runners[algo] = fn
            fn, errs["prepared"] = _try_runner(
                ctx, "fastconv prepare_conv2d algo=auto", (s.name, t),
                lambda: C.fastconv_prepared_runner(fc, s, x, w, b), ref, C.CONV_TOL)
            if fn:
                runners["prepared"] = fn
            if ctx.ort:
                fn, errs["ort"] = _try_runner(
                    ctx, "onnxruntime Conv", (s.name, t),
                    lambda: C.ort_conv_runner(ctx.onnx, ctx.ort, s, x, w, b, t),
                    ref, C.CONV_TOL)
                if fn:
                    runners["ort"] = fn
            times = time_interleaved(runners, a.repeats, a.min_trial)
            res[s.name]["threads"][t] = summarise(times, errs, f"conv {s.name:<16} t={t}")
    ctx.result["conv"] = res


def passed(d, tol):
    """True unless the row ran and failed its check against NumPy."""
    return not (d and d.get("max_rel_err") is not None and d["max_rel_err"] > tol)


def render_conv(ctx):
    a = ctx.args
    shapes = pick(ctx, C.load_conv_shapes())
    res = ctx.result["conv"]
    t0 = a.threads[0]

    def good(d, key):
        """Median of a row that passed its check (a wrong result is never 'best')."""
        return d.get(key, {}).get("median_s") if passed(d.get(key), C.CONV_TOL) else None

    for t in a.threads:
        head = ["layer", "GFLOP"]
        for algo in ("direct", "im2col"):
            head += [f"{algo} ms", f"{algo} GFLOP/s", f"{algo} % peak"]
        head += ["ORT ms", "ORT GFLOP/s", "best/ORT", "auto prepacked ms", "prepacked/ORT"]
        if t != t0:
            head += [f"fastconv speedup vs {t0}T", f"ORT speedup vs {t0}T"]
        rows, ratios, prep_ratios = [], [], []
        stack = {"fc": 0.0, "ort": 0.0, "ok": True}
        peak = ctx.peaks.get(t)
        for s in shapes:
            d = res[s.name]["threads"][t]
            row = [s.name, f"{s.flops / 1e9:.2f}"]
            best = min([v for v in (good(d, "direct"), good(d, "im2col")) if v], default=None)
            for algo in ("direct", "im2col"):
                m = d.get(algo, {}).get("median_s")
                g = s.flops / m * 1e-9 if m else None
                flag = "" if passed(d.get(algo), C.CONV_TOL) else "!"
                row += [f_ms(m) + flag, f_num(g),
                        f_num(100 * g / peak if g and peak else None)]
            om = good(d, "ort")
            ratio = om / best if om and best else None
            if ratio:
                ratios.append(ratio)
            row += [f_ms(om), f_num(s.flops / om * 1e-9 if om else None), f_ratio(ratio)]
            pm = good(d, "prepared")
            row += [f_ms(pm), f_ratio(om / pm if om and pm else None)]
            if om and pm:
                prep_ratios.append(om / pm)
            if t != t0:
                d0 = res[s.name]["threads"][t0]
                b0 = min([v for v in (good(d0, "direct"), good(d0, "im2col")) if v],
                         default=None)
                o0 = good(d0, "ort")
                row += [f_ratio(b0 / best if b0 and best else None),
                        f_ratio(o0 / om if o0 and om else None)]
            mult = VGG16_MULTIPLICITY.get(s.name, 1)
            if s.name.startswith("vgg16_"):
                if best and om:
                    stack["fc"] += mult * best
                    stack["ort"] += mult * om
                else:
                    stack["ok"] = False
            rows.append(row)
        say("")
        say(f"#### Conv2d, batch 1, {t} thread{'s' if t > 1 else ''} "
            f"(measured FMA peak {f_num(peak)} GFLOP/s)")
        say("")
        say(table(head, rows))
        g = gmean(ratios)
        say("")
        say(f"Geometric mean of fastconv-best/ORT over {len(ratios)} layer(s): {f_ratio(g)}; "
            f"of auto-prepacked/ORT: {f_ratio(gmean(prep_ratios))}.")
        n_vgg = sum(1 for s in shapes if s.name.startswith("vgg16_"))
        if stack["ok"] and stack["ort"] and n_vgg == 9:
            say(f"VGG-16 conv stack (13 layers, repeated shapes counted): fastconv best "
                f"{stack['fc'] * 1e3:.1f} ms, ORT {stack['ort'] * 1e3:.1f} ms "
                f"({f_ratio(stack['ort'] / stack['fc'])}).")
        ctx.result.setdefault("conv_summary", {})[t] = {
            "gmean_best_over_ort": g, "vgg16_stack_fc_s": stack["fc"],
            "vgg16_stack_ort_s": stack["ort"]}


def gemm_section(ctx):
    a, fc = ctx.args, ctx.fc
    sgemm, why = C.fastconv_sgemm(fc)
    if sgemm is None:
        ctx.note("GEMM table skipped", why)
        return
    shapes = pick(ctx, C.gemm_shapes())
    res = {}
    for s in shapes:
        A, B = C.make_gemm_inputs(s)
        ref = np.matmul(A, B)
        res[s.name] = {"m": s.m, "k": s.k, "n": s.n, "flops": s.flops, "threads": {}}
        for t in a.threads:
            fc.set_num_threads(t)
            with C.blas_limits(t):
                runners, errs = {}, {}
                fn, errs["fastconv"] = _try_runner(ctx, "fastconv sgemm", (s.name, t),
                                                   lambda: (lambda: sgemm(A, B)), ref, 1e-3)
                if fn:
                    runners["fastconv"] = fn
                np.matmul(A, B)
                runners["numpy"] = lambda: np.matmul(A, B)
                times = time_interleaved(runners, a.repeats, a.min_trial,
                                         settle=OPENBLAS_SETTLE_S if t > 1 else SETTLE_S)
            res[s.name]["threads"][t] = summarise(times, errs, f"gemm {s.name:<16} t={t}")
    ctx.result["gemm"] = res


def render_gemm(ctx):
    if "gemm" not in ctx.result:
        return
    a = ctx.args
    shapes = pick(ctx, C.gemm_shapes())
    res = ctx.result["gemm"]
    for t in a.threads:
        peak = ctx.peaks.get(t)
        head = ["layer", "M", "K", "N", "GFLOP", "fastconv ms", "fastconv GFLOP/s",
                "% peak", "NumPy ms", "NumPy GFLOP/s", "NumPy % peak", "fastconv/NumPy"]
        rows, ratios = [], []
        for s in shapes:
            d = res[s.name]["threads"][t]
            fm = d.get("fastconv", {}).get("median_s")
            nm = d["numpy"]["median_s"]
            fg = s.flops / fm * 1e-9 if fm else None
            ng = s.flops / nm * 1e-9
            r = nm / fm if fm and passed(d.get("fastconv"), 1e-3) else None
            if r:
                ratios.append(r)
            flag = "" if passed(d.get("fastconv"), 1e-3) else "!"
            rows.append([s.name, s.m, s.k, s.n, f"{s.flops / 1e9:.2f}", f_ms(fm) + flag,
                         f_num(fg), f_num(100 * fg / peak if fg and peak else None),
                         f_ms(nm), f_num(ng), f_num(100 * ng / peak if peak else None),
                         f_ratio(r)])
        say("")
        say(f"#### SGEMM on the VGG-16 im2col shapes, {t} thread{'s' if t > 1 else ''} "
            f"(measured FMA peak {f_num(peak)} GFLOP/s)")
        say("")
        say(table(head, rows))
        g = gmean(ratios)
        say("")
        say(f"Geometric mean of fastconv/NumPy speed over {len(ratios)} shape(s): {f_ratio(g)}.")
        ctx.result.setdefault("gemm_summary", {})[t] = {"gmean_fastconv_over_numpy": g}


def pool_section(ctx):
    a, fc = ctx.args, ctx.fc
    shapes = pick(ctx, C.load_pool_shapes())
    res = {}
    for s in shapes:
        x = C.make_pool_input(s)
        ref = C.numpy_pool2d(x, s.op, s.kernel, s.stride, s.padding)
        res[s.name] = {"shape": s.__dict__, "bytes": s.bytes_moved, "threads": {}}
        for t in a.threads:
            fc.set_num_threads(t)
            runners, errs = {}, {}
            fn, errs["fastconv"] = _try_runner(ctx, f"fastconv {s.op}_pool2d",
                                               (s.name, t),
                                               lambda: C.fastconv_pool_runner(fc, s, x),
                                               ref, 1e-5)
            if fn:
                runners["fastconv"] = fn
            if ctx.ort:
                fn, errs["ort"] = _try_runner(
                    ctx, "onnxruntime pool", (s.name, t),
                    lambda: C.ort_pool_runner(ctx.onnx, ctx.ort, s, x, t), ref, 1e-5)
                if fn:
                    runners["ort"] = fn
            times = time_interleaved(runners, a.repeats, a.min_trial)
            res[s.name]["threads"][t] = summarise(times, errs, f"pool {s.name:<24} t={t}",
                                                  digits=3)
    ctx.result["pool"] = res


def render_pool(ctx):
    a = ctx.args
    shapes = pick(ctx, C.load_pool_shapes())
    res = ctx.result["pool"]
    for t in a.threads:
        head = ["pool", "op", "input", "MB moved", "fastconv ms", "fastconv GB/s",
                "ORT ms", "ORT GB/s", "fastconv/ORT"]
        rows = []
        for s in shapes:
            d = res[s.name]["threads"][t]
            fm = d.get("fastconv", {}).get("median_s")
            om = d.get("ort", {}).get("median_s")
            flag = "" if passed(d.get("fastconv"), 1e-5) else "!"
            ok = passed(d.get("fastconv"), 1e-5) and passed(d.get("ort"), 1e-5)
            rows.append([
                s.name, f"{s.op} {s.kernel}x{s.kernel}/s{s.stride}/p{s.padding}",
                "x".join(map(str, s.input_shape[1:])), f"{s.bytes_moved / 1e6:.1f}",
                f_num(fm * 1e3 if fm else None, 3) + flag,
                f_num(s.bytes_moved / fm * 1e-9 if fm else None),
                f_num(om * 1e3 if om else None, 3),
                f_num(s.bytes_moved / om * 1e-9 if om else None),
                f_ratio(om / fm if om and fm and ok else None)])
        say("")
        say(f"#### Pooling, batch 1, {t} thread{'s' if t > 1 else ''} "
            f"(GB/s = input read once + output written once)")
        say("")
        say(table(head, rows, left=3))


# ---------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    try:
        ncpu = len(os.sched_getaffinity(0))
    except AttributeError:
        ncpu = os.cpu_count() or 1
    p.add_argument("--quick", action="store_true",
                   help="3 repeats, 20 ms trials, 0.2 s peak runs (a smoke run)")
    p.add_argument("--threads", default=",".join(map(str, sorted({1, ncpu}))),
                   help="comma-separated thread counts (default: 1 and all cores)")
    p.add_argument("--repeats", type=int, default=None,
                   help="trials per implementation and shape (default 7, 3 with --quick)")
    p.add_argument("--sections", default="conv,gemm,pool",
                   help="which tables, comma-separated subset of conv,gemm,pool")
    p.add_argument("--only", default="",
                   help="comma-separated substrings: only the shapes whose name has one "
                        "(e.g. conv3,pointwise)")
    p.add_argument("--json", metavar="OUT.json", help="also write every trial to this file")
    a = p.parse_args(argv)
    try:
        a.threads = [int(v) for v in a.threads.split(",") if v.strip()]
    except ValueError:
        p.error(f"--threads: expected integers like 1,2, got {a.threads!r}")
    if not a.threads or min(a.threads) < 1:
        p.error("--threads: thread counts must be >= 1")
    a.only = [v.strip() for v in a.only.split(",") if v.strip()]
    a.sections = [v.strip() for v in a.sections.split(",") if v.strip()]
    if set(a.sections) - {"conv", "gemm", "pool"}:
        p.error(f"--sections: unknown {sorted(set(a.sections) - {'conv', 'gemm', 'pool'})}")
    if a.repeats is None:
        a.repeats = 3 if a.quick else 7
    if a.repeats < 1:
        p.error("--repeats must be >= 1")
    a.min_trial = 0.02 if a.quick else 0.05
    a.peak_seconds = 0.2 if a.quick else 0.5
    return a


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def measure_peaks(ctx, when):
    for t in ctx.args.threads:
        ps = [C.fastconv_fma_peak(t, ctx.args.peak_seconds) for _ in range(3)]
        ps = [p for p in ps if p]
        ctx.peak_runs.setdefault(t, {})[when] = ps
        progress(f"  FMA peak, {t} thread(s), {when}: "
                 + ", ".join(f"{p:.1f}" for p in ps) + " GFLOP/s")


def main(argv=None):
    a = parse_args(argv)
    fc, why = C.import_fastconv()
    if fc is None:
        sys.exit(f"speed_table: {why}")
    onnx, why_onnx = C.import_optional("onnx")
    ort, why_ort = C.import_optional("onnxruntime")
    if onnx is None or ort is None:
        ort = None
    ctx = Ctx(a, fc, onnx, ort)
    removed = os.environ.get(_REEXEC_MARK)
    if removed:
        progress(f"speed_table: re-executed without {removed} (OpenBLAS reads them at load)")
    try:
        info = fc.cpu_info()
    except Exception as e:
        info = {"error": str(e)}
    binfo = C.blas_info()
    load0 = loadavg()
    started = datetime.datetime.now().isoformat(timespec="seconds")

    # Measure everything first (progress on stderr), the FMA peak before and after, so
    # the roof is the best seen in this run; then print the markdown.
    measure_peaks(ctx, "start")
    if "conv" in a.sections:
        progress("conv layers ...")
        conv_section(ctx)
    if "gemm" in a.sections:
        progress("GEMMs ...")
        gemm_section(ctx)
    if "pool" in a.sections:
        progress("pools ...")
        pool_section(ctx)
    measure_peaks(ctx, "end")
    for t, runs in ctx.peak_runs.items():
        allp = runs.get("start", []) + runs.get("end", [])
        ctx.peaks[t] = max(allp) if allp else None
    load1 = loadavg()

    say("### fastconv speed tables")
    say("")
    say(f"- {started}; {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}")
    say(f"- fastconv `{fc.__file__}`, cpu_info `{info}`")
    say(f"- numpy {np.__version__}; onnxruntime "
        f"{ort.__version__ if ort else 'not available: ' + str(why_ort or why_onnx)}")
    if removed:
        say(f"- NumPy's OpenBLAS: this script re-executed itself without `{removed}`, so "
            f"OpenBLAS picks its own kernels for this CPU")
    else:
        say("- NumPy's OpenBLAS: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE were not set "
            "(no re-exec needed)")
    if binfo:
        for d in binfo:
            say(f"- threadpoolctl: {d.get('internal_api')} {d.get('version')}, kernel core "
                f"`{d.get('architecture')}`, threading {d.get('threading_layer')}, "
                f"{d.get('num_threads')} threads max, `{d.get('filepath')}`")
    else:
        say("- threadpoolctl not installed: OpenBLAS core unknown and NumPy threads not "
            "limited per thread count")
    say(f"- threads {a.threads}; {a.repeats} repeats of interleaved trials of >= "
        f"{a.min_trial * 1e3:.0f} ms; medians shown; `!` marks a result that failed its "
        f"check against NumPy")
    say(f"- load average (1/5/15 min) at start {load0}, at end {load1}")
    say("- measured FMA peak (fastconv._kernels.fma_peak, best of 3 runs at the start and "
        "3 at the end): " + "; ".join(
            f"{t} thread{'s' if t > 1 else ''}: **{f_num(p)} GFLOP/s** (start "
            + "/".join(f"{x:.0f}" for x in ctx.peak_runs[t].get("start", []))
            + ", end " + "/".join(f"{x:.0f}" for x in ctx.peak_runs[t].get("end", []))
            + ")"
            for t, p in ctx.peaks.items()))
    t1 = min(ctx.peaks)
    p1 = ctx.peaks[t1]
    for t, runs in ctx.peak_runs.items():
        allp = runs.get("start", []) + runs.get("end", [])
        low = min(allp) if allp else None
        if p1 and low and low < 0.85 * p1 * t / t1:
            say(f"- **warning**: a {t}-thread peak run gave only {low:.0f} GFLOP/s "
                f"({low / p1 * t1:.2f}x the best {t1}-thread one, ideal {t / t1:.0f}x): "
                f"other jobs took cores during this run (see the load average), so its "
                f"{t}-thread rows may not be representative; the interleaved ratios "
                f"suffer less than the absolute times")
    if any(d.get("internal_api") == "openblas" and str(d.get("architecture", "")).lower()
           in ("skylakex", "cooperlake", "sapphirerapids") for d in binfo):
        say("- NumPy's OpenBLAS runs AVX-512 kernels here; the FMA peak above is the AVX2 "
            "one. On cores with two 512-bit FMA pipes (most Xeons) the AVX-512 roof is "
            "twice as high; AMD Zen 4 splits 512-bit FMAs in two 256-bit halves, so there "
            "the roof is the same.")
    if "conv" in ctx.result:
        render_conv(ctx)
    if "gemm" in ctx.result:
        render_gemm(ctx)
    if "pool" in ctx.result:
        render_pool(ctx)

    say("")
    say("ms = median time of one call; GFLOP/s = 2*N*Co*Ho*Wo*(Ci/groups)*kh*kw / time "
        "(2*M*K*N for GEMM); % peak = of the measured FMA peak at the same thread count; "
        "best/ORT = ORT time / time of the faster fastconv algorithm (>1: fastconv "
        "faster); auto prepacked = fc.prepare_conv2d(algo='auto'), weights packed once as a "
        "compiled model and an ORT session do, prepacked/ORT likewise; fastconv/NumPy and "
        "fastconv/ORT likewise (peer time / fastconv time).")
    for i, n in enumerate(ctx.notes, 1):
        say(f"[{i}] {n}")

    if a.json:
        doc = {
            "meta": {"date": started, "cpu": cpu_model(), "platform": platform.platform(),
                     "fastconv_cpu_info": info, "numpy": np.__version__,
                     "onnxruntime": getattr(ort, "__version__", None),
                     "openblas_env_removed": removed, "blas": binfo,
                     "loadavg_start": load0, "loadavg_end": load1,
                     "args": dict(vars(a))},
            "fma_peak_gflops": ctx.peaks, "fma_peak_runs": ctx.peak_runs,
            "notes": ctx.notes, **ctx.result}
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1, default=str)
        progress(f"wrote {a.json}")


if __name__ == "__main__":
    main()
