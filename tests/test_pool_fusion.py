"""Conv + (ReLU) + 2x2 stride-2 max pool as one step (issue 7).

The fused call (conv2d_run(maxpool2=True), fc_conv2d_run_maxpool2) must give, bit for bit,
what the conv then max_pool2d give: for both Winograd variants (which pool each output
tile before writing it) and the other algorithms (which conv into the workspace and pool),
on every ISA of this machine, odd map sizes (the last row / column dropped), batches above
1, any thread count, and NaN inputs. The plan fuses a conv with a MaxPool2d(2) that is its
only reader, and only then.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastconv as fc_mod
from fastconv import layers as L
from fastconv.graph import Model, Node
from conftest import assert_close, num_threads, rand, ref_conv2d

ALGOS = ("winograd", "winograd2", "direct", "im2col")
# (batch, Ci, Co, H, W, pads): interior tile runs of 8 (W 70: 18 F(4x4) tiles a row),
# groups that cross rows and images, odd conv outputs (35 x 69, 9 x 13, 7 x 7)
SHAPES = (
    (1, 8, 16, 36, 70, (1, 1, 1, 1)),
    (2, 5, 7, 9, 13, (1, 1, 1, 1)),
    (1, 3, 9, 35, 70, (0, 1, 2, 0)),
    (3, 4, 4, 7, 7, (1, 1, 1, 1)),
    (2, 16, 8, 20, 34, (0, 0, 0, 0)),
)


def _bits(a):
    return np.ascontiguousarray(a).view(np.uint32)


def _two_step(kernels, x, blob, w_shape, pads, relu, t):
    y = kernels.conv2d_run(x, blob, w_shape, (1, 1), pads, (1, 1), 1, relu, t)
    return kernels.max_pool2d(y, (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False, t)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s[:5])))
def test_fused_equals_conv_then_pool(kernels, isa, algo, shape):
    n, ci, co, h, w, pads = shape
    rng = np.random.default_rng(hash(shape) % 2**32)
    x = rng.standard_normal((n, ci, h, w)).astype(np.float32)
    x[0, 0, h // 2, w // 3] = np.nan         # spreads through its tiles / windows
    wt = (rng.standard_normal((co, ci, 3, 3)) / (3 * ci) ** 0.5).astype(np.float32)
    b = rng.standard_normal(co).astype(np.float32)
    blob, got_algo = kernels.conv2d_pack((1, ci, h, w), wt, b, (1, 1), pads, (1, 1), 1, algo)
    assert got_algo == algo
    ho, wo = h + pads[0] + pads[2] - 2, w + pads[1] + pads[3] - 2
    first = None
    for relu in (False, True):
        for t in (1, 2, 3):
            ref = _two_step(kernels, x, blob, wt.shape, pads, relu, t)
            y = kernels.conv2d_run(x, blob, wt.shape, (1, 1), pads, (1, 1), 1, relu, t,
                                   maxpool2=True)
            assert y.shape == (n, co, ho // 2, wo // 2)
            assert np.array_equal(_bits(y), _bits(ref)), (algo, shape, relu, t)
            if relu:
                if first is None:
                    first = y
                assert np.array_equal(_bits(y), _bits(first)), f"{t} threads"
    assert np.isnan(first).any() and not np.isnan(first).all()


def test_fused_against_float64(kernels):
    """The fused result is the pooled float64 conv within the Winograd tolerance."""
    rng = np.random.default_rng(5)
    x = rand(rng, 2, 6, 17, 22)
    wt = rand(rng, 5, 6, 3, 3)
    b = rand(rng, 5)
    pads = (1, 1, 1, 1)
    ref = np.maximum(ref_conv2d(x, wt, b, 1, pads, 1, 1), 0.0)    # [2, 5, 17, 22]
    ref = ref[:, :, :16, :22].reshape(2, 5, 8, 2, 11, 2).max(axis=(3, 5))
    for algo in ALGOS:
        blob, _ = kernels.conv2d_pack(x.shape, wt, b, (1, 1), pads, (1, 1), 1, algo)
        y = kernels.conv2d_run(x, blob, wt.shape, (1, 1), pads, (1, 1), 1, True, 2,
                               maxpool2=True)
        assert_close(y, ref, 1e-4, f"fused conv+relu+pool, {algo}")


def test_fused_workspace_and_errors(kernels):
    rng = np.random.default_rng(1)
    x = rand(rng, 2, 4, 12, 12)
    wt = rand(rng, 8, 4, 3, 3)
    args = ((1, 1), (1, 1, 1, 1), (1, 1), 1)
    wino, _ = kernels.conv2d_pack(x.shape, wt, None, *args, "winograd")
    direct, _ = kernels.conv2d_pack(x.shape, wt, None, *args, "direct")
    plain = kernels.conv2d_run_workspace_bytes(x.shape, wino, wt.shape, *args, 2)
    # Winograd needs no more scratch for the pool; direct needs the unpooled map too
    assert kernels.conv2d_run_workspace_bytes(x.shape, wino, wt.shape, *args, 2,
                                              maxpool2=True) == plain
    need = kernels.conv2d_run_workspace_bytes(x.shape, direct, wt.shape, *args, 2,
                                              maxpool2=True)
    assert need >= kernels.conv2d_run_workspace_bytes(x.shape, direct, wt.shape, *args, 2) \
        + x.size * 2 * 4
    with pytest.raises(ValueError):
        kernels.conv2d_run(x, direct, wt.shape, *args, True, 2, maxpool2=True,
                           workspace=np.empty(need - 64, np.uint8))
    with pytest.raises(ValueError):   # an unpooled out array
        kernels.conv2d_run(x, wino, wt.shape, *args, True, 1, maxpool2=True,
                           out=np.empty((2, 8, 12, 12), np.float32))
    y = kernels.conv2d_run(x[:0], wino, wt.shape, *args, True, 1, maxpool2=True)
    assert y.shape == (0, 8, 6, 6)
    one_row = rand(rng, 1, 4, 3, 12)           # conv output 1 x 10: no whole window
    blob, _ = kernels.conv2d_pack(one_row.shape, wt, None, (1, 1), (0, 0, 0, 0), (1, 1), 1,
                                  "winograd")
    with pytest.raises(fc_mod.ShapeError):
        kernels.conv2d_run(one_row, blob, wt.shape, (1, 1), (0, 0, 0, 0), (1, 1), 1,
                           maxpool2=True)


# ------------------------------------------------------------------ the plan


def vgg_block(h=18, w=13, ci=3, c=32, bn=False, pool=None):
    """conv-relu-conv-relu-pool twice, then flatten and a linear layer; 32+ channels so
    that auto runs Winograd on the second conv of each block."""
    pool = pool or (lambda: L.MaxPool2d(2))
    layers = [L.Conv2d(ci, c, 3, padding=1, seed=1), L.ReLU(),
              L.Conv2d(c, c, 3, padding=1, seed=2)]
    if bn:
        layers.append(L.BatchNorm2d(c, weight=np.linspace(0.5, 1.5, c, dtype=np.float32),
                                    bias=np.linspace(-0.1, 0.1, c, dtype=np.float32),
                                    running_mean=np.zeros(c, np.float32),
                                    running_var=np.ones(c, np.float32)))
    layers += [L.ReLU(), pool(),
               L.Conv2d(c, c, 3, padding=1, seed=3), L.ReLU(), pool(), L.Flatten()]
    m = fc_mod.Sequential(layers, input_shape=(ci, h, w))
    feat = int(np.prod(m.shapes[m.output_names[0]]))
    return fc_mod.Sequential(layers + [L.Linear(feat, 10, seed=4)], input_shape=(ci, h, w))


def _with_and_without(m, x):
    m.fuse_pool = True
    fused = m(x)
    m.fuse_pool = False
    plain = m(x)
    m.fuse_pool = True
    return fused, plain


@pytest.mark.parametrize("bn", [False, True])
def test_plan_fuses_and_keeps_the_bits(bn):
    m = vgg_block(bn=bn)
    labels = [s.label for s in m.plan.steps]
    tail = "batchnorm2d_3+relu_4+maxpool2d_5" if bn else "relu_3+maxpool2d_4"
    assert f"conv2d_2+{tail}" in labels
    pool_name = tail.split("+")[-1]
    assert m.plan.node_info[pool_name]["algo"] == "fused into conv2d_2"
    assert m.plan.node_info["conv2d_2"]["fused"].endswith("relu+maxpool")
    step = m.plan.node_info["conv2d_2"]["step"]
    assert step.maxpool2 and step.algo in ("winograd", "winograd2")
    rng = np.random.default_rng(2)
    x = rand(rng, 3, 3, 18, 13)               # odd width: 13 -> 6 -> 3
    fused, plain = _with_and_without(m, x)
    assert np.array_equal(_bits(fused), _bits(plain))
    # every algorithm, every thread count: the same bits as the unfused plan
    for algo in ALGOS:
        m.set_algos(algo, where_supported=True)
        for t in (1, 2):
            with num_threads(t):
                f, p = _with_and_without(m, x)
                assert np.array_equal(_bits(f), _bits(p)), (algo, t)


def test_plan_summary_profile_and_switches(monkeypatch):
    m = vgg_block()
    x = rand(np.random.default_rng(3), 2, 3, 18, 13)
    prof = m.profile(x, repeats=1)
    assert list(prof) == [s.label for s in m.plan.steps]
    assert any(lb.endswith("+maxpool2d_4") for lb in prof)
    s = str(m.summary(print_fn=None))
    assert "(+relu+maxpool)" in s and "fused into conv2d_2" in s
    fused_arena = m.plan.arena_floats
    m.fuse_pool = False
    assert not m.fuse_pool and "maxpool2d_4" in [s.label for s in m.plan.steps]
    assert m.plan.arena_floats > fused_arena     # the full-size conv output comes back
    monkeypatch.setenv("FASTCONV_FUSE_POOL", "0")
    m2 = vgg_block()
    assert not m2.fuse_pool and all("maxpool" not in st.fused for st in m2.plan.steps)
    monkeypatch.setenv("FASTCONV_FUSE_POOL", "1")
    assert vgg_block().fuse_pool


@pytest.mark.parametrize("pool", [
    lambda: L.MaxPool2d(2, stride=1),
    lambda: L.MaxPool2d(3, stride=2),
    lambda: L.MaxPool2d(2, padding=1),
    lambda: L.MaxPool2d(2, dilation=2),
    lambda: L.MaxPool2d(2, ceil_mode=True),      # 13 wide: ceil gives 7, not 6
    lambda: L.AvgPool2d(2),
], ids=["stride1", "3x3", "padded", "dilated", "ceil_odd", "avg"])
def test_other_pools_are_not_fused(pool):
    m = vgg_block(pool=pool)
    assert all(not getattr(s, "maxpool2", False) for s in m.plan.steps)
    x = rand(np.random.default_rng(4), 2, 3, 18, 13)
    m.fuse_pool = False
    assert np.array_equal(_bits(m(x)), _bits(vgg_block(pool=pool)(x)))


def test_ceil_mode_on_even_maps_is_fused():
    m = vgg_block(h=16, w=12, pool=lambda: L.MaxPool2d(2, ceil_mode=True))
    assert sum(getattr(s, "maxpool2", False) for s in m.plan.steps) == 2
    x = rand(np.random.default_rng(6), 1, 3, 16, 12)
    f, p = _with_and_without(m, x)
    assert np.array_equal(_bits(f), _bits(p))


def test_a_conv_output_read_elsewhere_is_not_fused():
    nodes = [Node("c", L.Conv2d(4, 32, 3, padding=1, seed=1), ("x",)),
             Node("r", L.ReLU(), ("c",)),
             Node("p", L.MaxPool2d(2), ("r",)),
             Node("c2", L.Conv2d(4, 32, 3, padding=1, seed=2), ("x",)),
             Node("p2", L.MaxPool2d(2), ("c2",)),
             Node("g", L.GlobalAvgPool2d(), ("c2",))]
    m = Model(nodes, {"x": (4, 10, 10)}, ["p", "p2", "g", "r"])
    labels = [s.label for s in m.plan.steps]
    assert "c+r" in labels and "p" in labels     # r is a model output
    assert "c2" in labels and "p2" in labels     # c2 has two readers
    nodes2 = nodes[:3]
    m2 = Model(nodes2, {"x": (4, 10, 10)}, ["p"])
    assert [s.label for s in m2.plan.steps] == ["c+r+p"]
    x = rand(np.random.default_rng(7), 2, 4, 10, 10)
    assert np.array_equal(_bits(m2(x)), _bits(m.run({"x": x})["p"]))
