"""`fastconv bench`: the machine's limits, the layer suite and whole networks, against
the peers (ONNX Runtime, PyTorch, NumPy's BLAS), plus the plot and the per-layer tuner.

    fastconv bench [--quick] [--filter PAT[,PAT]] [--threads 1,2] [--json out.json]
                   [--plot report.png] [--peers onnxruntime,torch,numpy]
    fastconv bench plot results.json -o report.png [--threads N]
    fastconv bench --tune MODEL -o tuned.fcz [--batch N] [--threads N]

What is measured, in this order:

1. the FMA peak (``_kernels.fma_peak``, best of three runs per thread count, once at the
   start and once at the end) and the memory bandwidth (``_kernels.stream_triad``, a
   STREAM-like triad over arrays much larger than the last-level cache);
2. every case (a conv layer of ``fastconv/data/shapes/conv2d.csv``, a pool of
   ``fastconv/data/shapes/pool2d.csv``, a whole network) at every thread count: each
   implementation (one row per conv algorithm of ``fc.conv_algorithms()``, and each
   peer) is built, run twice (warm-up) and checked against a reference; an algorithm
   that cannot serve the layer is listed as n/a with its reason. Then all
   implementations of the case are timed in rounds of interleaved trials
   (fastconv._bench_timing.time_interleaved) until every median is stable (or the
   round/time budget is spent). Reported: min / median / p90 ms over all calls, GFLOP/s
   and % of the FMA peak (GB/s and % of the bandwidth for pools), and ``vs <peer>`` =
   peer median / fastconv median (> 1: fastconv faster).

Every table title and the JSON's ``meta.isa`` say which kernel family ran.
Progress goes to stderr between cases (tqdm or rich when installed, else plain lines),
never inside a timed region; the markdown tables go to stdout; ``--json`` writes every
figure (the fields are documented in bench/README.md).

The shapes are package data (fastconv._bench_shapes), so an installed fastconv runs the
whole layer suite; the repository's bench/ folder (found next to the package, under the
current directory, or given by ``--bench-dir`` / ``$FASTCONV_BENCH_DIR``) is needed only
for the ONNX exporter of the built networks' ONNX Runtime rows.
"""
from __future__ import annotations

import datetime
import fnmatch
import gc
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

import fastconv as fc
from fastconv import _kernels
from fastconv._bench_format import (NA, fmt_ms as _ms, fmt_num as _f, isa_label, md_table,
                                    threads_label)
from fastconv._bench_peers import (CANNOT_SERVE, CONV_TOL, NET_TOL, PEERS, POOL_TOL,
                                   Peers, blas_limits, conv_algorithms,
                                   fastconv_conv_runner, fastconv_pool_runner, isa,
                                   max_rel_err, numpy_conv_runner, numpy_im2col_conv2d,
                                   numpy_pool2d, onnx_conv, onnx_pool, ort_runner,
                                   torch_conv_runner, torch_model_runner,
                                   torch_pool_runner, version)
from fastconv._bench_shapes import (ConvShape, PoolShape, ShapesFileError,
                                    load_shapes, make_conv_inputs, make_pool_input)
from fastconv._bench_timing import (call_stats, cpu_count, cpu_model, loadavg,
                                    measure_bandwidth, measure_peaks, peak_warning,
                                    time_interleaved)

__all__ = ["Options", "Runner", "all_cases", "select", "markdown", "summary_markdown",
           "plot", "tune", "tune_table", "command", "add_arguments", "load_shapes",
           "torch_model_runner", "SCHEMA", "QUICK_CASES"]

SCHEMA = "fastconv-bench/1"
DATA_DIR = Path(__file__).resolve().parent / "data"
DIGITS_ONNX = DATA_DIR / "digits_vgg.onnx"

# The --quick subset (when no --filter is given): one case per family, small enough
# that the whole run stays under a minute on two cores.
QUICK_CASES = ("conv:vgg16_conv5_1", "conv:cifar_conv3_2", "conv:dilated3x3_d4",
               "conv:pointwise1x1_c512_14", "conv:conv7x7s2", "conv:odd_c100_c100_28",
               "pool:maxpool2x2_c512_28", "pool:maxpool2x2_c64_32",
               "net:cifar_vgg_b1", "net:digits_b1")


# ====================================================================== options

@dataclass
class Options:
    threads: List[int]
    quick: bool = False
    filters: List[str] = field(default_factory=list)
    peers: List[str] = field(default_factory=lambda: list(PEERS))
    min_trial: float = 0.05       # seconds of calls per trial
    min_rounds: int = 5
    max_rounds: int = 15
    stable_tol: float = 0.02      # relative change of the median between two rounds
    case_budget: float = 30.0     # seconds per (case, thread count) once min_rounds done
    max_calls: int = 200          # per trial
    peak_seconds: float = 0.3
    stream_mb: Optional[float] = None
    stream_repeats: int = 5
    bench_dir: Optional[str] = None
    progress: bool = True

    @classmethod
    def make(cls, threads=None, quick=False, **kw) -> "Options":
        o = cls(threads=list(threads or default_threads()), quick=quick, **kw)
        if quick:
            o.min_trial, o.min_rounds, o.max_rounds = 0.01, 3, 5
            o.case_budget, o.peak_seconds, o.stream_repeats = 2.0, 0.1, 3
        return o


def default_threads() -> List[int]:
    """1 .. all cores: powers of two and the core count."""
    n = cpu_count()
    out, t = [], 1
    while t < n:
        out.append(t)
        t *= 2
    return out + [n]


def parse_threads(text: str) -> List[int]:
    try:
        ts = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--threads: expected integers like 1,2, got {text!r}") from None
    if not ts or min(ts) < 1:
        raise ValueError(f"--threads: thread counts must be >= 1, got {text!r}")
    return sorted(set(ts))


# ====================================================================== environment

EXPORTER = "onnx_from_model.py"


def find_bench_dir(explicit: Optional[str] = None) -> Optional[Path]:
    """The repository's bench/ folder (it holds the ONNX exporter of the networks), or
    None; the layer shapes do not need it (they are package data)."""
    cands = [explicit, os.environ.get("FASTCONV_BENCH_DIR")]
    cands += [Path(__file__).resolve().parent.parent / "bench", Path.cwd() / "bench"]
    for c in cands:
        if c and (Path(c) / EXPORTER).is_file():
            return Path(c)
    if explicit:
        raise FileNotFoundError(f"{explicit}: no {EXPORTER} there")
    return None


def _time(runners: Dict[str, Callable], opts: "Options", threads: int):
    """time_interleaved with the options' trial length and stopping rule."""
    return time_interleaved(runners, min_trial=opts.min_trial, min_rounds=opts.min_rounds,
                            max_rounds=opts.max_rounds, stable_tol=opts.stable_tol,
                            budget=opts.case_budget, max_calls=opts.max_calls,
                            threads=threads)


# ====================================================================== cases

@dataclass
class Built:
    """A case ready to run: impl -> maker(threads) -> zero-arg callable; the reference
    output (None: the first fastconv impl's output serves) and the reasons of skips."""
    makers: Dict[str, Callable[[int], Callable]]
    ref: Optional[np.ndarray]
    tol: float
    skipped: Dict[str, str] = field(default_factory=dict)


@dataclass
class Case:
    id: str
    kind: str              # "conv", "pool" or "network"
    name: str
    desc: str
    batch: int
    flops: int             # pools: 0
    bytes: int             # least traffic (float32)
    ops: int               # conv/network: FLOPs; pool: window taps
    shape: dict
    build: Callable[["Runner"], Built]

    @property
    def intensity(self) -> float:
        return self.ops / self.bytes if self.bytes else 0.0


def conv_case(s: ConvShape) -> Case:
    def build(r: "Runner") -> Built:
        x, w, b = make_conv_inputs(s)
        ref = numpy_im2col_conv2d(x, w, b, **s.kwargs()) if s.groups == 1 else None
        case.shape["auto_algo"] = _kernels.conv2d_choose(
            s.input_shape, s.weight_shape, (s.stride,) * 2, (s.padding,) * 4,
            (s.dilation,) * 2, s.groups)
        makers, skipped = {}, {}
        for algo in conv_algorithms():
            try:   # weights packed once, as a compiled model (and an ORT session) does
                run = fastconv_conv_runner(s, x, w, b, algo)
                makers[algo] = lambda t, run=run: run
            except CANNOT_SERVE as e:
                skipped[algo] = f"{type(e).__name__}: {e}"
        p = r.peers
        if p.ort is not None:
            mb = onnx_conv(p.onnx, s, w, b)
            makers["onnxruntime"] = lambda t: ort_runner(p.ort, mb, t, x)
        if p.torch is not None:
            run_torch = torch_conv_runner(p.torch, s, x, w, b)
            makers["torch"] = lambda t: run_torch
        if p.numpy and s.groups == 1:
            run_np = numpy_conv_runner(s, x, w, b)
            makers["numpy"] = lambda t: run_np
        return Built(makers, ref, CONV_TOL, skipped)
    case = Case(f"conv:{s.name}", "conv", s.name, s.describe(), s.batch, s.flops, s.bytes,
                s.flops, dict(s.__dict__), build)
    return case


def pool_case(s: PoolShape) -> Case:
    def build(r: "Runner") -> Built:
        x = make_pool_input(s)
        ref = numpy_pool2d(x, s.op, s.kernel, s.stride, s.padding)
        run = fastconv_pool_runner(s, x)
        makers = {"fastconv": lambda t: run}
        p = r.peers
        if p.ort is not None:
            mb = onnx_pool(p.onnx, s)
            makers["onnxruntime"] = lambda t: ort_runner(p.ort, mb, t, x)
        if p.torch is not None:
            run_torch = torch_pool_runner(p.torch, s, x)
            makers["torch"] = lambda t: run_torch
        return Built(makers, ref, POOL_TOL)
    return Case(f"pool:{s.name}", "pool", s.name, s.describe(), s.batch, 0, s.bytes,
                s.ops, dict(s.__dict__), build)


NETWORKS = {
    # name: (title, builder, batches)
    "vgg16": ("VGG-16 224x224", lambda: fc.models.vgg16(), (1, 8)),
    "cifar_vgg": ("CIFAR VGG 32x32", lambda: fc.models.cifar_vgg(), (1, 64)),
    "digits": ("digits VGG 1x32x32 (fastconv/data/digits_vgg.onnx)",
               lambda: fc.load_onnx(str(DIGITS_ONNX)), (1, 64)),
}


def network_cases(models: Optional[Dict[str, Callable]] = None) -> List[Case]:
    """A case per network and batch; the model is built once per network and kept by
    the runner while its batches run."""
    out = []
    for net, (title, _, batches) in NETWORKS.items():
        for batch in batches:
            def build(r: "Runner", net=net, batch=batch) -> Built:
                model, onnx_bytes, why_ort = r.network(net)
                (in_name,) = model.input_names
                shape = (batch,) + tuple(model.input_shapes[in_name])
                x = np.random.default_rng(1).standard_normal(shape, dtype=np.float32)
                makers = {"fastconv": lambda t: (lambda: model(x))}
                skipped = {}
                p = r.peers
                if p.ort is not None:
                    if onnx_bytes is not None:
                        makers["onnxruntime"] = lambda t: ort_runner(p.ort, onnx_bytes, t, x)
                    else:
                        skipped["onnxruntime"] = why_ort
                if p.torch is not None:
                    try:
                        run = torch_model_runner(p.torch, model, x)
                        makers["torch"] = lambda t: run
                    except fc.UnsupportedOperatorError as e:
                        skipped["torch"] = str(e)
                return Built(makers, None, NET_TOL, skipped)
            out.append(Case(f"net:{net}_b{batch}", "network", f"{net}_b{batch}",
                            f"{title}, batch {batch}", batch, 0, 0, 0,
                            {"network": net, "batch": batch}, build))
    return out


def _network_work(case: Case, model) -> None:
    """Fill in a network case's FLOPs and least traffic once its model is built."""
    macs = int(model.summary(print_fn=None).totals["macs"])
    (in_name,) = model.input_names
    n_in = math.prod(model.input_shapes[in_name])
    n_out = math.prod(model.shapes[model.output_names[0]])
    n_par = sum(a.size for a in model.named_params().values())
    case.flops = case.ops = 2 * macs * case.batch
    case.bytes = 4 * (n_par + case.batch * (n_in + n_out))
    case.shape["macs_per_sample"] = macs
    case.shape["params"] = int(n_par)


def all_cases(shapes_folder=None) -> List[Case]:
    """Every case: a conv case per row of the conv shapes, a pool case per pool row (the
    package's files, or those in `shapes_folder`), then the networks. A missing shapes
    file raises ShapesFileError (a FileNotFoundError) naming it."""
    conv, pool = load_shapes(shapes_folder)
    return [conv_case(s) for s in conv] + [pool_case(s) for s in pool] + network_cases()


def select(cases: List[Case], filters: List[str], quick: bool) -> List[Case]:
    """Cases whose id (kind:name) contains a filter substring or matches a glob; with no
    filter, --quick takes QUICK_CASES and a full run takes everything."""
    if filters:
        def hit(cid):
            return any(fnmatch.fnmatchcase(cid, f) if any(ch in f for ch in "*?[")
                       else f in cid for f in filters)
        return [c for c in cases if hit(c.id)]
    if quick:
        return [c for c in cases if c.id in QUICK_CASES]
    return list(cases)


# ====================================================================== progress

class Progress:
    """Progress between cases on stderr: tqdm, else rich, else one line per case."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.n, self.enabled = total, 0, enabled
        self._bar = self._rich = None
        self.t0 = time.perf_counter()
        if not enabled:
            return
        try:
            from tqdm import tqdm
            self._bar = tqdm(total=total, file=sys.stderr, leave=False, unit="case")
            return
        except ImportError:
            pass
        try:
            from rich.console import Console
            from rich.progress import Progress as RichProgress
            self._rich = RichProgress(console=Console(stderr=True), transient=True)
            self._rich.start()
            self._task = self._rich.add_task("bench", total=total)
        except ImportError:
            self._rich = None

    def start(self, what: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_description_str(what)
        elif self._rich is not None:
            self._rich.update(self._task, description=what)
        else:
            print(f"[{self.n + 1}/{self.total}] {what} ({time.perf_counter() - self.t0:.0f} s)",
                  file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        elif self._rich is not None:
            self._rich.console.print(text, highlight=False, markup=False)
        else:
            print("  " + text, file=sys.stderr, flush=True)

    def advance(self) -> None:
        self.n += 1
        if self._bar is not None:
            self._bar.update(1)
        elif self._rich is not None:
            self._rich.advance(self._task)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._rich is not None:
            self._rich.stop()


# ====================================================================== the run

class Runner:
    def __init__(self, opts: Options):
        self.opts = opts
        self.peers = Peers(opts.peers)
        self.bench_dir = find_bench_dir(opts.bench_dir)
        self._net = {}           # the one network kept built: name -> (model, onnx, why)
        self.notes: List[str] = []

    def network(self, name):
        if name not in self._net:
            self._net.clear()    # one network at a time (VGG-16 is half a GB)
            gc.collect()
            model = NETWORKS[name][1]()
            onnx_bytes, why = None, None
            if self.peers.ort is not None:
                if name == "digits":
                    onnx_bytes = DIGITS_ONNX.read_bytes()
                else:
                    try:
                        onnx_bytes = self._export(model)
                    except Exception as e:
                        why = f"ONNX export failed ({type(e).__name__}: {e})"
            self._net[name] = (model, onnx_bytes, why)
        return self._net[name]

    def _export(self, model) -> bytes:
        """bench/onnx_from_model.py's exporter (the repository's bench/ folder)."""
        if self.bench_dir is None:
            raise FileNotFoundError(f"bench/{EXPORTER} not found (it is not installed "
                                    f"with the package: run from the repository or pass "
                                    f"--bench-dir)")
        name = "fastconv_onnx_from_model"
        mod = sys.modules.get(name)
        if mod is None:
            spec = importlib.util.spec_from_file_location(
                name, self.bench_dir / EXPORTER)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
        return mod.model_to_onnx(model, check=False).SerializeToString()

    # ------------------------------------------------------------------ one case
    def run_case(self, case: Case, machine: dict, prog: Progress) -> dict:
        opts = self.opts
        built = case.build(self)
        if case.kind == "network":
            _network_work(case, self._net[case.shape["network"]][0])
        rec = {"id": case.id, "kind": case.kind, "name": case.name, "desc": case.desc,
               "batch": case.batch, "flops": case.flops, "bytes": case.bytes,
               "ops": case.ops, "intensity": case.intensity, "shape": case.shape,
               "results": [], "skipped": [{"impl": k, "threads": None, "why": v}
                                          for k, v in built.skipped.items()]}
        for peer, why in self.peers.why.items():
            if peer in PEERS:
                rec["skipped"].append({"impl": peer, "threads": None, "why": why})
        for t in opts.threads:
            prog.start(f"{case.id} t={t}")
            self.peers.set_threads(t)
            with blas_limits(t):
                runners, errs = {}, {}
                ref = built.ref
                for impl, make in built.makers.items():
                    try:
                        fn = make(t)
                        out = fn()            # warm-up 1 (lazy init, first touch)
                        out = fn()            # warm-up 2
                    except Exception as e:
                        rec["skipped"].append({"impl": impl, "threads": t,
                                               "why": f"{type(e).__name__}: {e}"})
                        continue
                    if ref is None and impl not in PEERS:
                        ref = np.asarray(out, dtype=np.float64)
                        errs[impl] = 0.0
                    elif ref is not None:
                        errs[impl] = max_rel_err(out, ref)
                    runners[impl] = fn
                    del out
                if not runners:
                    prog.advance()
                    continue
                tm = _time(runners, opts, t)
                samples, rounds, stable = tm.samples, tm.rounds, tm.stable
            for impl, ts in samples.items():
                r = {"impl": impl, "peer": impl in PEERS, "threads": t, **call_stats(ts),
                     "rounds": rounds, "stable": stable, "max_rel_err": errs.get(impl),
                     "ok": errs.get(impl) is None or errs[impl] <= built.tol}
                sec = r["median_ms"] * 1e-3
                peak = machine["fma_peak_gflops"].get(str(t))
                bw = machine["bandwidth_gbs"].get(str(t))
                if case.flops:
                    r["gflops"] = case.flops / sec * 1e-9
                    r["pct_peak"] = 100 * r["gflops"] / peak if peak else None
                if case.bytes:
                    r["gbs"] = case.bytes / sec * 1e-9
                    r["pct_bandwidth"] = 100 * r["gbs"] / bw if bw else None
                rec["results"].append(r)
            meds = {r["impl"]: r["median_ms"] for r in rec["results"] if r["threads"] == t}
            for r in rec["results"]:
                if r["threads"] == t and not r["peer"]:
                    r["vs"] = {p: meds[p] / r["median_ms"] for p in PEERS if p in meds}
            prog.note(f"{case.id} t={t}: " + "  ".join(
                f"{k} {v:.3g} ms" for k, v in meds.items())
                + ("" if stable else f" (not stable after {rounds} rounds)"))
            for impl in list(runners):
                runners[impl] = None     # free ORT sessions before the next thread count
            gc.collect()
            prog.advance()
        return rec

    # ------------------------------------------------------------------ everything
    def run(self, cases: List[Case]) -> dict:
        opts = self.opts
        started = datetime.datetime.now().isoformat(timespec="seconds")
        load0 = loadavg()
        prog = Progress(len(cases) * len(opts.threads) + 2, opts.progress)
        try:
            prog.start("FMA peak")
            peak_start = measure_peaks(opts.threads, opts.peak_seconds)
            prog.advance()
            prog.start("memory bandwidth (triad)")
            mb = opts.stream_mb if opts.stream_mb is not None else \
                _kernels.stream_default_megabytes()
            bw = measure_bandwidth(opts.threads, mb, opts.stream_repeats)
            prog.advance()
            machine = {"fma_peak_gflops": {t: max(v) for t, v in peak_start.items()},
                       "fma_peak_runs": {t: {"start": v} for t, v in peak_start.items()},
                       "bandwidth_gbs": bw, "stream_megabytes_per_array": mb,
                       "stream_repeats": opts.stream_repeats,
                       "peak_seconds": opts.peak_seconds}
            prog.note("FMA peak GFLOP/s: " + ", ".join(
                f"{t} thr {v:.1f}" for t, v in machine["fma_peak_gflops"].items())
                + "; triad GB/s: " + ", ".join(f"{t} thr {v:.1f}" for t, v in bw.items()))
            recs = []
            for case in cases:
                recs.append(self.run_case(case, machine, prog))
            self._net.clear()
            peak_end = measure_peaks(opts.threads, opts.peak_seconds)
        finally:
            prog.close()
        for t, v in peak_end.items():
            machine["fma_peak_runs"][t]["end"] = v
            best = max(v + machine["fma_peak_runs"][t]["start"])
            if best > machine["fma_peak_gflops"][t]:
                # the roof is the best seen in the run: rescale the percentages
                machine["fma_peak_gflops"][t] = best
                for rec in recs:
                    for r in rec["results"]:
                        if str(r["threads"]) == t and r.get("gflops"):
                            r["pct_peak"] = 100 * r["gflops"] / best
        try:
            info = fc.cpu_info()
        except Exception as e:
            info = {"error": str(e)}
        return {
            "schema": SCHEMA,
            "meta": {"date": started, "finished":
                     datetime.datetime.now().isoformat(timespec="seconds"),
                     "cpu": cpu_model(), "logical_cpus": os.cpu_count(),
                     "platform": platform.platform(), "python": platform.python_version(),
                     "fastconv": getattr(fc, "__version__", None) or version("fastconv"),
                     "fastconv_file": fc.__file__,
                     "isa": isa(), "algorithms": conv_algorithms(),
                     "cpu_info": info, "versions": self.peers.versions(),
                     "loadavg_start": load0, "loadavg_end": loadavg(),
                     "threads": opts.threads, "quick": opts.quick,
                     "filters": opts.filters, "peers": opts.peers,
                     "bench_dir": str(self.bench_dir) if self.bench_dir else None,
                     "timing": {"min_trial_s": opts.min_trial, "min_rounds": opts.min_rounds,
                                "max_rounds": opts.max_rounds, "stable_tol": opts.stable_tol,
                                "case_budget_s": opts.case_budget},
                     "notes": self.notes},
            "machine": machine,
            "cases": recs,
        }


# ====================================================================== tables

KIND_TITLES = {"conv": "Conv layers", "pool": "Pooling", "network": "Whole networks"}


def result_isa(res: dict) -> str:
    """The kernel family of a saved result (older files: from cpu_info)."""
    meta = res["meta"]
    return meta.get("isa") or meta.get("cpu_info", {}).get("isa") or "?"


def result_algorithms(res: dict) -> List[str]:
    """The conv algorithms of a saved result: the engine's list at the time of the run,
    plus any algorithm that has rows (older files carry no list)."""
    algos = list(res["meta"].get("algorithms") or ["direct", "im2col"])
    for c in res["cases"]:
        for r in c["results"]:
            if c["kind"] == "conv" and not r["peer"] and r["impl"] not in algos:
                algos.append(r["impl"])
    return algos


def _unserved(c: dict, t: int) -> Dict[str, str]:
    """{fastconv impl: why} of the rows of case c that could not run at t threads."""
    return {s["impl"]: s["why"] for s in c["skipped"]
            if s["impl"] not in PEERS and s["threads"] in (None, t)}


def markdown(res: dict) -> str:
    """The result as markdown: machine lines, then per thread count a table per kind."""
    m, meta = res["machine"], res["meta"]
    v = meta["versions"]
    out = [f"- {meta['date']}; {meta['cpu']}, {meta['logical_cpus']} logical CPUs; "
           f"{meta['platform']}",
           f"- fastconv {meta.get('fastconv')}: **{isa_label(result_isa(res))}**, conv "
           f"algorithms {', '.join(result_algorithms(res))} "
           f"({meta['cpu_info'].get('compiler', '?')}); numpy {v.get('numpy')}; "
           f"onnxruntime {v.get('onnxruntime') or 'absent'}; torch {v.get('torch') or 'absent'}",
           f"- load average (1/5/15 min) at start {meta['loadavg_start']}, at end "
           f"{meta['loadavg_end']}",
           "- FMA peak (best of the runs at start and end): " + ", ".join(
               f"{t} thread(s) **{g:.1f} GFLOP/s**" for t, g in m["fma_peak_gflops"].items()),
           f"- triad bandwidth ({m['stream_megabytes_per_array']:.0f} MB per array): "
           + ", ".join(f"{t} thread(s) **{g:.1f} GB/s**" for t, g in m["bandwidth_gbs"].items())]
    runs = {t: r.get("start", []) + r.get("end", []) for t, r in m["fma_peak_runs"].items()}
    out += ["- " + w for w in peak_warning(runs)]
    out += [f"- note: {n}" for n in meta.get("notes", [])]
    out += ["", "### Summary: median ms side by side, the faster fastconv algorithm "
            "against each peer", summary_markdown(res), "",
            "### Every implementation: min / median / p90 over all timed calls"]
    label = isa_label(result_isa(res))
    for t in meta["threads"]:
        for kind, title in KIND_TITLES.items():
            rows = []
            for c in (c for c in res["cases"] if c["kind"] == kind):
                rs = [r for r in c["results"] if r["threads"] == t]
                peers = [p for p in PEERS if any(r["impl"] == p for r in rs)]
                for r in rs:
                    thr = ([_f(r.get("gbs")), _f(r.get("pct_bandwidth"))] if kind == "pool"
                           else [_f(r.get("gflops")), _f(r.get("pct_peak"))])
                    vs = ", ".join(f"{p} {r['vs'][p]:.2f}x" for p in peers
                                   if p in r.get("vs", {}))
                    rows.append([c["name"], c["desc"], r["impl"] + ("" if r["ok"] else " !"),
                                 _ms(r["min_ms"]), _ms(r["median_ms"]), _ms(r["p90_ms"]),
                                 *thr, vs])
                for impl, why in _unserved(c, t).items():
                    rows.append([c["name"], c["desc"], impl] + [NA] * 5 + [why])
            if not rows:
                continue
            unit = ["GB/s", "% bw"] if kind == "pool" else ["GFLOP/s", "% peak"]
            out += ["", f"#### {title}, {threads_label(t)}, {label}, every row", "",
                    md_table(["case", "shape", "impl", "min ms", "median ms", "p90 ms", *unit,
                              "fastconv vs peers"], rows, left=3)]
    skipped = sorted({f"{s['impl']}: {s['why']}" for c in res["cases"] for s in c["skipped"]})
    if skipped:
        out += ["", "Skipped (n/a): " + "; ".join(skipped)]
    out += ["", "vs = peer median / fastconv median (> 1: fastconv faster); `!` = the "
            "result failed its check against the reference; n/a = not measured (an "
            "algorithm that cannot serve the layer, or a peer that is absent)."]
    return "\n".join(out)


def summary_markdown(res: dict) -> str:
    """One line per case and thread count: fastconv's rows side by side with the peers,
    the faster fastconv algorithm and its ratio to each peer (the README's table)."""
    out = []
    peak, bw = res["machine"]["fma_peak_gflops"], res["machine"]["bandwidth_gbs"]
    label = isa_label(result_isa(res))
    for t in res["meta"]["threads"]:
        for kind, title in KIND_TITLES.items():
            recs = [c for c in res["cases"] if c["kind"] == kind]
            if not any(r["threads"] == t for c in recs for r in c["results"]):
                continue
            peers = [p for p in PEERS if any(r["impl"] == p for c in recs
                                              for r in c["results"])]
            mine = result_algorithms(res) if kind == "conv" else ["fastconv"]
            unit = "GB/s" if kind == "pool" else "GFLOP/s"
            head = ["case", "shape"] + [f"{m} ms" for m in mine] + [f"{p} ms" for p in peers]
            head += (["best", "auto"] if kind == "conv" else []) + [f"best {unit}",
                     "% bw" if kind == "pool" else "% peak"] + [f"vs {p}" for p in peers]
            rows = []
            for c in recs:
                rs = {r["impl"]: r for r in c["results"] if r["threads"] == t}
                if not rs:
                    continue
                ok = [m for m in mine if m in rs and rs[m]["ok"]]
                best = min(ok, key=lambda m: rs[m]["median_ms"]) if ok else None
                b = rs.get(best) if best else None
                row = [c["name"], c["desc"]]
                row += [_ms(rs[m]["median_ms"]) + ("" if rs[m]["ok"] else " !") if m in rs
                        else NA for m in mine]
                row += [_ms(rs[p]["median_ms"]) if p in rs else NA for p in peers]
                if kind == "conv":
                    row += [best or NA, c["shape"].get("auto_algo", "?")]
                key = ("gbs", "pct_bandwidth") if kind == "pool" else ("gflops", "pct_peak")
                row += [_f(b.get(key[0])) if b else NA, _f(b.get(key[1])) if b else NA]
                row += [f"{b['vs'][p]:.2f}x" if b and p in b.get("vs", {}) else NA
                        for p in peers]
                rows.append(row)
            roof = (f"triad {bw.get(str(t), 0):.1f} GB/s" if kind == "pool"
                    else f"FMA peak {peak.get(str(t), 0):.1f} GFLOP/s")
            out += ["", f"#### {title}, {threads_label(t)}, {label} ({roof})", "",
                    md_table(head, rows, left=2)]
    return "\n".join(out)


# ====================================================================== plot

# Algorithms without a colour here get matplotlib's next one.
IMPL_COLOURS = {"direct": "#1f77b4", "im2col": "#ff7f0e", "winograd": "#9467bd", "winograd2": "#e377c2",
                "fastconv": "#1f77b4", "onnxruntime": "#2ca02c", "torch": "#d62728",
                "numpy": "#7f7f7f"}


def plot(res: dict, out: str, threads: Optional[int] = None) -> str:
    """Draw the report PNG from saved results (matplotlib, optional dependency)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(f"fastconv bench plot needs matplotlib ({e}); "
                          f"pip install matplotlib") from None
    if res.get("schema") != SCHEMA:
        raise ValueError(f"not a fastconv bench result (schema {res.get('schema')!r}, "
                         f"expected {SCHEMA!r})")
    ts = res["meta"]["threads"]
    t = max(ts) if threads is None else threads
    if t not in ts:
        raise ValueError(f"no results at {t} threads (have {ts})")
    peak = res["machine"]["fma_peak_gflops"].get(str(t))
    bw = res["machine"]["bandwidth_gbs"].get(str(t))

    def rows(kind):
        out = []
        for c in res["cases"]:
            if c["kind"] == kind:
                rs = {r["impl"]: r for r in c["results"] if r["threads"] == t}
                if rs:
                    out.append((c, rs))
        return out

    conv, pool, net = rows("conv"), rows("pool"), rows("network")
    order = result_algorithms(res) + ["fastconv", *PEERS]
    n_panels = 2 + bool(pool) + bool(net)
    fig = plt.figure(figsize=(15, 4.2 * n_panels), dpi=72)
    gs = fig.add_gridspec(n_panels, 1)

    def bars(ax, items, key, line, line_label, ylabel, title):
        impls = [i for i in order if any(i in rs for _, rs in items)]
        width = 0.8 / max(1, len(impls))
        xs = np.arange(len(items))
        for k, impl in enumerate(impls):
            ys = [rs[impl].get(key) or 0 if impl in rs else 0 for _, rs in items]
            ax.bar(xs + (k - (len(impls) - 1) / 2) * width, ys, width, label=impl,
                   color=IMPL_COLOURS.get(impl))
        if line:
            ax.axhline(line, color="k", ls="--", lw=1, label=line_label)
        ax.set_xticks(xs)
        ax.set_xticklabels([c["name"] for c, _ in items], rotation=60, ha="right",
                           fontsize=7)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, ncol=len(impls) + 1, loc="upper right")
        ax.grid(axis="y", alpha=0.3)

    meta = res["meta"]
    head = (f"{meta['cpu']}, {isa_label(result_isa(res))}, {threads_label(t)}, "
            f"{meta['date']}, load {meta['loadavg_start']}")
    ax = fig.add_subplot(gs[0])
    bars(ax, conv, "gflops", peak, f"FMA peak {peak:.0f} GFLOP/s" if peak else None,
         "GFLOP/s", f"Conv layers: GFLOP/s by algorithm and peer — {head}")

    ax = fig.add_subplot(gs[1])
    if peak and bw:
        its = [c["intensity"] for c, _ in conv if c["intensity"] > 0] or [1.0]
        lo = min(min(its) / 3, peak / bw / 10)
        xs = np.logspace(math.log10(lo), math.log10(max(its) * 3), 200)
        ax.loglog(xs, np.minimum(peak, bw * xs), "k-", lw=1.2,
                  label=f"roofs: {peak:.0f} GFLOP/s, {bw:.1f} GB/s")
    for impl in order:
        pts = [(c["intensity"], rs[impl]["gflops"]) for c, rs in conv
               if impl in rs and rs[impl].get("gflops")]
        if pts:
            ax.scatter(*zip(*pts), s=18, label=impl, color=IMPL_COLOURS.get(impl),
                       alpha=0.8)
    ax.set_xlabel("arithmetic intensity (FLOP per byte of least traffic)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title("Roofline of the conv layers", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    k = 2
    if pool:
        ax = fig.add_subplot(gs[k])
        bars(ax, pool, "gbs", bw, f"triad {bw:.1f} GB/s" if bw else None, "GB/s",
             "Pooling: GB/s of least traffic")
        k += 1
    if net:
        ax = fig.add_subplot(gs[k])
        bars(ax, net, "gflops", peak, f"FMA peak {peak:.0f} GFLOP/s" if peak else None,
             "GFLOP/s", "Whole networks")
    fig.tight_layout()
    fig.savefig(out, dpi=72)
    plt.close(fig)
    return out


# ====================================================================== tune

def tune(model, batch: int = 1, threads: Optional[int] = None, opts: Optional[Options] = None,
         progress: bool = True) -> List[dict]:
    """Time each conv algorithm on every conv step of `model` (its compiled weights,
    shapes, padding and fused ReLU, at `batch` and `threads`), interleaved trial by trial
    as the benchmark does, and set the winner per layer with model.set_algo. Returns one
    record per conv layer: node, shape, {algo: median ms}, winner, what auto would pick."""
    from fastconv.plan import ConvStep
    t = threads or fc.get_num_threads()
    opts = opts or Options.make(threads=[t])
    fc.set_num_threads(t)
    steps = [s for s in model.plan.steps if isinstance(s, ConvStep)]
    prog = Progress(len(steps), progress)
    out = []
    rng = np.random.default_rng(0)
    try:
        for step in steps:
            node = step.nodes[0]
            prog.start(f"tune {node}")
            xs = (batch,) + tuple(step.x_shape1[1:])
            x = rng.standard_normal(xs, dtype=np.float32)
            auto = _kernels.conv2d_choose(xs, step.w_shape, step.stride, step.pads,
                                          step.dilation, step.groups)
            runners, why = {}, {}
            for algo in conv_algorithms():
                try:
                    blob, _ = _kernels.conv2d_pack(xs, step.weight, step.bias, step.stride,
                                                   step.pads, step.dilation, step.groups, algo)
                    # the step as it runs: with its fused max pool, if any
                    hw = _conv_out_hw(step, xs)
                    if step.maxpool2:
                        hw = (hw[0] // 2, hw[1] // 2)
                    y = np.empty((batch, step.w_shape[0]) + hw, np.float32)
                    ws = np.empty(max(1, _kernels.conv2d_run_workspace_bytes(
                        xs, blob, step.w_shape, step.stride, step.pads, step.dilation,
                        step.groups, t, maxpool2=step.maxpool2)), np.uint8)

                    def run(blob=blob, y=y, ws=ws):
                        _kernels.conv2d_run(x, blob, step.w_shape, step.stride, step.pads,
                                            step.dilation, step.groups, step.relu, t, out=y,
                                            workspace=ws, maxpool2=step.maxpool2)
                    run()
                    runners[algo] = run
                except CANNOT_SERVE as e:
                    why[algo] = f"{type(e).__name__}: {e}"
            tm = _time(runners, opts, t) if runners else None
            samples, rounds, stable = (tm.samples, tm.rounds, tm.stable) if tm else \
                ({}, 0, False)
            meds = {a: statistics.median(v) * 1e3 for a, v in samples.items()}
            winner = min(meds, key=meds.get) if meds else "auto"
            rec = {"node": node, "label": step.label, "input_shape": list(xs),
                   "weight_shape": list(step.w_shape), "stride": list(step.stride),
                   "pads": list(step.pads), "dilation": list(step.dilation),
                   "groups": step.groups, "median_ms": meds, "winner": winner,
                   "auto": auto, "rounds": rounds, "stable": stable, "unsupported": why}
            if len(meds) >= 2:      # the runner-up's time over the winner's
                lo, hi = sorted(meds.values())[:2]
                rec["margin"] = hi / lo
            out.append(rec)
            prog.note(f"{node}: " + "  ".join(f"{a} {m:.3g} ms" for a, m in meds.items())
                      + f" -> {winner} (auto: {auto})")
            prog.advance()
    finally:
        prog.close()
    for rec in out:
        if model.node(rec["node"]).layer.algo != rec["winner"]:
            model.set_algo(rec["node"], rec["winner"])
    return out


def _conv_out_hw(step, xs):
    kh, kw = step.w_shape[2:]
    t, l, b, r = step.pads
    ho = (xs[2] + t + b - step.dilation[0] * (kh - 1) - 1) // step.stride[0] + 1
    wo = (xs[3] + l + r - step.dilation[1] * (kw - 1) - 1) // step.stride[1] + 1
    return (ho, wo)


def tune_table(recs: List[dict], isa_name: Optional[str] = None) -> str:
    """The --tune records as markdown: a column per algorithm (n/a where it cannot serve
    the layer), the winner, its margin over the runner-up and the auto rule's pick."""
    algos = list(conv_algorithms())
    for r in recs:
        algos += [a for a in list(r["median_ms"]) + list(r.get("unsupported", {}))
                  if a not in algos]
    rows = []
    for r in recs:
        m = r["median_ms"]
        rows.append([r["node"], "x".join(map(str, r["input_shape"])),
                     "x".join(map(str, r["weight_shape"]))]
                    + [_ms(m.get(a)) for a in algos]
                    + [r["winner"], f"{_f(r.get('margin'), 2)}x",
                       r["auto"] + ("" if r["auto"] == r["winner"] else " (differs)")])
    return (f"{isa_label(isa_name or isa())}\n\n"
            + md_table(["layer", "input", "weight"] + [f"{a} ms" for a in algos]
                       + ["winner", "margin", "auto"], rows, left=3))


# ====================================================================== command line

def add_arguments(p) -> None:
    """The options of `fastconv bench` (cli.py adds the subcommand)."""
    p.add_argument("action", nargs="*", metavar="plot RESULTS.json",
                   help="`plot RESULTS.json -o report.png`: draw a saved result")
    p.add_argument("--quick", action="store_true",
                   help="short trials and few rounds; without --filter a subset of one case "
                        "per family (under a minute)")
    p.add_argument("--filter", default="", metavar="PAT[,PAT]",
                   help="cases whose id (conv:NAME, pool:NAME, net:NAME_bN) contains a "
                        "substring, or matches a glob")
    p.add_argument("--threads", dest="bench_threads", default=None, metavar="1,2",
                   help="thread counts (default: 1, 2, 4, ... and all cores; --tune and plot: "
                        "one count, default all cores / the largest measured)")
    p.add_argument("--peers", default=",".join(PEERS),
                   help="peers to compare with, when installed (default: %(default)s; "
                        "'' for none)")
    p.add_argument("--json", metavar="OUT.json", help="write every figure to this file")
    p.add_argument("--plot", metavar="OUT.png", help="also draw the report (matplotlib)")
    p.add_argument("--plot-threads", type=int, default=None, metavar="N",
                   help="--plot: the thread count drawn (default: the largest measured)")
    p.add_argument("--list", action="store_true", help="list the selected cases and stop")
    p.add_argument("--stream-mb", type=float, default=None,
                   help="MB per triad array (default: 4x the last-level cache over 3 "
                        "arrays, at least 64)")
    p.add_argument("--bench-dir", default=None,
                   help="the repository's bench/ folder (for the ONNX exporter of the "
                        "built networks' ONNX Runtime rows), if not found next to the "
                        "package or under the current directory")
    p.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    p.add_argument("--tune", metavar="MODEL",
                   help="time each conv algorithm per layer of MODEL (.fcz or .onnx), set "
                        "the winners and save the model to -o (native .fcz)")
    p.add_argument("--batch", type=int, default=1, help="--tune: batch size (default 1)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="plot: the PNG to write; --tune: the .fcz to write")


def _err(msg):
    from fastconv.cli import CliError
    return CliError(msg)


def command(args) -> int:
    """`fastconv bench ...` (called by fastconv.cli)."""
    if args.action:
        if args.action[0] != "plot" or len(args.action) != 2:
            raise _err(f"unknown arguments {args.action}: use `fastconv bench plot "
                       f"RESULTS.json -o OUT.png`, or options only")
        if not args.output:
            raise _err("plot: need -o OUT.png")
        path = args.action[1]
        if not os.path.isfile(path):
            raise _err(f"{path}: no such file")
        with open(path) as f:
            try:
                res = json.load(f)
            except json.JSONDecodeError as e:
                raise _err(f"{path}: not JSON ({e})") from None
        t = None if args.bench_threads is None else parse_threads(args.bench_threads)[-1]
        try:
            plot(res, args.output, t)
        except ImportError as e:
            raise _err(str(e)) from None
        print(f"wrote {args.output}", file=sys.stderr)
        return 0
    threads = parse_threads(args.bench_threads) if args.bench_threads else None
    if args.tune:
        return _command_tune(args, threads)
    opts = Options.make(threads=threads, quick=args.quick,
                        filters=[f.strip() for f in args.filter.split(",") if f.strip()],
                        peers=[p.strip() for p in args.peers.split(",") if p.strip()],
                        stream_mb=args.stream_mb, bench_dir=args.bench_dir,
                        progress=not args.no_progress)
    if args.plot:   # fail before measuring, not after
        try:
            import matplotlib  # noqa: F401
        except ImportError as e:
            raise _err(f"--plot needs matplotlib ({e})") from None
        if args.plot_threads is not None and args.plot_threads not in opts.threads:
            raise _err(f"--plot-threads {args.plot_threads} is not among the measured "
                       f"thread counts {opts.threads}")
    runner = Runner(opts)
    try:
        cases = all_cases()
    except ShapesFileError as e:    # an installation without its data: say so, stop
        raise _err(str(e)) from None
    if runner.bench_dir is None and runner.peers.ort is not None:
        runner.notes.append(f"bench/{EXPORTER} not found: the ONNX Runtime rows of the built "
                            f"networks (VGG-16, CIFAR VGG) are skipped (run from the "
                            f"repository or pass --bench-dir)")
    chosen = select(cases, opts.filters, opts.quick)
    if not chosen:
        raise _err(f"--filter {args.filter!r} selects no case; ids look like "
                   f"{', '.join(c.id for c in cases[:3])}")
    if args.list:
        for c in chosen:
            print(f"{c.id}\t{c.desc}")
        return 0
    res = runner.run(chosen)
    print(markdown(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        plot(res, args.plot, args.plot_threads)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def _command_tune(args, threads) -> int:
    from fastconv.cli import load_model_file
    if not args.output:
        raise _err("--tune: need -o OUT.fcz")
    if args.output.lower().endswith(".onnx"):
        raise _err("--tune: the choice is stored in fastconv's native format; write a .fcz")
    if args.batch < 1:
        raise _err("--tune: need --batch >= 1")
    model = load_model_file(args.tune)
    if len(model.input_names) != 1:
        raise _err(f"--tune: needs a single-input model, {args.tune} has "
                   f"{model.input_names}")
    t = threads[-1] if threads else fc.get_num_threads()
    opts = Options.make(threads=[t], quick=args.quick)
    recs = tune(model, args.batch, t, opts, progress=not args.no_progress)
    model.save(args.output)
    print(f"Tuned {args.tune} at batch {args.batch}, {t} thread(s):\n")
    print(tune_table(recs, isa()))
    changed = sum(r["winner"] != r["auto"] for r in recs)
    print(f"\n{len(recs)} conv layer(s), {changed} differ from the auto rule; "
          f"saved to {args.output}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"schema": SCHEMA + "/tune", "model": args.tune, "batch": args.batch,
                       "threads": t, "isa": isa(), "algorithms": conv_algorithms(),
                       "layers": recs, "loadavg": loadavg(),
                       "date": datetime.datetime.now().isoformat(timespec="seconds")},
                      f, indent=1)
    return 0
