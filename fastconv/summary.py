"""model.summary(): one row per layer with its shape, size, cost and receptive field."""
from __future__ import annotations

import re
from typing import Dict, List

from fastconv import _kernels


def _axes(values) -> str:
    """One number when every spatial axis agrees (a square field), else h x w."""
    vals = [f"{v:g}" for v in values]
    if not vals:
        return "-"
    return vals[0] if len(set(vals)) == 1 else "x".join(vals)


_EXPORTER_NAME = re.compile(r"^/(?:[^/]*/)*([^/]+)/([^/]+?)_output_(\d+)$")


def display_name(name: str) -> str:
    """A shorter label for the tensor names torch's ONNX exporter writes:
    "/features/features.0/Conv_output_0" -> "features.0/Conv"; other names unchanged."""
    m = _EXPORTER_NAME.match(name)
    if not m:
        return name
    return f"{m.group(1)}/{m.group(2)}" + ("" if m.group(3) == "0" else f":{m.group(3)}")


def _count(n: int) -> str:
    return f"{n:,}"


def _bytes(n: int) -> str:
    return "-" if not n else f"{n:,}"


def _si_bytes(n: int) -> str:
    """A byte count in decimal units (kB = 1e3 B, MB = 1e6 B, GB = 1e9 B, ...)."""
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _count_and_size(n) -> str:
    return "-" if n is None else f"{n:,} ({_si_bytes(4 * n)})"


# Layers whose rows summary(compare=True) extends: convolutions (a weight shared by every
# output position) and locally connected layers (one filter bank per position).
_CONV_KINDS = ("Conv2d", "Conv1d", "OnnxConv")
_LC_KINDS = ("LocallyConnected2d",)


def _has_bias(layer) -> bool:
    if hasattr(layer, "use_bias"):
        return bool(layer.use_bias)
    return "bias" in layer.params or bool(getattr(layer, "bias_input", False))


def compare_params(layer, in_shape, out_shape):
    """(locally connected, fully connected) parameter counts of the mapping `layer` makes
    from a map of per-sample shape in_shape (Ci, H[, W]) to out_shape (Co, Ho[, Wo]), or
    None for a layer that is neither a convolution nor locally connected. With
    b = 1 when the layer has a bias, else 0 (a bias per output unit either way):

        locally connected: (Ho*Wo) * Co * (Ci/g*kh*kw + b)   = Ho*Wo x the conv's params
        fully connected:   (Ci*H*W) * (Co*Ho*Wo) + b*Co*Ho*Wo

    g is the conv's groups (a locally connected layer keeps its channel grouping); 1-D
    maps drop the W axis."""
    kind = type(layer).__name__
    if kind not in _CONV_KINDS + _LC_KINDS:
        return None
    b = 1 if _has_bias(layer) else 0
    positions = 1
    for s in out_shape[1:]:
        positions *= int(s)
    units_out = int(out_shape[0]) * positions
    units_in = 1
    for s in in_shape:
        units_in *= int(s)
    taps = 1
    for k in layer.kernel_size:
        taps *= int(k)
    groups = int(getattr(layer, "groups", 1))
    lc = positions * int(layer.out_channels) * (int(layer.in_channels) // groups * taps + b)
    fc = units_in * units_out + b * units_out
    return lc, fc


class Summary:
    """The summary table: `rows` (one dict per node), `totals`, and str() the table."""

    COLUMNS = [("label", "layer"), ("type", "type"), ("output_shape", "output shape"),
               ("params", "params"), ("macs", "MACs"), ("flops", "FLOPs (2xMACs)"),
               ("rf_size", "RF size"), ("rf_jump", "RF jump"), ("rf_start", "RF start"),
               ("algo", "algorithm"), ("workspace_bytes", "workspace B")]

    # summary(compare=True): what each conv (and locally connected) layer's mapping would
    # cost without weight sharing and without locality (see compare_params)
    COMPARE_COLUMNS = [("lc_params", "as locally connected (float32)"),
                       ("fc_params", "as fully connected (float32)")]

    def __init__(self, model_name: str, batch: int, rows: List[dict], totals: Dict[str, int],
                 compare: bool = False):
        self.model_name, self.batch, self.rows, self.totals = model_name, batch, rows, totals
        self.compare = bool(compare)
        self.columns = self.COLUMNS + (self.COMPARE_COLUMNS if self.compare else [])

    def _cells(self, row: dict) -> List[str]:
        out = []
        for key, _ in self.columns:
            v = row[key]
            if key in ("lc_params", "fc_params"):
                v = _count_and_size(v)
            elif key in ("params", "macs", "flops"):
                v = _count(v)
            elif key == "workspace_bytes":
                v = _bytes(v)
            elif key == "output_shape":
                v = "(N, " + ", ".join(map(str, v)) + ")"
            out.append(str(v))
        return out

    def __str__(self) -> str:
        header = [h for _, h in self.columns]
        body = [self._cells(r) for r in self.rows]
        width = [max(len(header[i]), *(len(b[i]) for b in body)) if body else len(header[i])
                 for i in range(len(header))]
        right = {"params", "macs", "flops", "workspace_bytes", "lc_params", "fc_params"}

        def fmt(cells):
            return "  ".join(c.rjust(width[i]) if self.columns[i][0] in right
                             else c.ljust(width[i]) for i, c in enumerate(cells)).rstrip()

        t = self.totals
        lines = [f"Model {self.model_name!r} (per sample; workspace and arena for batch "
                 f"{self.batch})", fmt(header), fmt(["-" * w for w in width])]
        lines += [fmt(b) for b in body]
        lines.append(fmt(["-" * w for w in width]))
        lines.append(f"total: {t['params']:,} parameters ({t['params'] * 4 / 2**20:.1f} MiB "
                     f"float32), {t['macs']:,} MACs = {t['macs'] / 1e9:.3f} GMACs, "
                     f"{t['flops']:,} FLOPs = {t['flops'] / 1e9:.3f} GFLOPs")
        lines.append(f"activation arena {t['arena_bytes']:,} B (the activations one after "
                     f"another would take {t['activation_bytes']:,} B), largest workspace "
                     f"{t['workspace_bytes']:,} B, packed weights {t['packed_bytes']:,} B")
        if any(r["rf_full"] for r in self.rows):
            lines.append("RF marked *: the layer mixes the whole input map (global pooling, "
                         "Flatten, Linear); the field shown is the last spatial one")
        if self.compare:
            lines += self._compare_lines()
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _compare_lines(self) -> List[str]:
        t = self.totals
        if not t.get("compared_layers"):
            return ["compare: no convolution or locally connected layer to compare"]
        k = t["compared_layers"]
        layers = f"{k} conv/locally connected layer" + ("s hold" if k != 1 else " holds")
        return [
            f"compare: the {layers} "
            f"{t['compared_params']:,} parameters ({_si_bytes(4 * t['compared_params'])}); "
            f"the same mappings would need {t['lc_params']:,} ({_si_bytes(4 * t['lc_params'])})"
            f" as locally connected layers and {t['fc_params']:,} "
            f"({_si_bytes(4 * t['fc_params'])}) as fully connected layers",
            "  locally connected = (Ho*Wo) * Co * (Ci/g*kh*kw + b): a filter bank per output "
            "position, no weight sharing",
            "  fully connected = (Ci*H*W) * (Co*Ho*Wo) + b*Co*Ho*Wo: every output unit sees "
            "every input unit",
            "  b = 1 where the layer has a bias, else 0; float32 sizes at 4 bytes per "
            "parameter, 1 GB = 1e9 bytes",
        ]


def build_summary(model, batch: int = 1, compare: bool = False) -> Summary:
    """The summary of `model` (workspace and arena for `batch`); with compare=True each
    conv or locally connected row also gets the parameters of the same mapping as a
    locally connected and as a fully connected layer (see compare_params)."""
    plan = model.plan
    rows = []
    shapes = model.shapes
    for n in model.nodes:
        in_shapes = [shapes[i] for i in n.inputs]
        macs = int(n.layer.macs(in_shapes))
        rf = model.receptive_fields[n.name]
        info = plan.node_info.get(n.name, {})
        step = info.get("step")
        algo = info.get("algo", "-")
        if step is not None and step.nodes[0] == n.name and hasattr(step, "algo_for"):
            algo = step.algo_for(batch)   # auto may pick per batch size
        if step is not None and step.nodes[0] == n.name and getattr(step, "layout", "nchw") != "nchw":
            algo = f"{algo} [{step.layout}]"    # reads/writes channel-blocked activations
        if step is not None and step.nodes[0] == n.name and step.fused:
            algo = f"{algo} (+{step.fused})"
        elif algo.startswith("fused into "):
            algo = "fused into " + display_name(step.nodes[0])
        ws = step.workspace_bytes(batch, _kernels.get_num_threads()) if step is not None and step.nodes[0] == n.name else 0
        star = "*" if rf.full else ""
        rows.append({
            "name": n.name, "label": display_name(n.name), "type": n.layer.kind, "output_shape": shapes[n.name],
            "params": int(n.layer.num_params()), "macs": macs, "flops": 2 * macs,
            "rf_size": _axes(rf.size) + star, "rf_jump": _axes(rf.jump) + star,
            "rf_start": _axes(rf.start) + star, "rf_full": bool(rf.full),
            "receptive_field": rf, "algo": algo, "workspace_bytes": int(ws),
        })
        if compare:
            cmp = compare_params(n.layer, in_shapes[0], shapes[n.name]) if in_shapes else None
            rows[-1]["lc_params"], rows[-1]["fc_params"] = cmp if cmp else (None, None)
    totals = {
        "params": sum(r["params"] for r in rows),
        "macs": sum(r["macs"] for r in rows),
        "flops": sum(r["flops"] for r in rows),
        "arena_bytes": plan.arena_floats * 4 * batch,
        "activation_bytes": plan.activation_floats * 4 * batch,
        "workspace_bytes": plan.workspace_bytes(batch),
        "packed_bytes": plan.packed_bytes,
    }
    if compare:
        compared = [r for r in rows if r["lc_params"] is not None]
        totals.update({
            "compared_layers": len(compared),
            "compared_params": sum(r["params"] for r in compared),
            "lc_params": sum(r["lc_params"] for r in compared),
            "fc_params": sum(r["fc_params"] for r in compared),
        })
    return Summary(model.name, batch, rows, totals, compare=compare)
