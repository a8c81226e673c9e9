"""model.summary(compare=True): per conv (and locally connected) layer, the parameters the
same mapping would need as a locally connected and as a fully connected layer.

Formulas, with b = 1 when the layer has a bias, else 0 (one bias per output unit):
    locally connected = (Ho*Wo) * Co * (Ci/g*kh*kw + b)
    fully connected   = (Ci*H*W) * (Co*Ho*Wo) + b*Co*Ho*Wo
The expected numbers below are written out from the layer shapes, not taken from the code.
"""
from __future__ import annotations

import pytest

import fastconv as fc

L = fc.layers


def _row(summary, name):
    return next(r for r in summary.rows if r["name"] == name)


@pytest.mark.parametrize("bias", [False, True])
def test_rgb_256_image_to_a_map_of_the_same_size(bias):
    """The issue's example: a 256x256 RGB image mapped to a 256x256x3 map. Fully
    connected, that is (256*256*3)^2 ~ 3.87e10 weights, ~155 GB (144 GiB) of float32."""
    m = fc.Sequential([L.Conv2d(3, 3, 3, padding=1, bias=bias, name="conv")], (3, 256, 256))
    s = m.summary(print_fn=None, compare=True)
    r = _row(s, "conv")
    units = 256 * 256 * 3
    assert r["fc_params"] == units ** 2 + (units if bias else 0)
    assert units ** 2 == 38_654_705_664           # 3.87e10
    assert r["lc_params"] == 256 * 256 * 3 * (3 * 3 * 3 + (1 if bias else 0))
    assert r["params"] == 3 * (27 + (1 if bias else 0))
    text = str(s)
    assert f"{r['fc_params']:,} (154.6 GB)" in text
    assert 150e9 < 4 * r["fc_params"] < 160e9
    assert "fully connected = (Ci*H*W) * (Co*Ho*Wo) + b*Co*Ho*Wo" in text
    assert "locally connected = (Ho*Wo) * Co * (Ci/g*kh*kw + b)" in text
    assert "as fully connected (float32)" in text.splitlines()[1]
    # without compare the table is the plain one
    plain = str(m.summary(print_fn=None))
    assert "as fully connected" not in plain and "compare:" not in plain


def test_rows_that_are_not_convs_show_nothing_and_totals_add_up():
    m = fc.Sequential([
        L.Conv2d(3, 8, 3, padding=1, name="c1"), L.ReLU(name="r1"), L.MaxPool2d(2, name="p1"),
        L.Conv2d(8, 4, 3, stride=2, groups=4, name="c2"),
        L.LocallyConnected2d(4, 2, (1, 2), input_size=(1, 1), padding=(0, 0, 0, 1), name="lc",
                             bias=False),
        L.Flatten(name="f"), L.Linear(2, 5, name="fc")], (3, 8, 8))
    s = m.summary(print_fn=None, compare=True)
    c1, c2, lc = _row(s, "c1"), _row(s, "c2"), _row(s, "lc")
    # c1: (3, 8, 8) -> (8, 8, 8)
    assert c1["lc_params"] == 8 * 8 * 8 * (3 * 9 + 1)
    assert c1["fc_params"] == (3 * 8 * 8) * (8 * 8 * 8) + 8 * 8 * 8
    # c2 (groups 4, Ci/g = 2): (8, 4, 4) -> (4, 1, 1)
    assert c2["lc_params"] == 1 * 1 * 4 * (2 * 9 + 1)
    assert c2["fc_params"] == (8 * 4 * 4) * 4 + 4
    # a locally connected layer is its own locally connected count
    assert lc["lc_params"] == lc["params"] == 1 * 1 * 2 * 4 * 2
    assert lc["fc_params"] == (4 * 1 * 1) * (2 * 1 * 1)
    for name in ("r1", "p1", "f", "fc"):
        r = _row(s, name)
        assert r["lc_params"] is None and r["fc_params"] is None
    t = s.totals
    assert t["compared_layers"] == 3
    assert t["lc_params"] == c1["lc_params"] + c2["lc_params"] + lc["lc_params"]
    assert t["fc_params"] == c1["fc_params"] + c2["fc_params"] + lc["fc_params"]
    assert t["compared_params"] == c1["params"] + c2["params"] + lc["params"]
    text = str(s)
    assert "compare: the 3 conv/locally connected layers hold" in text
    fc_line = next(line for line in text.splitlines() if line.startswith("fc "))
    assert fc_line.rstrip().endswith("-")


def test_conv1d_rows():
    m = fc.Sequential([L.Conv1d(2, 3, 5, padding=2, name="c")], (2, 100))
    r = _row(m.summary(print_fn=None, compare=True), "c")
    assert r["lc_params"] == 100 * 3 * (2 * 5 + 1)
    assert r["fc_params"] == (2 * 100) * (3 * 100) + 3 * 100


def test_summary_without_convs_says_so():
    m = fc.Sequential([L.Flatten(), L.Linear(12, 2)], (3, 2, 2))
    assert "compare: no convolution or locally connected layer" in \
        str(m.summary(print_fn=None, compare=True))


@pytest.fixture(scope="module")
def vgg16_summary():
    # building VGG-16 takes a few seconds and ~550 MB: once for the module
    model = fc.models.vgg16()
    s = model.summary(print_fn=None, compare=True)
    del model
    return s


VGG16_CONVS = [  # (Ci, Co, spatial size) of the 13 3x3 padding-1 convs at 224x224
    (3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56),
    (256, 256, 56), (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 28),
    (512, 512, 14), (512, 512, 14), (512, 512, 14),
]


def test_vgg16(vgg16_summary):
    s = vgg16_summary
    convs = [r for r in s.rows if r["type"] == "Conv2d"]
    assert len(convs) == 13
    for r, (ci, co, hw) in zip(convs, VGG16_CONVS):
        assert r["params"] == co * (ci * 9 + 1), r["name"]
        assert r["lc_params"] == hw * hw * co * (ci * 9 + 1), r["name"]
        assert r["fc_params"] == (ci * hw * hw) * (co * hw * hw) + co * hw * hw, r["name"]
    first = convs[0]
    assert first["name"] == "features.0"
    assert first["fc_params"] == 150_528 * 3_211_264 + 3_211_264     # ~4.8e11
    t = s.totals
    assert t["compared_layers"] == 13
    assert t["compared_params"] == 14_714_688          # VGG-16's conv parameters
    assert t["lc_params"] == sum(hw * hw * co * (ci * 9 + 1) for ci, co, hw in VGG16_CONVS)
    assert t["fc_params"] == sum((ci * hw * hw) * (co * hw * hw) + co * hw * hw
                                 for ci, co, hw in VGG16_CONVS)
    # the classifier's Linear layers are not compared
    assert all(r["fc_params"] is None for r in s.rows if r["type"] == "Linear")
    text = str(s)
    assert f"{first['fc_params']:,} (1.9 TB)" in text
    assert f"{t['fc_params']:,}" in text and f"{t['lc_params']:,}" in text
