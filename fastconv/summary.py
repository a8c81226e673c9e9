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


class Summary:
    """The summary table: `rows` (one dict per node), `totals`, and str() the table."""

    COLUMNS = [("label", "layer"), ("type", "type"), ("output_shape", "output shape"),
               ("params", "params"), ("macs", "MACs"), ("flops", "FLOPs (2xMACs)"),
               ("rf_size", "RF size"), ("rf_jump", "RF jump"), ("rf_start", "RF start"),
               ("algo", "algorithm"), ("workspace_bytes", "workspace B")]

    def __init__(self, model_name: str, batch: int, rows: List[dict], totals: Dict[str, int]):
        self.model_name, self.batch, self.rows, self.totals = model_name, batch, rows, totals

    def _cells(self, row: dict) -> List[str]:
        out = []
        for key, _ in self.COLUMNS:
            v = row[key]
            if key in ("params", "macs", "flops"):
                v = _count(v)
            elif key == "workspace_bytes":
                v = _bytes(v)
            elif key == "output_shape":
                v = "(N, " + ", ".join(map(str, v)) + ")"
            out.append(str(v))
        return out

    def __str__(self) -> str:
        header = [h for _, h in self.COLUMNS]
        body = [self._cells(r) for r in self.rows]
        width = [max(len(header[i]), *(len(b[i]) for b in body)) if body else len(header[i])
                 for i in range(len(header))]
        right = {"params", "macs", "flops", "workspace_bytes"}

        def fmt(cells):
            return "  ".join(c.rjust(width[i]) if self.COLUMNS[i][0] in right
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
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def build_summary(model, batch: int = 1) -> Summary:
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
    totals = {
        "params": sum(r["params"] for r in rows),
        "macs": sum(r["macs"] for r in rows),
        "flops": sum(r["flops"] for r in rows),
        "arena_bytes": plan.arena_floats * 4 * batch,
        "activation_bytes": plan.activation_floats * 4 * batch,
        "workspace_bytes": plan.workspace_bytes(batch),
        "packed_bytes": plan.packed_bytes,
    }
    return Summary(model.name, batch, rows, totals)
