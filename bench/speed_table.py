#!/usr/bin/env python
"""Print the README's speed tables (markdown) for fastconv on this machine.

    python bench/speed_table.py [--quick] [--threads 1,2] [--repeats N] [--json out.json]
                                [--sections conv,gemm,pool]

(a) conv: every row of fastconv/data/shapes/conv2d.csv at each thread count: median ms, GFLOP/s
    and % of the FMA peak measured in this run, for fastconv `direct` and `im2col`; ONNX
    Runtime ms; the ratio of speeds fastconv-best / ORT (>1 = fastconv faster); the
    speedup over the first thread count.
(b) gemm: the 9 VGG-16 im2col GEMMs (M = Co, K = Ci*9, N = H*W), fastconv._kernels.sgemm
    against numpy.matmul in float32 (OpenBLAS), with the geometric mean of the ratios.
(c) pool: fastconv/data/shapes/pool2d.csv, fastconv against ORT, ms, GB/s and ratio.

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
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402

import _tree  # noqa: E402  (the repository's fastconv first)

fc = _tree.import_fastconv()
import numpy as np  # noqa: E402
from fastconv import _kernels  # noqa: E402
from fastconv._bench_format import (fmt_ms, fmt_num as f_num, fmt_ratio as f_ratio,  # noqa: E402
                                    isa_label, md_table as table, threads_label)
from fastconv._bench_peers import (CONV_TOL, POOL_TOL, blas_info,  # noqa: E402
                                   blas_limits, conv_algorithms, fastconv_conv_runner,
                                   fastconv_pool_runner, import_optional, isa, max_rel_err,
                                   numpy_im2col_conv2d, numpy_pool2d, onnx_conv, onnx_pool,
                                   ort_runner)
from fastconv._bench_shapes import (gemm_shapes, load_conv_shapes,  # noqa: E402
                                    load_pool_shapes, make_conv_inputs, make_gemm_inputs,
                                    make_pool_input)
from fastconv.bench import parse_threads  # noqa: E402
from fastconv._bench_timing import (cpu_count, cpu_model, loadavg,  # noqa: E402
                                    measure_peaks as _measure_peaks, peak_warning,
                                    time_interleaved as _time_interleaved)

# How often each distinct shape occurs in VGG-16 (for the whole-stack line).
VGG16_MULTIPLICITY = {"vgg16_conv3_2": 2, "vgg16_conv4_2": 2, "vgg16_conv5_1": 3}
GEMM_TOL = 1e-3


# ---------------------------------------------------------------- timing
def time_interleaved(runners, repeats, min_trial, threads=1):
    """runners: {name: zero-arg callable}, each already warm. Returns {name: [seconds per
    call, the mean of each of `repeats` trials]}: the shared interleaved loop
    (fastconv._bench_timing) with a fixed number of rounds."""
    tm = _time_interleaved(runners, min_trial=min_trial, min_rounds=repeats,
                           max_rounds=repeats, max_calls=1000, threads=threads)
    return tm.trials


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
def f_ms(sec):
    """Seconds as milliseconds (n/a for None)."""
    return fmt_ms(None if sec is None else sec * 1e3)


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
    err = max_rel_err(out, ref) if ref is not None else None
    if err is not None and err > tol:
        ctx.note(what, f"WRONG RESULT, max relative error {err:.3g} > {tol}; timed anyway, "
                       f"marked !", where)
    return fn, err


def conv_section(ctx):
    a = ctx.args
    shapes = pick(ctx, load_conv_shapes())
    res = {s.name: {"shape": s.__dict__, "flops": s.flops, "threads": {}} for s in shapes}
    for s in shapes:
        x, w, b = make_conv_inputs(s)
        ref = numpy_im2col_conv2d(x, w, b, **s.kwargs())
        for t in a.threads:
            fc.set_num_threads(t)
            runners, errs = {}, {}
            for algo in conv_algorithms():   # packing on every call: fc.conv2d
                fn, errs[algo] = _try_runner(
                    ctx, f"fastconv conv2d algo={algo}", (s.name, t),
                    lambda algo=algo: fastconv_conv_runner(s, x, w, b, algo, prepared=False),
                    ref, CONV_TOL)
                if fn:
                    runners[algo] = fn
            fn, errs["prepared"] = _try_runner(
                ctx, "fastconv prepare_conv2d algo=auto", (s.name, t),
                lambda: fastconv_conv_runner(s, x, w, b, "auto"), ref, CONV_TOL)
            if fn:
                runners["prepared"] = fn
            if ctx.ort:
                fn, errs["ort"] = _try_runner(
                    ctx, "onnxruntime Conv", (s.name, t),
                    lambda: ort_runner(ctx.ort, onnx_conv(ctx.onnx, s, w, b), t, x),
                    ref, CONV_TOL)
                if fn:
                    runners["ort"] = fn
            times = time_interleaved(runners, a.repeats, a.min_trial, t)
            res[s.name]["threads"][t] = summarise(times, errs, f"conv {s.name:<16} t={t}")
    ctx.result["conv"] = res


def passed(d, tol):
    """True unless the row ran and failed its check against NumPy."""
    return not (d and d.get("max_rel_err") is not None and d["max_rel_err"] > tol)


def render_conv(ctx):
    a = ctx.args
    shapes = pick(ctx, load_conv_shapes())
    res = ctx.result["conv"]
    t0 = a.threads[0]

    def good(d, key):
        """Median of a row that passed its check (a wrong result is never 'best')."""
        return d.get(key, {}).get("median_s") if passed(d.get(key), CONV_TOL) else None

    algos = conv_algorithms()
    for t in a.threads:
        head = ["layer", "GFLOP"]
        for algo in algos:
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
            best = min([v for v in (good(d, a) for a in algos) if v], default=None)
            for algo in algos:
                m = d.get(algo, {}).get("median_s")
                g = s.flops / m * 1e-9 if m else None
                flag = "" if passed(d.get(algo), CONV_TOL) else "!"
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
                b0 = min([v for v in (good(d0, a) for a in algos) if v], default=None)
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
        say(f"#### Conv2d, batch 1, {threads_label(t)}, {isa_label(isa())} "
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
    a = ctx.args
    sgemm = _kernels.sgemm
    shapes = pick(ctx, gemm_shapes())
    res = {}
    for s in shapes:
        A, B = make_gemm_inputs(s)
        ref = np.matmul(A, B)
        res[s.name] = {"m": s.m, "k": s.k, "n": s.n, "flops": s.flops, "threads": {}}
        for t in a.threads:
            fc.set_num_threads(t)
            with blas_limits(t):
                runners, errs = {}, {}
                fn, errs["fastconv"] = _try_runner(ctx, "fastconv sgemm", (s.name, t),
                                                   lambda: (lambda: sgemm(A, B)), ref, GEMM_TOL)
                if fn:
                    runners["fastconv"] = fn
                np.matmul(A, B)
                runners["numpy"] = lambda: np.matmul(A, B)
                times = time_interleaved(runners, a.repeats, a.min_trial, t)
            res[s.name]["threads"][t] = summarise(times, errs, f"gemm {s.name:<16} t={t}")
    ctx.result["gemm"] = res


def render_gemm(ctx):
    if "gemm" not in ctx.result:
        return
    a = ctx.args
    shapes = pick(ctx, gemm_shapes())
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
        say(f"#### SGEMM on the VGG-16 im2col shapes, {threads_label(t)}, {isa_label(isa())} "
            f"(measured FMA peak {f_num(peak)} GFLOP/s)")
        say("")
        say(table(head, rows))
        g = gmean(ratios)
        say("")
        say(f"Geometric mean of fastconv/NumPy speed over {len(ratios)} shape(s): {f_ratio(g)}.")
        ctx.result.setdefault("gemm_summary", {})[t] = {"gmean_fastconv_over_numpy": g}


def pool_section(ctx):
    a, fc = ctx.args, ctx.fc
    shapes = pick(ctx, load_pool_shapes())
    res = {}
    for s in shapes:
        x = make_pool_input(s)
        ref = numpy_pool2d(x, s.op, s.kernel, s.stride, s.padding)
        res[s.name] = {"shape": s.__dict__, "bytes": s.bytes, "threads": {}}
        for t in a.threads:
            fc.set_num_threads(t)
            runners, errs = {}, {}
            fn, errs["fastconv"] = _try_runner(ctx, f"fastconv {s.op}_pool2d",
                                               (s.name, t),
                                               lambda: fastconv_pool_runner(s, x),
                                               ref, 1e-5)
            if fn:
                runners["fastconv"] = fn
            if ctx.ort:
                fn, errs["ort"] = _try_runner(
                    ctx, "onnxruntime pool", (s.name, t),
                    lambda: ort_runner(ctx.ort, onnx_pool(ctx.onnx, s), t, x), ref, POOL_TOL)
                if fn:
                    runners["ort"] = fn
            times = time_interleaved(runners, a.repeats, a.min_trial)
            res[s.name]["threads"][t] = summarise(times, errs, f"pool {s.name:<24} t={t}",
                                                  digits=3)
    ctx.result["pool"] = res


def render_pool(ctx):
    a = ctx.args
    shapes = pick(ctx, load_pool_shapes())
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
                "x".join(map(str, s.input_shape[1:])), f"{s.bytes / 1e6:.1f}",
                f_num(fm * 1e3 if fm else None, 3) + flag,
                f_num(s.bytes / fm * 1e-9 if fm else None),
                f_num(om * 1e3 if om else None, 3),
                f_num(s.bytes / om * 1e-9 if om else None),
                f_ratio(om / fm if om and fm and ok else None)])
        say("")
        say(f"#### Pooling, batch 1, {threads_label(t)}, {isa_label(isa())} "
            f"(GB/s = input read once + output written once)")
        say("")
        say(table(head, rows, left=3))


# ---------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    ncpu = cpu_count()
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
        a.threads = parse_threads(a.threads)
    except ValueError as e:
        p.error(str(e))
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


def peak_lines(ctx):
    """The header lines of the FMA peaks measured in the run, and a warning where a run
    fell far below the 1-thread best times the threads (the scripts share them)."""
    line = ("- measured FMA peak (fastconv._kernels.fma_peak, best of 3 runs at the start "
            "and 3 at the end): " + "; ".join(
                f"{threads_label(t)}: **{f_num(p)} GFLOP/s** (start "
                + "/".join(f"{x:.0f}" for x in ctx.peak_runs[t].get("start", []))
                + ", end " + "/".join(f"{x:.0f}" for x in ctx.peak_runs[t].get("end", []))
                + ")" for t, p in ctx.peaks.items()))
    runs = {t: r.get("start", []) + r.get("end", []) for t, r in ctx.peak_runs.items()}
    return [line] + ["- " + w for w in peak_warning(runs)]


def write_json(ctx, path, meta):
    """Every figure of the run (the scripts share the layout): meta (plus the machine,
    the ISA and the arguments), the peaks, the notes and the sections' results."""
    doc = {"meta": {**meta, "cpu": cpu_model(), "platform": platform.platform(),
                    "numpy": np.__version__, "isa": isa(),
                    "algorithms": conv_algorithms(), "args": dict(vars(ctx.args))},
           "fma_peak_gflops": ctx.peaks, "fma_peak_runs": ctx.peak_runs,
           "notes": ctx.notes, **ctx.result}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=str)
    progress(f"wrote {path}")


def measure_peaks(ctx, when):
    """FMA peak runs at every thread count; after the "end" runs ctx.peaks holds the
    best of each thread count's runs (the roof of the whole run)."""
    for t, ps in _measure_peaks(ctx.args.threads, ctx.args.peak_seconds).items():
        ctx.peak_runs.setdefault(int(t), {})[when] = ps
        progress(f"  FMA peak, {t} thread(s), {when}: "
                 + ", ".join(f"{p:.1f}" for p in ps) + " GFLOP/s")
    for t, runs in ctx.peak_runs.items():
        allp = runs.get("start", []) + runs.get("end", [])
        ctx.peaks[t] = max(allp) if allp else None


def main(argv=None):
    a = parse_args(argv)
    onnx, why_onnx = import_optional("onnx")
    ort, why_ort = import_optional("onnxruntime")
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
    binfo = blas_info()
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
    load1 = loadavg()

    say("### fastconv speed tables")
    say("")
    say(f"- {started}; {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}")
    say(f"- fastconv `{fc.__file__}`: **{isa_label(isa())}**, conv algorithms "
        f"{', '.join(conv_algorithms())}; cpu_info `{info}`")
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
    for line in peak_lines(ctx):
        say(line)
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
        write_json(ctx, a.json, {
            "date": started, "fastconv_cpu_info": info,
            "onnxruntime": getattr(ort, "__version__", None),
            "openblas_env_removed": removed, "blas": binfo,
            "loadavg_start": load0, "loadavg_end": load1})

if __name__ == "__main__":
    main()
