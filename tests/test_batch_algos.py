"""`auto` chooses a convolution's algorithm per batch size (a compiled model packs the
batch-1 choice and adds another algorithm's pack the first time a batch needs it)."""
import numpy as np
import pytest

from conftest import assert_bitequal, assert_close, num_threads, ref_conv2d

import fastconv as fc
import fastconv._kernels as K
from fastconv import layers as L


def tiny_map_model(algo="auto"):
    # 64 -> 64 channels on a 4x4 map: one F(4x4) tile per image, so Winograd does not pay
    # at batch 1 (gain 0.25-0.5 counting whole GEMM panels) but does at batch 64 (gain 4)
    return fc.Sequential([
        L.Conv2d(64, 64, 3, padding=1, algo=algo, seed=1, name="conv_a"), L.ReLU(name="relu_a"),
        L.Conv2d(64, 32, 3, padding=1, algo=algo, seed=2, name="conv_b"),
    ], (64, 4, 4))


def test_auto_switches_to_winograd_when_the_batch_fills_its_tiles(isa):
    model = tiny_map_model()
    a1, a64 = model.algos(1), model.algos(64)
    assert set(a1) == {"conv_a", "conv_b"}
    assert "winograd" not in a1.values(), a1
    assert a64 == {"conv_a": "winograd", "conv_b": "winograd"}, a64
    for node in ("conv_a", "conv_b"):     # the plan asks the C rule for that batch
        step = model.plan.node_info[node]["step"]
        for b in (1, 2, 7, 64):
            assert step.algo_for(b) == K.conv2d_choose((b,) + step.x_shape1[1:], step.w_shape,
                                                       step.stride, step.pads, step.dilation, 1)


def test_each_batch_size_computes_what_its_pinned_algorithms_compute(isa):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 64, 4, 4)).astype(np.float32)
    model = tiny_map_model()
    before = model.plan.node_info["conv_a"]["step"].packed_bytes
    y1 = model(x[:1])
    y64 = model(x)
    # a second pack was made for batch 64, and batch 1 still gives its own bits
    assert model.plan.node_info["conv_a"]["step"].packed_bytes > before
    assert_bitequal(model(x[:1]), y1, "batch 1 after a batch-64 run")
    # float64 reference of the whole network for both
    params = model.named_params()
    ref = ref_conv2d(x.astype(np.float64), params["conv_a/weight"], params["conv_a/bias"],
                     padding=1)
    ref = ref_conv2d(np.maximum(ref, 0), params["conv_b/weight"], params["conv_b/bias"],
                     padding=1)
    assert_close(y64, ref, what="batch 64 (winograd)")
    assert_close(y1, ref[:1], what="batch 1")
    # pinning the batch-64 choice: every batch size then computes exactly those bits
    pinned = tiny_map_model()
    for node, algo in model.algos(64).items():
        pinned.set_algo(node, algo)
    assert pinned.algos(1) == pinned.algos(64) == model.algos(64)
    assert_bitequal(pinned(x), y64, "pinned vs auto at batch 64")
    assert_bitequal(pinned(x[:5]), y64[:5], "pinned at batch 5")


def test_per_batch_packs_are_made_once_under_threads_and_give_thread_independent_bits():
    import threading
    rng = np.random.default_rng(1)
    x = rng.standard_normal((48, 64, 4, 4)).astype(np.float32)
    with num_threads(1):
        ref = tiny_map_model()(x)
    model = tiny_map_model()
    out, errors = [None] * 4, []

    def work(i):
        try:
            out[i] = model(x)
        except Exception as e:      # reported below
            errors.append(e)

    with num_threads(2):
        ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    assert not errors, errors
    for y in out:
        assert_bitequal(y, ref, "4 Python threads, 2 fastconv threads vs 1 thread")
    step = model.plan.node_info["conv_a"]["step"]
    assert len(step._more_blobs) == 1


def test_summary_shows_the_algorithm_of_its_batch():
    model = tiny_map_model()
    rows1 = {r["name"]: r["algo"] for r in model.summary(print_fn=None, batch=1).rows}
    rows64 = {r["name"]: r["algo"] for r in model.summary(print_fn=None, batch=64).rows}
    assert rows64["conv_a"].startswith("winograd")
    assert not rows1["conv_a"].startswith("winograd")


def test_algos_checks_its_batch():
    model = tiny_map_model()
    with pytest.raises(ValueError, match="batch"):
        model.algos(0)
    with pytest.raises((TypeError, ValueError), match="batch"):
        model.algos("8")
