"""A short, bounded, derandomized fuzz run of both file readers in the test suite: the
structured mutations of fuzz/mutations.py (the ones the long atheris runs use, see
SECURITY.md) applied to small seed models, driven by hypothesis. Only fastconv's
documented exceptions may come out of fastconv.load_onnx (ModelFormatError, ShapeError,
UnsupportedOperatorError) and fastconv.load (ModelFormatError naming the path), and every
model that loads must run."""
from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import TESTS_DIR

pytest.importorskip("onnx")
sys.path.insert(0, str(TESTS_DIR.parent / "fuzz"))
import mutations  # noqa: E402


class HypothesisDraw(mutations.Draw):
    def __init__(self, data):
        self.data = data

    def int(self, lo, hi):
        return self.data.draw(st.integers(lo, hi))

    def bytes(self, n):
        return self.data.draw(st.binary(min_size=n, max_size=n))


_SEEDS = {}


def _seeds(kind):
    if kind not in _SEEDS:
        _SEEDS[kind] = mutations.onnx_seeds() if kind == "onnx" else mutations.fcz_seeds()
    return _SEEDS[kind]


def test_seeds_load_and_run(tmp_path):
    for s in _seeds("onnx"):
        assert mutations.check_onnx(s) == "loaded"
    for i, s in enumerate(_seeds("fcz")):
        assert mutations.check_fcz(s, str(tmp_path / f"s{i}.fcz")) == "loaded"


OUTCOMES = {"onnx": set(), "fcz": set()}


@settings(max_examples=1000, deadline=None)
@given(data=st.data())
def test_mutated_onnx_models(data):
    d = HypothesisDraw(data)
    seeds = _seeds("onnx")
    buf = mutations.mutate_onnx(seeds[d.int(0, len(seeds) - 1)], d, rounds=d.int(1, 4))
    OUTCOMES["onnx"].add(mutations.check_onnx(buf))


@settings(max_examples=1000, deadline=None)
@given(data=st.data())
def test_mutated_fcz_files(data, tmp_path_factory):
    d = HypothesisDraw(data)
    seeds = _seeds("fcz")
    buf = mutations.mutate_fcz(seeds[d.int(0, len(seeds) - 1)], d, rounds=d.int(1, 4))
    path = str(tmp_path_factory.getbasetemp() / "fuzz_case.fcz")
    OUTCOMES["fcz"].add(mutations.check_fcz(buf, path))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_byte_mutations_of_both_formats(data, tmp_path_factory):
    d = HypothesisDraw(data)
    onnx_seed = _seeds("onnx")[d.int(0, len(_seeds("onnx")) - 1)]
    mutations.check_onnx(mutations.mutate_bytes(onnx_seed, d))
    fcz_seed = _seeds("fcz")[d.int(0, len(_seeds("fcz")) - 1)]
    path = str(tmp_path_factory.getbasetemp() / "fuzz_bytes.fcz")
    mutations.check_fcz(mutations.mutate_bytes(fcz_seed, d), path)


def test_the_run_reached_both_outcomes():
    """The mutations are not all trivially rejected (or all harmless): each format saw at
    least one model that loaded and one that was refused. (Runs after the two above.)"""
    if not OUTCOMES["onnx"] or not OUTCOMES["fcz"]:
        pytest.skip("run together with the mutation tests above")
    assert "loaded" in OUTCOMES["onnx"] and len(OUTCOMES["onnx"]) >= 2, OUTCOMES
    assert "loaded" in OUTCOMES["fcz"] and "ModelFormatError" in OUTCOMES["fcz"], OUTCOMES
