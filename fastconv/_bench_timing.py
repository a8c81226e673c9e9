"""How the benchmark measures: the machine's roofs (FMA peak, triad bandwidth), a
description of the machine and its load, and the interleaved timing loop that every
runner of ``fastconv bench`` and of the bench/ scripts goes through.

Interleaving: all implementations of a case are timed in rounds, one trial each per
round, the first one rotating from round to round, so slow drift of a shared machine
hits them alike and their ratio holds where the absolute times do not.
"""
from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from fastconv import _kernels

SETTLE_S = 0.01       # idle before a trial: longer than libgomp's spin-wait
# OpenBLAS's workers spin for about 2**28 cycles (~0.1 s) after a call before they
# sleep; a shorter gap left them on the core the next fastconv trial needed (measured:
# fastconv's 2-thread SGEMM at 1-thread speed).
BLAS_SETTLE_S = 0.3


@dataclass
class Timing:
    """What time_interleaved measured: every call, and the mean per call of each trial."""
    samples: Dict[str, List[float]]          # seconds, one per call
    trials: Dict[str, List[float]]           # seconds per call, one per trial
    calls_per_trial: Dict[str, int]
    rounds: int
    stable: bool


def time_interleaved(runners: Dict[str, Callable], *, min_trial: float, min_rounds: int,
                     max_rounds: int, stable_tol: float = 0.02, budget: float = math.inf,
                     max_calls: int = 200, threads: int = 1,
                     blas_names: Sequence[str] = ("numpy",),
                     est: Optional[Dict[str, float]] = None) -> Timing:
    """Time warm zero-argument callables in rounds of interleaved trials, every call on
    its own, the garbage collector off. A trial is about `min_trial` seconds of calls
    (at most max_calls), calibrated by one call unless `est` gives seconds per call.
    Before each trial the process sleeps SETTLE_S (BLAS_SETTLE_S after a trial of a
    `blas_names` runner at more than one thread), so worker threads the previous
    library left spinning have gone to sleep. After min_rounds it stops as soon as every
    median over all calls moved by less than stable_tol since the previous round, or at
    max_rounds, or once `budget` seconds are spent; calls so slow that min_rounds would
    take more than twice the budget stop after 2 rounds. min_rounds == max_rounds is a
    fixed number of rounds."""
    names = list(runners)
    clock = time.perf_counter
    calls = {}
    for n in names:
        if est and n in est:
            dt = est[n]
        else:
            t0 = clock()
            runners[n]()
            dt = clock() - t0
        calls[n] = max(1, min(max_calls, math.ceil(min_trial / max(dt, 1e-7))))
    samples = {n: [] for n in names}
    trials = {n: [] for n in names}
    prev, rounds, stable = None, 0, False
    start = clock()
    gc_was = gc.isenabled()
    gc.disable()
    try:
        while names:
            k = rounds % len(names)
            last = None
            for n in names[k:] + names[:k]:
                time.sleep(BLAS_SETTLE_S if last in blas_names and threads > 1 else SETTLE_S)
                f, ts, m = runners[n], samples[n], calls[n]
                for _ in range(m):
                    t0 = clock()
                    f()
                    ts.append(clock() - t0)
                trials[n].append(sum(ts[-m:]) / m)
                last = n
            rounds += 1
            meds = {n: statistics.median(samples[n]) for n in names}
            if rounds >= min_rounds:
                if prev and all(abs(meds[n] - prev[n]) <= stable_tol * prev[n]
                                for n in names):
                    stable = True
                    break
                if rounds >= max_rounds or clock() - start > budget:
                    break
            elif rounds >= 2 and clock() - start > 2 * budget:
                break
            prev = meds
    finally:
        if gc_was:
            gc.enable()
    return Timing(samples, trials, calls, rounds, stable)


def call_stats(samples: List[float]) -> dict:
    """min / median / p90 in ms and the number of calls."""
    v = np.sort(np.asarray(samples, dtype=np.float64)) * 1e3
    return {"min_ms": float(v[0]), "median_ms": float(np.median(v)),
            "p90_ms": float(np.percentile(v, 90)), "calls": int(v.size)}


# ---------------------------------------------------------------- the machine's roofs
def measure_peaks(threads, seconds: float, runs: int = 3) -> Dict[str, List[float]]:
    """{str(threads): [GFLOP/s of each run]} of the FMA loop in the extension."""
    return {str(t): [float(_kernels.fma_peak(t, seconds)) for _ in range(runs)]
            for t in threads}


def measure_bandwidth(threads, megabytes=None, repeats=5) -> Dict[str, float]:
    """{str(threads): GB/s} of the STREAM-like triad."""
    return {str(t): float(_kernels.stream_triad(t, megabytes=megabytes, repeats=repeats))
            for t in threads}


def peak_warning(runs: Dict, label: str = "") -> List[str]:
    """Lines warning of peak runs far below the 1-thread best times the thread ratio
    (other jobs took cores). runs: {threads: [GFLOP/s, ...]} (int or str keys)."""
    runs = {int(t): [v for v in vs if v] for t, vs in runs.items()}
    runs = {t: vs for t, vs in runs.items() if vs}
    if not runs:
        return []
    t1 = min(runs)
    p1 = max(runs[t1])
    out = []
    for t, vs in runs.items():
        low = min(vs)
        if low < 0.85 * p1 * t / t1:
            out.append(f"**warning**: a {t}-thread peak run gave only {low:.0f} GFLOP/s "
                       f"({low / p1 * t1:.2f}x the best {t1}-thread one, ideal "
                       f"{t / t1:.0f}x): other jobs took cores during this run (see the "
                       f"load average), so its {t}-thread rows may not be representative; "
                       f"the interleaved ratios suffer less than the absolute times")
    return out


# ---------------------------------------------------------------- the machine itself
def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def loadavg() -> Optional[List[float]]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()
