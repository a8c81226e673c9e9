"""Coverage-guided fuzzing of fastconv.load (the native .fcz reader) with atheris.

    python fuzz/fuzz_load_fcz.py -max_total_time=600 -timeout=30 \\
        -artifact_prefix=/tmp/fcfuzz/fcz/ /tmp/fcfuzz/fcz/corpus

Input layout as in fuzz_load_onnx.py: one mode byte, then raw file bytes (libFuzzer's
mutations; most fail a checksum, which tests/test_io.py already covers byte by byte) or
the choices of a structured mutation of a seed file's JSON document and tensors, written
back with a consistent header and checksums (fuzz/mutations.py) so that the graph and
layer checks behind them run. Files are written to a tmpfs directory when there is one.
A model that loads is run on a small batch. Only ModelFormatError is expected; findings
go to <artifact dir>/findings/, counts to <artifact dir>/fcz_stats.json.
"""
from __future__ import annotations

import os
import sys
import tempfile

import atheris

import harness  # noqa: F401  (sets sys.path)
from harness import FdpDraw, Log, guarded, limit_memory

with atheris.instrument_imports(include=["fastconv"]):
    import fastconv  # noqa: F401
    import fastconv.io  # noqa: F401
    import fastconv.graph  # noqa: F401
    import fastconv.layers  # noqa: F401
    import fastconv.plan  # noqa: F401

import mutations  # noqa: E402

SEEDS = mutations.fcz_seeds()
OUT = "/tmp/fcfuzz/fcz"
for a in sys.argv[1:]:
    if a.startswith("-artifact_prefix="):
        OUT = a.split("=", 1)[1].rstrip("/")
LOG = Log(OUT, "fcz")
TMP = tempfile.mkdtemp(prefix="fcfuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
PATH = os.path.join(TMP, "case.fcz")


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode == 0:
        buf = fdp.ConsumeBytes(fdp.remaining_bytes())
    else:
        seed = SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)]
        buf = mutations.mutate_fcz(seed, FdpDraw(fdp), rounds=fdp.ConsumeIntInRange(1, 4))
    guarded(LOG, buf, ".fcz", lambda: mutations.check_fcz(buf, PATH))


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
