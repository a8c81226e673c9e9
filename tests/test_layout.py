"""Model.layout = "nchw8c": activations stored channel-blocked from the first conv to the
flatten (issue 7), against the same model compiled with NCHW activations and against a
float64 reference, with the plan's steps checked: blocked convs, pools and ReLUs, and
reorders only where something needs NCHW."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import fastconv as fc
from fastconv import layers as L
from fastconv import models
from fastconv.graph import Model
from fastconv.plan import BlockedConvStep, PoolStep, ReorderStep
from conftest import (assert_bitequal, assert_close, num_threads, rand, ref_conv2d,
                      ref_linear, ref_max_pool2d, use_isa)


def small_vgg(**kw):
    return models.convnet(blocks=((8, 2), (13, 1), (20, 1)), fc=(16,), num_classes=5,
                          input_size=(3, 20, 18), **kw)


def reference(model, x):
    """The convnet in float64 NumPy (conv, ReLU, 2x2 max pool, flatten, linear, softmax)."""
    h = x.astype(np.float64)
    for n in model.nodes:
        layer, kind = n.layer, n.layer.kind
        if kind == "Conv2d":
            h = ref_conv2d(h, layer.params["weight"], layer.params["bias"], 1, 1)
        elif kind == "ReLU":
            h = np.maximum(h, 0)
        elif kind == "MaxPool2d":
            h = ref_max_pool2d(h, 2)
        elif kind == "Flatten":
            h = h.reshape(h.shape[0], -1)
        elif kind == "Linear":
            h = ref_linear(h, layer.params["weight"], layer.params["bias"])
        elif kind == "Softmax":
            e = np.exp(h - h.max(axis=-1, keepdims=True))
            h = e / e.sum(axis=-1, keepdims=True)
        else:
            raise AssertionError(f"reference: no rule for {kind}")
    return h


def test_vgg_style_network_blocked_end_to_end(isa):
    m = small_vgg()
    x = rand(np.random.default_rng(0), 3, 3, 20, 18)
    y_nchw = m(x)
    m.layout = "nchw8c"
    assert m.layout == "nchw8c"
    steps = m.plan.steps
    convs = [s for s in steps if isinstance(s, BlockedConvStep)]
    assert len(convs) == 4 and convs[0].inputs == ("input",)   # the image is read as NCHW
    assert all(s.output.endswith("@nchw8c") for s in convs)
    pools = [s for s in steps if isinstance(s, PoolStep)]
    assert pools and all(p.blocked for p in pools)
    reorders = [s for s in steps if isinstance(s, ReorderStep)]
    assert len(reorders) == 1 and reorders[0].output == "pool3"  # only at the flatten
    y = m(x)
    assert_close(y, reference(m, x), what="blocked convnet vs float64")
    assert_close(y, y_nchw, what="blocked vs NCHW layout")
    assert set(m.algos().values()) == {"direct"}


def test_vgg16_features_blocked_match_nchw():
    m = models.vgg11(num_classes=10, input_size=(3, 32, 32))
    x = rand(np.random.default_rng(1), 2, 3, 32, 32)
    ref = m(x)
    m.layout = "nchw8c"
    assert sum(isinstance(s, ReorderStep) for s in m.plan.steps) == 1
    assert_close(m(x), ref, what="VGG-11 blocked vs NCHW")


def test_threads_batches_and_isa_switch():
    m = small_vgg()
    m.layout = "nchw8c"
    x = rand(np.random.default_rng(2), 3, 3, 20, 18)
    with num_threads(1):
        one = m(x)
    with num_threads(2):
        two = m(x)
    assert_bitequal(one, two, "blocked layout, 1 vs 2 threads")
    assert m(x[:0]).shape == (0, 5)
    assert_close(m(x[1:2]), one[1:2], what="batch 1 vs batch 3")
    with use_isa("scalar"):           # packed for another ISA: repacked on first use
        assert_close(m(x), one, what="after an ISA switch")


def _mixed_model():
    rng = np.random.default_rng(3)
    bn = L.BatchNorm2d(12, running_mean=rand(rng, 12), running_var=rand(rng, 12, lo=0.5, hi=2),
                       weight=rand(rng, 12), bias=rand(rng, 12))
    nodes = [
        ("c1", L.Conv2d(3, 12, 3, padding=1, seed=1), "input"),
        ("bn1", bn, "c1"),
        ("r1", L.ReLU(), "bn1"),
        ("drop", L.Dropout(0.5), "r1"),
        ("c2", L.Conv2d(12, 9, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2),
                        seed=2), "drop"),
        ("avg", L.AvgPool2d(3, stride=2, padding=1, ceil_mode=True,
                            count_include_pad=False), "c2"),
        ("g", L.Conv2d(9, 9, 3, padding=1, groups=3, seed=3), "avg"),       # stays NCHW
        ("c3", L.Conv2d(9, 17, 1, seed=4), "g"),
        ("r3", L.ReLU(), "c3"),
        ("mp", L.MaxPool2d(2, stride=1), "r3"),
        ("gap", L.GlobalAvgPool2d(), "mp"),
    ]
    return Model(nodes, {"input": (3, 15, 14)}, ["gap", "c2", "r1"], name="mixed")


def test_mixed_graph_reorders_only_where_needed():
    m = _mixed_model()
    x = rand(np.random.default_rng(4), 2, 3, 15, 14)
    ref = m.run({"input": x})
    m.layout = "nchw8c"
    steps = m.plan.steps
    made = sorted(s.output for s in steps if isinstance(s, ReorderStep))
    # c2 and r1 are model outputs, avg feeds the grouped conv, mp feeds the global pool
    assert made == ["avg", "c2", "mp", "r1"]
    kinds = {s.nodes[0]: type(s).__name__ for s in steps}
    assert kinds["g"] == "ConvStep" and kinds["c3"] == "BlockedConvStep"
    assert next(s for s in steps if s.nodes[0] == "c3").inputs == ("g",)   # NCHW in
    got = m.run({"input": x})
    for k in ref:
        assert got[k].shape == ref[k].shape
        assert_close(got[k], ref[k], what=f"mixed graph output {k}")


def test_a_forced_algorithm_keeps_its_conv_nchw():
    m = small_vgg()
    m.set_algo("conv1_2", "winograd")
    m.layout = "nchw8c"
    x = rand(np.random.default_rng(5), 1, 3, 20, 18)
    steps = m.plan.steps
    step = next(s for s in steps if s.nodes[0] == "conv1_2")
    assert not isinstance(step, BlockedConvStep) and step.algo == "winograd"
    assert any(isinstance(s, ReorderStep) and s.output == "relu1_1" for s in steps)
    m2 = small_vgg()
    assert_close(m(x), m2(x), what="winograd conv between blocked ones")


def test_layout_switches_and_errors(monkeypatch):
    m = small_vgg()
    assert m.layout == "nchw"
    with pytest.raises(ValueError, match="layout"):
        m.layout = "nhwc"
    assert m.layout == "nchw"          # unchanged, still runs
    x = rand(np.random.default_rng(6), 1, 3, 20, 18)
    m(x)
    monkeypatch.setenv("FASTCONV_LAYOUT", "nchw8c")
    m2 = small_vgg()
    assert m2.layout == "nchw8c"
    assert_close(m2(x), m(x), what="FASTCONV_LAYOUT=nchw8c")
    m2.layout = "nchw"                 # the property overrides the environment
    assert not any(isinstance(s, ReorderStep) for s in m2.plan.steps)
    monkeypatch.setenv("FASTCONV_LAYOUT", "nhwc")
    with pytest.raises(ValueError, match="FASTCONV_LAYOUT"):
        small_vgg()


def test_summary_profile_and_pickle():
    m = small_vgg()
    m.layout = "nchw8c"
    x = rand(np.random.default_rng(7), 1, 3, 20, 18)
    prof = m.profile(x, repeats=1)
    assert "pool3>nchw" in prof
    rows = {r["name"]: r for r in m.summary(print_fn=lambda *a: None).rows}
    assert rows["conv1_1"]["algo"].startswith("direct [nchw8c]")
    assert rows["pool1"]["algo"] == "max [nchw8c]"
    again = pickle.loads(pickle.dumps(m))   # the layout is a compile option, not saved
    assert again.layout == "nchw"
    assert_close(again(x), m(x), what="pickled copy")


def test_nan_propagates_through_the_blocked_layout():
    m = small_vgg()
    m.layout = "nchw8c"
    x = rand(np.random.default_rng(8), 2, 3, 20, 18)
    x[1, 0, 5, 5] = np.nan
    y = m(x)
    assert np.isfinite(y[0]).all() and np.isnan(y[1]).all()


def test_a_node_named_like_a_blocked_twin():
    nodes = [("c1", L.Conv2d(3, 8, 3, padding=1, seed=1), "input"),
             ("c1@nchw8c", L.Conv2d(8, 8, 3, padding=1, seed=2), "c1"),
             ("c2", L.Conv2d(8, 5, 3, padding=1, seed=3), "c1@nchw8c")]
    m = Model(nodes, {"input": (3, 9, 9)}, ["c2"], name="names")
    x = rand(np.random.default_rng(9), 2, 3, 9, 9)
    ref = m(x)
    m.layout = "nchw8c"
    outs = [s.output for s in m.plan.steps]
    assert len(set(outs)) == len(outs)
    assert_close(m(x), ref, what="a node named c1@nchw8c")
