"""valgrind memcheck over a representative subset of fastconv: every kernel family under
both ISAs at 1 and 2 threads (odd shapes: edge tiles, vector tails), the binding's
out=/workspace=/packed-blob paths and its error paths, a compiled Model with branches,
the ONNX importer and the native file reader (good and corrupt files).

    python scripts/valgrind_subset.py            # runs itself under valgrind, then reports
    python scripts/valgrind_subset.py --inner    # just the workload (what valgrind runs)

The outer run uses `valgrind --tool=memcheck --leak-check=full
--errors-for-leak-kinds=definite --track-origins=yes` with PYTHONMALLOC=malloc (so that
CPython's own allocator does not hide buffers from memcheck) and fails when memcheck
reports an error or a definite leak whose stack (or the origin of an uninitialised
value) is in fastconv's extension, or an error inside NumPy (which is where an output
element a kernel left unwritten would be read), or when the workload's own checks fail.
CPython run under memcheck without suppressions reports its own known false positives
(small-int and dict internals, ld.so's rpath scan, objects alive at exit); those are
counted and listed in the log but do not fail the run. Slow: several minutes. Uses the
fastconv the repository root imports (the in-place build) unless PYTHONPATH says
otherwise.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

VALGRIND_ARGS = ["--tool=memcheck", "--leak-check=full",
                 "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                 "--track-origins=yes", "--num-callers=30"]


def workload() -> None:
    import numpy as np

    sys.path.insert(0, ROOT)
    sys.path.insert(0, os.path.join(ROOT, "fuzz"))
    import fastconv as fc
    import fastconv._kernels as K
    from fastconv import layers as L
    from fastconv.graph import Model, Node

    rng = np.random.default_rng(0)

    def r(*s):
        return rng.uniform(-1, 1, s).astype(np.float32)

    def check(ok, what):
        if not ok:
            raise AssertionError(what)

    isas = ["scalar"] + (["avx2"] if K.has_avx2() else [])
    for isa in isas:
        K.set_isa(isa)
        for threads in (1, 2):
            fc.set_num_threads(threads)
            x, w, b = r(2, 5, 11, 9), r(7, 5, 3, 3), r(7)
            for algo in ("direct", "im2col"):
                y = fc.conv2d(x, w, b, padding=(1, 0, 2, 1), stride=(1, 2), algo=algo)
                ref = K.ref_conv2d(x, w, b, (1, 2), (1, 0, 2, 1), (1, 1), 1)
                check(np.allclose(y, ref, atol=1e-4), f"conv {algo} {isa}")
                fc.conv2d(x, r(10, 1, 3, 3), None, padding=1, groups=5, algo=algo)
                fc.conv2d(x, r(9, 5, 1, 1), algo=algo)
                fc.conv2d(x, w, None, dilation=(2, 3), padding="same", algo=algo)
                fc.conv1d(r(2, 3, 17), r(4, 3, 5), padding=(2, 1), stride=2, algo=algo)
            for algo in ("winograd", "winograd2"):  # edge tiles, gathered and border groups
                y = fc.conv2d(x, w, b, padding=(1, 0, 2, 1), algo=algo)
                ref = K.ref_conv2d(x, w, b, (1, 1), (1, 0, 2, 1), (1, 1), 1)
                check(np.allclose(y, ref, atol=1e-4), f"conv {algo} {isa}")
                x2, w2 = r(3, 6, 13, 45), r(9, 6, 3, 3)
                wconv = fc.prepare_conv2d(w2, None, padding=1, algo=algo, relu=True)
                check(np.allclose(wconv(x2), np.maximum(K.ref_conv2d(
                    x2, w2, None, (1, 1), (1, 1, 1, 1), (1, 1), 1), 0), atol=1e-4),
                    f"prepared {algo} {isa}")
            conv = fc.prepare_conv2d(w, b, padding=1)
            check(np.allclose(conv(x), fc.conv2d(x, w, b, padding=1), atol=1e-5), "prepared")
            fc.conv2d(r(1, 33, 6, 7), r(17, 33, 3, 3), padding=1)    # register/cache edges
            fc.max_pool2d(x, 3, 2, 1, ceil_mode=True)
            fc.max_pool2d(x, 2, 1, dilation=2)
            fc.avg_pool2d(x, 3, 2, (1, 0, 1, 1), count_include_pad=False, ceil_mode=True)
            fc.max_pool1d(r(2, 3, 13), 3, 2, 1)
            fc.avg_pool1d(r(2, 3, 13), 4, 3, (2, 1))
            fc.global_avg_pool2d(x)
            fc.global_max_pool2d(x)
            fc.relu(r(3, 37))
            fc.softmax(r(4, 7, 5), axis=1)
            for m, k, n in ((1, 7, 3), (5, 33, 17), (13, 129, 9), (2, 700, 5)):
                lx, lw, lb = r(m, k), r(n, k), r(n)
                check(np.allclose(fc.linear(lx, lw, lb), lx @ lw.T + lb, atol=1e-4), "linear")
            # the binding's preallocated paths
            out = np.empty((2, 7, 9, 7), np.float32)
            nb = K.conv2d_workspace_bytes(x.shape, w.shape, (1, 1), (0, 0, 0, 0), (1, 1), 1,
                                          "im2col", threads)
            ws = np.empty(nb + 3, np.uint8)[3:]                     # unaligned on purpose
            K.conv2d(x, w, b, (1, 1), (0, 0, 0, 0), (1, 1), 1, "im2col", True, threads,
                     out=out, workspace=ws)
            blob, _ = K.conv2d_pack(x.shape, w, b, (1, 1), (0, 0, 0, 0), (1, 1), 1, "auto")
            K.conv2d_run(x, blob, w.shape, (1, 1), (0, 0, 0, 0), (1, 1), 1, False, threads,
                         out=out)
            for bad in (lambda: fc.conv2d(x, w[:, :2]), lambda: fc.conv2d(x, w, padding=2**40),
                        lambda: K.conv2d(x, w, b, (1, 1), (0, 0, 0, 0), (1, 1), 1,
                                         workspace=ws[:8]),
                        lambda: fc.max_pool2d(x, 12), lambda: fc.linear(r(2, 3), r(4, 5))):
                try:
                    bad()
                    raise AssertionError("no exception")
                except (ValueError, TypeError, MemoryError):
                    pass

    # a compiled model with branches, at two batch sizes and two thread counts
    nodes = [Node("stem", L.Conv2d(3, 8, 3, padding=1, seed=1), ("x",)),
             Node("bn", L.BatchNorm2d(8), ("stem",)),
             Node("relu", L.ReLU(), ("bn",)),
             Node("a", L.Conv2d(8, 8, 3, padding=1, algo="im2col", seed=2), ("relu",)),
             Node("b", L.Conv2d(8, 8, 1, seed=3), ("relu",)),
             Node("sum", L.Add(), ("a", "b")),
             Node("cat", L.Concat(axis=1), ("sum", "relu")),
             Node("pool", L.MaxPool2d(2), ("cat",)),
             Node("gap", L.GlobalAvgPool2d(), ("pool",)),
             Node("flat", L.Flatten(), ("gap",)),
             Node("fc", L.Linear(16, 5, seed=4), ("flat",)),
             Node("sm", L.Softmax(), ("fc",))]
    m = Model(nodes, {"x": (3, 10, 9)}, ["sm", "pool"])
    for threads in (1, 2):
        fc.set_num_threads(threads)
        for n in (1, 3):
            out = m.run({"x": r(n, 3, 10, 9)})
            check(out["sm"].shape == (n, 5), "model")

    # the two file readers: a good file and corrupt ones
    import mutations
    tmp = tempfile.mkdtemp()
    try:
        for i, s in enumerate(mutations.onnx_seeds()):
            mutations.check_onnx(s)
            d = mutations.RandomDraw(i)
            for _ in range(15):
                mutations.check_onnx(mutations.mutate_onnx(s, d))
        for i, s in enumerate(mutations.fcz_seeds()):
            path = os.path.join(tmp, "m.fcz")
            mutations.check_fcz(s, path)
            d = mutations.RandomDraw(100 + i)
            for _ in range(15):
                mutations.check_fcz(mutations.mutate_fcz(s, d), path)
                mutations.check_fcz(s[:d.int(0, len(s) - 1)], path)
    finally:
        shutil.rmtree(tmp)
    print("WORKLOAD OK", flush=True)


OURS = re.compile(r"_kernels\.cpython|src_c/|\bfc_\w+|__pyx_")
NUMPY = re.compile(r"_multiarray_umath")


def classify(log: str):
    """Split memcheck's report into error and leak records; a record is ours when a frame
    (or the origin of an uninitialised value) is in the extension, and numpy's when NumPy
    reads something bad (e.g. an output element a kernel left unwritten)."""
    records = re.split(r"==\d+== \n", log)
    out = {"errors": {"fastconv": 0, "numpy": 0, "other": 0},
           "leaks": {"fastconv": 0, "numpy": 0, "other": 0}, "examples": []}
    for rec in records:
        body = "\n".join(ln.split("== ", 1)[-1] for ln in rec.splitlines() if "==" in ln)
        first = body.strip().splitlines()[0] if body.strip() else ""
        if "definitely lost in loss record" in first:
            kind = "leaks"
        elif re.match(r"(Invalid|Conditional jump|Use of uninitialised|Syscall param|"
                      r"Mismatched|Source and destination|Argument)", first):
            kind = "errors"
        else:
            continue
        who = "fastconv" if OURS.search(body) else ("numpy" if NUMPY.search(body) else "other")
        out[kind][who] += 1
        if who != "other" and len(out["examples"]) < 3:
            out["examples"].append(body[:3000])
    return out


def main() -> int:
    if "--inner" in sys.argv:
        workload()
        return 0
    vg = shutil.which("valgrind")
    if vg is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    env = dict(os.environ, PYTHONMALLOC="malloc", OMP_WAIT_POLICY="passive")
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    cmd = [vg] + VALGRIND_ARGS + [sys.executable, os.path.abspath(__file__), "--inner"]
    print("$ PYTHONMALLOC=malloc OMP_WAIT_POLICY=passive " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    log = proc.stderr
    log_path = os.path.join(tempfile.gettempdir(), "fastconv-valgrind.log")
    with open(log_path, "w") as f:
        f.write(proc.stdout + "\n" + log)
    summary = re.findall(r"ERROR SUMMARY: .*", log)
    leaks = re.findall(r"definitely lost: .*", log)
    c = classify(log)
    print(proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "(no output)")
    print("memcheck: " + (summary[-1] if summary else "no ERROR SUMMARY (did it finish?)"))
    print("memcheck: " + (leaks[-1] if leaks else "no leak summary"))
    print(f"error records: {c['errors']['fastconv']} in fastconv, {c['errors']['numpy']} in "
          f"NumPy, {c['errors']['other']} in CPython/ld.so/others (known false positives "
          f"of an unsuppressed CPython)")
    print(f"definite-leak records: {c['leaks']['fastconv']} in fastconv, "
          f"{c['leaks']['numpy']} in NumPy, {c['leaks']['other']} elsewhere (objects "
          f"CPython does not free at exit)")
    for ex in c["examples"]:
        print("---\n" + ex)
    print(f"full log: {log_path}")
    ours = c["errors"]["fastconv"] + c["errors"]["numpy"] + c["leaks"]["fastconv"]
    ok = "WORKLOAD OK" in proc.stdout and bool(summary) and ours == 0
    print("CLEAN (nothing in fastconv)" if ok else "NOT CLEAN")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
