#!/usr/bin/env python
"""Whole-network latency of fastconv against ONNX Runtime and OpenVINO (markdown tables).

    python bench/network_table.py [--quick] [--threads 1,2] [--repeats N]
                                  [--networks vgg16,cifar_vgg] [--batches 1,8 | vgg16=1,8]
                                  [--peers ort,openvino] [--openvino-default-precision]
                                  [--layers] [--no-rss] [--json out.json]

For each network (VGG-16 at 224x224, the CIFAR VGG at 32x32; `vgg16_features`, VGG-16's
conv stack without the classifier, on request), batch and thread count: the model is
built by fastconv's builder (seed 0), exported with bench/onnx_from_model.py to ONNX with
the same weights, and run by both engines on the same input. Both are warmed up and
their outputs compared (max |fastconv - ORT| / max |ORT|, must be <= 1e-4); then timed in
trials interleaved fastconv / ORT (the first one rotating each repeat, a 10 ms idle gap
before each trial, ORT without spinning, as bench/speed_table.py does), every call timed
on its own: median, min and p90 ms per call, fastconv/ORT = ORT median / fastconv median
(> 1: fastconv faster), GFLOP/s and % of the FMA peak measured in this run (FLOPs = 2 x
the summary's MACs x batch). Then `model.profile(x, repeats)`: the sum of fastconv's
per-step medians and the ratio network median / that sum (the issue asks for <= 1.05).

OpenVINO (optional: `pip install openvino==2025.4.0`, the `openvino` extra; --peers picks
the peers, default every one installed; an absent one is a "not installed" column, never
an error) reads the same ONNX bytes, reshaped to the static batch, and is compiled for the
CPU in float32: INFERENCE_PRECISION_HINT f32, because on a CPU with AMX-BF16 (this Xeon)
or AVX512-BF16 its default is bf16, another computation than fastconv's and ORT's float32;
INFERENCE_NUM_THREADS = the thread count, NUM_STREAMS 1, PERFORMANCE_HINT LATENCY, CPU
pinning off (fastconv and ORT do not pin either, and the three share the process),
hyper-threading off, any core type (fastconv._bench_peers.openvino_config says why). The
properties read back from the compiled model, and the precision of its convolution and
fully-connected kernels, are printed in the header. One infer request is made per
network, batch and thread count and reused: its input is bound once as a tensor sharing
the NumPy input's memory, each timed call is one `infer()` (the header gives the cost of
such a call on a one-node model). Its output is checked against fastconv's as ORT's is,
then it is timed in the same interleaved trials as the third engine: OV ms, fastconv/OV =
OV median / fastconv median (speed, > 1: fastconv faster) and fastconv/OV latency = its
inverse (the issue asks for <= 1). --openvino-default-precision also times OpenVINO at its
own default precision (bf16 here) in the same trials, reported apart as an informative
figure, not as a peer (its outputs are not float32-accurate).

Peak RSS of each engine is measured per network and batch in a fresh subprocess (this
script with --rss-worker), so the engines do not pollute each other: the peak RSS after
building / loading and one run, minus the peak right after the imports (NumPy and that
one engine) and making the input. The peak is /proc/self/status VmHWM, the peak RSS of
the process's address space, which is what ru_maxrss reports for a process that was not
forked from a bigger one: Linux carries ru_maxrss over fork and exec, so in a child of
this script it would start at the parent's size. fastconv twice: built by the builder
and loaded from its native .fcz file; ORT loading the .onnx file.

--layers adds a per-step table: fastconv's profile medians next to ORT's own per-node
times (ORT's profiler, a separate session), matched by node name.
"""
import os
import sys

# ---------------------------------------------------------------- RSS worker (first, so
# that its process imports nothing but NumPy and the one engine it measures)
if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--rss-worker":
    import json
    import resource

    def _rss_worker(engine, network, batch, threads, path):
        import numpy as np

        def status_kib(key):
            # VmHWM (peak RSS of this address space) rather than ru_maxrss: Linux carries
            # ru_maxrss over fork and exec, so a child of this big parent would start at
            # the parent's RSS; VmHWM starts afresh with the exec'd image.
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
            return None

        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        sys.path.insert(0, root)
        if engine == "ort":
            import onnxruntime as ort
            # fastconv's package (its extension) is loaded here too, for the shared
            # session options; that is before the baseline, so it is not counted
            from fastconv._bench_peers import ort_options
        elif engine == "openvino":
            import openvino as ov
            from fastconv._bench_peers import openvino_compile, openvino_runner
        else:
            import fastconv as fc
            fc.set_num_threads(threads)
        shape = json.loads(os.environ["FASTCONV_NET_INPUT_SHAPE"])
        x = np.random.default_rng(1).standard_normal([batch] + shape, dtype=np.float32)
        base = status_kib("VmHWM")
        base_now = status_kib("VmRSS")
        if engine == "ort":
            so = ort_options(ort, threads)
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            name = sess.get_inputs()[0].name
            y = sess.run(None, {name: x})[0]
        elif engine == "openvino":
            compiled = openvino_compile(ov, path, threads, x.shape)
            y = openvino_runner(ov, compiled, x)()
        elif engine == "fastconv-load":
            model = fc.load(path)
            y = model(x)
        else:
            model = build_network(fc, network)
            y = model(x)
        peak = status_kib("VmHWM")
        print(json.dumps({"baseline_kib": base, "baseline_vmrss_kib": base_now,
                          "peak_kib": peak, "after_vmrss_kib": status_kib("VmRSS"),
                          "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                          "out_shape": list(y.shape)}))


import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

BENCH = Path(__file__).resolve().parent


# ---------------------------------------------------------------- networks
def _vgg16_features(fc):
    """VGG-16's 13 convs and 5 poolings (features.0 .. features.30), no classifier."""
    full = fc.models.vgg16()
    nodes = [n for n in full.nodes if n.name.startswith("features.")]
    return fc.Model(nodes, dict(full.input_shapes), [nodes[-1].name], name="vgg16_features")


NETWORKS = {
    "vgg16": {"title": "VGG-16 224x224", "batches": (1, 8),
              "build": lambda fc: fc.models.vgg16()},
    "cifar_vgg": {"title": "CIFAR VGG 32x32", "batches": (1, 64),
                  "build": lambda fc: fc.models.cifar_vgg()},
    "vgg16_features": {"title": "VGG-16 conv stack 224x224", "batches": (1, 8),
                       "build": _vgg16_features},
}


def build_network(fc, name):
    return NETWORKS[name]["build"](fc)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--rss-worker":
    _e, _n, _b, _t = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    _rss_worker(_e, _n, _b, _t, sys.argv[6] if len(sys.argv) > 6 else None)
    sys.exit(0)


def _load(name, filename):
    """A bench/ file as a module (bench/ is no package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / filename)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


ST = _load("fastconv_speed_table", "speed_table.py")   # the scripts' header, notes, peaks
fc = ST.fc
np = ST.np
EXPORT = _load("fastconv_onnx_from_model", "onnx_from_model.py")
from fastconv._bench_format import isa_label, threads_label  # noqa: E402
from fastconv._bench_peers import (OPENVINO_VERSION, import_optional, isa,  # noqa: E402
                                   openvino_compile, openvino_config, openvino_properties,
                                   openvino_runner, ort_options)
from fastconv.bench import parse_threads  # noqa: E402
from fastconv._bench_timing import (BLAS_SETTLE_S, call_stats, cpu_count,  # noqa: E402
                                    cpu_flags, cpu_model, loadavg, time_interleaved)

CHECK_TOL = 1e-4          # fastconv against ORT / OpenVINO, relative to the output's scale
STEP_RATIO_MAX = 1.05     # the issue: network time within 5% of the sum of step times
ORT_RATIO_MIN = 0.9       # the issue: at least 0.9x ORT's speed on each network
OV_LATENCY_MAX = 1.0      # issue 7: fastconv's latency at most OpenVINO's where installed
PEER_NAMES = ("ort", "openvino")      # --peers
OV_DEFAULT = "openvino_default"       # the informative run at OpenVINO's own precision
MAX_CALLS = 1000
progress, say, table = ST.progress, ST.say, ST.table
f_ms, f_num, f_ratio = ST.f_ms, ST.f_num, ST.f_ratio


# ---------------------------------------------------------------- timing
def time_calls(runners, est, repeats, min_trial):
    """The shared interleaved loop (fastconv._bench_timing) with `repeats` rounds, every
    call timed on its own. runners: {name: zero-arg callable}, warm; est: {name: seconds
    per call}. Returns {name: {"calls": [s, ...], "trials": [mean s per call of each
    trial], "calls_per_trial": n}}."""
    tm = time_interleaved(runners, min_trial=min_trial, min_rounds=repeats,
                          max_rounds=repeats, max_calls=MAX_CALLS, est=est)
    return {n: {"calls": tm.samples[n], "trials": tm.trials[n],
                "calls_per_trial": tm.calls_per_trial[n]} for n in runners}


def stats(samples):
    c = call_stats(samples)
    return {"median_s": c["median_ms"] / 1e3, "min_s": c["min_ms"] / 1e3,
            "p90_s": c["p90_ms"] / 1e3, "n": c["calls"]}


def warm(fn, times=2):
    """Run fn `times` times; (last output, seconds of the last call)."""
    out, dt = None, None
    for _ in range(times):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
    return out, dt


# ---------------------------------------------------------------- ORT per-node times
def ort_node_times(ort, proto_bytes, threads, feed, runs):
    """{ORT node name: [µs per run]} from ORT's profiler on a separate session."""
    so = ort_options(ort, threads)
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.gettempdir(), "fastconv_net_ortprof")
    sess = ort.InferenceSession(proto_bytes, so, providers=["CPUExecutionProvider"])
    sess.run(None, feed)
    path = sess.end_profiling()      # drop the warm-up run's events
    os.unlink(path)
    so.enable_profiling = True
    sess = ort.InferenceSession(proto_bytes, so, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        sess.run(None, feed)
    path = sess.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.unlink(path)
    per = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            per.setdefault(e["name"][:-len("_kernel_time")], []).append(e["dur"])
    return per


def match_ort_nodes(model, per_node):
    """{fastconv step label: ORT µs per run (median)}; ORT node names are the ONNX node
    names, with "_nchwc" (layout transform) and "fused " (Conv+Relu, Gemm+Relu) added;
    a fused node carries the name of the node it ends with. Unmatched nodes (ORT's
    layout reorders, Flatten) go to "(other ORT nodes)"."""
    owner = {}
    for step in model.plan.steps:
        for n in step.nodes:
            owner[n] = step.label
    out = {}
    for name, durs in per_node.items():
        base = name
        if base.startswith("fused "):
            base = base[len("fused "):]
        if base.endswith("_nchwc"):
            base = base[:-len("_nchwc")]
        label = owner.get(base, "(other ORT nodes)")
        out[label] = out.get(label, 0.0) + statistics.median(durs)
    return out


# ---------------------------------------------------------------- RSS
def measure_rss(ctx, name, batch, threads, files, input_shape):
    env = dict(os.environ, FASTCONV_NET_INPUT_SHAPE=json.dumps(list(input_shape)))
    res = {}
    jobs = [("fastconv-build", None), ("fastconv-load", files["fcz"]),
            ("ort", files["onnx"]), ("openvino", files["onnx"])]
    for engine, path in jobs:
        if (engine == "ort" and not ctx.ort) or (engine == "openvino" and not ctx.ov):
            continue
        cmd = [sys.executable, str(Path(__file__).resolve()), "--rss-worker", engine, name,
               str(batch), str(threads)] + ([str(path)] if path else [])
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if p.returncode != 0:
                raise RuntimeError(p.stderr.strip().splitlines()[-1] if p.stderr.strip()
                                   else f"exit {p.returncode}")
            d = json.loads(p.stdout.strip().splitlines()[-1])
            d["peak_above_baseline_mib"] = (d["peak_kib"] - d["baseline_kib"]) / 1024
            res[engine] = d
        except Exception as e:
            ctx.note(f"RSS {engine}", f"{type(e).__name__}: {e}", (f"{name} b{batch}", threads))
    progress(f"  RSS {name} b{batch}: " + "  ".join(
        f"{k} {v['peak_above_baseline_mib']:.0f} MiB" for k, v in res.items()))
    return res


# ---------------------------------------------------------------- one network
def run_network(ctx, name):
    a, fc, ort = ctx.args, ctx.fc, ctx.ort
    info = NETWORKS[name]
    progress(f"{name}: building ...")
    t0 = time.perf_counter()
    model = build_network(fc, name)
    build_s = time.perf_counter() - t0
    (in_name,) = model.input_names
    in_shape = model.input_shapes[in_name]
    summ = model.summary(print_fn=None)
    macs = int(summ.totals["macs"])
    res = {"title": info["title"], "input_shape": list(in_shape), "macs": macs,
           "params": int(summ.totals["params"]), "build_s": build_s, "batches": {}}
    proto_bytes = None
    if ort or ctx.ov:
        progress(f"{name}: exporting to ONNX ...")
        proto = EXPORT.model_to_onnx(model, check=False)
        proto_bytes = proto.SerializeToString()
        del proto
    # --quick: only the smallest default batch (VGG-16 at batch 8 takes seconds per call)
    batches = a.batches.get(name) or list(info["batches"])[:1 if a.quick else None]
    tmp = tempfile.mkdtemp(prefix="fastconv_net_")
    files = {"onnx": os.path.join(tmp, f"{name}.onnx"), "fcz": os.path.join(tmp, f"{name}.fcz")}
    try:
        if a.rss:
            model.save(files["fcz"])
            if proto_bytes is not None and (ort or ctx.ov):
                with open(files["onnx"], "wb") as f:
                    f.write(proto_bytes)
        for batch in batches:
            x = np.random.default_rng(1).standard_normal((batch,) + tuple(in_shape),
                                                         dtype=np.float32)
            bsum = model.summary(print_fn=None, batch=batch).totals
            rb = res["batches"][batch] = {
                "flops": 2 * macs * batch, "arena_bytes": int(bsum["arena_bytes"]),
                "workspace_bytes": int(bsum["workspace_bytes"]),
                "packed_bytes": int(bsum["packed_bytes"]), "threads": {}}
        for t in a.threads:
            fc.set_num_threads(t)
            sess = None
            if ort:
                progress(f"{name}: ORT session, {t} thread(s) ...")
                sess = ort.InferenceSession(proto_bytes, ort_options(ort, t),
                                            providers=["CPUExecutionProvider"])
            for batch in batches:
                ovc = {}
                if ctx.ov:
                    progress(f"{name}: OpenVINO, batch {batch}, {t} thread(s) ...")
                    precs = ["f32"] + ([None] if a.ov_default_precision else [])
                    for prec, key in zip(precs, ("openvino", OV_DEFAULT)):
                        ovc[key] = openvino_compile(ctx.ov, proto_bytes, t,
                                                    (batch,) + tuple(in_shape), prec)
                res["batches"][batch]["threads"][t] = run_one(
                    ctx, name, model, sess, proto_bytes, in_name, in_shape, batch, t, ovc)
                del ovc
            del sess
        if a.rss:
            for batch in batches:
                res["batches"][batch]["rss"] = measure_rss(
                    ctx, name, batch, a.rss_threads, files, in_shape)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ctx.result.setdefault("networks", {})[name] = res
    return res


def run_one(ctx, name, model, sess, proto_bytes, in_name, in_shape, batch, t, ovc=None):
    """One network, batch and thread count: fastconv, and the ORT session `sess` and the
    OpenVINO compiled models `ovc` ({"openvino": f32, OV_DEFAULT: its own precision})
    that are given, checked against fastconv and timed in the same interleaved trials."""
    a = ctx.args
    where = (f"{name} b{batch}", t)
    x = np.random.default_rng(1).standard_normal((batch,) + tuple(in_shape), dtype=np.float32)
    feed = {in_name: x}
    runners, est, d = {}, {}, {"batch": batch}
    y_fc, est["fastconv"] = warm(lambda: model(x), a.warmups)
    runners["fastconv"] = lambda: model(x)
    if sess is not None:
        y_ort, est["ort"] = warm(lambda: sess.run(None, feed)[0], a.warmups)
        runners["ort"] = lambda: sess.run(None, feed)[0]
        err = EXPORT.max_rel_diff(y_fc, y_ort)
        d["max_rel_diff"] = err
        if not err <= CHECK_TOL:
            ctx.note("fastconv vs ORT", f"outputs differ: max relative difference "
                                        f"{err:.3g} > {CHECK_TOL}; timed anyway, marked !",
                     where)
    for key, compiled in (ovc or {}).items():
        run = openvino_runner(ctx.ov, compiled, x)
        y_ov, est[key] = warm(run, a.warmups)
        runners[key] = run
        err = EXPORT.max_rel_diff(y_fc, y_ov)
        d[f"max_rel_diff_{key}"] = err
        d[f"{key}_properties"] = openvino_properties(compiled)
        if key == "openvino" and not err <= CHECK_TOL:
            ctx.note("fastconv vs OpenVINO", f"outputs differ: max relative difference "
                                             f"{err:.3g} > {CHECK_TOL}; timed anyway, "
                                             f"marked !", where)
    in_order = {}
    plan = model.plan
    if a.in_order and hasattr(plan, "profile"):
        # every step once, in network order, timed one by one (what model.run does, plus
        # a clock read between steps), interleaved with the two engines' trials
        def steps_pass():
            for label, ts in plan.profile(feed, batch, 1).items():
                in_order.setdefault(label, []).extend(ts)
        _, est["steps"] = warm(steps_pass, 1)
        in_order.clear()
        runners["steps"] = steps_pass
    time.sleep(BLAS_SETTLE_S)   # let any worker pool left spinning by the setup sleep
    times = time_calls(runners, est, a.repeats, a.min_trial)
    if in_order:
        times.pop("steps")
        d["steps_in_order_ms"] = {k: statistics.median(v) for k, v in in_order.items()}
        d["steps_in_order_sum_s"] = sum(d["steps_in_order_ms"].values()) / 1e3
    for k, v in times.items():
        d[k] = {**stats(v["calls"]), "calls_per_trial": v["calls_per_trial"],
                "trials_s": v["trials"]}
    for key in ("openvino", OV_DEFAULT):
        if key in d:
            # speed: > 1 fastconv faster; latency: <= 1 is issue 7's bound
            d[f"fastconv_over_{key}_speed"] = d[key]["median_s"] / d["fastconv"]["median_s"]
            d[f"fastconv_over_{key}_latency"] = (d["fastconv"]["median_s"]
                                                 / d[key]["median_s"])
    prof = model.profile(x, a.profile_repeats)
    d["steps_ms"] = prof
    d["steps_sum_s"] = sum(prof.values()) / 1e3
    d["net_over_steps"] = d["fastconv"]["median_s"] / d["steps_sum_s"]
    if "steps_in_order_sum_s" in d:
        d["net_over_steps_in_order"] = d["fastconv"]["median_s"] / d["steps_in_order_sum_s"]
    if a.layers and sess is not None:
        per = ort_node_times(ctx.ort, proto_bytes, t, feed, a.profile_repeats)
        d["ort_steps_ms"] = {k: v / 1e3 for k, v in match_ort_nodes(model, per).items()}
    ST.progress(f"  {name} b{batch} t={t}: fastconv {d['fastconv']['median_s'] * 1e3:.2f} ms"
                + (f", ORT {d['ort']['median_s'] * 1e3:.2f} ms" if "ort" in d else "")
                + (f", OpenVINO {d['openvino']['median_s'] * 1e3:.2f} ms"
                   if "openvino" in d else "")
                + f", sum of steps {d['steps_sum_s'] * 1e3:.2f} ms")
    return d


# ---------------------------------------------------------------- rendering
def _pct(g, peak):
    return f_num(100 * g / peak if g and peak else None)


def render_speed(ctx):
    a = ctx.args
    nets = ctx.result.get("networks", {})
    t0 = a.threads[0]
    for t in a.threads:
        peak = ctx.peaks.get(t)
        head = ["network", "batch", "GFLOP", "fastconv ms", "min", "p90", "GFLOP/s",
                "% peak", "ORT ms", "min", "p90", "ORT GFLOP/s", "ORT % peak",
                "fastconv/ORT", "fastconv/ORT of the mins", "OV ms", "OV min", "OV p90",
                "fastconv/OV", "fastconv/OV latency", "Σ steps ms", "network/Σ steps",
                "Σ steps in order ms", "network/Σ in order", "max rel diff",
                "OV max rel diff"]
        if t != t0:
            head += [f"fastconv speedup vs {t0}T", f"ORT speedup vs {t0}T",
                     f"OV speedup vs {t0}T"]
        rows, slow, loose, loose_io, ov_slow = [], [], [], [], []
        for name, r in nets.items():
            for batch, rb in r["batches"].items():
                d = rb["threads"].get(t)
                if d is None:
                    continue
                fl = rb["flops"]
                fm = d["fastconv"]["median_s"]
                o = d.get("ort")
                om = o["median_s"] if o else None
                bad = d.get("max_rel_diff") is not None and not d["max_rel_diff"] <= CHECK_TOL
                ratio = om / fm if om and not bad else None
                g_fc, g_ort = fl / fm * 1e-9, (fl / om * 1e-9 if om else None)
                ov = ov_cells(ctx, d)
                row = [r["title"], batch, f"{fl / 1e9:.1f}",
                       f_ms(fm) + ("!" if bad else ""), f_ms(d["fastconv"]["min_s"]),
                       f_ms(d["fastconv"]["p90_s"]), f_num(g_fc), _pct(g_fc, peak),
                       f_ms(om), f_ms(o["min_s"] if o else None),
                       f_ms(o["p90_s"] if o else None), f_num(g_ort), _pct(g_ort, peak),
                       f_ratio(ratio),
                       f_ratio(o["min_s"] / d["fastconv"]["min_s"] if o and not bad else None),
                       *ov["cells"],
                       f_ms(d["steps_sum_s"]), f"{d['net_over_steps']:.3f}",
                       f_ms(d.get("steps_in_order_sum_s")),
                       f_num(d.get("net_over_steps_in_order"), 3),
                       "n/a" if d.get("max_rel_diff") is None else f"{d['max_rel_diff']:.1e}",
                       ov["diff"]]
                if t != t0:
                    d0 = rb["threads"].get(t0)
                    o0 = d0.get("ort") if d0 else None
                    v0 = d0.get("openvino") if d0 else None
                    vm = d.get("openvino", {}).get("median_s")
                    row += [f_ratio(d0["fastconv"]["median_s"] / fm if d0 else None),
                            f_ratio(o0["median_s"] / om if o0 and om else None),
                            f_ratio(v0["median_s"] / vm if v0 and vm else None)]
                rows.append(row)
                if ov["latency"] is not None and ov["latency"] > OV_LATENCY_MAX:
                    ov_slow.append(f"{r['title']} b{batch} ({ov['latency']:.2f}x)")
                if ratio is not None and ratio < ORT_RATIO_MIN:
                    slow.append(f"{r['title']} b{batch} ({ratio:.2f}x)")
                if d["net_over_steps"] > STEP_RATIO_MAX:
                    loose.append(f"{r['title']} b{batch} ({d['net_over_steps']:.3f})")
                io = d.get("net_over_steps_in_order")
                if io is not None and io > STEP_RATIO_MAX:
                    loose_io.append(f"{r['title']} b{batch} ({io:.3f})")
        say("")
        say(f"#### Whole networks, {threads_label(t)}, {isa_label(isa())} "
            f"(measured FMA peak {f_num(peak)} GFLOP/s)")
        say("")
        say(table(head, rows, left=1))
        say("")
        say(f"fastconv below {ORT_RATIO_MIN}x ORT's speed: "
            + (", ".join(slow) if slow else "none") + f". Network time above "
            f"{STEP_RATIO_MAX} x the sum of its step times (model.profile): "
            + (", ".join(loose) if loose else "none") + "; above "
            f"{STEP_RATIO_MAX} x the sum of the in-order step times: "
            + (", ".join(loose_io) if loose_io else "none") + ".")
        if ctx.ov:
            say(f"fastconv latency above {OV_LATENCY_MAX:g} x OpenVINO's (issue 7): "
                + (", ".join(ov_slow) if ov_slow else "none") + ".")


def ov_cells(ctx, d):
    """The OpenVINO cells of a row of the speed table: {"cells": [OV ms, min, p90,
    fastconv/OV, fastconv/OV latency], "diff": max rel diff, "latency": the float or
    None}; when OpenVINO was not run, the first cell says why ("not installed")."""
    v = d.get("openvino")
    if v is None:
        why = ctx.ov_status if not ctx.ov else "not run"
        return {"cells": [why, "", "", "n/a", "n/a"], "diff": "n/a", "latency": None}
    err = d.get("max_rel_diff_openvino")
    bad = err is not None and not err <= CHECK_TOL
    fm, vm = d["fastconv"]["median_s"], v["median_s"]
    return {"cells": [f_ms(vm) + ("!" if bad else ""), f_ms(v["min_s"]), f_ms(v["p90_s"]),
                      f_ratio(None if bad else vm / fm),
                      f_ratio(None if bad else fm / vm)],
            "diff": "n/a" if err is None else f"{err:.1e}",
            "latency": None if bad else fm / vm}


def render_ov_default(ctx):
    """The informative table of OpenVINO at its own default precision (bf16 on a CPU
    with AMX or AVX512-BF16): apart from the peers, as its outputs are not float32's."""
    rows = []
    for name, r in ctx.result.get("networks", {}).items():
        for batch, rb in r["batches"].items():
            for t, d in rb["threads"].items():
                v = d.get(OV_DEFAULT)
                if v is None:
                    continue
                props = d.get(f"{OV_DEFAULT}_properties", {})
                f32 = d.get("openvino", {}).get("median_s")
                rows.append([r["title"], batch, t, f_ms(v["median_s"]), f_ms(f32),
                             f_ratio(f32 / v["median_s"] if f32 else None),
                             f_ratio(v["median_s"] / d["fastconv"]["median_s"]),
                             props.get("INFERENCE_PRECISION_HINT", "?"),
                             _precisions_text(props.get("runtime_precisions")),
                             _precisions_text(props.get("runtime_primitives")),
                             f"{d[f'max_rel_diff_{OV_DEFAULT}']:.1e}"])
    if not rows:
        return
    say("")
    say("#### Informative, not a peer: OpenVINO at its default inference precision")
    say("")
    say(table(["network", "batch", "threads", "OV default ms", "OV f32 ms",
               "OV f32 / OV default", "fastconv/OV default", "precision hint in effect",
               "kernel precisions", "kernels", "max rel diff vs fastconv"], rows, left=1))
    say("")
    say("Timed in the same interleaved trials as the table above, compiled with the same "
        "config except INFERENCE_PRECISION_HINT (left to OpenVINO). Not float32: on a CPU "
        "with AMX-BF16 the convolutions run in bf16, hence the output differences; not "
        "comparable with fastconv's and ORT's float32 results.")


def _precisions_text(precs):
    if not isinstance(precs, dict):
        return str(precs)
    return ", ".join(f"{k} {'/'.join(v)}" for k, v in precs.items()) or "n/a"


def render_rss(ctx):
    nets = ctx.result.get("networks", {})
    rows = []
    for name, r in nets.items():
        for batch, rb in r["batches"].items():
            rss = rb.get("rss")
            if not rss:
                continue

            def mib(k):
                if k not in rss:
                    return "n/a"
                v = rss[k]
                after = (v["after_vmrss_kib"] - v["baseline_vmrss_kib"]) / 1024
                return f"{v['peak_above_baseline_mib']:.0f} / {after:.0f}"

            ratio = (rss["ort"]["peak_above_baseline_mib"]
                     / rss["fastconv-load"]["peak_above_baseline_mib"]
                     if "ort" in rss and "fastconv-load" in rss
                     and rss["fastconv-load"]["peak_above_baseline_mib"] > 0 else None)
            rows.append([r["title"], batch, f"{r['params'] * 4 / 2**20:.0f}",
                         f"{rb['arena_bytes'] / 2**20:.1f}",
                         f"{(rb['packed_bytes']) / 2**20:.0f}",
                         mib("fastconv-build"), mib("fastconv-load"), mib("ort"),
                         f_ratio(ratio),
                         mib("openvino") if ctx.ov else ctx.ov_status,
                         "/".join(f"{rss[k]['baseline_kib'] / 1024:.0f}"
                                  for k in ("fastconv-build", "fastconv-load", "ort",
                                            "openvino")
                                  if k in rss)])
    if not rows:
        return
    say("")
    say(f"#### Peak memory (RSS), {threads_label(ctx.args.rss_threads)}, "
        f"{isa_label(isa())}, each in a fresh process")
    say("")
    say(table(["network", "batch", "weights MiB", "fastconv arena MiB",
               "fastconv packed weights MiB", "fastconv built: peak / after MiB",
               "fastconv loaded (.fcz): peak / after MiB", "ORT (.onnx): peak / after MiB",
               "ORT / fastconv loaded (peaks)", "OpenVINO (.onnx): peak / after MiB",
               "baselines MiB (build/load/ORT/OV)"], rows,
              left=1))
    say("")
    say("peak = peak RSS (VmHWM, i.e. ru_maxrss of a fresh process) after building or "
        "loading the model and running it once, minus the peak after the imports (NumPy and "
        "the one engine) and making the input; fastconv built = the builder (He init), "
        "loaded = fc.load of the native .fcz file; ORT = InferenceSession on the .onnx file; "
        "OpenVINO = read_model of the .onnx file, compiled in f32 for the batch; "
        "after = VmRSS after the run minus VmRSS after the imports (what stays resident).")


def render_layers(ctx):
    nets = ctx.result.get("networks", {})
    for name, r in nets.items():
        for batch, rb in r["batches"].items():
            for t, d in rb["threads"].items():
                ost = d.get("ort_steps_ms")
                if ost is None:
                    continue
                seq = d.get("steps_in_order_ms", {})
                total = d["steps_sum_s"] * 1e3
                rows = []
                for label, ms in d["steps_ms"].items():
                    om = ost.get(label)
                    rows.append([label, f"{ms:.3f}", f_num(seq.get(label), 3),
                                 f"{100 * ms / total:.1f}", f_num(om, 3),
                                 f_ratio(om / ms if om and ms else None),
                                 f_num(ms - om if om is not None else None, 3)])
                extra = ost.get("(other ORT nodes)")
                if extra is not None:
                    rows.append(["(other ORT nodes)", "-", "-", "-", f"{extra:.3f}", "", ""])
                osum = sum(ost.values())
                rows.append(["**sum**", f"{total:.3f}",
                             f_num(sum(seq.values()) if seq else None, 3), "100",
                             f"{osum:.3f}", f_ratio(osum / total), f"{total - osum:.3f}"])
                say("")
                say(f"#### Per step: {r['title']}, batch {batch}, {threads_label(t)}, "
                    f"{isa_label(isa())}")
                say("")
                say(table(["step", "fastconv ms (profile)", "fastconv ms (in order)",
                           "% of fastconv", "ORT ms", "fastconv/ORT", "fastconv - ORT ms"],
                          rows, left=1))
                say("")
                say(f"Whole network: fastconv {f_ms(d['fastconv']['median_s'])} ms, ORT "
                    f"{f_ms(d['ort']['median_s'])} ms (medians of the timed trials).")
    say("")
    say("profile = model.profile (each step alone, repeated, medians); in order = every "
        "step once in network order per pass, interleaved with the timed trials "
        "(medians); ORT = its profiler's per-node kernel times (a separate session, "
        "medians), a fused node counted under the fastconv step holding its node.")


# ---------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    ncpu = cpu_count()
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 3 repeats, 50 ms trials, 2 profile repeats, one warm-up "
                        "call, 0.2 s peak runs, only the smallest default batch")
    p.add_argument("--threads", default=",".join(map(str, sorted({1, ncpu}))),
                   help="comma-separated thread counts (default: 1 and all cores)")
    p.add_argument("--repeats", type=int, default=None,
                   help="interleaved trials per engine (default 7, 3 with --quick)")
    p.add_argument("--profile-repeats", type=int, default=None,
                   help="model.profile repeats per step (default 5, 2 with --quick)")
    p.add_argument("--networks", default="vgg16,cifar_vgg",
                   help=f"comma-separated subset of {','.join(NETWORKS)}")
    p.add_argument("--batches", action="append", default=[],
                   help="batch sizes: '1,8' for every network or 'vgg16=1,8' for one "
                        "(repeatable); default vgg16 1,8, cifar_vgg 1,64")
    p.add_argument("--peers", default=",".join(PEER_NAMES),
                   help=f"comma-separated engines to compare with, of {','.join(PEER_NAMES)} "
                        "(default: all; one that is not installed gets a 'not installed' "
                        "column)")
    p.add_argument("--openvino-default-precision", dest="ov_default_precision",
                   action="store_true",
                   help="also time OpenVINO at its own default inference precision (bf16 "
                        "on CPUs with AMX-BF16), reported apart as an informative figure")
    p.add_argument("--layers", action="store_true",
                   help="also a per-step table against ORT's profiler")
    p.add_argument("--no-in-order", dest="in_order", action="store_false",
                   help="skip the in-order step passes interleaved with the trials")
    p.add_argument("--no-rss", dest="rss", action="store_false",
                   help="skip the peak-memory subprocesses")
    p.add_argument("--rss-threads", type=int, default=None,
                   help="thread count of the RSS runs (default: the largest of --threads)")
    p.add_argument("--json", metavar="OUT.json", help="also write every sample to this file")
    a = p.parse_args(argv)
    try:
        a.threads = parse_threads(a.threads)
    except ValueError as e:
        p.error(str(e))
    a.networks = [v.strip() for v in a.networks.split(",") if v.strip()]
    unknown = sorted(set(a.networks) - set(NETWORKS))
    if unknown or not a.networks:
        p.error(f"--networks: unknown {unknown}; choose from {sorted(NETWORKS)}")
    try:
        a.peers = parse_peers(a.peers)
    except ValueError as e:
        p.error(str(e))
    if a.ov_default_precision and "openvino" not in a.peers:
        p.error("--openvino-default-precision needs openvino in --peers")
    batches = {}
    for spec in a.batches:
        key, _, vals = spec.rpartition("=")
        try:
            bs = [int(v) for v in vals.split(",") if v.strip()]
        except ValueError:
            p.error(f"--batches: expected '1,8' or 'vgg16=1,8', got {spec!r}")
        if not bs or min(bs) < 1:
            p.error(f"--batches: batch sizes must be >= 1, got {spec!r}")
        if key and key not in NETWORKS:
            p.error(f"--batches: unknown network {key!r}")
        for n in ([key] if key else a.networks):
            batches[n] = bs
    a.batches = batches
    if a.repeats is None:
        a.repeats = 3 if a.quick else 7
    if a.profile_repeats is None:
        a.profile_repeats = 2 if a.quick else 5
    if a.repeats < 1 or a.profile_repeats < 1:
        p.error("--repeats and --profile-repeats must be >= 1")
    a.rss_threads = a.rss_threads or max(a.threads)
    a.min_trial = 0.05 if a.quick else 0.2
    a.warmups = 1 if a.quick else 2
    a.peak_seconds = 0.2 if a.quick else 0.5
    return a


def parse_peers(spec):
    """'ort,openvino' -> ["ort", "openvino"] (in PEER_NAMES order, duplicates dropped);
    ValueError naming an unknown one and the known ones."""
    names = [v.strip().lower() for v in spec.split(",") if v.strip()]
    unknown = [n for n in names if n not in PEER_NAMES]
    if unknown:
        raise ValueError(f"--peers: unknown peer(s) {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(PEER_NAMES)}")
    return [n for n in PEER_NAMES if n in names]


def import_peers(peers):
    """(onnx, ort, ov, {peer: why it is not run}); a peer not in `peers` is not
    imported. Both peers need onnx (the export); OpenVINO runs without ORT."""
    onnx = ort = ov = None
    why = {}
    if peers:
        onnx, why_onnx = import_optional("onnx")
    for peer in peers:
        mod, w = import_optional({"ort": "onnxruntime", "openvino": "openvino"}[peer])
        if mod is not None and onnx is None:
            mod, w = None, f"not installed: onnx, for the export ({why_onnx})"
        if mod is None:
            why[peer] = w if w.startswith("not installed") else "not installed: " + w
        elif peer == "ort":
            ort = mod
        else:
            ov = mod
    for peer in PEER_NAMES:
        if peer not in peers:
            why[peer] = "not requested"
    return onnx, ort, ov, why


def ov_header(ctx):
    """The header lines of OpenVINO: version, config, what the compiled models report,
    the cost of one call of the runner."""
    if not ctx.ov:
        return [f"- OpenVINO: {ctx.ov_why}" + (f" (`pip install openvino=={OPENVINO_VERSION}`"
                                               f" or the `openvino` extra)"
                                               if ctx.ov_status == "not installed" else "")]
    seen = {}
    for r in ctx.result.get("networks", {}).values():
        for rb in r["batches"].values():
            for t, d in rb["threads"].items():
                props = d.get("openvino_properties")
                if props:
                    key = json.dumps(props, sort_keys=True)
                    seen.setdefault(key, (props, []))[1].append(t)
    lines = [f"- OpenVINO {ctx.ov.__version__} (CPU plugin), compiled from the same ONNX "
             f"bytes with the input reshaped to the static batch, config "
             f"`{ov_config_text()}`; one infer request per case, input bound "
             f"once as a shared-memory tensor, each call `infer()` "
             f"({f_num(ctx.ov_call_us, 1)} µs per call on a one-node Relu model: the "
             f"floor of the Python side)"]
    for props, ts in seen.values():
        rp = _precisions_text(props.get("runtime_precisions"))
        lines.append(f"- OpenVINO in effect at {','.join(map(str, sorted(set(ts))))} "
                     f"thread(s) (`compiled.get_property`): INFERENCE_PRECISION_HINT "
                     f"**{props.get('INFERENCE_PRECISION_HINT')}**, INFERENCE_NUM_THREADS "
                     f"{props.get('INFERENCE_NUM_THREADS')}, NUM_STREAMS "
                     f"{props.get('NUM_STREAMS')}, PERFORMANCE_HINT "
                     f"{props.get('PERFORMANCE_HINT')}, ENABLE_CPU_PINNING "
                     f"{props.get('ENABLE_CPU_PINNING')}, ENABLE_HYPER_THREADING "
                     f"{props.get('ENABLE_HYPER_THREADING')}, SCHEDULING_CORE_TYPE "
                     f"{props.get('SCHEDULING_CORE_TYPE')}, CPU_DENORMALS_OPTIMIZATION "
                     f"{props.get('CPU_DENORMALS_OPTIMIZATION')}; runtime kernel "
                     f"precisions: {rp}; kernels: "
                     f"{_precisions_text(props.get('runtime_primitives'))}")
    return lines


def ov_config_text():
    """openvino_config with the thread count left as a placeholder."""
    return {**openvino_config(1), "INFERENCE_NUM_THREADS": "<threads>"}


def ov_call_cost(ov, calls=2000):
    """Median µs of one runner call on a one-node Relu of 10 floats (1 thread): the
    Python and dispatch cost that every OpenVINO figure includes."""
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    run = openvino_runner(ov, openvino_compile(ov, m.SerializeToString(), 1),
                          np.ones((1, 10), np.float32))
    run()
    ts = []
    for _ in range(calls):
        t0 = time.perf_counter()
        run()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e6


def main(argv=None):
    a = parse_args(argv)
    onnx, ort, ov, why = import_peers(a.peers)
    ctx = ST.Ctx(a, fc, onnx, ort)
    ctx.ov, ctx.ov_why = ov, why.get("openvino")
    # the short text of the OV cells: "not installed" / "not requested"
    ctx.ov_status = (ctx.ov_why or "").split(":")[0] or None
    ctx.ov_call_us = ov_call_cost(ov) if ov else None
    try:
        info = fc.cpu_info()
    except Exception as e:
        info = {"error": str(e)}
    load0 = loadavg()
    started = datetime.datetime.now().isoformat(timespec="seconds")
    t_start = time.perf_counter()

    ST.measure_peaks(ctx, "start")
    for name in a.networks:
        run_network(ctx, name)
    ST.measure_peaks(ctx, "end")
    load1 = loadavg()
    wall = time.perf_counter() - t_start

    say("### fastconv whole-network latency against ONNX Runtime and OpenVINO")
    say("")
    say(f"- {started}; {cpu_model()}, {os.cpu_count()} logical CPUs, "
        f"{platform.platform()}; whole run {wall / 60:.1f} min")
    say(f"- fastconv `{fc.__file__}`: **{isa_label(isa())}**; activation layout "
        f"**{fc.plan.layout_default()}** (FASTCONV_LAYOUT); cpu_info `{info}`")
    say(f"- numpy {np.__version__}; onnx {getattr(onnx, '__version__', 'n/a')}; onnxruntime "
        f"{ort.__version__ if ort else why.get('ort')} "
        f"(CPUExecutionProvider, all graph optimisations, intra_op_num_threads = threads, "
        f"allow_spinning = 0)")
    say(f"- threads {a.threads}; {a.repeats} interleaved trials per engine of >= "
        f"{a.min_trial * 1e3:.0f} ms (every call timed), model.profile with "
        f"{a.profile_repeats} repeats; weights: the builders' He init with seed 0, the "
        f"same arrays exported to ONNX; input: standard normal, seed 1")
    say(f"- load average (1/5/15 min) at start {load0}, at end {load1}")
    for line in ov_header(ctx):
        say(line)
    for line in ST.peak_lines(ctx):
        say(line)
    if "avx512f" in cpu_flags() and "avx512" not in str(info.get("isa", "")):
        say("- this CPU has AVX-512 (avx512f) and fastconv runs its AVX2 kernels: the peak "
            "above is the AVX2 one (8-wide FMAs). ONNX Runtime's MLAS runs AVX-512 kernels "
            "here, so its roof is up to 2x higher on cores with two 512-bit FMA pipes (most "
            "Xeons; AMD Zen 4 splits them, same roof); ORT above 100% of this peak is that.")
    render_speed(ctx)
    render_ov_default(ctx)
    render_rss(ctx)
    if a.layers:
        render_layers(ctx)
    say("")
    say("ms = per call (each call timed on its own, over all trials): median, min and "
        "90th percentile; GFLOP/s = 2 x MACs x batch / median; % peak = of the measured "
        "FMA peak at the same thread count; fastconv/ORT = ORT median / fastconv median "
        "(> 1: fastconv faster); Σ steps = the sum of fastconv's per-step medians from "
        "model.profile (each step run alone, repeatedly); network/Σ steps = fastconv "
        "median / Σ steps; Σ steps in order = the sum of the per-step medians of passes "
        "that run every step once in network order, timing each (interleaved with the "
        "trials); fastconv/ORT of the mins = ORT min / fastconv min (the least disturbed "
        "calls, for a loaded machine); max rel diff = max |fastconv - ORT| / max |ORT| on "
        "the output; OV = OpenVINO (f32, the config above), timed in the same trials: "
        "fastconv/OV = OV median / fastconv median (> 1: fastconv faster), fastconv/OV "
        "latency = fastconv median / OV median (issue 7 asks for <= 1), OV max rel diff "
        "= max |fastconv - OV| / max |OV|.")
    for i, n in enumerate(ctx.notes, 1):
        say(f"[{i}] {n}")
    if a.json:
        ST.write_json(ctx, a.json, {
            "date": started, "fastconv_cpu_info": info,
            "onnxruntime": getattr(ort, "__version__", None),
            "openvino": getattr(ov, "__version__", None), "peers_not_run": why,
            "openvino_config": ov_config_text() if ov else None,
            "openvino_call_us": ctx.ov_call_us,
            "loadavg_start": load0, "loadavg_end": load1, "wall_s": wall})

if __name__ == "__main__":
    main()
