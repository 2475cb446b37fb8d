"""The HTML building blocks every part of the report uses: escaping, number formats, tables and cells.

pytest-html inserts the report's fragments unescaped, so every value that came
from outside the code goes through ``esc``. A module of its own, below every
renderer (the summary, its parts, the fleet page, the trend), so that none of
them imports another for a helper.
"""

from __future__ import annotations

import html
import math
from typing import Any, Iterable, Sequence


def esc(value: Any) -> str:
    """Text of any value, HTML-escaped (quotes too, so it is safe inside attributes)."""
    return html.escape(str(value), quote=True)


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def fmt(value: Any, kind: str = "plain") -> str:
    """A figure as text: "n/a" for None, the JSON spelling for NaN/Infinity, else by ``kind``
    (ms, percent, sci, cosine, rate, speedup, plain)."""
    if value is None:
        return "n/a"
    figure = number(value)
    if figure is None or not math.isfinite(figure):
        return str(value)
    formats = {"ms": "{:.3f} ms", "percent": "{:.4%}", "sci": "{:.3e}", "cosine": "{:.6f}",
               "rate": "{:.2f} img/s", "speedup": "{:.2f}x", "fraction": "{:.2%}", "plain": "{:g}"}
    return formats[kind].format(figure)


def pass_cell(passed: Any) -> str:
    if passed is None:
        return '<td>n/a</td>'
    return '<td class="dinov3-ok">PASS</td>' if passed else '<td class="dinov3-bad">FAIL</td>'


def table(header: Sequence[str], rows: Iterable[Sequence[str]], table_id: str | None = None) -> str:
    """Cells are HTML already (escape before); a cell starting with <td is used as is."""
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = "".join("<tr>" + "".join(cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    identity = f' id="{esc(table_id)}"' if table_id else ""
    return f'<table class="dinov3-table"{identity}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def num(text: str) -> str:
    """A right-aligned number cell (``text`` formatted and escaped already)."""
    return f'<td class="num">{text}</td>'
