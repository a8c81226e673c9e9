"""The benchmark's layer shapes: the package data files ``fastconv/data/shapes/*.csv``
(the one copy, read by ``fastconv bench`` and by the pytest-benchmark suite in bench/),
their parsing and checks, and the seeded inputs every implementation is timed on.

The files are found with importlib.resources, so an installed fastconv (a wheel, a zip)
finds them as well as an in-place build does; a missing file is an error naming the
file, never a silently empty suite.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from importlib import resources
from typing import List, Optional, Tuple

import numpy as np

CONV_HEADER = ["name", "batch", "in_channels", "height", "width", "out_channels",
               "kernel_h", "kernel_w", "stride", "padding", "dilation", "groups"]
POOL_HEADER = ["name", "op", "batch", "channels", "height", "width", "kernel", "stride",
               "padding"]
CONV_FILE, POOL_FILE = "conv2d.csv", "pool2d.csv"


class ShapesFileError(FileNotFoundError):
    """A shapes file is missing from the installed package."""


def shapes_dir():
    """The folder of the shape lists inside the installed package (a Traversable)."""
    return resources.files("fastconv").joinpath("data", "shapes")


def shapes_file(name: str):
    """The Traversable of one shapes file; ShapesFileError when it is not there."""
    f = shapes_dir().joinpath(name)
    if not f.is_file():
        raise ShapesFileError(
            f"fastconv's benchmark shapes file {f} is missing: the package was installed "
            f"without its data files (fastconv/data/shapes/*.csv, listed in pyproject.toml's "
            f"package-data); reinstall fastconv")
    return f


def _out(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@dataclass(frozen=True)
class ConvShape:
    name: str
    batch: int
    in_channels: int
    height: int
    width: int
    out_channels: int
    kernel_h: int
    kernel_w: int
    stride: int
    padding: int      # symmetric, both axes
    dilation: int
    groups: int

    @property
    def out_h(self) -> int:
        return _out(self.height, self.kernel_h, self.stride, self.padding, self.dilation)

    @property
    def out_w(self) -> int:
        return _out(self.width, self.kernel_w, self.stride, self.padding, self.dilation)

    @property
    def out_hw(self) -> Tuple[int, int]:
        return self.out_h, self.out_w

    @property
    def input_shape(self):
        return (self.batch, self.in_channels, self.height, self.width)

    @property
    def weight_shape(self):
        return (self.out_channels, self.in_channels // self.groups, self.kernel_h,
                self.kernel_w)

    @property
    def output_shape(self):
        return (self.batch, self.out_channels, self.out_h, self.out_w)

    @property
    def flops(self) -> int:
        """2 * N * Co * Ho * Wo * (Ci/groups) * kh * kw (a multiply-add is 2 FLOPs)."""
        return (2 * math.prod(self.output_shape) * (self.in_channels // self.groups)
                * self.kernel_h * self.kernel_w)

    @property
    def bytes(self) -> int:
        """Least traffic: input, weights, bias and output moved once (float32)."""
        return 4 * (math.prod(self.input_shape) + math.prod(self.weight_shape)
                    + self.out_channels + math.prod(self.output_shape))

    def kwargs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)

    def describe(self) -> str:
        extra = "".join([f" s{self.stride}" if self.stride > 1 else "",
                         f" d{self.dilation}" if self.dilation > 1 else "",
                         f" g{self.groups}" if self.groups > 1 else ""])
        return (f"{self.kernel_h}x{self.kernel_w}{extra} {self.in_channels}->"
                f"{self.out_channels} @{self.height}x{self.width}"
                + (f" b{self.batch}" if self.batch > 1 else ""))


@dataclass(frozen=True)
class PoolShape:
    name: str
    op: str           # "max" or "avg" (avg: count_include_pad=False, ONNX's default)
    batch: int
    channels: int
    height: int
    width: int
    kernel: int
    stride: int
    padding: int

    @property
    def input_shape(self):
        return (self.batch, self.channels, self.height, self.width)

    @property
    def output_shape(self):
        return (self.batch, self.channels,
                _out(self.height, self.kernel, self.stride, self.padding),
                _out(self.width, self.kernel, self.stride, self.padding))

    @property
    def bytes(self) -> int:
        """float32 input read once plus output written once: the floor on traffic."""
        return 4 * (math.prod(self.input_shape) + math.prod(self.output_shape))

    @property
    def ops(self) -> int:
        """Window taps (compares or adds): the pool's 'work' for the roofline."""
        return math.prod(self.output_shape) * self.kernel * self.kernel

    def describe(self) -> str:
        return (f"{self.op} {self.kernel}x{self.kernel}/s{self.stride}"
                + (f"/p{self.padding}" if self.padding else "")
                + f" on {self.channels}x{self.height}x{self.width}"
                + (f" b{self.batch}" if self.batch > 1 else ""))


@dataclass(frozen=True)
class GemmShape:
    name: str
    m: int
    k: int
    n: int

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n


def _read_rows(f, header: list) -> List[dict]:
    """Rows of a shapes CSV (a path or a Traversable) as dicts; '#' lines are comments."""
    text = f.read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    got = next(reader, None)
    if got != header:
        raise ValueError(f"{f}: header {got} != {header}")
    rows = [dict(zip(header, r)) for r in reader if r and not r[0].startswith("#")]
    for r in rows:
        if None in r.values() or len(r) != len(header):
            raise ValueError(f"{f}: row {r} does not have {len(header)} fields")
    names = [r["name"] for r in rows]
    if len(set(names)) != len(names):
        raise ValueError(f"{f}: duplicate names")
    return rows


def _ints(f, r: dict, keys) -> List[int]:
    try:
        return [int(r[k]) for k in keys]
    except ValueError:
        raise ValueError(f"{f}: non-integer field in {r}") from None


def load_conv_shapes(f=None) -> List[ConvShape]:
    """The conv layers of the suite (default: the package's conv2d.csv)."""
    f = shapes_file(CONV_FILE) if f is None else f
    out = []
    for r in _read_rows(f, CONV_HEADER):
        s = ConvShape(r["name"], *_ints(f, r, CONV_HEADER[1:]))
        if min(getattr(s, k) for k in CONV_HEADER[1:]) < 0 or s.groups < 1 or \
                s.in_channels % s.groups or s.out_channels % s.groups or \
                min(s.batch, s.stride, s.dilation) < 1 or s.out_h < 1 or s.out_w < 1:
            raise ValueError(f"{f}: bad row {r}")
        out.append(s)
    return out


def load_pool_shapes(f=None) -> List[PoolShape]:
    """The pools of the suite (default: the package's pool2d.csv)."""
    f = shapes_file(POOL_FILE) if f is None else f
    out = []
    for r in _read_rows(f, POOL_HEADER):
        if r["op"] not in ("max", "avg"):
            raise ValueError(f"{f}: op must be max or avg in {r}")
        s = PoolShape(r["name"], r["op"], *_ints(f, r, POOL_HEADER[2:]))
        if min(s.batch, s.channels, s.kernel, s.stride) < 1 or s.padding < 0 or \
                min(s.output_shape[2:]) < 1:
            raise ValueError(f"{f}: bad row {r}")
        out.append(s)
    return out


def load_shapes(folder=None):
    """(conv shapes, pool shapes): the package's files, or those in `folder`."""
    if folder is None:
        return load_conv_shapes(), load_pool_shapes()
    from pathlib import Path
    folder = Path(folder)
    for name in (CONV_FILE, POOL_FILE):
        if not (folder / name).is_file():
            raise ShapesFileError(f"{folder / name}: no such shapes file")
    return load_conv_shapes(folder / CONV_FILE), load_pool_shapes(folder / POOL_FILE)


def gemm_shapes(conv: Optional[List[ConvShape]] = None) -> List[GemmShape]:
    """The im2col GEMMs of the VGG-16 layers: M = Co, K = Ci*kh*kw, N = Ho*Wo."""
    conv = load_conv_shapes() if conv is None else conv
    return [GemmShape(s.name, s.out_channels, s.in_channels * s.kernel_h * s.kernel_w,
                      s.out_h * s.out_w)
            for s in conv if s.name.startswith("vgg16_")]


# ---------------------------------------------------------------- inputs (seeded)
def make_conv_inputs(s: ConvShape, seed: int = 0):
    """x, w (scaled by 1/sqrt(fan-in) so outputs stay O(1)), b: float32."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(s.input_shape, dtype=np.float32)
    fan_in = (s.in_channels // s.groups) * s.kernel_h * s.kernel_w
    w = (rng.standard_normal(s.weight_shape, dtype=np.float32)
         * np.float32(1.0 / math.sqrt(fan_in)))
    b = rng.standard_normal(s.out_channels, dtype=np.float32)
    return x, w, b


def make_pool_input(s: PoolShape, seed: int = 0):
    return np.random.default_rng(seed).standard_normal(s.input_shape, dtype=np.float32)


def make_gemm_inputs(s: GemmShape, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((s.m, s.k), dtype=np.float32),
            rng.standard_normal((s.k, s.n), dtype=np.float32))
