"""The benchmark code itself (fastconv/bench.py, `fastconv bench`, fastconv/_bench_*.py and
the bench/ suite's plumbing), tested cheaply: the machine probes, the shapes as package
data (found as an installed package finds them, a clear error when missing), a tiny
--quick run and its JSON fields, algorithm rows that follow the engine's list (n/a where
an algorithm cannot serve a layer), the ISA in every header, the plot from a saved
result, the tuner and the torch replay of a model. No test asserts a time."""
from __future__ import annotations

import fnmatch
import json
import math
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
from fastconv import _bench_peers, _bench_shapes, _kernels, bench, cli, models

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
TINY = "first3x3_c1_32,maxpool2x2_c64_32,net:digits_b1"   # a conv, two pools, a network


def _finite_positive(v):
    return isinstance(v, float) and math.isfinite(v) and v > 0


# ------------------------------------------------------------------------ probes

@pytest.mark.parametrize("threads", [1, 2])
def test_fma_peak_is_positive_and_finite(threads):
    assert _finite_positive(_kernels.fma_peak(threads, 0.02))


@pytest.mark.parametrize("threads", [1, 2])
def test_stream_triad_is_positive_and_finite(threads):
    assert _finite_positive(_kernels.stream_triad(threads, megabytes=4, repeats=2))


def test_stream_triad_rejects_bad_arguments():
    with pytest.raises(ValueError):
        _kernels.stream_triad(0, megabytes=1)
    with pytest.raises(ValueError):
        _kernels.stream_triad(1, megabytes=1, repeats=0)
    with pytest.raises(ValueError):
        _kernels.stream_triad(1, megabytes=-1)
    with pytest.raises(ValueError):
        _kernels.stream_triad(1, megabytes=float("nan"))


def test_stream_default_size_exceeds_the_cache():
    mb = _kernels.stream_default_megabytes()
    assert mb >= 64
    llc = _kernels._last_level_cache_bytes()
    assert 3 * mb * 1e6 >= 4 * llc     # the three arrays hold 4x the last-level cache


# ------------------------------------------------------------------------ a quick run

@pytest.fixture(scope="module")
def quick_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "out.json"
    cwd = os.getcwd()
    os.chdir(out.parent)       # not the repository: the shapes come from the package
    try:
        rc = cli.main(["bench", "--quick", "--json", str(out), "--filter", TINY,
                       "--threads", "1", "--stream-mb", "8", "--no-progress"])
    finally:
        os.chdir(cwd)
    assert rc == 0
    return out


def test_quick_json_has_the_documented_fields(quick_result):
    res = json.loads(quick_result.read_text())
    assert res["schema"] == bench.SCHEMA
    meta = res["meta"]
    for k in ("date", "cpu", "logical_cpus", "platform", "python", "cpu_info", "versions",
              "loadavg_start", "loadavg_end", "threads", "quick", "filters", "peers",
              "timing"):
        assert k in meta, k
    assert meta["threads"] == [1] and meta["quick"] is True
    assert meta["isa"] == _kernels.get_isa()
    assert meta["algorithms"] == list(fc.conv_algorithms())
    assert "numpy" in meta["versions"] and "onnxruntime" in meta["versions"]
    m = res["machine"]
    assert _finite_positive(m["fma_peak_gflops"]["1"])
    assert _finite_positive(m["bandwidth_gbs"]["1"])
    assert m["stream_megabytes_per_array"] == 8
    assert {c["id"] for c in res["cases"]} == {
        "conv:first3x3_c1_32", "pool:maxpool2x2_c64_32", "pool:maxpool2x2_c64_32_b64",
        "net:digits_b1"}
    for c in res["cases"]:
        for k in ("kind", "name", "desc", "batch", "flops", "bytes", "ops", "intensity",
                  "shape", "results", "skipped"):
            assert k in c, (c["id"], k)
        impls = {r["impl"] for r in c["results"]}
        assert impls >= (set(fc.conv_algorithms()) if c["kind"] == "conv" else {"fastconv"})
        for r in c["results"]:
            assert r["threads"] == 1 and r["ok"], r
            assert 0 < r["min_ms"] <= r["median_ms"] <= r["p90_ms"]
            assert r["calls"] >= r["rounds"] >= 1 and isinstance(r["stable"], bool)
            if c["kind"] == "pool":
                assert _finite_positive(r["gbs"]) and r["pct_bandwidth"] > 0
            else:
                assert _finite_positive(r["gflops"]) and r["pct_peak"] > 0
            if not r["peer"]:
                peers = {x["impl"] for x in c["results"] if x["peer"]}
                assert set(r["vs"]) == peers
                for p in peers:
                    assert _finite_positive(r["vs"][p])
    net = next(c for c in res["cases"] if c["kind"] == "network")
    assert net["flops"] == 2 * net["shape"]["macs_per_sample"] > 0


def test_quick_run_prints_markdown_tables(quick_result, capsys):
    # rendering a saved result again gives the same tables the run printed
    text = bench.markdown(json.loads(quick_result.read_text()))
    isa = f"ISA {_kernels.get_isa()}"
    assert f"#### Conv layers, 1 thread, {isa}" in text and f"#### Pooling, 1 thread, {isa}" in text
    assert f"#### Whole networks, 1 thread, {isa}" in text
    assert all(isa in line for line in text.splitlines() if line.startswith("####"))
    assert "| first3x3_c1_32 |" in text and "GB/s" in text


def test_filter_that_selects_nothing_is_a_usage_error(capsys):
    rc = cli.main(["bench", "--filter", "no-such-case"])
    assert rc == 2
    assert "selects no case" in capsys.readouterr().err


def test_bad_thread_list_is_a_usage_error(capsys):
    assert cli.main(["bench", "--threads", "0", "--list"]) == 2
    assert "--threads" in capsys.readouterr().err


def test_list_and_quick_subset(capsys):
    assert cli.main(["bench", "--quick", "--list"]) == 0
    ids = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert ids and set(ids) <= set(bench.QUICK_CASES)
    assert any(i.startswith("conv:") for i in ids) and any(i.startswith("net:") for i in ids)


def test_shapes_file_rows_all_become_cases():
    conv, pool = bench.load_shapes()
    ids = {c.id for c in bench.all_cases()}
    assert {f"conv:{s.name}" for s in conv} <= ids and {f"pool:{s.name}" for s in pool} <= ids
    for s in conv:
        ho, wo = s.out_hw
        assert ho >= 1 and wo >= 1 and s.flops > 0 and s.bytes > 0
    names = {s.name for s in conv}
    for need in ("dilated3x3_d1", "dilated3x3", "dilated3x3_d4", "strided3x3",
                 "pointwise1x1", "conv7x7s2", "cifar_conv1_1", "odd_c13_c27_56"):
        assert need in names


# ------------------------------------------------------------------------ plot

def test_plot_writes_a_png(quick_result, tmp_path):
    pytest.importorskip("matplotlib", reason="`fastconv bench plot` needs matplotlib "
                                             "(optional dependency)")
    png = tmp_path / "report.png"
    assert cli.main(["bench", "plot", str(quick_result), "-o", str(png)]) == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_plot_rejects_a_file_that_is_no_result(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "something else"}))
    assert cli.main(["bench", "plot", str(bad), "-o", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.strip()


# ------------------------------------------------------------------------ tune

def _conv_algos(model):
    return {n.name: n.layer.algo for n in model.nodes if n.layer.kind == "Conv2d"}


def test_tune_writes_a_model_whose_layers_carry_the_winners(tmp_path, capsys):
    model = models.convnet(blocks=((4, 1), (8, 1)), fc=(16,), num_classes=5,
                           input_size=(3, 12, 12), seed=1)
    src, dst, rep = tmp_path / "small.fcz", tmp_path / "tuned.fcz", tmp_path / "tune.json"
    model.save(src)
    assert set(_conv_algos(model).values()) == {"auto"}
    rc = cli.main(["bench", "--tune", str(src), "-o", str(dst), "--json", str(rep),
                   "--quick", "--threads", "1", "--batch", "2", "--no-progress"])
    assert rc == 0
    assert "winner" in capsys.readouterr().out
    recs = {r["node"]: r for r in json.loads(rep.read_text())["layers"]}
    tuned = fc.load(dst)
    algos = _conv_algos(tuned)
    assert set(algos) == set(recs) == set(_conv_algos(model))
    for name, algo in algos.items():
        r = recs[name]
        assert algo == r["winner"] in fc.conv_algorithms()
        assert r["median_ms"][algo] == min(r["median_ms"].values())
        assert r["auto"] in fc.conv_algorithms()
        if r["weight_shape"][2:] == [3, 3] and r["stride"] == [1, 1]:
            assert {"winograd", "winograd2"} <= set(r["median_ms"]), r
        else:
            assert "winograd" in r["unsupported"], r
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 12)).astype(np.float32)
    np.testing.assert_allclose(tuned(x), model(x), rtol=1e-4, atol=1e-6)


def test_tune_an_onnx_model(tmp_path):
    digits = Path(fc.__file__).resolve().parent / "data" / "digits_vgg.onnx"
    pytest.importorskip("onnx")
    dst = tmp_path / "digits_tuned.fcz"
    assert cli.main(["bench", "--tune", str(digits), "-o", str(dst), "--quick",
                     "--threads", "1", "--no-progress"]) == 0
    algos = _conv_algos(fc.load(dst))
    assert len(algos) == 3 and set(algos.values()) <= set(fc.conv_algorithms())


def test_tune_refuses_an_onnx_output(tmp_path, capsys):
    src = tmp_path / "m.fcz"
    models.convnet(blocks=((4, 1),), fc=(), num_classes=3, input_size=(3, 8, 8)).save(src)
    assert cli.main(["bench", "--tune", str(src), "-o", str(tmp_path / "x.onnx")]) == 2
    assert ".fcz" in capsys.readouterr().err


# ------------------------------------------------------------------------ torch replay

def test_torch_replay_matches_fastconv():
    torch = pytest.importorskip("torch")
    model = models.convnet(blocks=((4, 1), (8, 2)), fc=(16,), num_classes=5,
                           input_size=(3, 12, 12), seed=2)
    x = np.random.default_rng(3).standard_normal((2, 3, 12, 12)).astype(np.float32)
    got = bench.torch_model_runner(torch, model, x)()
    np.testing.assert_allclose(got, model(x), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------ shapes: package data

def test_shapes_are_found_as_package_resources():
    # the lookup an installed (wheel, zip) fastconv uses: importlib.resources, no paths
    folder = resources.files("fastconv").joinpath("data", "shapes")
    for name in ("conv2d.csv", "pool2d.csv"):
        f = folder.joinpath(name)
        assert f.is_file(), name
        assert f.read_text(encoding="utf-8").splitlines()[0].startswith("name,")
    assert _bench_shapes.shapes_file("conv2d.csv").is_file()
    conv, pool = _bench_shapes.load_shapes()
    assert len(conv) >= 30 and len(pool) >= 5
    assert not list(BENCH_DIR.rglob("*.csv"))       # one copy only


def test_pyproject_ships_the_shapes():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = cfg["tool"]["setuptools"]["package-data"]["fastconv"]
    shipped = sorted((ROOT / "fastconv" / "data" / "shapes").glob("*.csv"))
    assert shipped
    for f in shipped:
        rel = f.relative_to(ROOT / "fastconv").as_posix()
        assert any(fnmatch.fnmatchcase(rel, g) for g in globs), rel


def test_installed_layout_runs_the_layer_suite(tmp_path):
    # setuptools' build_py copies what an install copies (pyproject's package-data);
    # the compiled extension is added by hand. Run from a folder with no bench/ in it.
    lib = tmp_path / "lib"
    r = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (lib / "fastconv" / "data" / "shapes" / "conv2d.csv").is_file()
    for so in Path(_kernels.__file__).parent.glob("_kernels*.so"):
        shutil.copy(so, lib / "fastconv")
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    out = run_dir / "r.json"
    env = dict(os.environ, PYTHONPATH=str(lib))
    env.pop("FASTCONV_BENCH_DIR", None)
    r = subprocess.run([sys.executable, "-m", "fastconv", "bench", "--quick", "--json", str(out),
                        "--filter", "conv:first3x3_c1_32", "--threads", "1", "--stream-mb", "4",
                        "--peers", "", "--no-progress"],
                       cwd=run_dir, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    (case,) = res["cases"]
    assert case["id"] == "conv:first3x3_c1_32"
    assert {x["impl"] for x in case["results"]} == set(fc.conv_algorithms())
    assert Path(res["meta"]["fastconv_file"]).is_relative_to(lib)


def test_missing_shapes_file_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(_bench_shapes, "shapes_dir", lambda: tmp_path)   # an empty install
    with pytest.raises(_bench_shapes.ShapesFileError, match="conv2d.csv is missing"):
        _bench_shapes.load_conv_shapes()
    assert cli.main(["bench", "--quick", "--list"]) == 2
    err = capsys.readouterr().err
    assert "conv2d.csv" in err and "missing" in err and "reinstall" in err


def test_a_bad_shapes_row_is_refused(tmp_path):
    f = tmp_path / "conv2d.csv"
    f.write_text(",".join(_bench_shapes.CONV_HEADER) + "\nbad,1,3,4,4,8,5,5,1,0,1,1\n")
    with pytest.raises(ValueError, match="bad row"):       # a 5x5 kernel on a 4x4 map
        _bench_shapes.load_conv_shapes(f)
    f.write_text("name,batch\nx,1\n")
    with pytest.raises(ValueError, match="header"):
        _bench_shapes.load_conv_shapes(f)


# ------------------------------------------------------------------------ algorithm rows

def test_conv_algorithms_is_the_engine_list():
    algos = fc.conv_algorithms()
    assert "auto" not in algos and {"direct", "im2col"} <= set(algos)
    from fastconv import functional
    assert set(algos) | {"auto"} == set(functional._ALGOS)
    x = np.random.default_rng(0).standard_normal((1, 4, 6, 6)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((5, 4, 3, 3)).astype(np.float32)
    ref = fc.conv2d(x, w, padding=1)
    for a in algos:     # each is a valid algo= on a 3x3/1 layer, whatever it refuses elsewhere
        np.testing.assert_allclose(fc.conv2d(x, w, padding=1, algo=a), ref, rtol=1e-4,
                                   atol=1e-5)


def _fake_winograd(monkeypatch):
    """An extra algorithm 'fake3x3' that serves only 3x3 stride-1 layers (as winograd
    will), running direct underneath, and raises ValueError elsewhere."""
    real = bench.fastconv_conv_runner

    def runner(s, x, w, b, algo, prepared=True):
        if algo != "fake3x3":
            return real(s, x, w, b, algo, prepared)
        if (s.kernel_h, s.kernel_w, s.stride, s.dilation) != (3, 3, 1, 1):
            raise ValueError("conv2d: algo 'fake3x3' needs a 3x3 stride-1 kernel")
        return real(s, x, w, b, "direct", prepared)
    monkeypatch.setattr(bench, "fastconv_conv_runner", runner)
    monkeypatch.setattr(bench, "conv_algorithms", lambda: ["direct", "im2col", "fake3x3"])


def test_rows_follow_the_algorithms_and_unserved_ones_are_na(monkeypatch):
    _fake_winograd(monkeypatch)
    opts = bench.Options.make(threads=[1], quick=True, peers=[], stream_mb=4,
                              progress=False)
    opts.case_budget = 0.5
    runner = bench.Runner(opts)
    cases = bench.select(bench.all_cases(), ["conv:first3x3_c1_32", "conv:odd_c30_c61_56_s2"],
                         False)
    res = runner.run(cases)
    assert res["meta"]["algorithms"] == ["direct", "im2col", "fake3x3"]
    by_id = {c["id"]: c for c in res["cases"]}
    ok3 = by_id["conv:first3x3_c1_32"]
    assert {r["impl"] for r in ok3["results"]} == {"direct", "im2col", "fake3x3"}
    s2 = by_id["conv:odd_c30_c61_56_s2"]
    assert {r["impl"] for r in s2["results"]} == {"direct", "im2col"}
    (skip,) = [x for x in s2["skipped"] if x["impl"] == "fake3x3"]
    assert "3x3 stride-1" in skip["why"]
    text = bench.markdown(res)
    row = next(line for line in text.splitlines() if line.startswith("| odd_c30_c61_56_s2 |"))
    assert "fake3x3 ms" in text and "| n/a |" in row        # the summary row: n/a, no crash
    assert any(line.startswith("| odd_c30_c61_56_s2 |") and "| fake3x3 | n/a |" in line
               for line in text.splitlines())               # and in the every-row table


def test_plot_draws_every_algorithm(monkeypatch, quick_result, tmp_path):
    pytest.importorskip("matplotlib", reason="`fastconv bench plot` needs matplotlib")
    res = json.loads(quick_result.read_text())
    res["meta"]["algorithms"] = list(fc.conv_algorithms()) + ["fake3x3"]
    assert bench.result_algorithms(res)[-1] == "fake3x3"     # no rows: drawn as nothing
    png = tmp_path / "r.png"
    bench.plot(res, str(png))
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_tune_table_has_a_column_per_algorithm_and_na():
    recs = [{"node": "c1", "input_shape": [1, 3, 8, 8], "weight_shape": [4, 3, 5, 5],
             "median_ms": {"direct": 0.5, "im2col": 0.25}, "winner": "im2col",
             "margin": 2.0, "auto": "direct",
             "unsupported": {"fake3x3": "ValueError: needs 3x3"}}]
    text = bench.tune_table(recs, "avx2")
    assert text.startswith("ISA avx2")
    head = next(line for line in text.splitlines() if line.startswith("| layer"))
    assert "fake3x3 ms" in head and "direct ms" in head
    row = next(line for line in text.splitlines() if line.startswith("| c1 |"))
    assert "| n/a |" in row and "(differs)" in row


def test_isa_helper_names_the_running_kernels():
    assert _bench_peers.isa() == _kernels.get_isa() == fc.cpu_info()["isa"]


# ------------------------------------------------------------------------ the pytest suite

def test_benchmark_suite_collects_a_row_per_algorithm_and_shape():
    r = subprocess.run([sys.executable, "-m", "pytest", "bench/", "--collect-only", "-q",
                        "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    ids = [line for line in r.stdout.splitlines() if "::" in line]
    n_conv = len(_bench_shapes.load_conv_shapes())
    for a in fc.conv_algorithms():
        assert sum(f"test_conv_fastconv[" in i and i.endswith(f"-{a}]") for i in ids) == n_conv
    assert sum("test_pool_fastconv[" in i for i in ids) == len(_bench_shapes.load_pool_shapes())
