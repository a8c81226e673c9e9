"""The compiled form of a Model: a list of steps over one activation arena.

A step is one kernel call (a conv with its folded BatchNorm and fused ReLU, a pool, a
linear layer, ...). Every intermediate tensor lives in a region of one arena buffer,
placed by a greedy interval allocator so that regions are reused once their tensors are
dead; model outputs are written straight into fresh arrays that are returned to the
caller, and Flatten / Reshape / Dropout / Identity are views, not copies. Region offsets
are planned per sample and scaled by the batch size, so one plan serves every batch.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from fastconv import _kernels
from fastconv import functional as F

ALIGN_FLOATS = 16                 # region offsets in multiples of 64 bytes
_ARENA_CACHE_BATCHES = 4          # (batch, threads) pairs whose arenas are kept

_ALIAS_KINDS = ("Dropout", "Identity", "Flatten", "Reshape")
_POOL_KINDS = ("MaxPool2d", "AvgPool2d", "MaxPool1d", "AvgPool1d")


def fuse_pool_default() -> bool:
    """Whether compiling fuses a conv with the 2x2 stride-2 max pool after it: on unless
    the environment says FASTCONV_FUSE_POOL=0 (read at each compile; Model.fuse_pool
    overrides it per model)."""
    return os.environ.get("FASTCONV_FUSE_POOL", "1").strip() != "0"


LAYOUTS = ("nchw", "nchw8c")


def layout_default() -> str:
    """The activation layout compiling uses: FASTCONV_LAYOUT if set ("nchw" or "nchw8c"),
    else "nchw" (read at each compile; Model.layout overrides it per model)."""
    return os.environ.get("FASTCONV_LAYOUT", "nchw").strip().lower() or "nchw"


def blocked_shape(shape) -> Tuple[int, ...]:
    """The per-sample shape of a (C, H, W) tensor stored as NCHW8c: (ceil(C/8), H, W, 8)."""
    c, h, w = shape
    return (-(-int(c) // 8), int(h), int(w), 8)


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def _size(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


class Step:
    """One kernel call: reads `inputs`, writes `output` (tensor names)."""
    nodes: Tuple[str, ...]
    inputs: Tuple[str, ...]
    output: str
    algo: str = "-"
    fused: str = ""

    @property
    def label(self) -> str:
        return "+".join(self.nodes)

    def workspace_bytes(self, batch: int, threads: int) -> int:
        return 0

    def __call__(self, env: Dict[str, np.ndarray], workspace: np.ndarray, threads: int) -> None:
        raise NotImplementedError


class ConvStep(Step):
    """Conv2d or Conv1d (as a 1-row Conv2d) with BatchNorm folded in and the ReLU fused,
    on weights packed once per ISA.

    With `auto` the algorithm is the rule's choice for the batch being run: `algo` is the
    batch-1 choice (packed when the model is compiled); a batch for which the rule picks
    another one (Winograd on tiny maps once the batch gives it enough tiles: CIFAR VGG's
    4x4 layers at batch 64 run 2.3-3.1x faster than im2col, `algo_for`) gets that
    algorithm's pack too, made on first use and kept.

    With `maxpool2` the step also does the 2x2 stride-2 max pool (no padding, floor mode)
    that was the conv's only reader (issue 7; ExecutionPlan decides): one call,
    conv2d_run(maxpool2=True), writes the pooled map, bit for bit what conv -> (relu) ->
    max_pool2d gives. Winograd, whose output tiles hold whole 2x2 windows, pools each
    tile as it is written, so the full-size conv output is never stored and the pool's
    pass over it disappears (VGG-16: every conv before a pool runs Winograd at batch 1).
    Any other algorithm the batch runs (auto's per-batch choice, or set_algo) writes the
    conv output into the workspace and pools it from there: the same bits, no saving.
    Bias, then ReLU, then the max, so the values are those of the separate steps (the
    max of ReLU outputs, NaN propagating as in max_pool2d)."""

    def __init__(self, nodes, inputs, output, layer, in_shape, bn=None, relu=False,
                 maxpool2=False):
        self.nodes, self.inputs, self.output = tuple(nodes), tuple(inputs), output
        cfg = layer.config()
        weight = np.asarray(layer.params["weight"], dtype=np.float32)
        bias = layer.params.get("bias")
        self.one_d = weight.ndim == 3
        if self.one_d:
            c, w = in_shape
            self.x_shape1 = (1, c, 1, w)
            k = weight.shape[2]
            s = F._tuple(cfg.get("stride", 1), 1, "stride", output, 1)[0]
            d = F._tuple(cfg.get("dilation", 1), 1, "dilation", output, 1)[0]
            pb, pe = F._pads1d(cfg.get("padding", 0), w, k, s, d, output)
            self.stride, self.dilation, self.pads = (1, s), (1, d), (0, pb, 0, pe)
            weight = weight.reshape(weight.shape[0], weight.shape[1], 1, k)
        else:
            c, h, w = in_shape
            self.x_shape1 = (1, c, h, w)
            self.stride = F._tuple(cfg.get("stride", 1), 2, "stride", output, 1)
            self.dilation = F._tuple(cfg.get("dilation", 1), 2, "dilation", output, 1)
            self.pads = F._pads2d(cfg.get("padding", 0), (h, w), weight.shape[2:], self.stride,
                                  self.dilation, output)
        self.groups = int(cfg.get("groups", 1))
        fused = []
        if bn is not None:
            weight, bias = fold_batch_norm(weight, bias, bn)
            fused.append("bn")
        self.relu = bool(relu)
        if relu:
            fused.append("relu")
        self.maxpool2 = bool(maxpool2)
        if maxpool2:
            fused.append("maxpool")
        self.fused = "+".join(fused)
        self.weight = np.ascontiguousarray(weight, dtype=np.float32)
        self.bias = None if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
        self.w_shape = self.weight.shape
        self.requested_algo = getattr(layer, "algo", cfg.get("algo", "auto"))
        self._lock = threading.Lock()
        self._pack()

    def _pack(self) -> None:
        try:
            blob, algo = _kernels.conv2d_pack(self.x_shape1, self.weight, self.bias,
                                              self.stride, self.pads, self.dilation,
                                              self.groups, self.requested_algo)
        except ValueError as e:
            if type(e) is not ValueError:      # ShapeError etc. name their node already
                raise
            raise ValueError(f"{self.nodes[0]}: {e}") from None
        self.blob, self.algo, self.isa = blob, algo, _kernels.get_isa()
        self._more_blobs: Dict[tuple, np.ndarray] = {}   # (isa, algo) -> pack, batch > 1
        self._batch_algos: Dict[tuple, str] = {}         # (isa, batch) -> algo

    def _blob(self) -> np.ndarray:
        if self.isa != _kernels.get_isa():   # the ISA was switched since packing
            with self._lock:
                if self.isa != _kernels.get_isa():
                    self._pack()
        return self.blob

    def algo_for(self, batch: int) -> str:
        """The algorithm a run at this batch size uses."""
        if self.requested_algo != "auto" or batch <= 1:
            return self.algo
        key = (_kernels.get_isa(), batch)
        algo = self._batch_algos.get(key)
        if algo is None:
            algo = _kernels.conv2d_choose((batch,) + self.x_shape1[1:], self.w_shape,
                                          self.stride, self.pads, self.dilation, self.groups)
            self._batch_algos[key] = algo
        return algo

    def _blob_for(self, batch: int) -> np.ndarray:
        blob = self._blob()
        algo = self.algo_for(batch)
        if algo == self.algo:
            return blob
        key = (_kernels.get_isa(), algo)
        more = self._more_blobs.get(key)
        if more is None:
            with self._lock:
                more = self._more_blobs.get(key)
                if more is None:
                    more, _ = _kernels.conv2d_pack(self.x_shape1, self.weight, self.bias,
                                                   self.stride, self.pads, self.dilation,
                                                   self.groups, algo)
                    self._more_blobs[key] = more
        return more

    def supports(self, algo: str) -> bool:
        """Whether `algo` can serve this convolution (e.g. Winograd: 3x3, stride 1 only)."""
        try:
            _kernels.conv2d_workspace_bytes(self.x_shape1, self.w_shape, self.stride, self.pads,
                                            self.dilation, self.groups, algo, 1)
        except ValueError:
            return False
        return True

    def _x4(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]) if self.one_d else x

    def workspace_bytes(self, batch: int, threads: int) -> int:
        shape = (batch,) + self.x_shape1[1:]
        return _kernels.conv2d_run_workspace_bytes(shape, self._blob_for(batch), self.w_shape,
                                                   self.stride, self.pads, self.dilation,
                                                   self.groups, threads,
                                                   maxpool2=self.maxpool2)

    def __call__(self, env, workspace, threads):
        x = self._x4(env[self.inputs[0]])
        y = self._x4(env[self.output])
        _kernels.conv2d_run(x, self._blob_for(x.shape[0]), self.w_shape, self.stride, self.pads,
                            self.dilation, self.groups, self.relu, threads, out=y,
                            workspace=workspace, maxpool2=self.maxpool2)

    @property
    def packed_bytes(self) -> int:
        return int(self.blob.nbytes) + sum(int(b.nbytes) for b in self._more_blobs.values())


class BlockedConvStep(ConvStep):
    """A ConvStep whose output is stored channel-blocked (NCHW8c, Model.layout), computed
    by the direct convolution that writes that layout (fc_conv2d_nchw8c_run). Its input is
    the blocked output of the step before it, or an NCHW tensor (the model's input: the
    kernel reads NCHW too, so the image is never reordered). Ungrouped 2-D convs whose
    algorithm is "auto" or "direct" only (ExecutionPlan decides); no pool is fused."""

    layout = "nchw8c"
    x_blocked = False   # whether the input is blocked too (set by ExecutionPlan)

    def _pack(self) -> None:
        try:
            blob = _kernels.conv2d_nchw8c_pack(self.x_shape1, self.weight, self.bias,
                                               self.stride, self.pads, self.dilation)
        except ValueError as e:
            if type(e) is not ValueError:
                raise
            raise ValueError(f"{self.nodes[0]}: {e}") from None
        self.blob, self.algo, self.isa = blob, "direct", _kernels.get_isa()
        self._more_blobs = {}
        self._batch_algos = {}

    def algo_for(self, batch: int) -> str:
        return "direct"

    def _blob_for(self, batch: int) -> np.ndarray:
        return self._blob()

    def workspace_bytes(self, batch: int, threads: int) -> int:
        return _kernels.conv2d_nchw8c_workspace_bytes((batch,) + self.x_shape1[1:],
                                                      self.w_shape, self.stride, self.pads,
                                                      self.dilation, self.x_blocked)

    def __call__(self, env, workspace, threads):
        _kernels.conv2d_nchw8c_run(env[self.inputs[0]], self._blob(), self.w_shape,
                                   self.stride, self.pads, self.dilation, self.relu, threads,
                                   out=env[self.output], workspace=workspace)


def fold_batch_norm(weight, bias, bn):
    """Conv weights and bias with an inference BatchNorm after them folded in:
    w' = w * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta (in float64)."""
    p = bn.params
    eps = float(bn.config().get("eps", 1e-5))
    scale = p["weight"].astype(np.float64) / np.sqrt(p["running_var"].astype(np.float64) + eps)
    b = np.zeros(weight.shape[0]) if bias is None else bias.astype(np.float64)
    w = weight.astype(np.float64) * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    b = (b - p["running_mean"].astype(np.float64)) * scale + p["bias"].astype(np.float64)
    return w.astype(np.float32), b.astype(np.float32)


class LinearStep(Step):
    """y = x @ W.T + b (then ReLU) on the SGEMM."""

    def __init__(self, nodes, inputs, output, layer, relu=False):
        self.nodes, self.inputs, self.output = tuple(nodes), tuple(inputs), output
        self.weight_t = np.asarray(layer.params["weight"], dtype=np.float32).T
        b = layer.params.get("bias")
        self.bias = None if b is None else np.ascontiguousarray(b, dtype=np.float32)
        self.relu = bool(relu)
        self.fused = "relu" if relu else ""
        self.algo = "gemm"

    def workspace_bytes(self, batch: int, threads: int) -> int:
        k, n = self.weight_t.shape
        return _kernels.sgemm_workspace_bytes(batch, n, k, threads)

    def __call__(self, env, workspace, threads):
        x = env[self.inputs[0]]
        _kernels.sgemm(x.reshape(x.shape[0], -1), self.weight_t, bias_n=self.bias,
                       relu=self.relu, num_threads=threads, out=env[self.output],
                       workspace=workspace)


class PoolStep(Step):
    def __init__(self, nodes, inputs, output, layer, in_shape):
        self.nodes, self.inputs, self.output = tuple(nodes), tuple(inputs), output
        cfg = layer.config()
        kind = layer.kind
        self.is_max = kind.startswith("Max")
        self.one_d = kind.endswith("1d")
        nd = 1 if self.one_d else 2
        k = F._tuple(cfg["kernel_size"], nd, "kernel_size", output, 1)
        s = k if cfg.get("stride") is None else F._tuple(cfg["stride"], nd, "stride", output, 1)
        d = F._tuple(cfg.get("dilation", 1), nd, "dilation", output, 1)
        if self.one_d:
            pb, pe = F._pads1d(cfg.get("padding", 0), in_shape[-1], k[0], s[0], d[0], output)
            k, s, d, p = (1, k[0]), (1, s[0]), (1, d[0]), (0, pb, 0, pe)
        else:
            p = F._pads2d(cfg.get("padding", 0), in_shape[1:], k, s, d, output)
        self.kernel, self.stride, self.dilation, self.pads = k, s, d, p
        self.ceil_mode = bool(cfg.get("ceil_mode", False))
        self.count_include_pad = bool(cfg.get("count_include_pad", True))
        self.algo = "max" if self.is_max else "avg"
        self.channels = int(in_shape[0])
        self.blocked = False      # set by ExecutionPlan when it reads and writes NCHW8c

    @property
    def layout(self) -> str:
        return "nchw8c" if self.blocked else "nchw"

    def _x4(self, x):
        return x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]) if self.one_d else x

    def __call__(self, env, workspace, threads):
        if self.blocked:
            x, y = env[self.inputs[0]], env[self.output]
            if self.is_max:
                _kernels.max_pool2d_nchw8c(x, self.channels, self.kernel, self.stride,
                                           self.pads, self.dilation, self.ceil_mode, threads,
                                           out=y)
            else:
                _kernels.avg_pool2d_nchw8c(x, self.channels, self.kernel, self.stride,
                                           self.pads, self.ceil_mode, self.count_include_pad,
                                           threads, out=y)
            return
        x, y = self._x4(env[self.inputs[0]]), self._x4(env[self.output])
        if self.is_max:
            _kernels.max_pool2d(x, self.kernel, self.stride, self.pads, self.dilation,
                                self.ceil_mode, threads, out=y)
        else:
            _kernels.avg_pool2d(x, self.kernel, self.stride, self.pads, self.ceil_mode,
                                self.count_include_pad, threads, out=y)


class GlobalPoolStep(Step):
    def __init__(self, nodes, inputs, output, layer):
        self.nodes, self.inputs, self.output = tuple(nodes), tuple(inputs), output
        self.op = "max" if layer.kind == "GlobalMaxPool2d" else "avg"
        self.algo = self.op

    def __call__(self, env, workspace, threads):
        x = env[self.inputs[0]]
        planes = x.shape[0] * x.shape[1]
        _kernels.global_pool(x.reshape(planes, -1), self.op, threads,
                             out=env[self.output].reshape(planes))


class ReluStep(Step):
    def __init__(self, nodes, inputs, output):
        self.nodes, self.inputs, self.output = tuple(nodes), tuple(inputs), output

    def __call__(self, env, workspace, threads):
        _kernels.relu(env[self.inputs[0]], threads, out=env[self.output])


class ReorderStep(Step):
    """NCHW8c -> NCHW of one tensor, where a blocked activation meets a reader that wants
    NCHW (Flatten before the classifier, a model output, any step without a blocked
    kernel). Its label is "tensor>nchw"."""

    algo = "reorder"

    def __init__(self, blocked_name: str, output: str, channels: int):
        self.nodes, self.inputs, self.output = (f"{output}>nchw",), (blocked_name,), output
        self.channels = int(channels)

    def __call__(self, env, workspace, threads):
        _kernels.from_nchw8c(env[self.inputs[0]], self.channels, threads, out=env[self.output])


class LayerStep(Step):
    """Any other layer, through its own forward_into."""

    def __init__(self, nodes, inputs, output, layer):
        self.nodes, self.inputs, self.output = tuple(nodes), tuple(inputs), output
        self.layer = layer

    def __call__(self, env, workspace, threads):
        self.layer.forward_into([env[i] for i in self.inputs], env[self.output])


class _Arena:
    """One run's memory: the activation buffer, the workspace and the views into them."""

    def __init__(self, plan: "ExecutionPlan", batch: int, threads: int):
        self.buffer = np.empty(max(plan.arena_floats * batch, 1), dtype=np.float32)
        # the C side aligns the workspace itself (its sizes include the slack)
        self.workspace = np.empty(max(plan.workspace_bytes(batch, threads), 1), np.uint8)
        self.views: Dict[str, np.ndarray] = {}
        for name, (offset, size, _, _) in plan.regions.items():
            a = offset * batch
            self.views[name] = self.buffer[a:a + size * batch].reshape(
                (batch,) + plan.shapes[name])


class ExecutionPlan:
    """Steps, tensor storage and the arena layout of a compiled Model."""

    def __init__(self, model, fuse_pool: Optional[bool] = None, layout: Optional[str] = None):
        self.model_name = model.name
        self.fuse_pool = fuse_pool_default() if fuse_pool is None else bool(fuse_pool)
        self.layout = layout_default() if layout is None else layout
        if self.layout not in LAYOUTS:
            raise ValueError(f"{model.name}: layout must be one of {LAYOUTS} (argument or "
                             f"FASTCONV_LAYOUT), got {self.layout!r}")
        self.shapes = dict(model.shapes)
        self.input_names = list(model.input_shapes)
        self.output_names = list(model.output_names)
        self.steps: List[Step] = []
        self.aliases: Dict[str, str] = {}         # tensor -> the tensor whose memory it views
        self.node_info: Dict[str, dict] = {}
        self._build_steps(model)
        if self.layout == "nchw8c":
            self._block_activations()
        self._plan_arena()
        self._lock = threading.Lock()
        self._arenas: Dict[int, List[_Arena]] = {}
        self._arena_order: List[int] = []

    # ------------------------------------------------------------------ steps

    def _build_steps(self, model) -> None:
        consumers: Dict[str, List[str]] = {}
        for n in model.nodes:
            for i in n.inputs:
                consumers.setdefault(i, []).append(n.name)
        by_name = {n.name: n for n in model.nodes}
        outputs = set(model.output_names)

        def sole_consumer(tensor: str, kinds) -> Optional[str]:
            """The one node that reads `tensor`, if it is of one of `kinds` and the tensor
            is not a model output (then the two can share one step)."""
            users = consumers.get(tensor, [])
            if tensor in outputs or len(users) != 1:
                return None
            return users[0] if by_name[users[0]].layer.kind in kinds else None

        absorbed = set()
        for n in model.nodes:
            if n.name in absorbed:
                continue
            kind = n.layer.kind
            ins = tuple(n.inputs)
            if kind in _ALIAS_KINDS:
                self.aliases[n.name] = ins[0]
                self.node_info[n.name] = {"algo": "view", "step": None}
                continue
            if kind in ("Conv2d", "Conv1d"):
                group, bn, relu = [n.name], None, False
                tail = n.name
                nxt = sole_consumer(tail, ("BatchNorm2d",))
                if nxt is not None and self._bn_matches(by_name[nxt].layer, n.layer):
                    bn, tail = by_name[nxt].layer, nxt
                    group.append(nxt)
                nxt = sole_consumer(tail, ("ReLU",))
                if nxt is not None:
                    relu, tail = True, nxt
                    group.append(nxt)
                blocked = self.layout == "nchw8c" and self._blockable(n.layer)
                pool = False
                if self.fuse_pool and kind == "Conv2d" and not blocked:
                    nxt = sole_consumer(tail, ("MaxPool2d",))
                    if nxt is not None and self._is_maxpool2(by_name[nxt], self.shapes[tail]):
                        pool, tail = True, nxt
                        group.append(nxt)
                cls = BlockedConvStep if blocked else ConvStep
                step = cls(group, ins, tail, n.layer, self.shapes[ins[0]], bn, relu, pool)
            elif kind == "Linear":
                group, tail, relu = [n.name], n.name, False
                nxt = sole_consumer(tail, ("ReLU",))
                if nxt is not None:
                    relu, tail = True, nxt
                    group.append(nxt)
                step = LinearStep(group, ins, tail, n.layer, relu)
            elif kind in _POOL_KINDS:
                step = PoolStep([n.name], ins, n.name, n.layer, self.shapes[ins[0]])
            elif kind in ("GlobalAvgPool2d", "GlobalMaxPool2d"):
                step = GlobalPoolStep([n.name], ins, n.name, n.layer)
            elif kind == "ReLU":
                step = ReluStep([n.name], ins, n.name)
            else:
                step = LayerStep([n.name], ins, n.name, n.layer)
            absorbed.update(step.nodes)
            self.steps.append(step)
            for k, name in enumerate(step.nodes):
                self.node_info[name] = {"algo": step.algo if k == 0 else f"fused into "
                                        f"{step.nodes[0]}", "step": step, "fused": step.fused}

    @staticmethod
    def _blockable(layer) -> bool:
        """Whether a conv layer runs on NCHW8c activations: a 2-D ungrouped conv whose
        algorithm is "auto" or "direct" (the blocked kernel is a direct conv). Any other
        conv keeps NCHW, with reorders around it."""
        cfg = layer.config()
        algo = getattr(layer, "algo", cfg.get("algo", "auto"))
        return (layer.kind == "Conv2d" and int(cfg.get("groups", 1)) == 1
                and algo in ("auto", "direct"))

    def _block_activations(self) -> None:
        """Store activations channel-blocked (NCHW8c) from the first conv on: every
        BlockedConvStep writes a blocked twin "<tensor>@nchw8c" of its output, 2-D pools
        and ReLUs whose input is blocked read and write blocked tensors too, and a
        ReorderStep makes the NCHW tensor where anything else reads it (Flatten and the
        classifier, a model output, a step with no blocked kernel), once, just before
        its first such reader. Views that keep the shape (Dropout, Identity) are read
        through to the blocked twin. On a VGG network that leaves one reorder, at the
        flatten; the input image is read as NCHW by the first conv."""
        blocked: Dict[str, str] = {}           # NCHW tensor -> its blocked twin
        made = set()                           # NCHW tensors a ReorderStep writes
        steps: List[Step] = []

        def twin(t: str) -> Optional[str]:
            b = self.base(t)
            if b in blocked and tuple(self.shapes[t]) == tuple(self.shapes[b]):
                return blocked[b]
            return None

        def need_nchw(t: str) -> None:
            b = self.base(t)
            if b in blocked and b not in made:
                steps.append(ReorderStep(blocked[b], b, self.shapes[b][0]))
                made.add(b)

        def produce_blocked(step: Step) -> None:
            out = step.output
            name = out + "@nchw8c"
            while name in self.shapes:      # a node of the model may bear that name
                name += "'"
            self.shapes[name] = blocked_shape(self.shapes[out])
            blocked[out] = name
            step.output = name

        for step in self.steps:
            src = twin(step.inputs[0]) if step.inputs else None
            if isinstance(step, BlockedConvStep):
                if src is None:
                    need_nchw(step.inputs[0])
                else:
                    step.inputs = (src,)
                    step.x_blocked = True
                produce_blocked(step)
            elif src is not None and (isinstance(step, ReluStep) or
                                      (isinstance(step, PoolStep) and not step.one_d)):
                step.inputs = (src,)
                if isinstance(step, PoolStep):
                    step.blocked = True
                produce_blocked(step)
            else:
                for t in step.inputs:
                    need_nchw(t)
            steps.append(step)
        for o in self.output_names:
            need_nchw(o)
        self.steps = steps

    def _is_maxpool2(self, node, in_shape) -> bool:
        """Whether a MaxPool2d node is the 2x2 stride-2 pool without padding or dilation
        whose output is floor(H/2) x floor(W/2) (ceil_mode on even sizes included), i.e.
        what conv2d_run(maxpool2=True) computes."""
        p = PoolStep([node.name], node.inputs, node.name, node.layer, in_shape)
        c, h, w = in_shape
        return (p.kernel == (2, 2) and p.stride == (2, 2) and p.dilation == (1, 1)
                and tuple(p.pads) == (0, 0, 0, 0) and h >= 2 and w >= 2
                and tuple(self.shapes[node.name]) == (c, h // 2, w // 2))

    @staticmethod
    def _bn_matches(bn, conv) -> bool:
        return bn.params["weight"].shape[0] == conv.params["weight"].shape[0]

    def base(self, tensor: str) -> str:
        """The tensor whose memory `tensor` is (itself unless it is a view)."""
        while tensor in self.aliases:
            tensor = self.aliases[tensor]
        return tensor

    # ------------------------------------------------------------------ arena

    def _plan_arena(self) -> None:
        """Place every intermediate tensor in the arena: lifetimes in step indices, then
        largest-first, each at the lowest offset free of every region it overlaps in time."""
        end = len(self.steps)
        outputs = set(self.output_names)
        first, last = {}, {}
        for idx, step in enumerate(self.steps):
            first.setdefault(step.output, idx)
            last[step.output] = max(last.get(step.output, idx), idx)
            for t in step.inputs:
                b = self.base(t)
                last[b] = max(last.get(b, idx), idx)
        for o in self.output_names:          # views of arena tensors are copied at the end
            last[self.base(o)] = end
        inputs = set(self.input_names)
        self.external = {s.output for s in self.steps if s.output in outputs}
        candidates = [t for t in first if t not in self.external and t not in inputs]
        candidates.sort(key=lambda t: (-_size(self.shapes[t]), first[t]))
        placed: List[Tuple[int, int, int, int]] = []       # offset, size, first, last
        self.regions: Dict[str, Tuple[int, int, int, int]] = {}
        for t in candidates:
            size = _round_up(_size(self.shapes[t]), ALIGN_FLOATS)
            busy = sorted((o, s) for o, s, f, l in placed if f <= last[t] and first[t] <= l)
            offset = 0
            for o, s in busy:
                if offset + size <= o:
                    break
                offset = max(offset, o + s)
            self.regions[t] = (offset, _size(self.shapes[t]), first[t], last[t])
            placed.append((offset, size, first[t], last[t]))
        self.arena_floats = max((o + s for o, s, _, _ in placed), default=0)
        self.activation_floats = sum(_size(self.shapes[s.output]) for s in self.steps)

    def workspace_bytes(self, batch: int, threads: Optional[int] = None) -> int:
        """The largest scratch memory of any step (one workspace serves them in turn);
        it grows with the thread count, each thread packing its own blocks."""
        t = _kernels.get_num_threads() if threads is None else threads
        return max((s.workspace_bytes(batch, t) for s in self.steps), default=0)

    def _acquire(self, key: Tuple[int, int]) -> _Arena:
        with self._lock:
            free = self._arenas.get(key)
            if free:
                return free.pop()
        return _Arena(self, *key)

    def _release(self, key: Tuple[int, int], arena: _Arena) -> None:
        with self._lock:
            if key not in self._arenas:
                self._arenas[key] = []
                self._arena_order.append(key)
                while len(self._arena_order) > _ARENA_CACHE_BATCHES:
                    self._arenas.pop(self._arena_order.pop(0), None)
            self._arenas[key].append(arena)

    # ------------------------------------------------------------------ running

    def _env(self, arrays: Dict[str, np.ndarray], batch: int, arena: _Arena) -> dict:
        env = dict(arena.views)
        env.update(arrays)
        for t in self.external:
            env[t] = np.empty((batch,) + self.shapes[t], dtype=np.float32)
        return env

    def _view(self, env: dict, name: str, batch: int) -> np.ndarray:
        if name not in env:
            env[name] = self._view(env, self.aliases[name], batch).reshape(
                (batch,) + self.shapes[name])
        return env[name]

    def _outputs(self, env: dict, batch: int) -> Dict[str, np.ndarray]:
        out = {}
        for o in self.output_names:
            v = self._view(env, o, batch)
            # fresh step outputs are returned as they are; views of the arena or of the
            # caller's inputs are copied so that nothing returned aliases either
            out[o] = v if o in self.external else np.array(v, copy=True)
        return out

    def _bind_alias_views(self, env: dict, batch: int) -> None:
        for t in self.aliases:
            if self.base(t) in env:   # a blocked tensor's NCHW name may never be made
                self._view(env, t, batch)

    def run(self, arrays: Dict[str, np.ndarray], batch: int) -> Dict[str, np.ndarray]:
        if batch == 0:
            return {o: np.empty((0,) + self.shapes[o], np.float32) for o in self.output_names}
        # the thread count is read once, so a set_num_threads() from another thread
        # during this run changes nothing here (the workspace is sized for it)
        key = (batch, _kernels.get_num_threads())
        arena = self._acquire(key)
        try:
            env = self._env(arrays, batch, arena)
            self._bind_alias_views(env, batch)
            ws, threads = arena.workspace, key[1]
            for step in self.steps:
                step(env, ws, threads)
            return self._outputs(env, batch)
        finally:
            self._release(key, arena)

    def profile(self, arrays, batch: int, repeats: int) -> Dict[str, List[float]]:
        """Milliseconds of every step, `repeats` times each, one step at a time."""
        key = (batch, _kernels.get_num_threads())
        arena = self._acquire(key)
        try:
            env = self._env(arrays, batch, arena)
            self._bind_alias_views(env, batch)
            samples = {}
            for step in self.steps:
                ts = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    step(env, arena.workspace, key[1])
                    ts.append((time.perf_counter() - t0) * 1e3)
                samples[step.label] = ts
            return samples
        finally:
            self._release(key, arena)

    @property
    def packed_bytes(self) -> int:
        return sum(getattr(s, "packed_bytes", 0) for s in self.steps)
