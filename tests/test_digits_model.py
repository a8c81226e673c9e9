"""The shipped digits model and torchvision-layout VGG exports, end to end through ONNX.

Digits (fastconv/data/, made by models/train_digits.py): fastconv's logits on the whole
held-out split against onnxruntime and against a float64 NumPy run of the same ONNX
graph, the recorded accuracy reproduced exactly, the recorded preprocessing reproducing
the stored inputs, loading from the installed package's data directory.

VGG (models/export_vgg.py, exported on the fly into a temporary directory, never kept):
VGG-11 at 64x64 and VGG-11-BN at 32x32 through fc.load_onnx and through
fc.models.vgg11(...).load_weights, against onnxruntime and a float64 torch run.
VGG-16 at 224x224 (a 550 MB export, about 30 s) runs only with FASTCONV_TEST_VGG16=1.
"""
from __future__ import annotations

import importlib.resources
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import CONV_RTOL, assert_bitequal, assert_close, ref_conv2d, ref_linear, ref_max_pool2d

import fastconv as fc

DATA_DIR = Path(fc.__file__).resolve().parent / "data"
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
ONNX_NAME = "digits_vgg.onnx"
HELDOUT_NAME = "digits_heldout.npz"
RECORD_NAME = "digits_vgg.json"


# --------------------------------------------------------------------------- digits data


@pytest.fixture(scope="module")
def record():
    with open(DATA_DIR / RECORD_NAME) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def heldout():
    with np.load(DATA_DIR / HELDOUT_NAME) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def onnx_path():
    return DATA_DIR / ONNX_NAME


@pytest.fixture(scope="module")
def ort_logits(onnx_path, heldout):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": heldout["x"]})[0]


@pytest.fixture(scope="module")
def digits_model(onnx_path):
    return fc.load_onnx(onnx_path)


@pytest.fixture(scope="module")
def fc_logits(digits_model, heldout):
    """fastconv's logits on the whole held-out split, one batch of 360."""
    return digits_model(heldout["x"])


def test_data_files_ship_in_the_package(record):
    # importlib.resources sees the same files as the path next to fastconv/__init__.py,
    # which is what an installed wheel (package data) or the in-place build both give.
    res = importlib.resources.files("fastconv") / "data"
    for name in (ONNX_NAME, HELDOUT_NAME, RECORD_NAME):
        assert (res / name).is_file(), f"{name} missing from fastconv's package data"
        assert (res / name).read_bytes() == (DATA_DIR / name).read_bytes()
    size = (DATA_DIR / ONNX_NAME).stat().st_size
    assert size < 1_000_000, f"{ONNX_NAME} is {size} bytes"
    assert record["onnx"]["bytes"] == size
    assert record["model"] == ONNX_NAME and record["heldout_file"] == HELDOUT_NAME


def test_heldout_file_matches_record(record, heldout):
    x, y, raw, index = heldout["x"], heldout["y"], heldout["raw"], heldout["index"]
    n = record["num_heldout"]
    assert x.dtype == np.float32 and x.shape == (n, 1, 32, 32)
    assert y.dtype == np.uint8 and y.shape == (n,)
    assert raw.dtype == np.uint8 and raw.shape == (n, 8, 8) and raw.max() <= 16
    assert index.shape == (n,) and len(np.unique(index)) == n
    assert np.all((0 <= index) & (index < record["num_total"]))
    assert record["num_train"] + n == record["num_total"]
    assert record["heldout_correct"] == round(record["heldout_accuracy"] * n)
    assert record["heldout_accuracy"] >= 0.97
    # stratified: every class is held out in proportion (within one image)
    counts = np.bincount(y, minlength=10)
    assert counts.sum() == n and np.all(np.abs(counts - n / 10) <= 0.05 * n)


def _bilinear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """[n_out, n_in] weights of 1-D linear interpolation, align_corners=False (torch's
    convention: source coordinate (i + 0.5) * n_in / n_out - 0.5, clamped at 0)."""
    a = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = min(int(np.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        a[i, i0] += 1.0 - lam
        a[i, i1] += lam
    return a


def test_recorded_preprocessing_reproduces_the_inputs(record, heldout):
    # A user with a raw 8x8 digit must be able to rebuild the model's input from the JSON.
    p = record["preprocessing"]
    assert p["upsample"]["mode"] == "bilinear" and p["upsample"]["align_corners"] is False
    h, w = p["upsample"]["size"]
    ah, aw = _bilinear_matrix(h, 8), _bilinear_matrix(w, 8)
    x01 = heldout["raw"].astype(np.float64) * p["scale"]
    up = np.einsum("hi,nij,wj->nhw", ah, x01, aw)
    x = (up - p["mean"]) / p["std"]
    err = float(np.max(np.abs(x - heldout["x"][:, 0])))
    assert err < 1e-5, f"recorded preprocessing differs from the stored inputs by {err}"


def test_raw_images_are_load_digits_rows(heldout):
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    idx = heldout["index"]
    assert np.array_equal(digits.images[idx].astype(np.uint8), heldout["raw"])
    assert np.array_equal(digits.target[idx].astype(np.uint8), heldout["y"])


def test_onnx_file_is_plain_and_standard(onnx_path):
    onnx = pytest.importorskip("onnx")
    proto = onnx.load(str(onnx_path))
    onnx.checker.check_model(proto)
    ops = {n.op_type for n in proto.graph.node}
    assert ops <= {"Conv", "Relu", "MaxPool", "Flatten", "Reshape", "Gemm", "MatMul", "Add"}
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value, "batch axis should be dynamic"


# --------------------------------------------------------------------------- float64 oracle


def _attrs(node, onnx):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _run_onnx_float64(path, x):
    """Interpret the digits graph (Conv, Relu, MaxPool, Flatten, Gemm) in float64 with the
    suite's NumPy references; independent of fastconv and of onnxruntime."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    env = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in proto.graph.initializer}
    env[proto.graph.input[0].name] = np.asarray(x, np.float64)
    for node in proto.graph.node:
        a = _attrs(node, onnx)
        ins = [env[i] for i in node.input if i]
        if node.op_type == "Conv":
            t, l, b, r = a.get("pads", [0, 0, 0, 0])
            y = ref_conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None,
                           stride=tuple(a.get("strides", [1, 1])), padding=(t, l, b, r),
                           dilation=tuple(a.get("dilations", [1, 1])), groups=a.get("group", 1))
        elif node.op_type == "Relu":
            y = np.maximum(ins[0], 0.0)
        elif node.op_type == "MaxPool":
            t, l, b, r = a.get("pads", [0, 0, 0, 0])
            y = ref_max_pool2d(ins[0], tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1])),
                               (t, l, b, r), tuple(a.get("dilations", [1, 1])),
                               bool(a.get("ceil_mode", 0)))
        elif node.op_type == "Flatten":
            y = ins[0].reshape(ins[0].shape[0], -1)
        elif node.op_type == "Gemm":
            assert a.get("alpha", 1.0) == 1.0 and a.get("beta", 1.0) == 1.0
            assert not a.get("transA", 0)
            w = ins[1] if a.get("transB", 0) else ins[1].T
            y = ref_linear(ins[0], w, ins[2] if len(ins) > 2 else None)
        else:
            raise AssertionError(f"float64 oracle: unexpected op {node.op_type}")
        env[node.output[0]] = y
    return env[proto.graph.output[0].name]


# --------------------------------------------------------------------------- digits model


def test_digits_model_io(digits_model, record):
    model = digits_model
    assert model.input_names == [record["input_name"]]
    assert model.output_names == [record["output_name"]]
    assert model.input_shapes[record["input_name"]] == (1, 32, 32)


def test_digits_matches_onnxruntime_on_every_heldout_image(onnx_path, heldout, ort_logits, isa):
    model = fc.load_onnx(onnx_path)          # loaded (weights packed) under this ISA
    got = model.run({"input": heldout["x"]})["logits"]
    assert got.shape == ort_logits.shape == (len(heldout["y"]), 10)
    assert_close(got, ort_logits, CONV_RTOL, f"digits logits vs onnxruntime ({isa})")
    differ = np.flatnonzero(got.argmax(1) != ort_logits.argmax(1))
    assert differ.size == 0, f"argmax differs from onnxruntime on held-out images {differ}"


def test_digits_matches_float64_reference(onnx_path, heldout, fc_logits):
    # a third of the split keeps the float64 run near 2 s
    ref = _run_onnx_float64(onnx_path, heldout["x"][::3])
    got = fc_logits[::3]
    assert_close(got, ref, CONV_RTOL, "digits logits vs float64 reference")
    assert np.array_equal(got.argmax(1), ref.argmax(1))


def test_digits_accuracy_equals_recorded(fc_logits, heldout, record):
    pred = fc_logits.argmax(1)
    correct = int((pred == heldout["y"]).sum())
    assert correct == record["heldout_correct"], (
        f"fastconv gets {correct}/{len(pred)} right, the record says "
        f"{record['heldout_correct']}")
    assert correct / len(pred) == pytest.approx(record["heldout_accuracy"], abs=1e-12)


def test_digits_batch_size_does_not_change_the_answer(digits_model, heldout, fc_logits):
    model = digits_model
    x = heldout["x"][:23]
    whole = fc_logits[:23]
    ones = np.concatenate([model(x[i:i + 1]) for i in range(len(x))])
    sevens = np.concatenate([model(x[i:i + 7]) for i in range(0, len(x), 7)])
    assert_close(ones, whole.astype(np.float64), CONV_RTOL, "batch 1 vs batch 23")
    assert_close(sevens, whole.astype(np.float64), CONV_RTOL, "batch 7 vs batch 23")
    assert model(x[:0]).shape == (0, 10)


def test_digits_loads_from_path_bytes_and_proto(onnx_path, heldout):
    onnx = pytest.importorskip("onnx")
    x = heldout["x"][:16]
    ref = fc.load_onnx(str(onnx_path))(x)
    from_path = fc.load_onnx(onnx_path)(x)     # a pathlib.Path
    from_bytes = fc.load_onnx(onnx_path.read_bytes())(x)
    from_proto = fc.load_onnx(onnx.load(str(onnx_path)))(x)
    assert_bitequal(from_path, ref, "Path vs str")
    assert_bitequal(from_bytes, ref, "bytes vs path")
    assert_bitequal(from_proto, ref, "ModelProto vs path")


# --------------------------------------------------------------------------- VGG exports


@pytest.fixture(scope="module")
def export_vgg_module():
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    sys.path.insert(0, str(MODELS_DIR))
    try:
        import export_vgg
    finally:
        sys.path.remove(str(MODELS_DIR))
    return export_vgg


def _vgg_case(ev, tmp_dir, arch, input_size, batch_norm, batch=2, seed=0):
    """Export, then the references: onnxruntime's output and torch's in float64."""
    import torch
    ort = pytest.importorskip("onnxruntime")

    net = ev.build_vgg(arch, batch_norm=batch_norm, input_size=input_size, seed=seed)
    path = ev.export_module(
        net, tmp_dir / f"{arch}{'_bn' if batch_norm else ''}_{input_size}.onnx")
    x = np.random.default_rng(seed + 1).standard_normal((batch, 3, input_size, input_size))
    x = x.astype(np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ort_out = sess.run(None, {"input": x})[0]
    del sess
    net = net.double()
    with torch.no_grad():
        ref64 = net(torch.from_numpy(x.astype(np.float64))).numpy()
    del net
    return path, x, ort_out, ref64


def _check_vgg(got, x, ort_out, ref64, what):
    assert got.shape == ort_out.shape == (x.shape[0], 1000), what
    assert_close(got, ort_out, CONV_RTOL, f"{what} vs onnxruntime")
    assert_close(got, ref64, CONV_RTOL, f"{what} vs float64 torch")
    assert np.array_equal(got.argmax(1), ort_out.argmax(1)), what


@pytest.fixture(scope="module")
def vgg11_64(export_vgg_module, tmp_path_factory):
    case = _vgg_case(export_vgg_module, tmp_path_factory.mktemp("vgg11"), "vgg11", 64, False)
    yield case
    os.remove(case[0])


@pytest.fixture(scope="module")
def vgg11_bn_32(export_vgg_module, tmp_path_factory):
    case = _vgg_case(export_vgg_module, tmp_path_factory.mktemp("vgg11bn"), "vgg11", 32, True)
    yield case
    os.remove(case[0])


def test_vgg11_load_onnx_matches_onnxruntime(vgg11_64):
    path, x, ort_out, ref64 = vgg11_64
    model = fc.load_onnx(path)
    assert model.input_names == ["input"] and model.output_names == ["output"]
    _check_vgg(model(x), x, ort_out, ref64, "load_onnx(vgg11 @64)")


def test_vgg11_builder_load_weights_matches_onnxruntime(vgg11_64):
    if not hasattr(getattr(fc, "models", None), "vgg11"):
        pytest.skip("fastconv.models.vgg11 is not available")
    path, x, ort_out, ref64 = vgg11_64
    model = fc.models.vgg11(input_size=(3, 64, 64)).load_weights(path)
    _check_vgg(model(x), x, ort_out, ref64, "models.vgg11(64).load_weights")


def test_vgg11_bn_load_onnx_matches_onnxruntime(vgg11_bn_32):
    path, x, ort_out, ref64 = vgg11_bn_32
    onnx = pytest.importorskip("onnx")
    ops = {n.op_type for n in onnx.load(path, load_external_data=False).graph.node}
    assert "BatchNormalization" in ops, "the export should keep its BatchNorm nodes"
    _check_vgg(fc.load_onnx(path)(x), x, ort_out, ref64, "load_onnx(vgg11_bn @32)")


def test_vgg11_bn_builder_load_weights_matches_onnxruntime(vgg11_bn_32):
    if not hasattr(getattr(fc, "models", None), "vgg11"):
        pytest.skip("fastconv.models.vgg11 is not available")
    path, x, ort_out, ref64 = vgg11_bn_32
    model = fc.models.vgg11(input_size=(3, 32, 32), batch_norm=True).load_weights(path)
    _check_vgg(model(x), x, ort_out, ref64, "models.vgg11(bn, 32).load_weights")


@pytest.mark.skipif(os.environ.get("FASTCONV_TEST_VGG16") != "1",
                    reason="VGG-16 at 224x224 (a 550 MB export): set FASTCONV_TEST_VGG16=1")
def test_vgg16_224_load_onnx_and_load_weights(export_vgg_module, tmp_path):
    path, x, ort_out, ref64 = _vgg_case(export_vgg_module, tmp_path, "vgg16", 224, False,
                                        batch=1)
    try:
        _check_vgg(fc.load_onnx(path)(x), x, ort_out, ref64, "load_onnx(vgg16 @224)")
        if hasattr(getattr(fc, "models", None), "vgg16"):
            model = fc.models.vgg16().load_weights(path)
            _check_vgg(model(x), x, ort_out, ref64, "models.vgg16().load_weights")
    finally:
        os.remove(path)
