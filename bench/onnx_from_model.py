"""Export a fastconv Model to ONNX (opset 17), so that ONNX Runtime runs the very same
network with the very same weights as fastconv in the whole-network benchmark.

    from onnx_from_model import model_to_onnx
    proto = model_to_onnx(fc.models.vgg16())          # onnx.ModelProto
    sess = onnxruntime.InferenceSession(proto.SerializeToString())

Tensor names are the model's: graph inputs keep their names, every node's output is named
after the node, and the weights are initializers named as in `model.named_params()`
("features.0/weight"). The weights are the user-level, unfolded ones: a BatchNorm2d is
exported as BatchNormalization and ONNX Runtime folds it itself, as fastconv does when it
compiles. The batch axis is dynamic (`dim_param` "N").

Layers: Conv2d/Conv1d -> Conv, BatchNorm2d -> BatchNormalization, ReLU -> Relu,
LeakyReLU -> LeakyRelu, MaxPool2d/1d -> MaxPool, AvgPool2d/1d -> AveragePool,
GlobalAvgPool2d/GlobalMaxPool2d -> GlobalAveragePool/GlobalMaxPool, Flatten -> Flatten
(axis 1), Linear -> Gemm (transB=1), Softmax -> Softmax (opset-13 single-axis semantics,
which is what fc.softmax computes), LRN -> LRN, Add -> Add/Sum, Concat -> Concat,
Reshape -> Reshape (batch copied with 0), Identity -> Identity; Dropout is skipped (its
readers read its input; an Identity only when it is a model output). Anything else
raises fastconv.UnsupportedOperatorError naming the node.
"""
from __future__ import annotations

import math
from typing import Dict, List

import numpy as np

OPSET = 17
IR_VERSION = 8          # the IR version of opset 17 (ONNX 1.12): any ORT >= 1.12 reads it
BATCH_DIM = "N"


def _errors():
    import fastconv
    return fastconv.UnsupportedOperatorError, fastconv.ShapeError


def _pool_out(size, k, s, pb, pe, d, ceil_mode):
    """ONNX's pooled size (before opset 19's rule that drops a last ceil window starting
    in the end padding, which torch and fastconv apply)."""
    span = size + pb + pe - d * (k - 1) - 1
    return (-(-span // s) if ceil_mode else span // s) + 1


def model_to_onnx(model, producer_name: str = "fastconv-bench", check: bool = True):
    """An onnx.ModelProto computing what `model` computes (see the module docstring).
    check: run onnx.checker on the result (it serialises the model once)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    Unsupported, ShapeError = _errors()
    params = model.named_params()
    inits: List = []
    nodes: List = []
    alias: Dict[str, str] = {}          # skipped tensor -> the tensor it equals
    outputs = set(model.output_names)

    def src(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    def init(key: str, arr) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32),
                                             key))
        return key

    for n in model.nodes:
        layer, kind = n.layer, n.layer.kind
        ins = [src(i) for i in n.inputs]
        in_shape = model.shapes[n.inputs[0]]
        out = n.name
        p = {k.split("/", 1)[1]: v for k, v in params.items() if k.startswith(n.name + "/")}

        def node(op, inputs, **attrs):
            nodes.append(helper.make_node(op, inputs, [out], name=n.name, **attrs))

        if kind in ("Conv2d", "Conv1d"):
            pads = layer._pads(in_shape[1:])      # (begins..., ends...) as ONNX wants
            inputs = ins + [init(f"{n.name}/weight", p["weight"])]
            if "bias" in p:
                inputs.append(init(f"{n.name}/bias", p["bias"]))
            node("Conv", inputs, kernel_shape=list(layer.kernel_size),
                 strides=list(layer.stride), dilations=list(layer.dilation),
                 pads=[int(v) for v in pads], group=int(layer.groups))
        elif kind == "BatchNorm2d":
            node("BatchNormalization",
                 ins + [init(f"{n.name}/{k}", p[k])
                        for k in ("weight", "bias", "running_mean", "running_var")],
                 epsilon=float(layer.eps))
        elif kind == "ReLU":
            node("Relu", ins)
        elif kind == "LeakyReLU":
            node("LeakyRelu", ins, alpha=float(layer.negative_slope))
        elif kind in ("MaxPool2d", "AvgPool2d", "MaxPool1d", "AvgPool1d"):
            nsp = len(layer.kernel_size)
            pads = [int(v) for v in layer._pads(in_shape[1:])]
            want = model.shapes[n.name][1:]
            got = tuple(_pool_out(in_shape[1 + i], layer.kernel_size[i], layer.stride[i],
                                  pads[i], pads[nsp + i], layer.dilation[i],
                                  layer.ceil_mode) for i in range(nsp))
            if got != tuple(want):
                raise Unsupported(
                    f"{n.name}: {kind} with ceil_mode gives {tuple(want)} in fastconv but "
                    f"{got} under ONNX opset {OPSET}'s rule (input {in_shape}); not exported")
            attrs = dict(kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                         pads=pads, ceil_mode=int(layer.ceil_mode))
            if kind.startswith("Max"):
                if any(d != 1 for d in layer.dilation):
                    attrs["dilations"] = list(layer.dilation)
                node("MaxPool", ins, **attrs)
            else:
                node("AveragePool", ins, count_include_pad=int(layer.count_include_pad),
                     **attrs)
        elif kind == "GlobalAvgPool2d":
            node("GlobalAveragePool", ins)
        elif kind == "GlobalMaxPool2d":
            node("GlobalMaxPool", ins)
        elif kind == "Flatten":
            node("Flatten", ins, axis=1)
        elif kind == "Linear":
            inputs = ins + [init(f"{n.name}/weight", p["weight"])]
            if "bias" in p:
                inputs.append(init(f"{n.name}/bias", p["bias"]))
            node("Gemm", inputs, transB=1)
        elif kind == "Softmax":
            node("Softmax", ins, axis=int(layer.axis))
        elif kind == "LRN":
            node("LRN", ins, size=int(layer.size), alpha=float(layer.alpha),
                 beta=float(layer.beta), bias=float(layer.k))
        elif kind == "Add":
            node("Add" if len(ins) == 2 else "Sum", ins)
        elif kind == "Concat":
            node("Concat", ins, axis=int(layer.axis))
        elif kind == "Reshape":
            shape = np.array((0,) + tuple(layer.shape), dtype=np.int64)   # 0: keep batch
            key = f"{n.name}/shape"
            inits.append(numpy_helper.from_array(shape, key))
            node("Reshape", ins + [key])
        elif kind in ("Dropout", "Identity"):
            if kind == "Dropout" and out not in outputs:
                alias[out] = ins[0]
            else:
                node("Identity", ins)
        else:
            raise Unsupported(f"{n.name}: no ONNX export for a {kind} layer "
                              f"(bench/onnx_from_model.py)")

    def vi(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                             [BATCH_DIM] + [int(s) for s in shape])

    graph_inputs = [vi(k, s) for k, s in model.input_shapes.items()]
    graph_outputs = []
    for o in model.output_names:
        if src(o) != o:        # cannot happen (outputs are never aliased), kept honest
            raise ShapeError(f"{o}: an output was skipped by the exporter")
        graph_outputs.append(vi(o, model.shapes[o]))
    graph = helper.make_graph(nodes, model.name, graph_inputs, graph_outputs,
                              initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name=producer_name)
    proto.ir_version = IR_VERSION
    # the full checker serialises the model; skip that above protobuf's 2 GB limit
    if check and sum(math.prod(t.dims) * 4 for t in inits) < 2**31 - 2**26:
        onnx.checker.check_model(proto)
    return proto


def max_rel_diff(out, ref) -> float:
    """max |out - ref| / max |ref| in float64 (inf on a shape mismatch): the error
    relative to the output's scale."""
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    if out.shape != ref.shape:
        return float("inf")
    if not ref.size:
        return 0.0
    scale = float(np.max(np.abs(ref)))
    return float(np.max(np.abs(out - ref))) / (scale if scale > 0 else 1.0)
