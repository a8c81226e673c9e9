"""fastconv.dask.predict on a LocalCluster of 2 worker processes x 1 thread: results equal
model(x) bit for bit, also after a worker is killed mid-run; chunking, empty input, NumPy
input, the model sent once, the per-worker thread share."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_bitequal, run_python

distributed = pytest.importorskip("distributed", reason="needs dask[distributed] "
                                  "(pip install 'fastconv[dask]')")
da = pytest.importorskip("dask.array")

import fastconv as fc                     # noqa: E402
import fastconv.dask as fcd               # noqa: E402

DATA = Path(fc.__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


@pytest.fixture(scope="module")
def digits():
    model = fc.load_onnx(DATA / "digits_vgg.onnx")
    x = np.load(DATA / "digits_heldout.npz")["x"]
    return model, x


def test_chunk_sizes():
    assert fcd.chunk_sizes(10, 4) == [4, 6]          # a last chunk of 2 joins the one before
    assert fcd.chunk_sizes(11, 4) == [4, 4, 3]
    assert fcd.chunk_sizes(37, 4) == [4] * 8 + [5]
    assert fcd.chunk_sizes(2, 64) == [2]             # the whole input may be small
    assert fcd.chunk_sizes(128, 64) == [64, 64]
    assert fcd.chunk_sizes(0, 8) == [0]


def test_equals_model_bit_for_bit(client, digits):
    model, x = digits
    ref = model(x)
    xd = da.from_array(x, chunks=(7, 1, 16, 32))     # chunked along other axes too
    y = fcd.predict(model, xd, batch_size=50, client=client)
    assert isinstance(y, da.Array)
    assert y.shape == (360, 10) and y.dtype == np.float32
    assert y.chunks == ((50,) * 7 + (10,), (10,))
    assert_bitequal(y.compute(), ref, "dask vs model(x)")


def test_numpy_input_and_default_client(client, digits):
    model, x = digits
    y = fcd.predict(model, x[:98], batch_size=32)    # the module's client is the default
    assert y.chunks[0] == (32, 32, 34)
    assert_bitequal(y.compute(), model(x[:98]), "NumPy input")
    y64 = fcd.predict(model, x[:20].astype(np.float64), batch_size=8, client=client)
    assert_bitequal(y64.compute(), model(x[:20]), "float64 input")


@pytest.mark.parametrize("n,batch", [(37, 5), (37, 4), (10, 4), (2, 8)])
def test_count_not_divisible_by_batch_size(client, digits, n, batch):
    model, x = digits
    y = fcd.predict(model, x[:n], batch_size=batch, client=client)
    assert sum(y.chunks[0]) == n and y.chunks[0] == tuple(fcd.chunk_sizes(n, batch))
    assert_bitequal(y.compute(), model(x[:n]), f"n={n} batch={batch}")


def test_empty_input(client, digits):
    model, x = digits
    y = fcd.predict(model, x[:0], batch_size=8, client=client)
    assert y.shape == (0, 10)
    out = y.compute()
    assert out.shape == (0, 10) and out.dtype == np.float32
    yd = fcd.predict(model, da.from_array(x[:0]), client=client)
    assert yd.compute().shape == (0, 10)


def test_model_sent_once_and_threads_logged(client, digits):
    model, x = digits
    y = fcd.predict(model, x[:96], batch_size=8, client=client)
    # one scattered model (a _PinnedModel: the model with its auto layers pinned to the
    # whole batch's choice), a replica on each worker; the graph refers to it
    models = [k for k, w in client.who_has().items() if str(k).startswith("_PinnedModel-")]
    assert models, "no scattered model on the cluster"
    assert any(len(client.who_has()[k]) == 2 for k in models)
    assert_bitequal(y.compute(), model(x[:96]), "12 chunks")
    # 2 workers x 1 thread on this host: each worker runs fastconv with its share
    share = max(1, len(os.sched_getaffinity(0)) // 2)
    assert set(client.run(fc.get_num_threads).values()) == {share}
    logs = client.get_worker_logs()
    assert len(logs) == 2
    for addr, lines in logs.items():
        msgs = [m for _, m in lines if "distributed.worker.fastconv" in m]
        assert any(f"fastconv: {share} thread(s) per task" in m for m in msgs), (addr, lines)


def test_errors(client, digits):
    model, x = digits
    with pytest.raises(fc.ShapeError, match=r"main_graph: images must have shape \[N, 1, 32, "
                                            r"32\]"):
        fcd.predict(model, x[:, :, :16], client=client)
    with pytest.raises(TypeError, match="float"):
        fcd.predict(model, x.astype(np.int32), client=client)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        fcd.predict(model, x, batch_size=0, client=client)
    with pytest.raises(TypeError, match="fastconv.Model"):
        fcd.predict(object(), x, client=client)


def test_worker_killed_mid_run(client, digits):
    """Kill a worker process once the first chunk is done: the chunks it held or was
    running are recomputed, and the result is complete and identical."""
    model, x = digits
    xs = np.concatenate([x] * 4)                      # 1440 images, 90 chunks
    ref = model(xs)
    y = fcd.predict(model, xs, batch_size=16, client=client).persist()
    futures = distributed.futures_of(y)
    distributed.wait(futures, return_when="FIRST_COMPLETED")
    done = next(f for f in futures if f.done())
    victim = sorted(client.who_has([done])[done.key])[0]


    def kill():   # client.run never hears back from a process that exits: own thread
        try:
            client.run(os._exit, 1, workers=[victim])
        except Exception:
            pass

    threading.Thread(target=kill, daemon=True).start()
    deadline = time.monotonic() + 30
    while victim in client.scheduler_info()["workers"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert victim not in client.scheduler_info()["workers"], "the worker did not die"
    assert_bitequal(y.compute(), ref, "after a worker was killed")
    client.wait_for_workers(2, timeout=60)         # the nanny restarts it


def test_import_without_dask():
    """fastconv and fastconv.dask import without dask; predict says how to install it."""
    code = (
        "import sys\n"
        "sys.modules['dask'] = None; sys.modules['distributed'] = None\n"
        "import fastconv, fastconv.dask\n"
        "try:\n"
        "    fastconv.dask.predict(None, None)\n"
        "except ImportError as e:\n"
        "    print('IMPORTERROR', e)\n"
    )
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert "IMPORTERROR" in r.stdout and 'pip install "fastconv[dask]"' in r.stdout, r.stdout


def test_no_client_is_an_error():
    code = (
        "import numpy as np, fastconv as fc, fastconv.dask as fcd\n"
        "m = fc.Sequential([fc.layers.Flatten(), fc.layers.Linear(4, 2)], (1, 2, 2))\n"
        "try:\n"
        "    fcd.predict(m, np.zeros((3, 1, 2, 2), np.float32))\n"
        "except ValueError as e:\n"
        "    print('VALUEERROR', e)\n"
    )
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert "VALUEERROR" in r.stdout and "no Dask client" in r.stdout, r.stdout + r.stderr


def test_chunks_compute_what_the_whole_batch_computes_when_auto_picks_per_batch(client):
    # a 4x4-map layer: `auto` runs im2col/direct on a chunk of 2 images and Winograd on
    # 32 (see test_batch_algos.py); the chunks must still equal model(x) bit for bit
    from test_batch_algos import tiny_map_model
    model = tiny_map_model()
    assert "winograd" not in model.algos(2).values()
    assert set(model.algos(32).values()) == {"winograd"}
    x = np.random.default_rng(3).standard_normal((32, 64, 4, 4)).astype(np.float32)
    y = fcd.predict(model, x, batch_size=2, client=client)
    assert_bitequal(y.compute(), model(x), "16 chunks of 2 vs one batch of 32")
