"""Batch inference on a Dask cluster: `fastconv.dask.predict(model, images, ...)`.

Needs the optional extra `pip install "fastconv[dask]"` (dask[distributed]); dask is
imported when `predict` is called, not with this module, so `import fastconv` and
`import fastconv.dask` work without it.

How a run goes:
- the model is sent to every worker once (`client.scatter(model, broadcast=True)`; a
  Model pickles by value) and each task gets a reference to it, not a copy;
- the images are cut along the batch axis into chunks of `batch_size` images (a NumPy
  array is wrapped in a Dask array first), one task per chunk, and the result is a lazy
  Dask array of outputs chunked the same way: call `.compute()` (or `.persist()`, or
  store it with `da.to_zarr`/`da.store`) to run it;
- each worker runs fastconv with its share of the cores: cores of its host divided by
  the Dask threads of all workers on that host (at least 1), so workers x threads never
  oversubscribe the machine; it sets that once and says so in its log (the logger
  "distributed.worker.fastconv", which `client.get_worker_logs()` shows);
- a worker that dies mid-run loses nothing: Dask reruns its chunks elsewhere (the input
  chunks are recomputable from the graph, and the model has a replica on every worker).

Results equal `model(images)` run in one process bit for bit: fastconv's kernels give
the same bits for any thread count, and every output row depends only on its own image.
One exception in the engine is handled here: a Linear layer run on a batch of 1 or 2
rows takes the SGEMM's dot-product path, whose sums round differently from the blocked
path that larger batches take, so no chunk is made smaller than `_MIN_CHUNK` images
(a short last chunk is merged into the one before it) unless the whole input is.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from fastconv.errors import ShapeError

__all__ = ["predict", "chunk_sizes", "worker_thread_plan"]

# the logger of the worker's own log (a child of distributed.worker, so it reaches the
# worker's handlers: its stderr and the log client.get_worker_logs() returns)
logger = logging.getLogger("distributed.worker.fastconv")

# No chunk below this many images (unless the input is smaller): see the module docstring.
_MIN_CHUNK = 3

_INSTALL_HINT = ('fastconv.dask needs Dask\'s distributed scheduler: pip install '
                 '"fastconv[dask]" (or pip install "dask[distributed]")')


def _import_dask():
    try:
        import dask
        import dask.array as da
        import distributed
    except ImportError as e:
        raise ImportError(f"{_INSTALL_HINT} ({e})") from e
    return dask, da, distributed


def chunk_sizes(n: int, batch_size: int) -> List[int]:
    """Chunk lengths along the batch axis: batch_size each, the remainder last, merged
    into the chunk before it when shorter than _MIN_CHUNK (see the module docstring)."""
    if n == 0:
        return [0]
    sizes = [batch_size] * (n // batch_size)
    rest = n - batch_size * len(sizes)
    if rest:
        if sizes and rest < _MIN_CHUNK:
            sizes[-1] += rest
        else:
            sizes.append(rest)
    return sizes


def _host_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers and taskset
    narrow), else os.cpu_count()."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _host_of(address: str) -> str:
    """'tcp://127.0.0.1:40123' -> '127.0.0.1' (the host part of a worker address)."""
    rest = address.split("://", 1)[-1]
    return rest.rsplit(":", 1)[0] if ":" in rest else rest


def worker_thread_plan(scheduler_info: dict) -> Dict[str, int]:
    """{host: Dask threads of all workers on that host} from client.scheduler_info()."""
    plan: Dict[str, int] = {}
    for addr, w in scheduler_info.get("workers", {}).items():
        host = w.get("host") or _host_of(addr)
        plan[host] = plan.get(host, 0) + int(w.get("nthreads", 1))
    return plan


_configured: Optional[tuple] = None     # (threads, reason) once set in this process


def _thread_share(w, host_threads: Dict[str, int], num_threads: Optional[int]):
    """(fastconv threads for each task on worker w, how that was decided)."""
    own = int(getattr(w.state, "nthreads", None) or getattr(w, "nthreads", 1) or 1)
    host = _host_of(w.address)
    cores = _host_cores()
    if num_threads is not None:
        return num_threads, f"num_threads={num_threads} given to predict"
    dask_threads = max(own, host_threads.get(host, own))
    share = max(1, cores // dask_threads)
    return share, (f"{cores} cores on {host} / {dask_threads} Dask threads of the workers "
                   f"there")


def _configure(worker, host_threads: Dict[str, int], num_threads: Optional[int]) -> int:
    """Set fastconv's thread count on this worker (once per process and setting) and log
    it. Runs in every task, so a worker that joins or restarts mid-run is set up too."""
    global _configured
    import fastconv
    threads, reason = _thread_share(worker, host_threads, num_threads)
    if _configured is None or _configured[0] != threads:
        fastconv.set_num_threads(threads)
        _configured = (threads, reason)
        logger.info("fastconv: %d thread(s) per task (%s)", threads, reason)
    return threads


def _configure_worker(host_threads, num_threads, dask_worker=None):
    """client.run target: configure now; returns fastconv.get_num_threads()."""
    import fastconv
    _configure(dask_worker, host_threads, num_threads)
    return fastconv.get_num_threads()


def _predict_block(block: np.ndarray, model, host_threads, num_threads) -> np.ndarray:
    from distributed import get_worker
    try:
        worker = get_worker()
    except ValueError:        # computed by a local scheduler after all: leave threads be
        worker = None
    if worker is not None:
        _configure(worker, host_threads, num_threads)
    return model(block)


class _PinnedModel:
    """Pickles as `model` with each "auto" conv node set to the algorithm it runs at
    `batch` images (Model.algos): `auto` may choose per batch size, and a chunk must
    compute what the whole batch would."""

    def __init__(self, model, batch: int):
        self.model, self.batch = model, batch

    def __reduce__(self):
        from fastconv.graph import Model
        cfg = self.model.to_config()
        algos = self.model.algos(self.batch)
        for node in cfg["nodes"]:
            if node["name"] in algos and node["config"].get("algo") == "auto":
                node["config"]["algo"] = algos[node["name"]]
        params = {k: np.array(v, copy=True) for k, v in self.model.named_params().items()}
        return (Model.from_config, (cfg, params))


def predict(model, images, batch_size: int = 64, client=None,
            num_threads: Optional[int] = None):
    """Run a single-input fastconv Model over `images` on a Dask cluster.

    images: a Dask array or a NumPy array of shape (N, *model input shape), e.g.
    (N, C, H, W); any float dtype (converted to float32 on the workers, as model(x)
    does). batch_size: images per task (chunk). client: a distributed.Client (for a
    LocalCluster or any scheduler address: Client("tcp://host:8786")); None uses the
    current default client. num_threads: fastconv threads per task; None gives each
    worker its share of its host's cores (see the module docstring).

    Returns a lazy Dask array (N, *model output shape) of float32, chunked by batch along
    axis 0; `.compute()` equals `model(images)` bit for bit."""
    dask, da, distributed = _import_dask()
    from fastconv.graph import Model
    from fastconv.functional import _int
    if not isinstance(model, Model):
        raise TypeError(f"fastconv.dask.predict: model must be a fastconv.Model, got "
                        f"{type(model).__name__}")
    if len(model.input_names) != 1:
        raise ValueError(f"fastconv.dask.predict: needs a single-input model; "
                         f"{model.name!r} has inputs {model.input_names}")
    batch_size = _int(batch_size, "batch_size", "fastconv.dask.predict", 1)
    if num_threads is not None:
        num_threads = _int(num_threads, "num_threads", "fastconv.dask.predict", 1)
    if client is None:
        try:
            client = distributed.get_client()
        except ValueError:
            raise ValueError("fastconv.dask.predict: no Dask client; pass client= (e.g. "
                             "distributed.Client(LocalCluster()) or Client('tcp://host:8786'))"
                             " or create one first") from None
    in_shape = tuple(model.input_shapes[model.input_names[0]])
    out_shape = tuple(model.shapes[model.output_names[0]])

    if not isinstance(images, da.Array):
        images = np.asarray(images)
    if images.dtype.kind != "f":
        raise TypeError(f"fastconv.dask.predict: images must be a float array (float32; "
                        f"float16/float64 are converted), got dtype {images.dtype}")
    if images.ndim != len(in_shape) + 1 or tuple(images.shape[1:]) != in_shape:
        raise ShapeError(f"{model.name}: images must have shape [N, "
                         f"{', '.join(map(str, in_shape))}] (batch first), got "
                         f"{tuple(images.shape)}")
    n = images.shape[0]
    if isinstance(n, float) and math.isnan(n):
        raise ValueError("fastconv.dask.predict: the number of images is unknown (NaN "
                         "chunks); call images.compute_chunk_sizes() first")
    if n == 0:
        return da.from_array(np.empty((0,) + out_shape, np.float32))
    sizes = tuple(chunk_sizes(int(n), batch_size))
    whole = (-1,) * len(in_shape)
    if isinstance(images, da.Array):
        images = images.rechunk((sizes,) + whole)
    else:
        images = da.from_array(images, chunks=(sizes,) + whole)

    host_threads = worker_thread_plan(client.scheduler_info())
    # set the workers up now (each says so in its log); tasks repeat this for workers
    # that join later, e.g. one that replaces a worker that died
    client.run(_configure_worker, host_threads, num_threads)
    # one copy of the model per worker, shared by all its tasks; its `auto` layers pinned
    # to what model(images) would run at n images, so chunks compute the same bits
    model_ref = client.scatter(_PinnedModel(model, int(n)), broadcast=True, hash=False)

    nin, nout = images.ndim, len(out_shape) + 1
    axes = {}
    if nout < nin:
        axes["drop_axis"] = list(range(nout, nin))
    elif nout > nin:
        axes["new_axis"] = list(range(nin, nout))
    name = "fastconv-predict-" + dask.base.tokenize(images.name, model_ref.key, num_threads)
    return images.map_blocks(_predict_block, model_ref, host_threads, num_threads,
                             dtype=np.float32, chunks=(sizes,) + tuple((s,) for s in out_shape),
                             name=name, meta=np.empty((0,) * nout, np.float32), **axes)
