"""bench/onnx_from_model.py: a fastconv Model exported to ONNX computes, under ONNX Runtime,
what fastconv computes (the whole-network benchmark relies on it)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
from fastconv import layers as L

onnx = pytest.importorskip("onnx")

_PATH = Path(__file__).resolve().parent.parent / "bench" / "onnx_from_model.py"
_spec = importlib.util.spec_from_file_location("fastconv_bench_onnx_from_model", _PATH)
X = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = X
_spec.loader.exec_module(X)

TOL = 1e-4     # max |fastconv - ORT| / max |ORT|


def _session(proto):
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def _rel(out, ref):
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    assert out.shape == ref.shape
    return float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))


def _input(model, batch, seed=1):
    shape = model.input_shapes[model.input_names[0]]
    return np.random.default_rng(seed).standard_normal((batch,) + shape, dtype=np.float32)


def _check(model, batches=(3,)):
    proto = X.model_to_onnx(model)
    sess = _session(proto)
    name = model.input_names[0]
    assert sess.get_inputs()[0].name == name
    for b in batches:
        x = _input(model, b)
        got = sess.run(None, {name: x})[0]
        want = model(x)
        assert got.shape == want.shape == (b,) + model.shapes[model.output_names[0]]
        assert _rel(want, got) <= TOL, (model.name, b, _rel(want, got))
    return proto


def test_small_convnet_matches_ort_and_batch_is_dynamic():
    m = fc.models.convnet(blocks=((8, 2), (16, 1)), fc=(32,), num_classes=7,
                          input_size=(3, 20, 12), seed=3)
    proto = _check(m, batches=(1, 5))        # one session, two batch sizes
    dim0 = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param == X.BATCH_DIM and not dim0.HasField("dim_value")
    assert [o.name for o in proto.graph.output] == m.output_names
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Conv") == 3 and ops.count("Gemm") == 2 and ops[-1] == "Softmax"
    assert all(a.i == 1 for n in proto.graph.node if n.op_type == "Gemm"
               for a in n.attribute if a.name == "transB")


def test_initializers_are_the_named_params_bit_for_bit():
    from onnx import numpy_helper
    m = fc.models.convnet(blocks=((4, 1),), fc=(), num_classes=3, input_size=(2, 8, 8))
    proto = X.model_to_onnx(m)
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    params = m.named_params()
    assert list(inits) == list(params)
    for k, v in params.items():
        assert inits[k].dtype == np.float32 and np.array_equal(inits[k], v), k
    assert proto.opset_import[0].version == X.OPSET == 17


@pytest.mark.parametrize("layout", ["nchw", "nchw8c"])
def test_cifar_vgg_matches_ort(layout):
    m = fc.models.cifar_vgg(seed=2)
    m.layout = layout                    # NCHW8c: blocked direct convs and pools
    _check(m, batches=(2,))


def test_cifar_vgg_batch_norm_with_trained_like_statistics_matches_ort():
    m = fc.models.cifar_vgg(batch_norm=True, seed=4)
    rng = np.random.default_rng(0)
    for n in m.nodes:
        if n.layer.kind == "BatchNorm2d":
            c = n.layer.num_features
            p = n.layer.params
            p["weight"][:] = rng.uniform(0.5, 1.5, c)
            p["bias"][:] = rng.normal(0, 0.1, c)
            p["running_mean"][:] = rng.normal(0, 0.2, c)
            p["running_var"][:] = rng.uniform(0.5, 2.0, c)
    m.compile()
    proto = _check(m, batches=(2,))
    assert sum(n.op_type == "BatchNormalization" for n in proto.graph.node) == 13


@pytest.mark.parametrize("layout", ["nchw", "nchw8c"])
def test_other_layers_match_ort(layout):
    # strided / dilated / asymmetric-padded conv, average pooling both ways, dropout,
    # identity, leaky relu, global pooling, a branch with Add and Concat, a Reshape
    nodes = [
        ("c1", L.Conv2d(3, 8, 3, stride=2, padding=(1, 0, 2, 1), seed=1), "x"),
        ("lr", L.LeakyReLU(0.1), "c1"),
        ("a1", L.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), "lr"),
        ("a2", L.AvgPool2d(3, stride=1, padding=1, count_include_pad=True), "lr"),
        ("add", L.Add(), ("a1", "a2")),
        ("c2", L.Conv2d(8, 8, 3, padding=2, dilation=2, seed=2), "add"),
        ("mp", L.MaxPool2d(3, stride=1, padding=1), "lr"),
        ("cat", L.Concat(axis=1), ("c2", "mp")),
        ("do", L.Dropout(0.5), "cat"),
        ("id", L.Identity(), "do"),
        ("gap", L.GlobalAvgPool2d(), "id"),
        ("fl", L.Flatten(), "gap"),
        ("rs", L.Reshape((4, 4)), "fl"),
        ("rs2", L.Reshape((-1,)), "rs"),
        ("fc", L.Linear(16, 5, seed=3), "rs2"),
        ("sm", L.Softmax(axis=-1), "fc"),
    ]
    m = fc.Model(nodes, {"x": (3, 13, 11)}, ["sm", "gap"], name="mixed")
    m.layout = layout
    proto = X.model_to_onnx(m)
    assert "Dropout" not in [n.op_type for n in proto.graph.node]
    sess = _session(proto)
    x = _input(m, 2)
    got = dict(zip(["sm", "gap"], sess.run(None, {"x": x})))
    want = m.run({"x": x})
    for k in ("sm", "gap"):
        assert _rel(want[k], got[k]) <= TOL, k


def test_unsupported_layer_names_the_node():
    m = fc.Sequential([L.Conv2d(1, 2, 3, name="c"), L.SpectralPool2d(2, name="spec")],
                      (1, 8, 8))
    with pytest.raises(fc.UnsupportedOperatorError, match="spec: no ONNX export for a "
                                                          "SpectralPool2d"):
        X.model_to_onnx(m)


def test_max_rel_diff():
    a = np.array([[1.0, -4.0]], np.float32)
    assert X.max_rel_diff(a, a) == 0.0
    assert X.max_rel_diff(a + np.float32(0.5), a) == pytest.approx(0.125)
    assert X.max_rel_diff(a, a[:, :1]) == float("inf")
