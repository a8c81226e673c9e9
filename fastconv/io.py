"""The native model file (`.fcz`): `save_model(model, path)` and `load_model(path)`.

Layout (all integers little-endian; version 1)::

    offset 0   fixed header, 40 bytes: struct "<4sIIIQQQ"
                 magic         b"FCZ1"
                 version       uint32, 1
                 header_size   uint32, 40 (the size of this fixed header)
                 json_crc32    uint32, zlib.crc32 of the JSON bytes
                 json_length   uint64, bytes of UTF-8 JSON that follow the fixed header
                 data_offset   uint64, where the tensor data starts: the first multiple of
                               64 at or after 40 + json_length
                 file_size     uint64, the size of the whole file
    offset 40  UTF-8 JSON: {"format": "fastconv", "version": 1,
                            "model": model.to_config(),
                            "tensors": [{"name", "dtype": "float32", "shape",
                                         "offset", "nbytes", "crc32"}, ...]}
               "offset" counts from data_offset (so the JSON does not depend on its own
               length); every tensor starts on a 64-byte boundary of the file, in table
               order, right after the previous one (the gaps are zero bytes).
    data_offset  the raw little-endian float32 tensors, C order.

The layout is canonical: a reader can recompute every offset from the table, so any
header field, offset or padding byte that differs from what the writer would have
written is reported, and every tensor and the JSON carry a CRC32. Loading memory-maps
the file read-only and hands the tensors (read-only views of the map) to
`Model.from_config`, which copies or packs them.

Every way a file can be bad raises `fastconv.ModelFormatError` naming the path and
what is wrong. A missing path raises `FileNotFoundError`, as `open` does. Writes go to a
temporary file in the same directory and are moved into place with `os.replace`, so a
failed or interrupted save never leaves a partial file behind (and a model whose
weights are mapped from the old file keeps working: the old file's data stays mapped).
A file changed by another process while it is mapped is outside this contract.
"""
from __future__ import annotations

import json
import math
import mmap
import os
import stat
import struct
import zlib
from typing import Dict, List, Tuple

import numpy as np

from fastconv.errors import ModelFormatError

__all__ = ["save_model", "load_model", "read_model_file", "MAGIC", "FORMAT_VERSION",
           "KNOWN_VERSIONS"]

MAGIC = b"FCZ1"
FORMAT_VERSION = 1
KNOWN_VERSIONS = (1,)
ALIGN = 64
_FIXED = struct.Struct("<4sIIIQQQ")
HEADER_SIZE = _FIXED.size          # 40
_DTYPE = np.dtype("<f4")
# No real model comes near this; it keeps a corrupt length from driving a huge read.
_MAX_JSON = 1 << 30


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _json_default(o):
    """Config values NumPy hands out (np.int64, np.float32, arrays) as plain JSON."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"model config holds a {type(o).__name__} ({o!r}), which JSON cannot store")


# ------------------------------------------------------------------------------ save

def save_model(model, path) -> None:
    """Write `model` (its `to_config()` and `named_params()`) to `path` atomically."""
    path = os.fspath(path)
    config = model.to_config()
    params = model.named_params()
    tensors: List[Tuple[str, np.ndarray]] = []
    table = []
    offset = 0
    for name, value in params.items():
        if not isinstance(name, str):
            raise TypeError(f"save_model: parameter name {name!r} is not a str")
        arr = np.asarray(value)
        if arr.dtype.kind != "f":
            raise TypeError(f"save_model: parameter {name!r} has dtype {arr.dtype}, "
                            f"expected float32")
        arr = np.ascontiguousarray(arr, dtype=_DTYPE)
        offset = _align(offset)
        table.append({"name": name, "dtype": "float32", "shape": list(arr.shape),
                      "offset": offset, "nbytes": arr.nbytes,
                      "crc32": zlib.crc32(arr.data) if arr.nbytes else 0})
        tensors.append((name, arr))
        offset += arr.nbytes
    doc = {"format": "fastconv", "version": FORMAT_VERSION, "model": config,
           "tensors": table}
    blob = json.dumps(doc, default=_json_default, separators=(",", ":")).encode("utf-8")
    data_offset = _align(HEADER_SIZE + len(blob))
    file_size = data_offset + offset
    header = _FIXED.pack(MAGIC, FORMAT_VERSION, HEADER_SIZE, zlib.crc32(blob), len(blob),
                         data_offset, file_size)

    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}."
                                  f"{os.urandom(4).hex()}.tmp")
    # os.open with 0o666 (not mkstemp's 0o600) so the saved file gets the usual
    # umask-derived permissions once it is renamed into place.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            f.write(blob)
            pos = HEADER_SIZE + len(blob)
            f.write(b"\0" * (data_offset - pos))
            for entry, (_, arr) in zip(table, tensors):
                start = data_offset + entry["offset"]
                f.write(b"\0" * (start - f.tell()))
                if arr.nbytes:
                    f.write(arr.data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ------------------------------------------------------------------------------ load

def _fail(path: str, msg: str) -> ModelFormatError:
    return ModelFormatError(f"{path}: {msg}")


def _open_map(path: str):
    """(mmap or None for an empty file, size); ModelFormatError for non-files."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(path, "is a directory, not a fastconv model file")
    if not stat.S_ISREG(st.st_mode):
        # FIFOs and devices: opening one could block or read forever
        raise _fail(path, "is not a regular file")
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise _fail(path, "empty file (0 bytes), not a fastconv model file")
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), size


def _check_table_entry(path: str, i: int, e, seen: set) -> Tuple[str, tuple, int, int, int]:
    where = f"tensor table entry {i}"
    if not isinstance(e, dict):
        raise _fail(path, f"{where} is a {type(e).__name__}, expected an object")
    missing = [k for k in ("name", "dtype", "shape", "offset", "nbytes", "crc32") if k not in e]
    if missing:
        raise _fail(path, f"{where} lacks {', '.join(missing)}")
    name = e["name"]
    if not isinstance(name, str):
        raise _fail(path, f"{where}: name {name!r} is not a string")
    where = f"tensor {name!r}"
    if name in seen:
        raise _fail(path, f"{where} appears twice in the tensor table")
    seen.add(name)
    if e["dtype"] != "float32":
        raise _fail(path, f"{where}: dtype {e['dtype']!r}, only 'float32' is supported")
    shape = e["shape"]
    if (not isinstance(shape, list)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                       for d in shape)):
        raise _fail(path, f"{where}: shape {shape!r} is not a list of non-negative ints")
    for k in ("offset", "nbytes", "crc32"):
        v = e[k]
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise _fail(path, f"{where}: {k} {v!r} is not a non-negative int")
    if e["crc32"] > 0xFFFFFFFF:
        raise _fail(path, f"{where}: crc32 {e['crc32']} does not fit 32 bits")
    expect = math.prod(shape) * _DTYPE.itemsize
    if e["nbytes"] != expect:
        raise _fail(path, f"{where}: nbytes {e['nbytes']} does not match shape "
                          f"{tuple(shape)} (float32: {expect} bytes)")
    return name, tuple(shape), e["offset"], e["nbytes"], e["crc32"]


def read_model_file(path) -> Tuple[dict, Dict[str, np.ndarray]]:
    """Check `path` and return (model config, {name: read-only float32 array mapped
    from the file}) without building the model."""
    path = os.fspath(path)
    mm, size = _open_map(path)
    buf = memoryview(mm)

    # -- fixed header
    head = bytes(buf[:HEADER_SIZE])
    if head[:len(MAGIC)] != MAGIC[:len(head)]:
        hint = " (an ONNX file? load it with fastconv.load_onnx)" \
            if path.lower().endswith(".onnx") else ""
        raise _fail(path, f"not a fastconv model file: starts with {head[:4]!r}, "
                          f"expected the magic {MAGIC!r}{hint}")
    if size < HEADER_SIZE:
        raise _fail(path, f"truncated: the fixed header needs {HEADER_SIZE} bytes, "
                          f"the file has {size}")
    _, version, header_size, json_crc, json_len, data_offset, file_size = _FIXED.unpack(head)
    if version not in KNOWN_VERSIONS:
        raise _fail(path, f"unknown format version {version}; this fastconv reads version"
                          f"{'s' if len(KNOWN_VERSIONS) > 1 else ''} "
                          f"{', '.join(map(str, KNOWN_VERSIONS))}")
    if header_size != HEADER_SIZE:
        raise _fail(path, f"header size field is {header_size}, version {version} "
                          f"headers are {HEADER_SIZE} bytes")
    if file_size != size:
        if size < file_size:
            raise _fail(path, f"truncated: the header says the file is {file_size} bytes, "
                              f"found {size}")
        raise _fail(path, f"the header says the file is {file_size} bytes, found {size} "
                          f"({size - file_size} unexpected bytes at the end)")
    if json_len > _MAX_JSON or HEADER_SIZE + json_len > size:
        raise _fail(path, f"truncated or corrupt: the header says {json_len} bytes of JSON "
                          f"follow at offset {HEADER_SIZE}, the file has "
                          f"{size - HEADER_SIZE} bytes after the header")
    if data_offset != _align(HEADER_SIZE + json_len):
        raise _fail(path, f"data offset field is {data_offset}, expected "
                          f"{_align(HEADER_SIZE + json_len)} (the 64-byte boundary after "
                          f"{json_len} bytes of JSON)")
    if data_offset > size:
        raise _fail(path, f"truncated: tensor data should start at byte {data_offset}, "
                          f"the file has {size} bytes")

    # -- JSON
    blob = bytes(buf[HEADER_SIZE:HEADER_SIZE + json_len])
    if zlib.crc32(blob) != json_crc:
        raise _fail(path, f"the JSON header is corrupt: CRC32 {zlib.crc32(blob):#010x}, "
                          f"stored {json_crc:#010x}")
    try:
        doc = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _fail(path, f"the JSON header does not parse: {e}") from None
    if not isinstance(doc, dict):
        raise _fail(path, f"the JSON header is a {type(doc).__name__}, expected an object")
    if doc.get("format") != "fastconv":
        raise _fail(path, f"the JSON header's format is {doc.get('format')!r}, "
                          f"expected 'fastconv'")
    if doc.get("version") != version:
        raise _fail(path, f"the JSON header says version {doc.get('version')!r}, the fixed "
                          f"header {version}")
    config = doc.get("model")
    if not isinstance(config, dict):
        raise _fail(path, "the JSON header has no 'model' object")
    table = doc.get("tensors")
    if not isinstance(table, list):
        raise _fail(path, "the JSON header has no 'tensors' list")
    if any(buf[HEADER_SIZE + json_len:data_offset]):
        raise _fail(path, "corrupt: non-zero bytes in the padding after the JSON header")

    # -- tensor table: canonical layout, sizes, checksums
    params: Dict[str, np.ndarray] = {}
    seen: set = set()
    end = 0                     # relative to data_offset
    data_len = size - data_offset
    for i, e in enumerate(table):
        name, shape, off, nbytes, crc = _check_table_entry(path, i, e, seen)
        if off != _align(end):
            raise _fail(path, f"tensor {name!r}: offset {off}, expected {_align(end)} "
                              f"(the 64-byte boundary after the previous tensor)")
        if off + nbytes > data_len:
            raise _fail(path, f"truncated: tensor {name!r} needs bytes {data_offset + off}.."
                              f"{data_offset + off + nbytes} of the file, the file has "
                              f"{size} bytes")
        if any(buf[data_offset + end:data_offset + off]):
            raise _fail(path, f"corrupt: non-zero padding bytes before tensor {name!r}")
        start = data_offset + off
        got = zlib.crc32(buf[start:start + nbytes]) if nbytes else 0
        if got != crc:
            raise _fail(path, f"checksum mismatch in tensor {name!r} {shape}: CRC32 "
                              f"{got:#010x}, stored {crc:#010x} (the weights are corrupt)")
        arr = np.frombuffer(mm, dtype=_DTYPE, count=nbytes // 4, offset=start) \
            if nbytes else np.zeros(0, _DTYPE)
        params[name] = arr.reshape(shape)       # a read-only view of the map
        end = off + nbytes
    if end != data_len:
        raise _fail(path, f"the tensor table covers {end} bytes of data, the file holds "
                          f"{data_len} ({data_len - end} unexpected bytes at the end)")
    return config, params


def _check_layer_types(path: str, config: dict) -> None:
    from fastconv.layers import LAYER_TYPES

    nodes = config.get("nodes")
    if not isinstance(nodes, list):
        raise _fail(path, "the model config has no 'nodes' list")
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            raise _fail(path, f"node {i} of the model config is a {type(node).__name__}, "
                              f"expected an object")
        kind = node.get("type")
        if not isinstance(kind, str) or kind not in LAYER_TYPES:
            raise _fail(path, f"node {node.get('name', i)!r}: unknown layer type {kind!r} "
                              f"(known: {', '.join(sorted(LAYER_TYPES))})")


def load_model(path):
    """Read a `.fcz` file written by `save_model` and return the compiled `Model`."""
    from fastconv.graph import Model

    path = os.fspath(path)
    config, params = read_model_file(path)
    _check_layer_types(path, config)
    try:
        model = Model.from_config(config, params)
    except MemoryError:
        raise
    except ModelFormatError as e:
        raise _fail(path, str(e)) from e
    except Exception as e:   # the config or weights do not make a model: a format error
        raise _fail(path, f"the stored graph does not build: {type(e).__name__}: {e}") from e
    # Layers fall back to random init when a weight is missing, so check that the
    # model uses exactly the stored tensors, with the stored shapes.
    built = model.named_params()
    missing = [n for n in built if n not in params]
    extra = [n for n in params if n not in built]
    if missing:
        raise _fail(path, f"the tensor table lacks {', '.join(map(repr, missing))}, "
                          f"which the layers need")
    if extra:
        raise _fail(path, f"the tensor table holds {', '.join(map(repr, extra))}, which no "
                          f"layer uses")
    for n, arr in built.items():
        if tuple(np.shape(arr)) != params[n].shape:
            raise _fail(path, f"tensor {n!r} has shape {params[n].shape} in the file, the "
                              f"layer needs {tuple(np.shape(arr))}")
    return model
