"""The command line (fastconv.cli): run in-process through cli.main([...]), and once as
`python -m fastconv` in a subprocess."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
from fastconv import cli, models
from fastconv import layers as L
from fastconv.graph import Model

from conftest import assert_bitequal, assert_close, package_root

DIGITS_ONNX = Path(package_root()) / "fastconv" / "data" / "digits_vgg.onnx"


@pytest.fixture(scope="module")
def small_model():
    return models.convnet(blocks=((4, 1), (8, 1)), fc=(16,), num_classes=5,
                          input_size=(3, 8, 8), seed=1)


@pytest.fixture(scope="module")
def model_file(small_model, tmp_path_factory):
    p = tmp_path_factory.mktemp("cli") / "small.fcz"
    small_model.save(p)
    return p


def _x(n, shape=(3, 8, 8), seed=0):
    return np.random.default_rng(seed).standard_normal((n,) + shape).astype(np.float32)


def _usage_error(capsys, argv, *needles):
    """The command fails with status 2 and one line on stderr holding every needle."""
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 2, (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"fastconv {argv[0]}: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert str(n) in lines[0], (n, err)
    return lines[0]


# ------------------------------------------------------------------------ help

@pytest.mark.parametrize("argv", [[], ["demo"], ["summary"], ["run"], ["info"]])
def test_help_everywhere(capsys, argv):
    with pytest.raises(SystemExit) as ei:
        cli.main(argv + ["--help"])
    assert ei.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: fastconv")
    if not argv:
        for cmd in ("demo", "summary", "run", "info"):
            assert cmd in out
    if argv == ["run"]:
        assert "--input" in out and "--output" in out and "--threads" in out


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as ei:
        cli.main([])
    assert ei.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_subprocess_help_and_error(tmp_path):
    env = dict(os.environ, PYTHONPATH=package_root() + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "fastconv", "--help"], capture_output=True,
                       text=True, env=env, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "usage: fastconv" in r.stdout and "demo" in r.stdout
    r = subprocess.run([sys.executable, "-m", "fastconv", "summary", "nope.fcz"],
                       capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == "fastconv summary: error: nope.fcz: no such file"


# ------------------------------------------------------------------------ info, demo

def test_info(capsys):
    assert cli.main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["isa"] in ("scalar", "avx2", "avx512") and info["num_threads"] >= 1


def test_demo_convnet(capsys):
    assert cli.main(["demo", "--model", "convnet", "--repeats", "1", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "Model 'convnet'" in out and "total:" in out          # the summary
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("layer ")
              and "auto chose" in line)
    algos = list(fc.conv_algorithms())
    assert lines[at].split()[-len(algos) - 3:] == algos + ["auto", "auto", "chose"]
    table = lines[at + 1:]
    # (pool2 is fused into conv2_2: plan.ConvStep maxpool2)
    for label in ("conv1_1+relu1_1", "conv2_2+relu2_2+pool2", "fc_out", "softmax"):
        row = next(line for line in table if line.startswith(label + " "))
        ms = [float(v) for v in row.split(")")[1].split()[:3]]
        assert len(ms) == 3 and all(t >= 0 for t in ms), row
    assert table[0].startswith("conv1_1+relu1_1 ") and "(N, 32, 32, 32)" in table[0]
    assert "whole network" in out and "predicted class per sample" in out
    assert "input (2, 3, 32, 32)" in out


def test_run_demo_returns_times_for_every_algorithm():
    buf = io.StringIO()
    times = cli.run_demo("cifar_vgg", batch=1, repeats=1, seed=0, out=buf)
    assert set(times) == set(fc.conv_algorithms()) | {"auto"}
    labels = list(times["auto"])
    assert labels[0].startswith("features.0") and labels[-1] == "classifier.2"
    assert all(set(times[a]) == set(labels) for a in times)
    text = buf.getvalue()
    assert "Model 'cifar_vgg'" in text and "14,982,474" in text
    diff = float(text.split("algorithms' outputs: ")[1].split()[0])
    assert diff < 1e-3


def _onnx_import_works():
    try:
        import fastconv.onnx_import  # noqa: F401
        import onnx  # noqa: F401
    except ImportError:
        return False
    return getattr(fc, "load_onnx", None) is not None


def test_demo_digits_or_fallback(capsys):
    """auto: the shipped trained model when ONNX import works, else cifar_vgg."""
    if _onnx_import_works():
        assert cli.main(["demo", "--model", "digits", "--repeats", "1"]) == 0
        out = capsys.readouterr().out
        assert "digits: a small VGG trained" in out
        assert "held-out accuracy: 352/360 = 97.78%" in out, out[-500:]
    else:
        _usage_error(capsys, ["demo", "--model", "digits"], "needs ONNX import")
        model, labelled, note = cli.build_demo_model("auto", 0)
        assert labelled is None and "needs ONNX import" in note
        assert model.name == "cifar_vgg"


def test_demo_bad_arguments(capsys):
    _usage_error(capsys, ["demo", "--repeats", "0"], "--repeats >= 1")
    _usage_error(capsys, ["demo", "--threads", "0"], "--threads >= 1")


# ------------------------------------------------------------------------ summary

def test_summary_native(capsys, model_file, small_model):
    assert cli.main(["summary", str(model_file)]) == 0
    out = capsys.readouterr().out
    for n in small_model.nodes:
        assert n.name in out
    total = sum(n.layer.num_params() for n in small_model.nodes)
    assert f"total: {total:,} parameters" in out


def test_summary_errors(capsys, tmp_path, model_file):
    _usage_error(capsys, ["summary", tmp_path / "missing.fcz"], "missing.fcz", "no such file")
    _usage_error(capsys, ["summary", tmp_path], "is a directory")
    bad = tmp_path / "bad.fcz"
    bad.write_bytes(b"hello world, not a model")
    _usage_error(capsys, ["summary", bad], str(bad), "not a fastconv model file")
    cut = tmp_path / "cut.fcz"
    cut.write_bytes(model_file.read_bytes()[:500])
    _usage_error(capsys, ["summary", cut], "truncated")
    _usage_error(capsys, ["summary", model_file, "--batch", "0"], "--batch >= 1")


def test_summary_onnx(capsys):
    if getattr(fc, "load_onnx", None) is None:
        _usage_error(capsys, ["summary", DIGITS_ONNX], "load_onnx is missing")
        return
    if not _onnx_import_works():
        _usage_error(capsys, ["summary", DIGITS_ONNX], "ONNX import is unavailable")
        return
    assert cli.main(["summary", str(DIGITS_ONNX)]) == 0
    out = capsys.readouterr().out
    assert "total: 89,546 parameters" in out


# ------------------------------------------------------------------------ run

def test_run_matches_the_model(capsys, tmp_path, model_file, small_model):
    x = _x(4)
    np.save(tmp_path / "x.npy", x)
    rc = cli.main(["run", str(model_file), "--input", str(tmp_path / "x.npy"),
                   "--output", str(tmp_path / "y.npy"), "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    assert fc.get_num_threads() == 1
    assert "(4, 5)" in capsys.readouterr().err
    assert_bitequal(np.load(tmp_path / "y.npy"), small_model(x), "fastconv run")


def test_run_in_pieces_with_progress(capsys, tmp_path, model_file, small_model, monkeypatch):
    monkeypatch.setattr(cli, "PROGRESS_DELAY_S", 0.0)
    monkeypatch.setitem(sys.modules, "tqdm", None)        # the plain-line fallback
    x = _x(7, seed=1)
    np.save(tmp_path / "x.npy", x.astype(np.float64))     # float64 is converted
    assert cli.main(["run", str(model_file), "-i", str(tmp_path / "x.npy"),
                     "-o", str(tmp_path / "y.npy"), "--batch-size", "3"]) == 0
    err = capsys.readouterr().err
    assert "running: 1/3 (3/7 samples)" in err and "running: 3/3 (7/7 samples)" in err
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (7, 5)
    assert_close(y, small_model(x).astype(np.float64), rtol=1e-5, what="batched run")


def test_run_single_sample_and_npz(capsys, tmp_path, model_file, small_model):
    x = _x(1, seed=2)
    np.save(tmp_path / "one.npy", x[0])                  # no batch axis
    assert cli.main(["run", str(model_file), "--input", f"input={tmp_path / 'one.npy'}",
                     "--output", str(tmp_path / "y.npz")]) == 0
    with np.load(tmp_path / "y.npz") as z:
        assert list(z.keys()) == ["softmax"]
        assert_bitequal(z["softmax"], small_model(x), "npz output")


def test_run_multi_input_model(capsys, tmp_path):
    m = Model([("sum", L.Add(), ("a", "b")), ("act", L.ReLU(), ("sum",))],
              {"a": (4,), "b": (4,)}, ["act", "sum"], name="two")
    p = tmp_path / "two.fcz"
    m.save(p)
    a, b = _x(3, (4,), 1), _x(3, (4,), 2)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    assert cli.main(["run", str(p), "--input", f"a={tmp_path / 'a.npy'}",
                     "--input", f"b={tmp_path / 'b.npy'}", "-o", str(tmp_path / "y.npz")]) == 0
    with np.load(tmp_path / "y.npz") as z:
        assert list(z.keys()) == ["act", "sum"]
        np.testing.assert_array_equal(z["act"], np.maximum(a + b, 0))
    capsys.readouterr()
    _usage_error(capsys, ["run", p, "-i", tmp_path / "a.npy", "-o", tmp_path / "y.npy"],
                 "inputs ['a', 'b']", "NAME=FILE.npy")
    _usage_error(capsys, ["run", p, "-i", f"a={tmp_path / 'a.npy'}", "-o", tmp_path / "y.npy"],
                 "no --input for 'b'")
    _usage_error(capsys, ["run", p, "-i", f"c={tmp_path / 'a.npy'}", "-i",
                          f"b={tmp_path / 'b.npy'}", "-o", tmp_path / "y.npy"],
                 "no input 'c'")


def test_run_errors(capsys, tmp_path, model_file):
    xp = tmp_path / "x.npy"
    np.save(xp, _x(2))
    out = tmp_path / "y.npy"
    _usage_error(capsys, ["run", tmp_path / "nope.fcz", "-i", xp, "-o", out], "no such file")
    _usage_error(capsys, ["run", model_file, "-i", tmp_path / "nope.npy", "-o", out],
                 "nope.npy", "no such file")
    # input files are checked before the model is loaded (which can take seconds)
    garbage = tmp_path / "garbage.fcz"
    garbage.write_bytes(b"garbage")
    _usage_error(capsys, ["run", garbage, "-i", tmp_path / "nope.npy", "-o", out], "nope.npy")
    _usage_error(capsys, ["run", garbage, "-i", xp, "-o", tmp_path / "no" / "y.npy"],
                 "does not exist")
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"\x93NUMPY garbage")
    _usage_error(capsys, ["run", model_file, "-i", junk, "-o", out], "junk.npy",
                 "not a readable .npy")
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, _x(2, (3, 9, 8)))
    _usage_error(capsys, ["run", model_file, "-i", wrong, "-o", out],
                 "shape (2, 3, 9, 8)", "(N, 3, 8, 8)")
    ints = tmp_path / "ints.npy"
    np.save(ints, np.zeros((2, 3, 8, 8), np.int32))
    _usage_error(capsys, ["run", model_file, "-i", ints, "-o", out], "dtype int32")
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _usage_error(capsys, ["run", model_file, "-i", obj, "-o", out], "not a readable .npy")
    _usage_error(capsys, ["run", model_file, "-i", xp, "-o", tmp_path / "no" / "y.npy"],
                 "does not exist")
    _usage_error(capsys, ["run", model_file, "-i", xp, "-o", out, "--batch-size", "0"],
                 "--batch-size >= 1")
    assert not out.exists()


def test_progress_plain_lines_only_after_the_delay():
    buf = io.StringIO()
    with cli.Progress(3, "work", delay=3600, file=buf, use_tqdm=False) as p:
        for _ in range(3):
            p.update()
    assert buf.getvalue() == ""
    with cli.Progress(2, "work", delay=0, file=buf, use_tqdm=False) as p:
        p.update(1, "first")
        p.update(1)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("work: 1/2 (first), ")
    assert lines[1].startswith("work: 2/2, ")


def test_short_labels():
    assert cli._short("conv1+relu1") == "conv1+relu1"
    long = "/features/features.0/Conv_output_0+/features/features.1/Relu_output_0"
    s = cli._short(long)
    assert len(s) == 48 and s.startswith("/features/features.0/") and s.endswith("Relu_output_0")
