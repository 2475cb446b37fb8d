"""The error-vs-depth plot of the numerical diagnosis, as PNG bytes (matplotlib's Agg canvas, no pyplot state).

Input is the report's plain "diagnosis" section (DiagnosisSection.to_dict()), so the HTML report
can draw it from a JSON report as well as from a live session.
"""

from __future__ import annotations

import io
import math
from typing import Any, Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: values at or below zero cannot sit on a log axis: they are drawn at this floor
PLOT_FLOOR = 1e-9
PROFILE_STYLES = {"float32": ":", "tf32/hf32": "--", "bfloat16": "-.", "float16": (0, (5, 1, 1, 1))}


def _positive(values: Sequence[float | str]) -> list[float]:
    """Values for a log axis. Reports store NaN/Inf as the strings "NaN"/"Infinity" (JSON has no
    NaN): float() reads both forms; NaN stays a gap, the rest is clipped to the floor."""
    numbers = [float(value) for value in values]
    return [value if math.isfinite(value) and value > PLOT_FLOOR else
            (math.nan if math.isnan(value) else PLOT_FLOOR) for value in numbers]


def layer_drift_png(section: Mapping[str, Any], title: str | None = None) -> bytes:
    """Relative error against depth: the device's per probe point, the layer limit, the emulated
    reduced-precision profiles of the fingerprint and the first probe point over its limit."""
    rows = list(section.get("layers") or [])
    if not rows:
        raise ValueError("the diagnosis section has no layer rows to plot")
    names = [row["name"] for row in rows]
    depth = list(range(len(rows)))
    figure = Figure(figsize=(8.0, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)

    fingerprint = section.get("fingerprint") or {}
    for profile, values in (fingerprint.get("profiles") or {}).items():
        if len(values) == len(rows):
            closest = profile == fingerprint.get("closest")
            axes.plot(depth, _positive(values), linestyle=PROFILE_STYLES.get(profile, ":"), linewidth=1.2,
                      color="tab:green" if closest else "0.55",
                      label=f"CPU emulation: {profile}" + (" (closest)" if closest else ""))
    measured = [float(row["relative_error"]) for row in rows]  # float() also reads the report's "NaN"
    axes.plot(depth, _positive(measured), marker="o", markersize=4, linewidth=2, color="tab:blue",
              label=f"device ({section.get('layer_dtype', '?')}) vs CPU float32")
    limit = (section.get("layer_limits") or {}).get("max_relative_error")
    if limit is not None:
        axes.axhline(limit, color="tab:red", linestyle="--", linewidth=1, label=f"limit {limit:.2%}")
    first = section.get("first_drifting_layer")
    if first in names:
        index = names.index(first)
        axes.plot([index], _positive([measured[index]]), marker="o", markersize=12, markerfacecolor="none",
                  markeredgecolor="tab:red", markeredgewidth=2, linestyle="none", label=f"drift begins: {first}")

    if any(math.isfinite(value) and value <= PLOT_FLOOR for value in measured):
        axes.annotate(f"exact (0) drawn at {PLOT_FLOOR:g}", xy=(0, PLOT_FLOOR), xytext=(0, 6),
                      textcoords="offset points", fontsize=7, color="tab:blue")
    axes.set_yscale("log")
    step = max(1, math.ceil(len(rows) / 16))  # readable labels for 40-layer models too
    ticks = sorted(set(depth[::step]) | {depth[-1]})
    axes.set_xticks(ticks)
    axes.set_xticklabels([names[i].replace("layer.", "") for i in ticks], rotation=0, fontsize=8)
    axes.set_xlabel("probe point, in forward order (layer.N shown as N)")
    axes.set_ylabel("relative error mean|dev-ref| / mean|ref|")
    axes.set_title(title or "Layer-wise drift against the CPU float32 reference", fontsize=10)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    return png_bytes(figure)


def png_bytes(figure: Figure) -> bytes:
    """The figure, laid out tight, as PNG bytes."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
