"""The bookkeeping both atheris harnesses share: a Draw backed by atheris's
FuzzedDataProvider, the finding log (one saved input per distinct exception site), the
per-run statistics file, and the memory limit that turns a runaway allocation into a
MemoryError finding instead of an OOM kill.

A finding is an exception other than the documented ones, a MemoryError, or an input
that took longer than SLOW seconds. Each distinct signature (exception type and the
innermost fastconv frame) is saved once under <out>/findings/ with its traceback; the
run goes on. A real crash (a signal) ends the run the libFuzzer way: the input is saved
as crash-<sha1> by libFuzzer itself (-artifact_prefix).
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))   # the repository root: the in-place build

from mutations import Draw  # noqa: E402

SLOW = 5.0                   # seconds; an input slower than this is a finding


class FdpDraw(Draw):
    def __init__(self, fdp):
        self.fdp = fdp

    def int(self, lo, hi):
        return self.fdp.ConsumeIntInRange(lo, hi)

    def bytes(self, n):
        return self.fdp.ConsumeBytes(n)


def limit_memory(gib: float) -> None:
    """Address-space limit: an allocation past it raises MemoryError in Python."""
    n = int(gib * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (n, n))


def _signature(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in tb if "fastconv" in f.filename] or list(tb)
    where = f"{os.path.basename(ours[-1].filename)}:{ours[-1].lineno}" if ours else "?"
    return f"{type(exc).__name__}@{where}"


class Log:
    def __init__(self, out_dir: str, name: str):
        self.dir = os.path.join(out_dir, "findings")
        os.makedirs(self.dir, exist_ok=True)
        self.stats_path = os.path.join(out_dir, f"{name}_stats.json")
        self.started = time.time()
        self.cases = 0
        self.outcomes: dict = {}
        self.findings: dict = {}       # signature -> {"count", "file", "message"}
        self.last_write = 0.0

    def outcome(self, what: str) -> None:
        self.cases += 1
        self.outcomes[what] = self.outcomes.get(what, 0) + 1
        if self.cases % 200 == 0 or time.time() - self.last_write > 30:
            self.write()

    def finding(self, sig: str, data: bytes, message: str, suffix: str) -> None:
        f = self.findings.get(sig)
        if f is None:
            h = hashlib.sha1(data).hexdigest()[:12]
            path = os.path.join(self.dir, f"{sig.replace('@', '_').replace(':', '_')}-{h}"
                                          f"{suffix}")
            with open(path, "wb") as fh:
                fh.write(data)
            with open(path + ".txt", "w") as fh:
                fh.write(message)
            f = self.findings[sig] = {"count": 0, "file": path, "message": message[-1500:]}
            print(f"\n=== NEW FINDING {sig}: saved {path}\n{message[-1500:]}", flush=True)
            self.write()
        f["count"] += 1

    def write(self) -> None:
        self.last_write = time.time()
        doc = {"cases": self.cases, "seconds": round(time.time() - self.started, 1),
               "outcomes": self.outcomes, "findings": self.findings}
        tmp = self.stats_path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(doc, fh, indent=1)
        os.replace(tmp, self.stats_path)


def guarded(log: Log, data: bytes, suffix: str, fn) -> None:
    """Run fn() (which returns an outcome label) and log what happened."""
    t0 = time.perf_counter()
    try:
        what = fn()
    except MemoryError as e:
        log.finding(_signature(e), data, traceback.format_exc(), suffix)
        what = "finding"
    except Exception as e:       # noqa: BLE001 - every undocumented exception is a finding
        log.finding(_signature(e), data, traceback.format_exc(), suffix)
        what = "finding"
    dt = time.perf_counter() - t0
    if dt > SLOW:
        log.finding(f"slow>{SLOW:g}s", data, f"took {dt:.1f} s (outcome {what})", suffix)
    log.outcome(what)
