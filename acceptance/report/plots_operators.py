"""The error-along-the-forward plot of the operator-level drift, as PNG bytes (matplotlib's Agg canvas).

Input is the report's plain "operators" section (OperatorsSection.to_dict()), so an old JSON report
draws the same plot as a live session.
"""

from __future__ import annotations

from typing import Any, Mapping

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .plots_diagnosis import PLOT_FLOOR, _positive, png_bytes

STATUS_COLOURS = {"error": "#c62828", "warning": "#ef6c00"}


def operator_drift_png(section: Mapping[str, Any]) -> bytes:
    """Each operator's output relative error in forward order (log scale), errors and warnings marked,
    the first error named."""
    rows = list(section.get("operators") or [])
    if not rows:
        raise ValueError("the operators section has no rows to plot")
    figure = Figure(figsize=(8.0, 3.6), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    order = list(range(len(rows)))
    axes.plot(order, _positive([row["relative_error"] for row in rows]), color="#1565c0", linewidth=1.0,
              label="output relative error")
    for status, colour in STATUS_COLOURS.items():
        marked = [index for index, row in enumerate(rows) if row["status"] == status]
        if marked:
            values = _positive([rows[index]["relative_error"] for index in marked])
            axes.scatter(marked, values, color=colour, s=22, zorder=3, label=status)
    first = section.get("first_error")
    if first:
        index = next(index for index, row in enumerate(rows) if row["name"] == first)
        axes.axvline(index, color=STATUS_COLOURS["error"], linestyle="--", linewidth=0.8)
        right_half = index > len(rows) / 2  # the label goes inside the axes, on the side with room
        axes.annotate(f"{first}\n{rows[index]['module']}", (index, axes.get_ylim()[1]), fontsize=7,
                      ha="right" if right_half else "left", va="top", color=STATUS_COLOURS["error"])
    axes.set_yscale("log")
    axes.set_ylim(bottom=PLOT_FLOOR)
    axes.set_xlabel("operator, in forward order")
    axes.set_ylabel("mean|dev - ref| / mean|ref|")
    axes.set_title(f"Operator-level drift vs CPU float32 ({section.get('dtype')})", fontsize=10)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")
    return png_bytes(figure)
