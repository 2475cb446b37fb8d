"""Latency plots for the HTML reports, as base64 PNG (self-contained: no files beside the report).

Drawn with matplotlib's object API on the Agg canvas - no pyplot, so no global
figure state and no display needed. Inputs are the report dict's
``performance`` entries (benchmark_report.json), so a plot can be redrawn from
any saved report.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any, Mapping

from matplotlib.figure import Figure
from matplotlib.patches import Patch

CPU_COLOUR = "#8c8c8c"
DEVICE_COLOUR = "#1f6fb4"
MARKS = (("mean_ms", "mean", "-"), ("p50_ms", "p50", "--"), ("p99_ms", "p99", ":"))


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None  # None, or "NaN"/"Infinity" as written in the JSON
    return float(value) if math.isfinite(value) else None


def _samples(stats: Mapping[str, Any] | None) -> list[float]:
    return [v for v in (_finite(x) for x in (stats or {}).get("samples_ms") or []) if v is not None]


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _label(side: str, stats: Mapping[str, Any]) -> str:
    role = "CPU reference" if side == "cpu" else "device"
    return f"{role}: {stats.get('device') or side}" + (f" ({stats['name']})" if stats.get("name") else "")


def latency_distribution_png(performance: Mapping[str, Any]) -> str | None:
    """One histogram of the warm-run samples per side (CPU reference, device), each on its own
    scale, with mean, p50 and p99 marked; None when no side has samples."""
    sides = [(side, performance[side]) for side in ("cpu", "device") if _samples(performance.get(side))]
    if not sides:
        return None
    figure = Figure(figsize=(5.2 * len(sides), 3.4), layout="constrained")
    for position, (side, stats) in enumerate(sides, start=1):
        samples = _samples(stats)
        axes = figure.add_subplot(1, len(sides), position)
        colour = CPU_COLOUR if side == "cpu" else DEVICE_COLOUR
        axes.hist(samples, bins=min(30, max(5, len(samples) // 2)), color=colour, alpha=0.75)
        for field, name, style in MARKS:
            value = _finite(stats.get(field))
            if value is not None:
                axes.axvline(value, color="black", linestyle=style, linewidth=1, label=f"{name} {value:.3f} ms")
        axes.set_title(f"{_label(side, stats)}\n{len(samples)} warm runs", fontsize=9)
        axes.set_xlabel("latency per forward pass (ms)")
        axes.set_ylabel("runs")
        axes.legend(fontsize=7)
    figure.suptitle("Latency distribution", fontsize=11)
    return _png(figure)


def cpu_vs_device_png(performance: Mapping[str, Any]) -> str | None:
    """Mean, p50 and p99 of the CPU reference next to the device's, on a log axis (they differ by
    orders of magnitude), titled with the speedup; None unless both sides were measured."""
    cpu, device = performance.get("cpu"), performance.get("device")
    if not cpu or not device:
        return None
    rows = [(name, _finite(cpu.get(field)), _finite(device.get(field))) for field, name, _ in MARKS]
    rows = [row for row in rows if row[1] is not None or row[2] is not None]
    if not rows:
        return None
    figure = Figure(figsize=(8, 0.9 + 0.75 * len(rows)), layout="constrained")
    axes = figure.add_subplot(1, 1, 1)
    height = 0.38
    for index, (_, cpu_ms, device_ms) in enumerate(rows):
        for offset, value, colour in ((-height / 2, cpu_ms, CPU_COLOUR), (height / 2, device_ms, DEVICE_COLOUR)):
            if value is None or value <= 0:
                continue
            axes.barh(index + offset, value, height=height, color=colour)
            axes.annotate(f"{value:.3f} ms", (value, index + offset), xytext=(3, 0), textcoords="offset points",
                          va="center", fontsize=8)
    axes.set_yticks(range(len(rows)), [row[0] for row in rows])
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel("latency (ms, log scale)")
    axes.legend(handles=[Patch(color=CPU_COLOUR, label=_label("cpu", cpu)),
                         Patch(color=DEVICE_COLOUR, label=_label("device", device))], fontsize=8,
                loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
    speedup = _finite(performance.get("speedup"))
    axes.set_title("CPU reference vs device" + (f": speedup {speedup:.2f}x (mean)" if speedup else ""), fontsize=10)
    xmax = max(v for row in rows for v in row[1:] if v)
    axes.set_xlim(right=xmax * 4)  # room for the value labels
    return _png(figure)


def trend_png(points: list[Mapping[str, Any]]) -> str | None:
    """Device p50 latency and relative error per output over runs (oldest left), one panel each;
    None when no run has either figure. A run that did not measure a figure leaves a gap."""
    latency = [_finite(p.get("p50_ms")) for p in points]
    outputs = sorted({name for p in points for name in (p.get("relative_error") or {})})
    if all(v is None for v in latency) and not outputs:
        return None
    labels = [str(p.get("started_at") or p.get("run_id") or index)[:16] for index, p in enumerate(points)]
    x = list(range(len(points)))
    figure = Figure(figsize=(9, 5.2), layout="constrained")
    top = figure.add_subplot(2, 1, 1)
    top.plot(x, [math.nan if v is None else v for v in latency], marker="o", color=DEVICE_COLOUR)
    top.set_ylabel("device p50 (ms)")
    top.set_title("Device p50 latency", fontsize=9)
    bottom = figure.add_subplot(2, 1, 2, sharex=top)
    for name in outputs:
        values = [_finite((p.get("relative_error") or {}).get(name)) for p in points]
        bottom.plot(x, [math.nan if v is None else v for v in values], marker="o", label=name)
    bottom.set_ylabel("relative error")
    bottom.set_title("Relative error vs CPU float32 reference", fontsize=9)
    if outputs:
        bottom.legend(fontsize=7)
    bottom.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
    figure.suptitle(f"Trend over the last {len(points)} runs", fontsize=11)
    return _png(figure)
