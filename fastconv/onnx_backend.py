"""An `onnx.backend.base.Backend` around fastconv, so that ONNX's own backend tests (and
any tool written against that interface) can run models on fastconv.

    from fastconv.onnx_backend import FastconvBackend
    rep = FastconvBackend.prepare(model_proto)      # onnx.ModelProto
    outputs = rep.run([x, w])                        # graph inputs in order

What the adapter adds to fastconv.load_onnx:
* integer graph inputs (Reshape's shape, Unsqueeze's axes, ...) are bound as constants
  when their values arrive, and the model is built then (once per distinct value);
* parameter inputs (weights fed as graph inputs) are broadcast along the batch, as the
  fastconv model takes every input with the batch axis in front; outputs computed from
  parameters only lose that axis again;
* outputs that are constants (a graph of Constant / ConstantOfShape nodes) come from
  the values folded at load.
Inputs the fastconv model ignores (Dropout's ratio at inference) are accepted and unused.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

import onnx
from onnx import helper, numpy_helper
from onnx.backend.base import Backend, BackendRep

from fastconv.onnx_import import _FLOAT_TYPES, _import

__all__ = ["FastconvBackend", "FastconvRep", "prepare", "run_model", "run_node",
           "supports_device"]


def _runtime_inputs(proto) -> List[Any]:
    inits = {t.name for t in proto.graph.initializer}
    inits |= {t.values.name for t in proto.graph.sparse_initializer}
    return [i for i in proto.graph.input if i.name not in inits]


def _elem_type(vi) -> Optional[int]:
    if vi.type.HasField("tensor_type"):
        return int(vi.type.tensor_type.elem_type)
    return None


class FastconvRep(BackendRep):
    """A prepared model: run(inputs) with the graph inputs in order (or a dict)."""

    def __init__(self, proto, device: str = "CPU", **kwargs):
        self.proto = proto
        self.device = device
        self.inputs = _runtime_inputs(proto)
        self.input_names = [i.name for i in self.inputs]
        # integer inputs become constants once their values are known
        self.bound = [i.name for i in self.inputs
                      if _elem_type(i) is not None and _elem_type(i) not in _FLOAT_TYPES]
        # outputs come back in the float type the graph declares (computed in float32)
        self.out_dtypes = {}
        for o in proto.graph.output:
            t = _elem_type(o)
            if t in _FLOAT_TYPES:
                self.out_dtypes[o.name] = np.dtype(_FLOAT_TYPES[t])
        self._cache: Dict[Tuple, Any] = {}
        if not self.bound:
            self._cache[()] = _import(proto, need_model=False, where="onnx_backend")

    def _result(self, feeds: Dict[str, np.ndarray]):
        key = tuple((n, np.asarray(feeds[n]).dtype.str, np.asarray(feeds[n]).shape,
                     np.asarray(feeds[n]).tobytes()) for n in self.bound if n in feeds)
        res = self._cache.get(key)
        if res is None:
            p = onnx.ModelProto()
            p.CopyFrom(self.proto)
            for n in self.bound:
                if n in feeds:
                    p.graph.initializer.append(numpy_helper.from_array(np.asarray(feeds[n]), n))
            res = _import(p, need_model=False, where="onnx_backend")
            self._cache[key] = res
        return res

    def run(self, inputs, **kwargs) -> Tuple[np.ndarray, ...]:
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            inputs = list(inputs)
            if len(inputs) > len(self.input_names):
                raise ValueError(f"onnx_backend: {len(inputs)} inputs given, the model takes "
                                 f"{len(self.input_names)} ({self.input_names})")
            feeds = dict(zip(self.input_names, inputs))
        res = self._result(feeds)
        outs: Dict[str, np.ndarray] = {}
        if res.model is not None:
            model = res.model
            roles = res.input_roles
            batch = None
            for name in model.input_names:
                if roles[name] == "data":
                    batch = np.asarray(feeds[name]).shape[0]
                    break
            if batch is None:
                batch = 1
            mfeeds = {}
            for name in model.input_names:
                v = np.asarray(feeds[name])
                role = roles[name]
                if role == "data":
                    mfeeds[name] = v
                elif role == "bcast":
                    mfeeds[name] = np.broadcast_to(v, (batch,) + v.shape[1:])
                elif role == "scalar":
                    mfeeds[name] = np.broadcast_to(v.reshape(1), (batch, 1))
                else:
                    mfeeds[name] = np.broadcast_to(v, (batch,) + v.shape)
            got = model.run(mfeeds)
            for name, arr in got.items():
                arr = arr[0] if name in res.unbatched_outputs else arr
                dt = self.out_dtypes.get(name)
                outs[name] = arr.astype(dt) if dt is not None and dt != arr.dtype else arr
        outs.update(res.const_outputs)
        return tuple(outs[n] for n in res.output_names)


class FastconvBackend(Backend):
    """onnx.backend.base.Backend for fastconv (CPU only)."""

    @classmethod
    def is_compatible(cls, model, device: str = "CPU", **kwargs) -> bool:
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model, device: str = "CPU", **kwargs) -> FastconvRep:
        if isinstance(model, (bytes, bytearray)):
            model = onnx.load_model_from_string(bytes(model))
        super().prepare(model, device, **kwargs)   # onnx.checker
        return FastconvRep(model, device, **kwargs)

    @classmethod
    def run_model(cls, model, inputs, device: str = "CPU", **kwargs):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node, inputs, device: str = "CPU", outputs_info=None, **kwargs):
        """One node on `inputs` (arrays in the node's input order)."""
        inputs = [np.asarray(a) for a in inputs]
        names = [n for n in node.input if n]
        vis = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype),
                                             list(a.shape)) for n, a in zip(names, inputs)]
        outs = [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None)
                for n in node.output if n]
        opset = kwargs.pop("opset_version", None) or onnx.defs.onnx_opset_version()
        graph = helper.make_graph([node], "run_node", vis, outs)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        return FastconvRep(model, device).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return str(device).upper().startswith("CPU")


prepare = FastconvBackend.prepare
run_model = FastconvBackend.run_model
run_node = FastconvBackend.run_node
supports_device = FastconvBackend.supports_device
