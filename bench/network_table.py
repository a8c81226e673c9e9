#!/usr/bin/env python
"""Whole-network latency of fastconv against ONNX Runtime (markdown tables).

    python bench/network_table.py [--quick] [--threads 1,2] [--repeats N]
                                  [--networks vgg16,cifar_vgg] [--batches 1,8 | vgg16=1,8]
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
from fastconv._bench_peers import import_optional, isa, ort_options  # noqa: E402
from fastconv.bench import parse_threads  # noqa: E402
from fastconv._bench_timing import (BLAS_SETTLE_S, call_stats, cpu_count,  # noqa: E402
                                    cpu_flags, cpu_model, loadavg, time_interleaved)

CHECK_TOL = 1e-4          # fastconv against ORT, relative to the output's scale
STEP_RATIO_MAX = 1.05     # the issue: network time within 5% of the sum of step times
ORT_RATIO_MIN = 0.9       # the issue: at least 0.9x ORT's speed on each network
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
            ("ort", files["onnx"])]
    for engine, path in jobs:
        if engine == "ort" and not ctx.ort:
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
    if ort:
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
            if proto_bytes is not None:
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
                res["batches"][batch]["threads"][t] = run_one(
                    ctx, name, model, sess, proto_bytes, in_name, in_shape, batch, t)
            del sess
        if a.rss:
            for batch in batches:
                res["batches"][batch]["rss"] = measure_rss(
                    ctx, name, batch, a.rss_threads, files, in_shape)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ctx.result.setdefault("networks", {})[name] = res
    return res


def run_one(ctx, name, model, sess, proto_bytes, in_name, in_shape, batch, t):
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
                "fastconv/ORT", "fastconv/ORT of the mins", "Σ steps ms", "network/Σ steps",
                "Σ steps in order ms", "network/Σ in order", "max rel diff"]
        if t != t0:
            head += [f"fastconv speedup vs {t0}T", f"ORT speedup vs {t0}T"]
        rows, slow, loose, loose_io = [], [], [], []
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
                row = [r["title"], batch, f"{fl / 1e9:.1f}",
                       f_ms(fm) + ("!" if bad else ""), f_ms(d["fastconv"]["min_s"]),
                       f_ms(d["fastconv"]["p90_s"]), f_num(g_fc), _pct(g_fc, peak),
                       f_ms(om), f_ms(o["min_s"] if o else None),
                       f_ms(o["p90_s"] if o else None), f_num(g_ort), _pct(g_ort, peak),
                       f_ratio(ratio),
                       f_ratio(o["min_s"] / d["fastconv"]["min_s"] if o and not bad else None),
                       f_ms(d["steps_sum_s"]), f"{d['net_over_steps']:.3f}",
                       f_ms(d.get("steps_in_order_sum_s")),
                       f_num(d.get("net_over_steps_in_order"), 3),
                       "n/a" if d.get("max_rel_diff") is None else f"{d['max_rel_diff']:.1e}"]
                if t != t0:
                    d0 = rb["threads"].get(t0)
                    o0 = d0.get("ort") if d0 else None
                    row += [f_ratio(d0["fastconv"]["median_s"] / fm if d0 else None),
                            f_ratio(o0["median_s"] / om if o0 and om else None)]
                rows.append(row)
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
                         "/".join(f"{rss[k]['baseline_kib'] / 1024:.0f}"
                                  for k in ("fastconv-build", "fastconv-load", "ort")
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
               "ORT / fastconv loaded (peaks)", "baselines MiB (build/load/ORT)"], rows,
              left=1))
    say("")
    say("peak = peak RSS (VmHWM, i.e. ru_maxrss of a fresh process) after building or "
        "loading the model and running it once, minus the peak after the imports (NumPy and "
        "the one engine) and making the input; fastconv built = the builder (He init), "
        "loaded = fc.load of the native .fcz file; ORT = InferenceSession on the .onnx file; "
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


def main(argv=None):
    a = parse_args(argv)
    onnx, why_onnx = import_optional("onnx")
    ort, why_ort = import_optional("onnxruntime")
    if onnx is None or ort is None:
        ort = None
    ctx = ST.Ctx(a, fc, onnx, ort)
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

    say("### fastconv whole-network latency against ONNX Runtime")
    say("")
    say(f"- {started}; {cpu_model()}, {os.cpu_count()} logical CPUs, "
        f"{platform.platform()}; whole run {wall / 60:.1f} min")
    say(f"- fastconv `{fc.__file__}`: **{isa_label(isa())}**; cpu_info `{info}`")
    say(f"- numpy {np.__version__}; onnx {getattr(onnx, '__version__', 'n/a')}; onnxruntime "
        f"{ort.__version__ if ort else 'not available: ' + str(why_ort or why_onnx)} "
        f"(CPUExecutionProvider, all graph optimisations, intra_op_num_threads = threads, "
        f"allow_spinning = 0)")
    say(f"- threads {a.threads}; {a.repeats} interleaved trials per engine of >= "
        f"{a.min_trial * 1e3:.0f} ms (every call timed), model.profile with "
        f"{a.profile_repeats} repeats; weights: the builders' He init with seed 0, the "
        f"same arrays exported to ONNX; input: standard normal, seed 1")
    say(f"- load average (1/5/15 min) at start {load0}, at end {load1}")
    for line in ST.peak_lines(ctx):
        say(line)
    if "avx512f" in cpu_flags() and "avx512" not in str(info.get("isa", "")):
        say("- this CPU has AVX-512 (avx512f) and fastconv runs its AVX2 kernels: the peak "
            "above is the AVX2 one (8-wide FMAs). ONNX Runtime's MLAS runs AVX-512 kernels "
            "here, so its roof is up to 2x higher on cores with two 512-bit FMA pipes (most "
            "Xeons; AMD Zen 4 splits them, same roof); ORT above 100% of this peak is that.")
    render_speed(ctx)
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
        "the output.")
    for i, n in enumerate(ctx.notes, 1):
        say(f"[{i}] {n}")
    if a.json:
        ST.write_json(ctx, a.json, {
            "date": started, "fastconv_cpu_info": info,
            "onnxruntime": getattr(ort, "__version__", None),
            "loadavg_start": load0, "loadavg_end": load1, "wall_s": wall})

if __name__ == "__main__":
    main()
