"""Models: a DAG of layers whose shapes are checked when it is built, compiled once and run
many times.

Building a `Model` infers every tensor's per-sample shape (the batch may vary at run
time) and raises `ShapeError` naming the layer when something does not fit. Compiling
turns the layer graph into a short list of steps (fastconv.plan): BatchNorm folded into
the conv before it, ReLU fused into the conv or linear epilogue, weights packed once, and
one activation arena whose regions are reused once their tensors are dead.
"""
from __future__ import annotations

import math
import statistics
import sys
import threading
import time
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from fastconv import functional as F
from fastconv.errors import ModelFormatError, ShapeError
from fastconv.layers import LAYER_TYPES, Layer, ReceptiveField, params_required
from fastconv.plan import ConvStep, ExecutionPlan
from fastconv.summary import Summary, build_summary

Shape = Tuple[int, ...]

CONFIG_FORMAT = 1          # version of the dict that to_config() writes


class Node(NamedTuple):
    """One layer of a model and the names of the tensors it reads."""
    name: str
    layer: Layer
    inputs: Tuple[str, ...]


def _as_node(item, index: int) -> Node:
    if isinstance(item, Node):
        node = item
    elif isinstance(item, (tuple, list)) and len(item) == 3:
        name, layer, inputs = item
        if isinstance(inputs, str):
            inputs = (inputs,)
        node = Node(name, layer, tuple(inputs))
    else:
        raise TypeError(f"Model: node #{index} must be a Node or a (name, layer, inputs) "
                        f"tuple, got {type(item).__name__}")
    if not isinstance(node.name, str) or not node.name:
        raise ValueError(f"Model: node #{index} needs a non-empty string name, got "
                         f"{node.name!r}")
    if not isinstance(node.layer, Layer):
        raise TypeError(f"Model: node {node.name!r}: layer must be a fastconv.layers.Layer, "
                        f"got {type(node.layer).__name__}")
    if not all(isinstance(i, str) for i in node.inputs):
        raise TypeError(f"Model: node {node.name!r}: inputs must be tensor names (str), got "
                        f"{node.inputs!r}")
    return node


def _topological(nodes: List[Node], input_names: Sequence[str]) -> List[Node]:
    """Nodes ordered so that each comes after the tensors it reads (stable: the given order
    wherever it already works). Unknown inputs and cycles raise ValueError."""
    producers = {n.name: n for n in nodes}
    known = set(input_names) | set(producers)
    for n in nodes:
        for i in n.inputs:
            if i not in known:
                raise ValueError(f"Model: node {n.name!r} reads {i!r}, which is neither a "
                                 f"model input ({list(input_names)}) nor a node")
    done, order, visiting = set(input_names), [], set()
    for root in nodes:
        if root.name in done:
            continue
        stack = [(root, 0)]
        while stack:
            node, k = stack.pop()
            if k == 0:
                visiting.add(node.name)
            if k < len(node.inputs):
                stack.append((node, k + 1))
                dep = node.inputs[k]
                if dep in done:
                    continue
                if dep in visiting:
                    raise ValueError(f"Model: the graph has a cycle through node {dep!r} "
                                     f"(read by {node.name!r})")
                stack.append((producers[dep], 0))
            else:
                visiting.discard(node.name)
                done.add(node.name)
                order.append(node)
    return order


class Model:
    """A network of layers: build it, look at it (`summary()`), run it (`model(x)`,
    `model.run({name: x})`), save it (`save`), pickle it.

    nodes: `Node`s or `(name, layer, inputs)` tuples (inputs: tensor names, a str for
    one); inputs: {name: per-sample shape}; outputs: names of the tensors to return.
    The model is compiled when built unless `compile=False`."""

    def __init__(self, nodes: Sequence, inputs: Dict[str, Shape], outputs: Sequence[str],
                 name: str = "model", compile: bool = True):
        if not isinstance(inputs, dict) or not inputs:
            raise ValueError("Model: inputs must be a non-empty dict {name: per-sample shape}")
        self.name = str(name)
        self.input_shapes: Dict[str, Shape] = {}
        for iname, shape in inputs.items():
            if not isinstance(iname, str) or not iname:
                raise ValueError(f"Model: input names must be non-empty strings, got {iname!r}")
            shape = tuple(F._int(s, f"input {iname!r} shape", "Model", 1) for s in shape)
            if not shape:
                raise ShapeError(f"Model: input {iname!r} needs a per-sample shape such as "
                                 f"(C, H, W), got ()")
            self.input_shapes[iname] = shape
        nodes = [_as_node(item, i) for i, item in enumerate(nodes)]
        seen = set(self.input_shapes)
        for n in nodes:
            if n.name in seen:
                raise ValueError(f"Model: the name {n.name!r} is used twice (node names and "
                                 f"input names must be unique)")
            seen.add(n.name)
        layers_seen = {}
        for n in nodes:
            other = layers_seen.setdefault(id(n.layer), n.name)
            if other != n.name:
                raise ValueError(f"Model: nodes {other!r} and {n.name!r} share one layer "
                                 f"object; give each node its own layer")
        self.nodes: List[Node] = _topological(nodes, list(self.input_shapes))
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        if not outputs:
            raise ValueError("Model: needs at least one output")
        for o in outputs:
            if o not in seen:
                raise ValueError(f"Model: output {o!r} is neither a node nor an input")
        if len(set(outputs)) != len(outputs):
            raise ValueError(f"Model: outputs {outputs} name a tensor twice")
        self.output_names: List[str] = outputs
        for n in self.nodes:
            if n.layer.name is None:
                n.layer.name = n.name
        self._infer_shapes()
        self._plan: Optional[ExecutionPlan] = None
        self._lock = threading.Lock()
        self._fuse_pool: Optional[bool] = None
        self._layout: Optional[str] = None
        if compile:
            self.compile()

    # ------------------------------------------------------------------ building

    @classmethod
    def sequential(cls, layers: Sequence[Layer], input_shape: Shape, input_name: str = "input",
                   name: str = "model", compile: bool = True) -> "Model":
        """A chain: each layer reads the one before it. Layers without a name get their
        kind and position (e.g. "conv2d_3")."""
        nodes, prev, used = [], input_name, {input_name}
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Model.sequential: item #{i} is a {type(layer).__name__}, "
                                f"not a fastconv layer")
            lname = layer.name or f"{layer.kind.lower()}_{i}"
            if lname in used:
                raise ValueError(f"Model.sequential: the name {lname!r} is used twice")
            used.add(lname)
            nodes.append(Node(lname, layer, (prev,)))
            prev = lname
        if not nodes:
            raise ValueError("Model.sequential: needs at least one layer")
        return cls(nodes, {input_name: tuple(input_shape)}, [prev], name=name, compile=compile)

    def _infer_shapes(self) -> None:
        shapes: Dict[str, Shape] = dict(self.input_shapes)
        fields = {k: ReceptiveField.for_input(s) for k, s in shapes.items()}
        for n in self.nodes:
            want = n.layer.num_inputs
            got = len(n.inputs)
            if (want == -1 and got < 2) or (want != -1 and got != want):
                need = "at least 2" if want == -1 else str(want)
                raise ShapeError(f"{n.name}: a {n.layer.kind} layer takes {need} input(s), "
                                 f"got {got} ({list(n.inputs)})")
            in_shapes = [shapes[i] for i in n.inputs]
            shapes[n.name] = tuple(int(s) for s in n.layer.output_shape(in_shapes))
            nbytes = 4 * math.prod(shapes[n.name])
            if nbytes > sys.maxsize:
                # (e.g. a pooling with 2**31 padding) no run could allocate it
                raise ShapeError(f"{n.name}: output shape {shapes[n.name]} needs {nbytes} "
                                 f"bytes per sample, more than the address space")
            fields[n.name] = n.layer.receptive_field([fields[i] for i in n.inputs], in_shapes)
        self.shapes: Dict[str, Shape] = shapes
        self.receptive_fields: Dict[str, ReceptiveField] = fields

    def compile(self) -> None:
        """(Re)build the execution plan: fold, fuse, choose algorithms, pack weights and
        plan the activation arena. Called when the model is built and after any change
        of weights or algorithms."""
        plan = ExecutionPlan(self, fuse_pool=getattr(self, "_fuse_pool", None),
                             layout=getattr(self, "_layout", None))
        with self._lock:
            self._plan = plan

    @property
    def fuse_pool(self) -> bool:
        """Whether a conv (+ BatchNorm, + ReLU) and the 2x2 stride-2 max pool that is its
        only reader run as one step (see plan.ConvStep); default: on unless the environment
        has FASTCONV_FUSE_POOL=0. Setting it recompiles. Not kept by save/pickle."""
        return self.plan.fuse_pool

    @fuse_pool.setter
    def fuse_pool(self, on: bool) -> None:
        self._fuse_pool = bool(on)
        self.compile()

    @property
    def layout(self) -> str:
        """How activations are stored between steps: "nchw" (the default, unless the
        environment has FASTCONV_LAYOUT=nchw8c) or "nchw8c", channel-blocked from the
        first conv to the flatten, every blockable conv then running the direct kernel
        that reads and writes that layout (plan.ExecutionPlan._block_activations).
        Outputs are NCHW either way. Setting it recompiles; an unknown name raises
        ValueError and leaves the model as it was. Not kept by save/pickle."""
        return self.plan.layout

    @layout.setter
    def layout(self, name: str) -> None:
        from fastconv.plan import LAYOUTS
        if name not in LAYOUTS:
            raise ValueError(f"{self.name}: layout must be one of {LAYOUTS}, got {name!r}")
        old, self._layout = self._layout, name
        try:
            self.compile()
        except Exception:
            self._layout = old
            self.compile()
            raise

    @property
    def plan(self) -> ExecutionPlan:
        if self._plan is None:
            self.compile()
        return self._plan

    # ------------------------------------------------------------------ names

    @property
    def input_names(self) -> List[str]:
        return list(self.input_shapes)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"model {self.name!r} has no node {name!r}")

    @property
    def layers(self) -> List[Layer]:
        return [n.layer for n in self.nodes]

    # ------------------------------------------------------------------ running

    def run(self, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run the model on {input name: [N, ...] array}; returns {output name: array}.
        Any batch size N >= 0; float16/float64 inputs are converted to float32. Safe to
        call from several threads at once."""
        if not isinstance(feeds, dict):
            raise TypeError(f"{self.name}.run: feeds must be a dict {{input name: array}}, "
                            f"got {type(feeds).__name__}")
        missing = [k for k in self.input_shapes if k not in feeds]
        extra = [k for k in feeds if k not in self.input_shapes]
        if missing or extra:
            raise ValueError(f"{self.name}.run: the model's inputs are {self.input_names}; "
                             + (f"missing {missing}" if missing else "")
                             + ("; " if missing and extra else "")
                             + (f"unknown {extra}" if extra else ""))
        arrays, batch = {}, None
        for k, shape in self.input_shapes.items():
            x = F._as_float32(feeds[k], f"input {k!r}", self.name)
            if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
                raise ShapeError(f"{self.name}: input {k!r} must have shape [N, "
                                 f"{', '.join(map(str, shape))}] (batch first), got "
                                 f"{tuple(x.shape)}")
            if batch is None:
                batch = x.shape[0]
            elif x.shape[0] != batch:
                raise ShapeError(f"{self.name}: all inputs need one batch size; {k!r} has "
                                 f"{x.shape[0]}, another input {batch}")
            arrays[k] = x
        return self.plan.run(arrays, batch)

    def __call__(self, x) -> np.ndarray:
        """Single-input models: the first output for input x ([N, ...])."""
        if len(self.input_shapes) != 1:
            raise ValueError(f"{self.name}: model(x) needs a single-input model; this one "
                             f"has inputs {self.input_names}: use model.run({{...}})")
        return self.run({self.input_names[0]: x})[self.output_names[0]]

    def profile(self, x, repeats: int = 5) -> Dict[str, float]:
        """Median milliseconds of each compiled step on input x, run one step at a time;
        keys are the step labels (fused nodes joined by '+', e.g. 'conv1+bn1+relu1')."""
        if len(self.input_shapes) != 1:
            raise ValueError(f"{self.name}.profile needs a single-input model")
        repeats = F._int(repeats, "repeats", "profile", 1)
        k = self.input_names[0]
        x = F._as_float32(x, "input", "profile")
        self.run({k: x})  # validates, warms up
        samples = self.plan.profile({k: x}, x.shape[0], repeats)
        return {label: statistics.median(ts) for label, ts in samples.items()}

    # ------------------------------------------------------------------ algorithms, weights

    def set_algo(self, node_name: str, algo: str) -> None:
        """Force an algorithm ("auto", "direct", "im2col", "winograd", "winograd2") for one
        conv node; recompiles. An algorithm that cannot serve the node raises ValueError
        and leaves the model as it was."""
        layer = self.node(node_name).layer
        if not hasattr(layer, "algo"):
            raise ValueError(f"{node_name}: a {layer.kind} layer has no algorithm to choose")
        if algo not in F._ALGOS:
            raise ValueError(f"{node_name}: algo must be one of {F._ALGOS}, got {algo!r}")
        old = layer.algo
        layer.algo = algo
        try:
            self.compile()
        except Exception:
            layer.algo = old
            self.compile()
            raise

    def algos(self, batch: int = 1) -> Dict[str, str]:
        """{conv node: the algorithm it runs at this batch size}. With "auto" that may
        depend on the batch (Winograd once the batch gives it enough tiles), so outputs
        may differ in the last bits between batch sizes; pinning these with set_algo
        makes every batch size compute like this one."""
        from fastconv.functional import _int
        batch = _int(batch, "batch", f"{self.name}.algos", 1)
        return {step.nodes[0]: step.algo_for(batch) for step in self.plan.steps
                if isinstance(step, ConvStep)}

    def set_algos(self, algo: str, where_supported: bool = False) -> List[str]:
        """Force one algorithm on every conv node; recompiles once. An algorithm that
        cannot serve a node (e.g. "winograd" on a strided or 1x1 conv) makes compiling
        raise ValueError naming the node; with where_supported=True such nodes get "auto"
        instead. Returns the names of the nodes left on "auto" that way."""
        if algo not in F._ALGOS:
            raise ValueError(f"set_algos: algo must be one of {F._ALGOS}, got {algo!r}")
        skipped: List[str] = []
        if where_supported:
            for step in self.plan.steps:
                if isinstance(step, ConvStep) and not step.supports(algo):
                    skipped.append(step.nodes[0])
        old = {n.name: n.layer.algo for n in self.nodes if hasattr(n.layer, "algo")}
        for n in self.nodes:
            if n.name in old:
                n.layer.algo = "auto" if n.name in skipped else algo
        try:
            self.compile()
        except Exception:
            for n in self.nodes:
                if n.name in old:
                    n.layer.algo = old[n.name]
            raise
        return skipped

    def named_params(self) -> "OrderedDict[str, np.ndarray]":
        """The user-level (unfolded) weights, {"node/param": array}, in graph order."""
        out = OrderedDict()
        for n in self.nodes:
            for pname, arr in n.layer.params.items():
                out[f"{n.name}/{pname}"] = arr
        return out

    def num_params(self) -> int:
        return sum(n.layer.num_params() for n in self.nodes)

    def load_weights(self, src) -> "Model":
        """Load the weights of an ONNX export (path, bytes or onnx.ModelProto) into this
        model, matched in graph order by layer kind and shape; recompiles."""
        from fastconv.onnx_import import load_weights
        return load_weights(self, src)

    # ------------------------------------------------------------------ inspection

    def summary(self, print_fn=print, batch: int = 1, compare: bool = False) -> Summary:
        """Per layer: output shape, parameters, MACs and FLOPs, receptive field, algorithm
        and workspace; totals. Printed with print_fn (None: not printed) and returned.
        compare=True adds, per conv layer, the parameters of the same mapping as a
        locally connected and as a fully connected layer."""
        s = build_summary(self, batch, compare=compare)
        if print_fn is not None:
            print_fn(str(s))
        return s

    def __repr__(self) -> str:
        return (f"<fastconv.Model {self.name!r}: {len(self.nodes)} nodes, inputs "
                f"{self.input_shapes}, outputs {self.output_names}>")

    # ------------------------------------------------------------------ serialisation

    def to_config(self) -> dict:
        """The graph as plain JSON-serialisable data (no weights)."""
        return {
            "format": CONFIG_FORMAT,
            "name": self.name,
            "inputs": {k: list(v) for k, v in self.input_shapes.items()},
            "outputs": list(self.output_names),
            "nodes": [{"name": n.name, "type": n.layer.kind, "config": n.layer.config(),
                       "inputs": list(n.inputs)} for n in self.nodes],
        }

    @classmethod
    def from_config(cls, config: dict, params: Dict[str, np.ndarray],
                    compile: bool = True) -> "Model":
        """Rebuild a model from to_config() and named_params() (the arrays are copied or
        packed by the layers, so memory-mapped arrays may be passed)."""
        try:
            fmt = config["format"]
            node_cfgs = config["nodes"]
            inputs = {k: tuple(v) for k, v in config["inputs"].items()}
            outputs = list(config["outputs"])
        except (KeyError, TypeError, AttributeError) as e:
            raise ModelFormatError(f"model config is missing or has a malformed field: {e}") \
                from None
        if fmt != CONFIG_FORMAT:
            raise ModelFormatError(f"model config format {fmt!r} is not known (this fastconv "
                                   f"reads format {CONFIG_FORMAT})")
        nodes, used = [], set()
        for i, nc in enumerate(node_cfgs):
            try:
                name, kind, lcfg, ins = nc["name"], nc["type"], nc["config"], nc["inputs"]
            except (KeyError, TypeError):
                raise ModelFormatError(f"model config: node #{i} lacks name/type/config/inputs")\
                    from None
            cls_ = LAYER_TYPES.get(kind)
            if cls_ is None:
                raise ModelFormatError(f"model config: node {name!r} has unknown layer type "
                                       f"{kind!r}")
            prefix = f"{name}/"
            lparams = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
            used.update(prefix + k for k in lparams)
            with params_required():
                layer = cls_.from_config(dict(lcfg), lparams)
            nodes.append(Node(name, layer, tuple(ins)))
        unused = [k for k in params if k not in used]
        if unused:
            raise ModelFormatError(f"model config: tensors {unused[:5]} belong to no node")
        return cls(nodes, inputs, outputs, name=config.get("name", "model"), compile=compile)

    def save(self, path) -> None:
        """Write the native file (see fastconv.io): graph, weights, checksums."""
        from fastconv.io import save_model
        save_model(self, path)

    def __reduce__(self):
        # by value: the graph and the unfolded weights; the plan is rebuilt on unpickling
        params = OrderedDict((k, np.array(v, copy=True)) for k, v in self.named_params().items())
        return (Model.from_config, (self.to_config(), params))


def Sequential(layers: Sequence[Layer], input_shape: Shape, input_name: str = "input",
               name: str = "model") -> Model:
    """A chain of layers as a compiled Model (see Model.sequential)."""
    return Model.sequential(layers, input_shape, input_name=input_name, name=name)
