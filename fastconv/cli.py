"""Command line: `fastconv demo | summary | run | bench | info` (also `python -m fastconv ...`).

  demo      build a small VGG with a fixed seed, print its summary, run it, and print the
            time of every layer with each convolution algorithm (direct, im2col, auto)
  summary   print the layer table of a model file (native .fcz, or .onnx)
  run       run a model file on an input .npy and write the output .npy/.npz
  bench     measure the machine's limits, time layers and networks against the peers,
            plot a saved result (`bench plot`), tune a model's algorithms (`bench --tune`)
  info      print the CPU and build information as JSON

Errors in the user's files or arguments (a missing file, a corrupt model, an input of
the wrong shape) print one line on stderr and exit with status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

import fastconv as fc
from fastconv.errors import ModelFormatError, ShapeError, UnsupportedOperatorError

EXIT_USAGE = 2
DEMO_MODELS = ("auto", "digits", "cifar_vgg", "convnet")
DATA_DIR = Path(__file__).resolve().parent / "data"
# the demo's columns: every algorithm, forced where it can serve a layer, then the rule
_ALGOS = tuple(fc.conv_algorithms()) + ("auto",)
# work that takes longer than this shows progress
PROGRESS_DELAY_S = 2.0


class CliError(Exception):
    """A problem with the user's input: reported as one line, exit status 2."""


# ------------------------------------------------------------------------ progress

class Progress:
    """Progress over `total` steps on stderr, shown only once the work has taken more
    than `delay` seconds: tqdm when it is installed, else a plain line per step."""

    def __init__(self, total: int, desc: str, delay: Optional[float] = None,
                 file=None, use_tqdm: Optional[bool] = None):
        delay = PROGRESS_DELAY_S if delay is None else delay
        self.total, self.desc, self.delay, self.n = total, desc, delay, 0
        self.file = file if file is not None else sys.stderr
        self.t0 = time.perf_counter()
        self.shown = False
        self._bar = None
        if use_tqdm is None or use_tqdm:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, desc=desc, delay=delay, file=self.file,
                                 leave=False)

    def update(self, n: int = 1, what: str = "") -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
            return
        elapsed = time.perf_counter() - self.t0
        if elapsed >= self.delay:
            self.shown = True
            extra = f" ({what})" if what else ""
            print(f"{self.desc}: {self.n}/{self.total}{extra}, {elapsed:.1f} s",
                  file=self.file, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _slow_step(desc: str, fn, *args):
    """Run one indivisible call; say on stderr what is running if it takes a while
    (checked afterwards: a single call cannot be interrupted to print)."""
    t0 = time.perf_counter()
    out = fn(*args)
    dt = time.perf_counter() - t0
    if dt >= PROGRESS_DELAY_S:
        print(f"{desc}: done in {dt:.1f} s", file=sys.stderr, flush=True)
    return out


# ------------------------------------------------------------------------ model files

def load_model_file(path: str):
    """A native .fcz file (fc.load) or an ONNX file (fc.load_onnx), by content."""
    if not os.path.exists(path):
        raise CliError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CliError(f"{path}: is a directory, not a model file")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise CliError(f"{path}: cannot read: {e.strerror or e}") from None
    if head != b"FCZ1" and path.lower().endswith(".onnx"):
        load_onnx = getattr(fc, "load_onnx", None)
        if load_onnx is None:
            raise CliError(f"{path}: this fastconv cannot import ONNX yet "
                           f"(fastconv.load_onnx is missing)")
        try:
            return _slow_step(f"loading {path}", load_onnx, path)
        except ImportError as e:       # onnx not installed, or no importer in this build
            raise CliError(f"{path}: ONNX import is unavailable: {e}") from None
    from fastconv.io import load_model
    return _slow_step(f"loading {path}", load_model, path)


def _read_npy(path: str) -> np.ndarray:
    if not os.path.exists(path):
        raise CliError(f"{path}: no such file")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise CliError(f"{path}: not a readable .npy file ({e})") from None
    if isinstance(arr, np.lib.npyio.NpzFile):
        arr.close()
        raise CliError(f"{path}: is an .npz archive; give one array as .npy")
    return arr


def _parse_inputs(specs: List[str], model) -> Dict[str, np.ndarray]:
    """`--input x.npy` (single-input models) or `--input name=x.npy` per input."""
    names = model.input_names
    feeds: Dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or name not in names and os.path.exists(spec):
            name, path = None, spec
        if name is None:
            if len(names) != 1:
                raise CliError(f"the model has inputs {names}: give each as "
                               f"--input NAME=FILE.npy")
            name = names[0]
        if name not in names:
            raise CliError(f"the model has no input {name!r} (its inputs: {names})")
        if name in feeds:
            raise CliError(f"input {name!r} given twice")
        feeds[name] = path
    missing = [n for n in names if n not in feeds]
    if missing:
        raise CliError(f"no --input for {', '.join(map(repr, missing))}")
    arrays = {}
    for name, path in feeds.items():
        x = _read_npy(path)
        shape = model.input_shapes[name]
        if x.dtype.kind not in "f":
            raise CliError(f"{path}: dtype {x.dtype}; the model takes float32 (float16 and "
                           f"float64 are converted)")
        if tuple(x.shape) == tuple(shape):
            x = x[None]                 # one sample without its batch axis
        if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
            raise CliError(f"{path}: shape {tuple(x.shape)}, input {name!r} needs "
                           f"(N, {', '.join(map(str, shape))})")
        arrays[name] = x
    return arrays


def _run_batches(model, feeds: Dict[str, np.ndarray], batch_size: int) -> Dict[str, np.ndarray]:
    n = next(iter(feeds.values())).shape[0]
    if n <= batch_size:
        return _slow_step("running", model.run, feeds)
    parts: Dict[str, list] = {k: [] for k in model.output_names}
    starts = range(0, n, batch_size)
    with Progress(len(starts), "running") as bar:
        for s in starts:
            out = model.run({k: v[s:s + batch_size] for k, v in feeds.items()})
            for k in parts:
                parts[k].append(out[k])
            bar.update(1, f"{min(s + batch_size, n)}/{n} samples")
    return {k: np.concatenate(v, axis=0) for k, v in parts.items()}


def _check_output_dir(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CliError(f"{path}: the directory {directory} does not exist")


def _write_output(path: str, outs: Dict[str, np.ndarray], order: List[str]) -> None:
    _check_output_dir(path)
    try:
        if path.lower().endswith(".npz"):
            np.savez(path, **{k: outs[k] for k in order})
        else:
            np.save(path, outs[order[0]], allow_pickle=False)
    except OSError as e:
        raise CliError(f"{path}: cannot write: {e.strerror or e}") from None


# ------------------------------------------------------------------------ demo

def build_demo_model(kind: str, seed: int):
    """(model, labels or None, note) for a demo model kind. "digits" is the trained model
    shipped in fastconv/data (needs ONNX import); "auto" is digits when ONNX import
    works, else cifar_vgg."""
    from fastconv import models
    if kind in ("auto", "digits"):
        try:
            return _load_digits()
        except ImportError as e:
            if kind == "digits":
                raise CliError(f"the digits model needs ONNX import, which is unavailable: "
                               f"{e}") from None
            note = f"(the shipped digits model needs ONNX import, unavailable here: {e})"
            model, _, _ = build_demo_model("cifar_vgg", seed)
            return model, None, note
    if kind == "cifar_vgg":
        return (models.cifar_vgg(num_classes=10, seed=seed), None,
                f"cifar_vgg: VGG-16's conv stack on 3x32x32, random He weights (seed {seed})")
    if kind == "convnet":
        return (models.convnet(seed=seed), None,
                f"convnet: two conv blocks on 3x32x32, random He weights (seed {seed})")
    raise CliError(f"unknown demo model {kind!r} (choose from {', '.join(DEMO_MODELS)})")


def _load_digits():
    """The trained digits VGG and its held-out split: (model, (x, y, recorded accuracy),
    note)."""
    load_onnx = getattr(fc, "load_onnx", None)
    if load_onnx is None:
        raise ImportError("fastconv.load_onnx is missing")
    model = load_onnx(str(DATA_DIR / "digits_vgg.onnx"))
    with np.load(DATA_DIR / "digits_heldout.npz") as z:
        x, y = z["x"], z["y"]
    try:
        recorded = json.loads((DATA_DIR / "digits_vgg.json").read_text())["heldout_accuracy"]
    except (OSError, ValueError, KeyError):
        recorded = None
    return model, (x, y, recorded), ("digits: a small VGG trained on scikit-learn's "
                                     "handwritten digits (fastconv/data), held-out images")


def _short(label: str, width: int = 48) -> str:
    """A step label cut to `width` characters (ONNX tensor names can be long): its start
    and its end, which name the first and last fused node."""
    if len(label) <= width:
        return label
    half = (width - 3) // 2
    return label[:half] + "..." + label[-(width - 3 - half):]


def run_demo(model_kind: str = "auto", batch: int = 1, repeats: int = 5, seed: int = 0,
             out=None) -> Dict[str, Dict[str, float]]:
    """Summary, one run, and per-layer median milliseconds with each algorithm forced on
    every conv layer, printed to `out` (default stdout). Returns {algo: {step label:
    median ms}}."""
    out = sys.stdout if out is None else out
    model, labelled, note = _slow_step("building the model", build_demo_model, model_kind,
                                       seed)
    info = fc.cpu_info()
    print(f"fastconv {fc.__version__}: ISA {info['isa']}, {info['num_threads']} thread(s), "
          f"OpenMP {'on' if info['openmp'] else 'off'}, {info['compiler']}\n", file=out)
    summary = model.summary(print_fn=None, batch=batch)
    print(summary, file=out)
    print(note, file=out)
    (in_name,) = model.input_names
    shape = model.input_shapes[in_name]
    if labelled is not None:
        x = np.ascontiguousarray(np.resize(labelled[0], (batch,) + tuple(shape)))
    else:
        x = np.random.default_rng(seed).standard_normal((batch,) + tuple(shape))
    x = x.astype(np.float32)

    times: Dict[str, Dict[str, float]] = {}
    whole: Dict[str, float] = {}
    outputs: Dict[str, np.ndarray] = {}
    auto_algo = {r["name"]: r["algo"] for r in summary.rows}
    cannot: Dict[str, List[str]] = {}    # per algorithm: the conv nodes it cannot serve
    with Progress(len(_ALGOS), "timing layers") as bar:
        for algo in _ALGOS:
            cannot[algo] = model.set_algos(algo, where_supported=True)
            outputs[algo] = model(x)
            times[algo] = model.profile(x, repeats)
            samples = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                model(x)
                samples.append((time.perf_counter() - t0) * 1e3)
            whole[algo] = statistics.median(samples)
            bar.update(1, algo)
    labels = list(times["auto"])
    for a in _ALGOS:
        labels += [lb for lb in times[a] if lb not in labels]
    w = max(12, *(len(_short(lb)) for lb in labels)) + 2
    print(f"\ninput {x.shape}; median of {repeats} runs of each layer, in ms, with every "
          f"conv layer forced to one algorithm (auto: the per-layer choice; n/a: the "
          f"algorithm cannot serve that layer, which then runs auto's choice in that "
          f"column's totals)\n", file=out)
    print(f"{'layer':<{w}}{'output shape':<18}" + "".join(f"{a:>10}" for a in _ALGOS)
          + "  auto chose", file=out)
    for lb in labels:
        last = lb.split("+")[-1]
        shp = "(N, " + ", ".join(map(str, model.shapes.get(last, ()))) + ")"
        cells = "".join(f"{'n/a':>10}" if lb.split("+")[0] in cannot[a]
                        else f"{times[a][lb]:>10.3f}" if lb in times[a] else f"{'-':>10}"
                        for a in _ALGOS)
        print(f"{_short(lb):<{w}}{shp:<18}{cells}  {auto_algo.get(lb.split('+')[0], '-')}", file=out)
    print(f"{'sum of layers':<{w + 18}}"
          + "".join(f"{sum(times[a].values()):>10.3f}" for a in _ALGOS), file=out)
    print(f"{'whole network':<{w + 18}}" + "".join(f"{whole[a]:>10.3f}" for a in _ALGOS),
          file=out)
    spread = max(float(np.max(np.abs(outputs[a] - outputs["auto"]))) for a in _ALGOS)
    print(f"\nlargest difference between the algorithms' outputs: {spread:.2e}", file=out)
    pred = np.argmax(outputs["auto"], axis=1).tolist()
    print(f"predicted class per sample: {pred[:20]}{' ...' if len(pred) > 20 else ''}",
          file=out)
    if labelled is not None:
        hx, hy, recorded = labelled
        model.set_algos("auto")
        hits = int(np.sum(np.argmax(model(hx), axis=1) == hy))
        rec = f" (recorded when it was trained: {recorded:.2%})" if recorded else ""
        print(f"held-out accuracy: {hits}/{len(hy)} = {hits / len(hy):.2%}{rec}", file=out)
    return times


# ------------------------------------------------------------------------ commands

def _cmd_demo(args) -> int:
    if args.batch < 1 or args.repeats < 1:
        raise CliError("need --batch >= 1 and --repeats >= 1")
    run_demo(args.model, args.batch, args.repeats, args.seed)
    return 0


def _cmd_summary(args) -> int:
    if args.batch < 1:
        raise CliError("need --batch >= 1")
    model = load_model_file(args.model)
    print(model.summary(print_fn=None, batch=args.batch))
    return 0


def _cmd_run(args) -> int:
    if args.batch_size < 1:
        raise CliError("need --batch-size >= 1")
    # the cheap checks first, before a model that may take seconds to load
    for spec in args.input:
        path = spec if os.path.exists(spec) or "=" not in spec else spec.partition("=")[2]
        if not os.path.exists(path):
            raise CliError(f"{path}: no such file")
    _check_output_dir(args.output)
    model = load_model_file(args.model)
    feeds = _parse_inputs(args.input, model)
    outs = _run_batches(model, feeds, args.batch_size)
    _write_output(args.output, outs, model.output_names)
    n = next(iter(feeds.values())).shape[0]
    shapes = ", ".join(f"{k} {tuple(outs[k].shape)}" for k in model.output_names)
    print(f"{args.output}: {n} sample(s) through {model.name!r}: {shapes}", file=sys.stderr)
    return 0


def _cmd_info(args) -> int:
    print(json.dumps(fc.cpu_info(), indent=2))
    return 0


def _bench_arguments(p) -> None:
    from fastconv import bench
    bench.add_arguments(p)


def _cmd_bench(args) -> int:
    from fastconv import bench   # the benchmark runner lives in its own module
    return bench.command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastconv", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="run a small VGG with each convolution algorithm, time every layer",
        description="Take a small VGG, print its summary, run it and print the median time "
                    "of every layer with the conv layers forced to direct, to im2col, and "
                    "left on auto. Models: digits, the trained digits VGG shipped in the "
                    "package (run on its held-out images, accuracy printed; needs ONNX "
                    "import); cifar_vgg, VGG-16's conv stack on 3x32x32 with seeded He "
                    "weights, on random data; convnet, a smaller seeded one; auto: digits "
                    "when ONNX import works, else cifar_vgg.")
    demo.add_argument("--model", choices=DEMO_MODELS, default="auto",
                      help="which model (default: %(default)s)")
    demo.add_argument("--batch", type=int, default=1, help="batch size (default: 1)")
    demo.add_argument("--repeats", type=int, default=5,
                      help="timed runs per layer, the median is shown (default: 5)")
    demo.add_argument("--threads", type=int, default=None, help="threads (default: all)")
    demo.add_argument("--seed", type=int, default=0, help="weights and input (default: 0)")
    demo.set_defaults(func=_cmd_demo)

    summ = sub.add_parser(
        "summary", help="print the layer table of a model file",
        description="Print every layer of MODEL (a native .fcz file written by "
                    "Model.save, or an .onnx file) with its output shape, parameters, "
                    "MACs and FLOPs, receptive field, algorithm and workspace.")
    summ.add_argument("model", metavar="MODEL", help="a .fcz or .onnx file")
    summ.add_argument("--batch", type=int, default=1,
                      help="batch size for the arena and workspace columns (default: 1)")
    summ.set_defaults(func=_cmd_summary)

    run = sub.add_parser(
        "run", help="run a model file on an input .npy",
        description="Run MODEL on the array in --input ([N, ...] float32, batch first; an "
                    "array of exactly one sample's shape is a batch of one) and write the "
                    "first output to --output (.npy), or every output by name (.npz).")
    run.add_argument("model", metavar="MODEL", help="a .fcz or .onnx file")
    run.add_argument("--input", "-i", action="append", required=True, metavar="[NAME=]X.npy",
                     help="input array; NAME=X.npy for a model with several inputs "
                          "(repeat the option)")
    run.add_argument("--output", "-o", required=True, metavar="Y.npy",
                     help="where to write the output (.npy: the first output, .npz: all)")
    run.add_argument("--threads", type=int, default=None, help="threads (default: all)")
    run.add_argument("--batch-size", type=int, default=64,
                     help="samples per run; larger inputs run in pieces with progress "
                          "(default: 64)")
    run.set_defaults(func=_cmd_run)

    bench = sub.add_parser(
        "bench", help="benchmark the layers and networks against the peers and the "
                      "machine's limits; plot a saved result; tune a model's algorithms",
        description="Measure the FMA peak and the memory bandwidth, then time the layer "
                    "suite (fastconv/data/shapes/*.csv) and whole networks at each thread "
                    "count against ONNX Runtime, PyTorch and NumPy's BLAS (fastconv/bench.py, "
                    "bench/README.md). `fastconv bench plot RESULTS.json -o OUT.png` draws "
                    "a saved result; `fastconv bench --tune MODEL -o OUT.fcz` times each "
                    "conv algorithm per layer and saves the winners with the model.")
    _bench_arguments(bench)
    bench.set_defaults(func=_cmd_bench)

    info = sub.add_parser("info", help="print the CPU and build information as JSON",
                          description="Print the ISA in use, threads, compiler and OpenMP "
                                      "as JSON.")
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"fastconv {args.command}"
    try:
        if getattr(args, "threads", None) is not None:
            if args.threads < 1:
                raise CliError("need --threads >= 1")
            fc.set_num_threads(args.threads)
        return args.func(args)
    except CliError as e:
        msg = str(e)
    except (ModelFormatError, ShapeError, UnsupportedOperatorError, FileNotFoundError,
            TypeError, ValueError) as e:
        # the model file or the data is at fault, not fastconv: one line, no traceback
        # (FASTCONV_TRACEBACK=1 shows it, for debugging fastconv itself)
        if os.environ.get("FASTCONV_TRACEBACK"):
            raise
        msg = f"{type(e).__name__}: {e}" if not isinstance(e, ModelFormatError) else str(e)
    except OSError as e:
        msg = f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}"
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    print(f"{prog}: error: {' '.join(msg.split())}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
