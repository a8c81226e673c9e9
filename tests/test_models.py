"""Model builders (fastconv.models): layout, shapes, parameter counts, MACs, receptive
fields against hand-computed values, and outputs against a float64 NumPy reference."""
from __future__ import annotations

import gc

import numpy as np
import pytest

import fastconv as fc
from fastconv import models

from conftest import (assert_close, ref_conv2d, ref_linear, ref_max_pool2d, ref_softmax)

# conv widths and pools of the four VGGs, written out again here (not taken from
# fastconv.models) so that the expected numbers are independent of the builder
CFG = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def expected_names(cfg, bn=False):
    names, i = [], 0
    for v in cfg:
        n = 1 if v == "M" else (3 if bn else 2)
        names += [f"features.{i + k}" for k in range(n)]
        i += n
    return names + ["flatten"] + [f"classifier.{k}" for k in range(7)]


def hand_counts(cfg, num_classes=1000, hw=224, bn=False):
    """(parameters, MACs) of a VGG by hand: conv (9*Ci + 1)*Co params and
    Co*H*W*Ci*9 MACs, BatchNorm 2*C trainable params (as torch counts), linear (in+1)*out."""
    params = macs = 0
    c, h = 3, hw
    for v in cfg:
        if v == "M":
            h //= 2
            continue
        params += (9 * c + 1) * v + (2 * v if bn else 0)
        macs += v * h * h * c * 9
        c = v
    for fin, fout in ((c * h * h, 4096), (4096, 4096), (4096, num_classes)):
        params += (fin + 1) * fout
        macs += fin * fout
    return params, macs


def total_params(model):
    return sum(n.layer.num_params() for n in model.nodes)


def macs_by_kind(model):
    out = {}
    for n in model.nodes:
        m = n.layer.macs([model.shapes[i] for i in n.inputs])
        out[n.layer.kind] = out.get(n.layer.kind, 0) + int(m)
    return out


@pytest.fixture(scope="module")
def vgg16():
    m = models.vgg16()
    yield m
    del m
    gc.collect()


# ------------------------------------------------------------------------ VGG-16

def test_hand_counts_match_the_published_numbers():
    # the numbers, and torchvision's parameter counts
    assert hand_counts(CFG["vgg16"])[0] == 138_357_544
    assert hand_counts(CFG["vgg11"])[0] == 132_863_336
    assert hand_counts(CFG["vgg19"])[0] == 143_667_240
    assert hand_counts(CFG["vgg16"], bn=True)[0] == 138_365_992
    assert round(hand_counts(CFG["vgg16"])[1] / 1e9, 2) == 15.47


def test_vgg16_names_and_shapes(vgg16):
    assert [n.name for n in vgg16.nodes] == expected_names(CFG["vgg16"])
    assert vgg16.input_shapes == {"input": (3, 224, 224)}
    s = vgg16.shapes
    # the last conv of each stage and the pool after it
    for conv, pool, c, hw in (("features.2", "features.4", 64, 224),
                              ("features.7", "features.9", 128, 112),
                              ("features.14", "features.16", 256, 56),
                              ("features.21", "features.23", 512, 28),
                              ("features.28", "features.30", 512, 14)):
        assert s[conv] == (c, hw, hw) and s[pool] == (c, hw // 2, hw // 2)
    assert s["flatten"] == (512 * 7 * 7,)
    assert s["classifier.0"] == (4096,) and s["classifier.3"] == (4096,)
    assert s["classifier.6"] == (1000,)
    assert vgg16.output_names == ["classifier.6"]
    kinds = [n.layer.kind for n in vgg16.nodes]
    assert kinds.count("Conv2d") == 13 and kinds.count("MaxPool2d") == 5
    assert kinds.count("Linear") == 3 and kinds.count("Dropout") == 2
    assert "Softmax" not in kinds          # torchvision's VGG returns logits


def test_vgg16_params_and_macs(vgg16):
    p, macs = hand_counts(CFG["vgg16"])
    assert total_params(vgg16) == p == 138_357_544
    assert vgg16.num_params() == p
    by = macs_by_kind(vgg16)
    assert by["Conv2d"] + by["Linear"] == macs
    assert abs(sum(by.values()) - 15.47e9) < 0.005e9, by


def test_vgg16_receptive_fields(vgg16):
    rf = vgg16.receptive_fields
    assert rf["features.28"].size == (196.0, 196.0)      # conv5_3
    assert rf["features.30"].size == (212.0, 212.0)      # pool5
    assert rf["features.30"].jump == (32.0, 32.0)
    assert rf["features.0"].size == (3.0, 3.0) and rf["features.4"].size == (6.0, 6.0)
    # centre of the first output pixel: padding 1 shifts each conv by -1 jump, the
    # 2x2 pool by +0.5 jump; the input's first pixel centre is 0.5
    assert rf["features.4"].start == (1.0, 1.0)


def test_vgg16_weights_he_init_and_per_layer_seeds(vgg16):
    w12 = vgg16.node("features.12").layer.params["weight"]
    w14 = vgg16.node("features.14").layer.params["weight"]
    assert w12.shape == w14.shape == (256, 256, 3, 3)
    assert not np.array_equal(w12, w14), "two layers of one shape got the same weights"
    for name in ("features.0", "features.14", "features.28"):
        w = vgg16.node(name).layer.params["weight"]
        fan_in = w.shape[1] * w.shape[2] * w.shape[3]
        assert abs(float(np.std(w)) / np.sqrt(2.0 / fan_in) - 1) < 0.05, name
        assert abs(float(np.mean(w))) < 0.1 * np.sqrt(2.0 / fan_in), name


def test_vgg16_summary_totals(vgg16):
    text = str(vgg16.summary(print_fn=None))
    assert "138,357,544" in text, text[-2000:]


# ------------------------------------------------------------------------ VGG-11, 19, BN

@pytest.mark.parametrize("key,expect", [("vgg11", 132_863_336), ("vgg19", 143_667_240)])
def test_vgg11_vgg19(key, expect):
    m = getattr(models, key)()
    p, macs = hand_counts(CFG[key])
    assert total_params(m) == p == expect
    by = macs_by_kind(m)
    assert by["Conv2d"] + by["Linear"] == macs
    assert [n.name for n in m.nodes] == expected_names(CFG[key])
    assert m.shapes[expected_names(CFG[key])[-9]] == (512, 7, 7)     # last pool
    # receptive field after the last pool, by the size/jump rule
    size, jump = 1, 1
    for v in CFG[key]:
        if v == "M":
            size, jump = size + jump, jump * 2
        else:
            size += 2 * jump
    assert m.receptive_fields[expected_names(CFG[key])[-9]].size == (size, size)
    assert size == {"vgg11": 150, "vgg19": 268}[key]
    del m
    gc.collect()


def test_vgg16_bn():
    m = models.vgg16(batch_norm=True)
    names = [n.name for n in m.nodes]
    assert names == expected_names(CFG["vgg16"], bn=True)
    assert names[names.index("flatten") - 1] == "features.43"     # as torchvision
    assert m.node("features.1").layer.kind == "BatchNorm2d"
    assert set(m.node("features.1").layer.params) == {"weight", "bias", "running_mean",
                                                      "running_var"}
    assert total_params(m) == 138_365_992
    del m
    gc.collect()


def test_vgg13_counts():
    m = models.vgg13(num_classes=10, input_size=(3, 32, 32))
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
    assert total_params(m) == hand_counts(cfg, num_classes=10, hw=32)[0]
    assert m.shapes["classifier.0"] == (4096,) and m.shapes["flatten"] == (512,)


def test_vgg_other_input_size_runs():
    """No AdaptiveAvgPool2d: the classifier takes 512*(H//32)*(W//32) features."""
    m = models.vgg11(num_classes=7, input_size=(3, 100, 70), seed=1)
    assert m.shapes["flatten"] == (512 * 3 * 2,)
    assert m.node("classifier.0").layer.params["weight"].shape == (4096, 512 * 3 * 2)
    y = m(np.random.default_rng(0).standard_normal((2, 3, 100, 70)).astype(np.float32))
    assert y.shape == (2, 7) and np.all(np.isfinite(y))


def test_vgg_input_too_small():
    with pytest.raises(fc.ShapeError, match="features"):
        models.vgg11(input_size=(3, 16, 16))
    with pytest.raises(ValueError, match="input_size"):
        models.vgg11(input_size=(3, 32))


# ------------------------------------------------------------------------ CIFAR VGG

def _ref_forward(model, x):
    """The documented layouts in float64 NumPy, node by node, from the layers' weights."""
    y = np.asarray(x, np.float64)
    for n in model.nodes:
        layer, k = n.layer, n.layer.kind
        p = {a: np.asarray(v, np.float64) for a, v in layer.params.items()}
        if k == "Conv2d":
            y = ref_conv2d(y, p["weight"], p.get("bias"), padding=1)
        elif k == "BatchNorm2d":
            sh = (1, -1, 1, 1)
            y = ((y - p["running_mean"].reshape(sh)) / np.sqrt(p["running_var"].reshape(sh)
                 + layer.config().get("eps", 1e-5)) * p["weight"].reshape(sh)
                 + p["bias"].reshape(sh))
        elif k == "ReLU":
            y = np.maximum(y, 0)
        elif k == "MaxPool2d":
            y = ref_max_pool2d(y, 2, 2)
        elif k == "Flatten":
            y = y.reshape(y.shape[0], -1)
        elif k == "Linear":
            y = ref_linear(y, p["weight"], p["bias"])
        elif k == "Softmax":
            y = ref_softmax(y)
        elif k != "Dropout":
            raise AssertionError(f"unexpected layer {k}")
    return y


@pytest.mark.parametrize("bn", [False, True])
def test_cifar_vgg(bn):
    m = models.cifar_vgg(num_classes=10, batch_norm=bn, seed=3)
    names = [n.name for n in m.nodes]
    assert names[:names.index("flatten")] == expected_names(CFG["vgg16"], bn)[:-8]
    assert names[names.index("flatten"):] == ["flatten", "classifier.0", "classifier.1",
                                              "classifier.2"]
    assert m.input_shapes == {"input": (3, 32, 32)}
    assert m.shapes["flatten"] == (512,) and m.shapes["classifier.2"] == (10,)
    conv_p = sum((9 * ci + 1) * co for ci, co in zip(
        [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512],
        [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]))
    bn_p = 2 * 4224 if bn else 0
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    assert_close(m(x), _ref_forward(m, x), what="cifar_vgg vs float64 reference")
    assert total_params(m) == conv_p + bn_p + 513 * 512 + 513 * 10


def test_seeds_reproducible_and_distinct():
    a = models.convnet(seed=5)
    b = models.convnet(seed=5)
    c = models.convnet(seed=6)
    pa, pb, pc = a.named_params(), b.named_params(), c.named_params()
    assert list(pa) == list(pb) == list(pc)
    for k in pa:
        assert np.array_equal(pa[k], pb[k]), k
        if k.endswith("weight"):
            assert not np.array_equal(pa[k], pc[k]), k


# ------------------------------------------------------------------------ convnet

def test_convnet_default_layout():
    m = models.convnet()
    assert [n.name for n in m.nodes] == [
        "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
        "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
        "flatten", "fc1", "relu_fc1", "fc_out", "softmax"]
    assert m.shapes["pool2"] == (64, 8, 8) and m.shapes["fc1"] == (128,)
    assert m.shapes["softmax"] == (10,)
    expect = (27 + 1) * 32 + (288 + 1) * 32 + (288 + 1) * 64 + (576 + 1) * 64 \
        + (4096 + 1) * 128 + (128 + 1) * 10
    assert total_params(m) == expect
    x = np.random.default_rng(2).standard_normal((3, 3, 32, 32)).astype(np.float32)
    y = m(x)
    assert_close(y, _ref_forward(m, x), what="convnet vs float64 reference")
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


def test_convnet_configurable():
    m = models.convnet(blocks=((8, 1), (16, 3), (4, 1)), fc=(20, 12), num_classes=3,
                       input_size=(1, 24, 16), seed=1)
    kinds = [n.layer.kind for n in m.nodes]
    assert kinds.count("Conv2d") == 5 and kinds.count("MaxPool2d") == 3
    assert m.shapes["pool3"] == (4, 3, 2) and m.shapes["flatten"] == (24,)
    assert m.shapes["fc1"] == (20,) and m.shapes["fc2"] == (12,)
    assert m.shapes["fc_out"] == (3,)
    x = np.random.default_rng(3).standard_normal((2, 1, 24, 16)).astype(np.float32)
    assert_close(m(x), _ref_forward(m, x), what="configured convnet")


def test_convnet_bad_arguments():
    with pytest.raises(ValueError, match="block 2"):
        models.convnet(blocks=((8, 1), (16,)))
    with pytest.raises(ValueError, match="block 1"):
        models.convnet(blocks=((0, 1),))
    with pytest.raises(fc.ShapeError, match="pool3"):
        models.convnet(blocks=((4, 1),) * 3, input_size=(3, 4, 4))


def test_algo_argument_reaches_every_conv():
    m = models.convnet(algo="im2col")
    assert all(n.layer.algo == "im2col" for n in m.nodes if n.layer.kind == "Conv2d")
