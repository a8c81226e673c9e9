"""Classify a large synthetic batch of digits with fastconv on a Dask cluster.

    pip install "fastconv[dask]"
    python examples/dask_digits.py                        # 50,000 images, 1 and 2 workers
    python examples/dask_digits.py --images 200000 --workers 1 2 4
    python examples/dask_digits.py --scheduler tcp://host:8786   # an existing cluster

The batch is made on the workers (the 360 held-out images shipped with fastconv, each
copy with a little seeded noise), kept in their memory, then classified with
fastconv.dask.predict and the shipped digits model (fastconv/data/digits_vgg.onnx). For
each worker count the script prints the throughput and the accuracy, then the same
images classified in this process with fastconv's threads set to all cores, and checks
that both give the same logits bit for bit.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

import fastconv as fc
import fastconv.dask as fcd

DATA = Path(fc.__file__).resolve().parent / "data"


def make_images(index: np.ndarray, heldout: np.ndarray) -> np.ndarray:
    """Images for global indices `index`: held-out image index % 360 plus noise of std
    0.05 drawn from a generator seeded by the first index (so every run, and every
    recomputation after a worker failure, makes the same images)."""
    rng = np.random.default_rng(int(index[0]) if len(index) else 0)
    x = heldout[index % len(heldout)]
    return (x + rng.normal(0.0, 0.05, x.shape)).astype(np.float32)


def synthetic_batch(client, n: int, batch: int, heldout: np.ndarray):
    """A Dask array (n, 1, 32, 32) made and persisted on the workers."""
    import dask.array as da
    ref = client.scatter(heldout, broadcast=True)
    idx = da.arange(n, chunks=batch)
    imgs = idx.map_blocks(make_images, ref, new_axis=[1, 2, 3], dtype=np.float32,
                          chunks=(idx.chunks[0], (1,), (32,), (32,)))
    return client.persist(imgs)


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=50_000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                    help="worker counts to try on a LocalCluster (1 thread each)")
    ap.add_argument("--num-threads", type=int, default=None,
                    help="fastconv threads per task (default: each worker's share of "
                         "the cores)")
    ap.add_argument("--scheduler", default=None,
                    help="address of a running scheduler instead of LocalClusters")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    from distributed import Client, LocalCluster, wait

    model = fc.load_onnx(DATA / "digits_vgg.onnx")
    held = np.load(DATA / "digits_heldout.npz")
    heldout, labels = held["x"], held["y"]
    truth = labels[np.arange(args.images) % len(labels)]
    print(f"{args.images:,} images, batch {args.batch_size}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")

    def run(client, label):
        imgs = synthetic_batch(client, args.images, args.batch_size, heldout)
        wait(imgs)
        # a warm-up run: workers import fastconv and unpickle the model once
        client.compute(fcd.predict(model, imgs[:args.batch_size], args.batch_size, client,
                                   args.num_threads)).result()
        secs, logits = timed(lambda: client.compute(fcd.predict(
            model, imgs, args.batch_size, client, args.num_threads)).result(), args.repeats)
        acc = float(np.mean(logits.argmax(1) == truth))
        threads = sorted(set(client.run(fc.get_num_threads).values()))
        print(f"{label:<34} {args.images / secs:10,.0f} images/s  ({secs:.2f} s, "
              f"fastconv threads per worker {threads}, accuracy {acc:.4f})")
        return logits

    results = []
    if args.scheduler:
        with Client(args.scheduler) as client:
            n = len(client.scheduler_info()["workers"])
            results.append(run(client, f"cluster at {args.scheduler} ({n} workers)"))
    else:
        for k in args.workers:
            with LocalCluster(n_workers=k, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                results.append(run(client, f"LocalCluster {k} worker(s) x 1 thread"))

    # the same images in this process, all cores, the same batches
    x = np.concatenate([make_images(np.arange(i, min(i + args.batch_size, args.images)),
                                    heldout)
                        for i in range(0, args.images, args.batch_size)])
    fc.set_num_threads(os.cpu_count() or 1)
    secs, local = timed(lambda: np.concatenate(
        [model(x[i:i + args.batch_size]) for i in range(0, len(x), args.batch_size)]),
        args.repeats)
    print(f"{'one process, ' + str(fc.get_num_threads()) + ' fastconv threads':<34} "
          f"{args.images / secs:10,.0f} images/s  ({secs:.2f} s)")
    same = all(np.array_equal(r.view(np.uint32), local.view(np.uint32)) for r in results)
    print(f"Dask results equal the single-process run bit for bit: {same}")


if __name__ == "__main__":
    main()
