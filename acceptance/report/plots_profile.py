"""The profile plot for the HTML report: each operator kind's share of the forward, device beside CPU (base64 PNG)."""

from __future__ import annotations

from typing import Any, Mapping

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..sections import OPERATOR_KINDS
from .plots import CPU_COLOUR, DEVICE_COLOUR, _finite, _png


def kind_shares_png(profile: Mapping[str, Any]) -> str | None:
    """Horizontal bars: share of the profiled forward's self time per operator kind, one bar per side."""
    sides = [(name, colour, (profile.get(name) or {}).get("kinds") or {})
             for name, colour in (("cpu", CPU_COLOUR), ("device", DEVICE_COLOUR))]
    sides = [(name, colour, kinds) for name, colour, kinds in sides if kinds]
    if not sides:
        return None
    kinds = [kind for kind in OPERATOR_KINDS if any(kind in found for _, _, found in sides)]
    figure = Figure(figsize=(6.0, 0.45 * len(kinds) + 1.2), layout="constrained")
    axes = figure.add_subplot()
    height = 0.8 / len(sides)
    for number, (name, colour, found) in enumerate(sides):
        values = [100 * (_finite((found.get(kind) or {}).get("share")) or 0.0) for kind in kinds]
        offsets = [row + (number - (len(sides) - 1) / 2) * height for row in range(len(kinds))]
        axes.barh(offsets, values, height=height, color=colour)
        for offset, value in zip(offsets, values):
            axes.text(value, offset, f" {value:.1f}%", va="center", fontsize=7)
    axes.set_yticks(range(len(kinds)), kinds)
    axes.invert_yaxis()
    axes.set_xlabel("share of the profiled forward's self time (%)")
    axes.set_title("Where the forward's time goes, by operator kind")
    labels = {"cpu": "CPU reference (float32)", "device": f"device ({profile.get('dtype', '?')})"}
    axes.legend(handles=[Patch(color=colour, label=labels[name]) for name, colour, _ in sides], fontsize=8,
                loc="lower right")
    return _png(figure)
