"""The Model graph: shape inference and its errors, compile (BatchNorm folding, ReLU fusion,
packing, the activation arena), running at any batch, threads, pickling, summary."""
from __future__ import annotations

import pickle
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastconv as fc
from fastconv import layers as L
from fastconv.graph import Model, Node

RTOL = 1e-4


def close(a, b, rtol=RTOL):
    scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
    return a.shape == b.shape and float(np.max(np.abs(a - b), initial=0.0)) <= rtol * scale


def unfused(model, feeds):
    """Run the layers one by one with their plain forward (no folding, fusion or arena)."""
    env = {k: np.asarray(v, np.float32) for k, v in feeds.items()}
    for n in model.nodes:
        env[n.name] = n.layer.forward([env[i] for i in n.inputs])
    return {o: env[o] for o in model.output_names}


def random_bn(c, seed):
    rng = np.random.default_rng(seed)
    return L.BatchNorm2d(c, weight=rng.uniform(0.5, 1.5, c).astype(np.float32),
                         bias=rng.normal(0, 0.1, c).astype(np.float32),
                         running_mean=rng.normal(0, 0.2, c).astype(np.float32),
                         running_var=rng.uniform(0.5, 2.0, c).astype(np.float32))


def small_vgg(bn=True, algo="auto"):
    return fc.Sequential([
        L.Conv2d(3, 16, 3, padding=1, algo=algo, seed=1), random_bn(16, 2) if bn else L.Identity(),
        L.ReLU(), L.MaxPool2d(2),
        L.Conv2d(16, 32, 3, padding=1, algo=algo, seed=3), random_bn(32, 4) if bn else L.Identity(),
        L.ReLU(), L.MaxPool2d(2),
        L.Flatten(), L.Linear(32 * 4 * 4, 24, seed=5), L.ReLU(), L.Dropout(),
        L.Linear(24, 10, seed=6), L.Softmax(),
    ], input_shape=(3, 16, 16))


def branchy():
    """conv -> (relu -> conv) and (conv 1x1), added, concatenated with the first map."""
    nodes = [
        Node("stem", L.Conv2d(4, 8, 3, padding=1, seed=1), ("x",)),
        Node("stem_relu", L.ReLU(), ("stem",)),
        Node("a", L.Conv2d(8, 8, 3, padding=1, seed=2), ("stem_relu",)),
        Node("a_relu", L.ReLU(), ("a",)),
        Node("b", L.Conv2d(8, 8, 1, seed=3), ("stem_relu",)),
        Node("sum", L.Add(), ("a_relu", "b")),
        Node("cat", L.Concat(axis=1), ("sum", "stem_relu")),
        Node("pool", L.AvgPool2d(2), ("cat",)),
        Node("gap", L.GlobalMaxPool2d(), ("pool",)),
        Node("flat", L.Flatten(), ("gap",)),
    ]
    return Model(nodes, {"x": (4, 10, 9)}, ["flat", "pool"])


@pytest.fixture(scope="module")
def x16():
    return np.random.default_rng(0).standard_normal((3, 3, 16, 16)).astype(np.float32)


# ------------------------------------------------------------------ running and compile


@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("algo", ["auto", "direct", "im2col"])
def test_compiled_equals_layer_by_layer(bn, algo, x16):
    m = small_vgg(bn, algo)
    ref = unfused(m, {"input": x16})[m.output_names[0]]
    y = m(x16)
    assert y.dtype == np.float32 and y.shape == (3, 10)
    assert close(y, ref)


def test_batchnorm_is_folded_and_relu_fused(x16):
    m = small_vgg(bn=True)
    labels = [s.label for s in m.plan.steps]
    # (the 2x2 max pool after each conv is fused too: tests/test_pool_fusion.py)
    assert "conv2d_0+batchnorm2d_1+relu_2+maxpool2d_3" in labels
    assert "linear_9+relu_10" in labels
    # folding changes nothing beyond float tolerance, against the unfolded float64 maths
    ref = unfused(m, {"input": x16})["softmax_13"]
    assert close(m(x16), ref)


def test_branches_add_concat_and_view_outputs():
    m = branchy()
    x = np.random.default_rng(1).standard_normal((2, 4, 10, 9)).astype(np.float32)
    out = m.run({"x": x})
    ref = unfused(m, {"x": x})
    assert set(out) == {"flat", "pool"}
    assert out["flat"].shape == (2, 16) and out["pool"].shape == (2, 16, 5, 4)
    for k in out:
        assert close(out[k], ref[k])
    # stem feeds two consumers: its ReLU is fused (stem's only reader), a_relu too
    assert "stem+stem_relu" in [s.label for s in m.plan.steps]


@pytest.mark.parametrize("batch", [0, 1, 2, 5])
def test_any_batch(batch):
    m = small_vgg()
    x = np.random.default_rng(batch).standard_normal((batch, 3, 16, 16)).astype(np.float32)
    y = m(x)
    assert y.shape == (batch, 10)
    if batch:
        assert close(y, unfused(m, {"input": x})["softmax_13"])
        # each sample alone gives its row of the batch (within float tolerance: the
        # GEMM's blocking, and so its summation order, depends on the batch size)
        assert close(m(x[-1:])[0], y[-1])


def test_outputs_do_not_alias_the_arena_or_the_input(x16):
    m = branchy()
    x = np.random.default_rng(2).standard_normal((1, 4, 10, 9)).astype(np.float32)
    first = {k: v.copy() for k, v in m.run({"x": x}).items()}
    held = m.run({"x": x})
    m.run({"x": -x})
    for k in first:
        assert np.array_equal(held[k], first[k])
    ident = Model([Node("id", L.Identity(), ("x",))], {"x": (4, 10, 9)}, ["id"])
    y = ident.run({"x": x})["id"]
    assert np.array_equal(y, x) and not np.shares_memory(y, x)


def test_float64_and_noncontiguous_inputs(x16):
    m = small_vgg()
    y = m(x16)
    assert np.array_equal(m(x16.astype(np.float64)), m(x16.astype(np.float64).astype(np.float32)))
    xf = np.asfortranarray(x16)
    assert np.array_equal(m(xf), y)
    with pytest.raises(TypeError, match="float32"):
        m(x16.astype(np.int32))


def test_same_bits_for_every_thread_count(x16):
    m = small_vgg()
    old = fc.get_num_threads()
    try:
        fc.set_num_threads(1)
        y1 = m(x16)
        fc.set_num_threads(2)
        y2 = m(x16)
    finally:
        fc.set_num_threads(old)
    assert np.array_equal(y1, y2)


def test_threads_share_one_model():
    m = small_vgg()
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((b % 3 + 1, 3, 16, 16)).astype(np.float32) for b in range(16)]
    serial = [m(x) for x in xs]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(m, xs))
    for a, b in zip(serial, parallel):
        assert np.array_equal(a, b)


def test_isa_switch_repacks(x16):
    m = small_vgg()
    y = m(x16)
    isa = fc._kernels.get_isa()
    try:
        fc._kernels.set_isa("scalar")
        ys = m(x16)
    finally:
        fc._kernels.set_isa(isa)
    assert close(ys, y)
    assert np.array_equal(m(x16), y)


def test_set_algo_override(x16):
    m = small_vgg()
    m.set_algo("conv2d_4", "im2col")
    assert m.plan.node_info["conv2d_4"]["algo"] == "im2col"
    assert "im2col" in str(m.summary(print_fn=None))
    y = m(x16)
    m.set_algos("direct")
    assert all(s.algo == "direct" for s in m.plan.steps if s.label.startswith("conv"))
    assert close(m(x16), y)
    with pytest.raises(ValueError, match="algo"):
        m.set_algo("conv2d_4", "fft")
    with pytest.raises(ValueError, match="no algorithm"):
        m.set_algo("relu_2", "direct")


def test_set_algos_where_supported_leaves_other_layers_on_auto():
    """Winograd serves 3x3 stride-1 convs only: forcing it on a model with a strided conv
    raises ValueError naming that node and changes nothing; where_supported=True forces it
    where it can and reports the nodes left on auto."""
    m = fc.Sequential([
        L.Conv2d(3, 16, 3, padding=1, seed=1), L.ReLU(),
        L.Conv2d(16, 16, 3, stride=2, padding=1, seed=2), L.ReLU(),
        L.Conv2d(16, 8, 3, padding=1, seed=3),
    ], input_shape=(3, 12, 12))
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 12)).astype(np.float32)
    y = m(x)
    strided = [n.name for n in m.nodes if getattr(n.layer, "algo", None) is not None][1]
    before = {n.name: n.layer.algo for n in m.nodes if hasattr(n.layer, "algo")}
    with pytest.raises(ValueError, match=strided):
        m.set_algos("winograd")
    assert {n.name: n.layer.algo for n in m.nodes if hasattr(n.layer, "algo")} == before
    assert m.set_algos("winograd", where_supported=True) == [strided]
    algos = [s.algo for s in m.plan.steps if hasattr(s, "supports")]
    assert algos[0] == algos[2] == "winograd" and algos[1] != "winograd"
    np.testing.assert_allclose(m(x), y, rtol=1e-4, atol=1e-5)
    assert m.set_algos("direct", where_supported=True) == []


# ------------------------------------------------------------------ the arena


def _assert_plan_disjoint(plan):
    regions = list(plan.regions.items())
    for i, (ta, (oa, sa, fa, la)) in enumerate(regions):
        assert oa % 16 == 0
        assert oa + sa <= plan.arena_floats
        for tb, (ob, sb, fb, lb) in regions[i + 1:]:
            if fa <= lb and fb <= la:                       # alive at the same time
                assert oa + sa <= ob or ob + sb <= oa, (ta, tb)


@pytest.mark.parametrize("build", [small_vgg, branchy])
def test_arena_never_overlaps_live_tensors(build):
    m = build()
    _assert_plan_disjoint(m.plan)
    assert m.plan.arena_floats < m.plan.activation_floats


def test_vgg_arena_is_the_largest_pair():
    """In a chain, the arena needs about the two largest neighbouring activations."""
    layers = []
    c = 3
    for co in (16, 16, 32, 32):
        layers += [L.Conv2d(c, co, 3, padding=1), L.ReLU()]
        c = co
    layers += [L.MaxPool2d(2), L.Flatten(), L.Linear(32 * 16 * 16, 10)]
    m = fc.Sequential(layers, (3, 32, 32))
    _assert_plan_disjoint(m.plan)
    sizes = [16 * 32 * 32, 16 * 32 * 32, 32 * 32 * 32, 32 * 32 * 32]
    assert m.plan.arena_floats <= 2 * max(sizes) + 64
    assert m.plan.activation_floats > 1.5 * m.plan.arena_floats


def test_peak_memory_below_the_sum_of_activations():
    layers = []
    c = 3
    for co in (32, 32, 32, 32, 32, 32):
        layers += [L.Conv2d(c, co, 3, padding=1), L.ReLU()]
        c = co
    layers += [L.GlobalAvgPool2d(), L.Flatten(), L.Linear(32, 10)]
    m = fc.Sequential(layers, (3, 64, 64))
    x = np.random.default_rng(0).standard_normal((4, 3, 64, 64)).astype(np.float32)
    m(x)                                   # warm: the arena of this batch is cached
    m.plan._arenas.clear()                 # measure a cold run, arena included
    tracemalloc.start()
    try:
        m(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    activations = 4 * 4 * m.plan.activation_floats
    arena = 4 * 4 * m.plan.arena_floats
    # the largest pair of live activations, one workspace, the output and small change
    assert arena == 2 * 4 * 4 * 32 * 64 * 64
    assert peak <= arena + m.plan.workspace_bytes(4) + 64 * 1024, (peak, arena)
    assert peak < 0.6 * activations, (peak, activations)


# ------------------------------------------------------------------ pickling


def test_pickle_round_trip_is_bit_identical(x16):
    m = small_vgg()
    m.set_algo("conv2d_0", "im2col")
    m2 = pickle.loads(pickle.dumps(m))
    assert np.array_equal(m2(x16), m(x16))
    assert m2.plan.node_info["conv2d_0"]["algo"] == "im2col"
    b = branchy()
    x = np.random.default_rng(4).standard_normal((2, 4, 10, 9)).astype(np.float32)
    b2 = pickle.loads(pickle.dumps(b))
    for k, v in b.run({"x": x}).items():
        assert np.array_equal(b2.run({"x": x})[k], v)


def test_config_round_trip_keeps_user_weights():
    m = small_vgg()
    cfg, params = m.to_config(), m.named_params()
    import json
    json.dumps(cfg)
    assert "batchnorm2d_1/running_var" in params
    m2 = Model.from_config(cfg, params)
    assert [n.name for n in m2.nodes] == [n.name for n in m.nodes]
    with pytest.raises(fc.ModelFormatError, match="unknown layer type"):
        bad = m.to_config()
        bad["nodes"][0]["type"] = "Conv9d"
        Model.from_config(bad, params)


# ------------------------------------------------------------------ summary


def test_summary_totals_and_columns():
    m = small_vgg()
    s = m.summary(print_fn=None)
    text = str(s)
    for word in ("MACs", "FLOPs", "RF size", "algorithm", "workspace", "total"):
        assert word in text
    assert s.totals["params"] == sum(n.layer.num_params() for n in m.nodes)
    assert s.totals["flops"] == 2 * s.totals["macs"]
    conv0 = s.rows[0]
    assert conv0["macs"] == 16 * 16 * 16 * 3 * 9 and conv0["params"] == (27 + 1) * 16
    assert conv0["rf_size"] == "3" and conv0["rf_jump"] == "1"
    pool = next(r for r in s.rows if r["name"] == "maxpool2d_3")
    assert pool["rf_size"] == "4" and pool["rf_jump"] == "2"
    assert s.rows[0]["workspace_bytes"] >= 0
    printed = []
    m.summary(print_fn=printed.append)
    assert printed == [text]


# ------------------------------------------------------------------ errors


def _raises(build, exc, *words):
    with pytest.raises(exc) as ei:
        build()
    msg = str(ei.value)
    for w in words:
        assert w in msg, (w, msg)


def test_shape_errors_name_the_layer_and_the_rule():
    S = fc.Sequential
    _raises(lambda: Model([Node("conv4", L.Conv2d(16, 16, 5), ("x",))], {"x": (16, 3, 3)},
                          ["conv4"]), fc.ShapeError, "conv4", "-1 < 1", "(16, 3, 3)")
    _raises(lambda: S([L.Conv2d(3, 8, 3, name="c1"), L.Conv2d(4, 8, 3, name="c2")], (3, 9, 9)),
            fc.ShapeError, "c2", "8", "4")
    _raises(lambda: S([L.Conv2d(3, 8, 3), L.Flatten(), L.Linear(100, 10, name="fc")],
                      (3, 9, 9)), fc.ShapeError, "fc", "392", "100")
    _raises(lambda: S([L.MaxPool2d(4, name="p")], (3, 2, 9)), fc.ShapeError, "p", "< 1")
    _raises(lambda: S([L.BatchNorm2d(5, name="bn")], (3, 4, 4)), fc.ShapeError, "bn", "5", "3")
    _raises(lambda: S([L.Linear(10, 5, name="lin")], (3, 4, 4)), fc.ShapeError, "lin")
    nodes = [Node("a", L.Conv2d(3, 4, 3), ("x",)), Node("b", L.Conv2d(3, 4, 1), ("x",)),
             Node("s", L.Add(), ("a", "b"))]
    _raises(lambda: Model(nodes, {"x": (3, 6, 6)}, ["s"]), fc.ShapeError, "s", "(4, 4, 4)",
            "(4, 6, 6)")
    nodes = [Node("a", L.Conv2d(3, 4, 3), ("x",)), Node("b", L.Conv2d(3, 4, 1), ("x",)),
             Node("c", L.Concat(axis=1), ("a", "b"))]
    _raises(lambda: Model(nodes, {"x": (3, 6, 6)}, ["c"]), fc.ShapeError, "c")
    _raises(lambda: Model([Node("s", L.Add(), ("x",))], {"x": (3, 6, 6)}, ["s"]),
            fc.ShapeError, "s", "at least 2")


def test_graph_structure_errors():
    conv = lambda: L.Conv2d(3, 3, 1)  # noqa: E731
    _raises(lambda: Model([Node("a", conv(), ("y",))], {"x": (3, 4, 4)}, ["a"]), ValueError,
            "'a'", "'y'")
    _raises(lambda: Model([Node("a", conv(), ("b",)), Node("b", conv(), ("a",))],
                          {"x": (3, 4, 4)}, ["a"]), ValueError, "cycle")
    _raises(lambda: Model([Node("a", conv(), ("x",)), Node("a", conv(), ("a",))],
                          {"x": (3, 4, 4)}, ["a"]), ValueError, "used twice")
    _raises(lambda: Model([Node("a", conv(), ("x",))], {"x": (3, 4, 4)}, ["zz"]), ValueError,
            "zz")
    shared = conv()
    _raises(lambda: Model([Node("a", shared, ("x",)), Node("b", shared, ("a",))],
                          {"x": (3, 4, 4)}, ["b"]), ValueError, "share")


def test_run_errors():
    m = small_vgg()
    _raises(lambda: m(np.zeros((1, 3, 15, 16), np.float32)), fc.ShapeError, "input",
            "(1, 3, 15, 16)")
    _raises(lambda: m(np.zeros((3, 16, 16), np.float32)), fc.ShapeError, "batch first")
    _raises(lambda: m.run({"x": np.zeros((1, 3, 16, 16), np.float32)}), ValueError, "missing",
            "input")
    _raises(lambda: m.run([1, 2]), TypeError, "dict")
    b = branchy()
    _raises(lambda: b(np.zeros((1, 4, 10, 9), np.float32)), ValueError, "single-input") \
        if len(b.input_names) > 1 else None


def test_model_without_compile_then_compile(x16):
    m = Model.sequential([L.Conv2d(3, 4, 3), L.ReLU()], (3, 16, 16), compile=False)
    assert m._plan is None
    y = m(x16)
    assert y.shape == (3, 4, 14, 14) and np.all(y >= 0)


def test_profile_labels_steps(x16):
    m = small_vgg()
    prof = m.profile(x16, repeats=2)
    assert list(prof) == [s.label for s in m.plan.steps]
    assert all(v >= 0 for v in prof.values())


def test_thread_count_changes_between_and_during_runs(x16):
    """The workspace grows with the thread count; each run reads the count once."""
    m = small_vgg()
    old = fc.get_num_threads()
    try:
        fc.set_num_threads(1)
        y = m(x16)
        fc.set_num_threads(3)
        assert np.array_equal(m(x16), y)
        stop = threading.Event()

        def flip():
            while not stop.is_set():
                fc.set_num_threads(1)
                fc.set_num_threads(2)

        t = threading.Thread(target=flip)
        t.start()
        try:
            for _ in range(20):
                assert np.array_equal(m(x16), y)
        finally:
            stop.set()
            t.join()
    finally:
        fc.set_num_threads(old)


def test_summary_shortens_exporter_names():
    from fastconv.summary import display_name
    assert display_name("/features/features.0/Conv_output_0") == "features.0/Conv"
    assert display_name("/classifier/classifier.1/Gemm_output_1") == "classifier.1/Gemm:1"
    assert display_name("logits") == "logits"
    nodes = [Node("/features/features.0/Conv_output_0", L.Conv2d(1, 2, 3), ("x",)),
             Node("/features/features.1/Relu_output_0", L.ReLU(),
                  ("/features/features.0/Conv_output_0",))]
    m = Model(nodes, {"x": (1, 5, 5)}, ["/features/features.1/Relu_output_0"])
    s = m.summary(print_fn=None)
    assert s.rows[0]["name"] == "/features/features.0/Conv_output_0"
    assert "features.0/Conv " in str(s) and "fused into features.0/Conv" in str(s)
