"""bench/network_table.py's peers: --peers parsing, the OpenVINO column when OpenVINO is
absent (it must say so, never fail), and, where OpenVINO is installed, that its runner
computes what fastconv computes on a tiny network in float32."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
from fastconv import _bench_peers as P

_PATH = Path(__file__).resolve().parent.parent / "bench" / "network_table.py"


@pytest.fixture(scope="module")
def nt():
    # the script imports its bench/ neighbours (_tree, speed_table) as a script would
    sys.path.insert(0, str(_PATH.parent))
    try:
        spec = importlib.util.spec_from_file_location("fastconv_bench_network_table", _PATH)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(_PATH.parent))
    return mod


def _tiny(fc_):
    # 3x8x8 -> conv 4 -> pool -> fc 8 -> fc 3 -> softmax: a whole network in milliseconds
    return fc_.models.convnet(blocks=((4, 1),), fc=(8,), input_size=(3, 8, 8), seed=0)


def test_peers_parsing(nt):
    assert nt.parse_args([]).peers == ["ort", "openvino"]
    assert nt.parse_args(["--peers", "openvino, ORT,ort"]).peers == ["ort", "openvino"]
    assert nt.parse_args(["--peers", "ort"]).peers == ["ort"]
    with pytest.raises(ValueError, match=r"unknown peer\(s\) 'tensorrt'.*ort, openvino"):
        nt.parse_peers("ort,tensorrt")


def test_peers_flag_rejects_unknown(nt, capsys):
    with pytest.raises(SystemExit) as e:
        nt.parse_args(["--peers", "ort,bogus"])
    assert e.value.code == 2
    assert "unknown peer(s) 'bogus'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        nt.parse_args(["--peers", "ort", "--openvino-default-precision"])
    assert "needs openvino in --peers" in capsys.readouterr().err


def test_import_peers_without_openvino(nt, monkeypatch):
    real = nt.import_optional

    def fake(name):
        if name == "openvino":
            return None, "openvino not installed (ModuleNotFoundError: No module named 'x')"
        return real(name)
    monkeypatch.setattr(nt, "import_optional", fake)
    _, _, ov, why = nt.import_peers(["ort", "openvino"])
    assert ov is None and why["openvino"].startswith("not installed")
    _, ort, ov, why = nt.import_peers(["ort"])
    assert ov is None and why["openvino"] == "not requested" and "ort" not in why


def test_openvino_config_is_f32_latency():
    cfg = P.openvino_config(2)
    assert cfg["INFERENCE_PRECISION_HINT"] == "f32"
    assert cfg["INFERENCE_NUM_THREADS"] == "2" and cfg["NUM_STREAMS"] == "1"
    assert cfg["PERFORMANCE_HINT"] == "LATENCY" and cfg["ENABLE_CPU_PINNING"] == "NO"
    assert "INFERENCE_PRECISION_HINT" not in P.openvino_config(1, precision=None)


def test_main_without_openvino_says_not_installed(nt, monkeypatch, capsys, tmp_path):
    """A whole run on a tiny network with OpenVINO made absent: the OV cells say
    "not installed", the JSON has no OpenVINO figures and nothing fails."""
    pytest.importorskip("onnx")
    real = nt.import_optional
    monkeypatch.setattr(nt, "import_optional", lambda name: (
        (None, "openvino not installed (ModuleNotFoundError)") if name == "openvino"
        else real(name)))
    monkeypatch.setitem(nt.NETWORKS, "tiny", {"title": "tiny net", "batches": (2,),
                                              "build": _tiny})
    # the FMA peak runs are not what is tested here
    monkeypatch.setattr(nt.ST, "measure_peaks", lambda ctx, when: None)
    out = tmp_path / "net.json"
    nt.main(["--networks", "tiny", "--threads", "1", "--quick", "--repeats", "1",
             "--profile-repeats", "1", "--no-rss", "--no-in-order", "--json", str(out)])
    md = capsys.readouterr().out
    row = next(line for line in md.splitlines() if line.startswith("| tiny net |"))
    head = next(line for line in md.splitlines() if line.startswith("| network | batch |"))
    cells = dict(zip([c.strip() for c in head.split("|")],
                     [c.strip() for c in row.split("|")]))
    assert cells["OV ms"] == "not installed"
    assert cells["fastconv/OV"] == "n/a" and cells["fastconv/OV latency"] == "n/a"
    assert cells["fastconv ms"] not in ("", "n/a")
    assert "- OpenVINO: not installed" in md
    doc = json.loads(out.read_text())
    d = doc["networks"]["tiny"]["batches"]["2"]["threads"]["1"]
    assert "openvino" not in d and d["fastconv"]["median_s"] > 0
    assert doc["meta"]["openvino"] is None
    assert doc["meta"]["peers_not_run"]["openvino"].startswith("not installed")


def test_openvino_runner_matches_fastconv(nt):
    ov = pytest.importorskip("openvino", reason="openvino not installed (optional: the openvino extra)")
    pytest.importorskip("onnx")
    model = _tiny(fc)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8), dtype=np.float32)
    proto = nt.EXPORT.model_to_onnx(model).SerializeToString()
    compiled = P.openvino_compile(ov, proto, 1, x.shape)
    props = P.openvino_properties(compiled)
    assert props["INFERENCE_PRECISION_HINT"] == "f32"
    assert props["INFERENCE_NUM_THREADS"] == "1"
    assert set(props["runtime_precisions"].get("Convolution", ["f32"])) == {"f32"}
    run = P.openvino_runner(ov, compiled, x)
    ref = model(x).astype(np.float64)
    y1, y2 = run(), run()
    assert y1 is not y2                     # a fresh array per call, as the other engines
    assert nt.EXPORT.max_rel_diff(y1, ref) <= nt.CHECK_TOL
    assert np.array_equal(y1, y2)
    x += 1.0                                # the input is shared, not copied once
    assert not np.array_equal(run(), y1)
