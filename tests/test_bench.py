"""The benchmark code itself (fastconv/bench.py, `fastconv bench`), tested cheaply: the
machine probes, a tiny --quick run and its JSON fields, the plot from a saved result, the
tuner and the torch replay of a model. No test asserts a time."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
from fastconv import _kernels, bench, cli, models

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
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
    rc = cli.main(["bench", "--quick", "--json", str(out), "--filter", TINY,
                   "--threads", "1", "--stream-mb", "8", "--no-progress",
                   "--bench-dir", str(BENCH_DIR)])
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
        assert impls >= ({"direct", "im2col"} if c["kind"] == "conv" else {"fastconv"})
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
    assert "#### Conv layers, 1 thread" in text and "#### Pooling, 1 thread" in text
    assert "| first3x3_c1_32 |" in text and "GB/s" in text


def test_filter_that_selects_nothing_is_a_usage_error(capsys):
    rc = cli.main(["bench", "--filter", "no-such-case", "--bench-dir", str(BENCH_DIR)])
    assert rc == 2
    assert "selects no case" in capsys.readouterr().err


def test_bad_thread_list_is_a_usage_error(capsys):
    assert cli.main(["bench", "--threads", "0", "--list"]) == 2
    assert "--threads" in capsys.readouterr().err


def test_list_and_quick_subset(capsys):
    assert cli.main(["bench", "--quick", "--list", "--bench-dir", str(BENCH_DIR)]) == 0
    ids = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert ids and set(ids) <= set(bench.QUICK_CASES)
    assert any(i.startswith("conv:") for i in ids) and any(i.startswith("net:") for i in ids)


def test_shapes_file_rows_all_become_cases():
    conv, pool = bench.load_shapes(BENCH_DIR)
    ids = {c.id for c in bench.all_cases(BENCH_DIR)}
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
        assert algo == r["winner"] in ("direct", "im2col", "winograd", "winograd2")
        assert r["median_ms"][algo] == min(r["median_ms"].values())
        assert r["auto"] in ("direct", "im2col", "winograd", "winograd2")
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
    assert len(algos) == 3
    assert set(algos.values()) <= {"direct", "im2col", "winograd", "winograd2"}


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
