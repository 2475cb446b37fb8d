"""The operator-level drift in the HTML report: where the device's error begins, the worst operators, the plot."""

from __future__ import annotations

import base64
import math
from typing import Any, Mapping

from .markup import esc, fmt, num, table

WORST_ROWS = 12


def _badness(row: Mapping[str, Any]) -> float:
    value = float(row.get("relative_error", 0.0))  # "NaN"/"Infinity" as JSON writes them
    return math.inf if math.isnan(value) else value


def operators_html(report: Mapping[str, Any]) -> str:
    """'' when the operator comparison neither ran nor was skipped."""
    section = (report.get("sections") or {}).get("operators")
    if not section:
        return ""
    parts = ["<h3>Operator-level drift (msprobe's rules and the suite's growth rule)</h3>"]
    if section.get("skipped") and not section.get("operators"):
        return parts[0] + f'<p class="dinov3-note">not run: {esc(section["skipped"])}</p>'
    counts = section.get("counts") or {}
    parts.append(f'<p class="dinov3-note">{esc(section.get("localisation", ""))}</p>')
    parts.append(f'<p class="dinov3-note">{len(section.get("operators") or [])} operators '
                 f'({esc(section.get("dtype"))}): '
                 f'{esc(counts.get("error", 0))} error, {esc(counts.get("warning", 0))} warning, '
                 f'{esc(counts.get("pass", 0))} pass</p>')
    rows = sorted(section.get("operators") or [], key=_badness, reverse=True)[:WORST_ROWS]
    first = section.get("first_error")
    cells = [[esc(row["name"]) + (" <b>&larr; first error</b>" if row["name"] == first else ""),
              f"<code>{esc(row['module'] or '(top level)')}</code>", esc(row["shape"]),
              num(fmt(row.get("relative_error"), "percent")), num(fmt(row.get("cosine"), "cosine")),
              num(fmt(row.get("max_abs_err"), "sci")), num(fmt(row.get("max_relative_err"), "sci")),
              num(fmt(row.get("one_thousandth_err_ratio"), "fraction")),
              num(fmt(row.get("input_one_thousandth_err_ratio"), "fraction")),
              f'<td class="{ {"error": "dinov3-bad", "warning": "dinov3-warn"}.get(row["status"], "dinov3-ok") }">'
              f'{esc(row["status"])}</td>'] for row in rows]
    parts.append(table(["Operator", "Module", "Shape", "Relative Error", "Cosine", "MaxAbsErr", "MaxRelativeErr",
                         "One Thousandth Err Ratio", "Inputs' lowest", "Result"], cells, "dinov3-operators"))
    for side, names in (("device", section.get("unmatched_device") or []),
                        ("CPU reference", section.get("unmatched_reference") or [])):
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            parts.append(f'<p class="dinov3-note dinov3-warn">{len(names)} {side} call(s) without a partner on the '
                         f"other side (another code path?): {esc(shown)}</p>")
    if section.get("operators"):
        from . import plots_operators  # matplotlib, only when a plot is drawn

        png = base64.b64encode(plots_operators.operator_drift_png(section)).decode("ascii")
        parts.append(f'<img class="dinov3-plot" alt="operator error along the forward" '
                     f'src="data:image/png;base64,{png}"/>')
    dumps = section.get("dumps") or {}
    if dumps.get("cpu") and dumps.get("device"):
        parts.append(f'<p class="dinov3-note">msprobe dumps: <code>msprobe compare -tp {esc(dumps["device"])} '
                     f'-gp {esc(dumps["cpu"])} -o OUT</code></p>')
    return "".join(parts)
