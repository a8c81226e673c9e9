"""Coverage-guided fuzzing of fastconv.load_onnx with atheris (libFuzzer).

    python fuzz/fuzz_load_onnx.py -max_total_time=600 -timeout=30 \\
        -artifact_prefix=/tmp/fcfuzz/onnx/ /tmp/fcfuzz/onnx/corpus

Each input is read as: one byte choosing the mode, then either raw protobuf bytes
(libFuzzer's own mutations of the seed models) or the choices of a structured mutation
of one seed model (fuzz/mutations.py: attribute types, dims, initializer sizes, names,
rewiring, ...). Every model that loads is also run on a small batch. The documented
exceptions (ModelFormatError, ShapeError, UnsupportedOperatorError) are expected; any
other exception, MemoryError or slow input is saved under <artifact dir>/findings/ (see
fuzz/harness.py) and the run continues; <artifact dir>/onnx_stats.json holds the counts.
The seed corpus is written to the corpus directory (the last argument) if it is empty.
"""
from __future__ import annotations

import os
import sys

import atheris

import harness  # noqa: F401  (sets sys.path)
from harness import FdpDraw, Log, guarded, limit_memory

with atheris.instrument_imports(include=["fastconv"]):
    import fastconv  # noqa: F401
    import fastconv.onnx_import  # noqa: F401
    import fastconv.graph  # noqa: F401
    import fastconv.layers  # noqa: F401
    import fastconv.onnx_layers  # noqa: F401

import mutations  # noqa: E402

SEEDS = mutations.onnx_seeds()
OUT = "/tmp/fcfuzz/onnx"
for a in sys.argv[1:]:
    if a.startswith("-artifact_prefix="):
        OUT = a.split("=", 1)[1].rstrip("/")
LOG = Log(OUT, "onnx")


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode == 0:
        buf = fdp.ConsumeBytes(fdp.remaining_bytes())
    else:
        seed = SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)]
        buf = mutations.mutate_onnx(seed, FdpDraw(fdp), rounds=fdp.ConsumeIntInRange(1, 4))
    guarded(LOG, buf, ".onnx", lambda: mutations.check_onnx(buf))


def main() -> None:
    limit_memory(float(os.environ.get("FUZZ_MEM_GIB", "3")))
    corpus = [a for a in sys.argv[1:] if not a.startswith("-")]
    for d in corpus:
        os.makedirs(d, exist_ok=True)
        if not os.listdir(d):
            for i, s in enumerate(SEEDS):
                with open(os.path.join(d, f"seed{i}-raw"), "wb") as f:
                    f.write(b"\x00" + s)
                with open(os.path.join(d, f"seed{i}-structured"), "wb") as f:
                    f.write(bytes([1, i]) + bytes(range(64)))
    os.makedirs(OUT, exist_ok=True)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
