"""Formatting of the benchmark's markdown: numbers, "n/a" for what was not measured
(an absent peer, an algorithm that cannot serve the layer), tables, and the header line
that says which kernels ran."""
from __future__ import annotations

from typing import Optional, Sequence

NA = "n/a"


def fmt_num(v: Optional[float], nd: int = 1) -> str:
    return NA if v is None else f"{v:.{nd}f}"


def fmt_ms(ms: Optional[float]) -> str:
    """Milliseconds with about three significant digits."""
    if ms is None:
        return NA
    return f"{ms:.3f}" if ms < 1 else (f"{ms:.2f}" if ms < 100 else f"{ms:.0f}")


def fmt_ratio(x: Optional[float]) -> str:
    return NA if x is None else f"{x:.2f}x"


def md_table(header: Sequence, rows: Sequence[Sequence], left: int = 1) -> str:
    """A markdown table; the first `left` columns left-aligned, the rest right-aligned."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |",
             "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def threads_label(t: int) -> str:
    return f"{t} thread{'s' if t != 1 else ''}"


def isa_label(isa: Optional[str]) -> str:
    """The kernel family in a table title: every table says what it measured."""
    return f"ISA {isa or '?'}"
