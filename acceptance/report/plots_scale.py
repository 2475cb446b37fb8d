"""Scale plots for the HTML report: throughput vs batch and latency vs resolution (base64 PNG)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from matplotlib.figure import Figure

from .plots import DEVICE_COLOUR, _finite, _png


def _ok(points: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [p for p in points if p.get("status") == "ok"]


def throughput_vs_batch_png(sweep: Mapping[str, Any]) -> str | None:
    """Images/s against batch size, one line per resolution; out-of-memory points marked with x."""
    points = sweep.get("points") or []
    resolutions = sorted({p["resolution"] for p in points})
    lines = []
    for resolution in resolutions:
        measured = sorted((p["batch"], _finite(p.get("throughput_img_per_s"))) for p in _ok(points)
                          if p["resolution"] == resolution)
        ok = [(b, t) for b, t in measured if t is not None]
        if len(ok) >= 2:
            lines.append((resolution, ok))
    if not lines:
        return None
    figure = Figure(figsize=(5.2, 3.4), layout="constrained")
    axes = figure.add_subplot()
    for resolution, ok in lines:
        axes.plot([b for b, _ in ok], [t for _, t in ok], marker="o", label=f"{resolution}x{resolution}")
        for p in points:
            if p["resolution"] == resolution and p["status"] == "out_of_memory":
                axes.plot([p["batch"]], [ok[-1][1]], marker="x", color="red", markersize=10,
                          label=f"out of memory at batch {p['batch']}")
    axes.set_xscale("log", base=2)
    axes.set_xlabel("batch size")
    axes.set_ylabel("throughput (images/s)")
    axes.set_title("Throughput vs batch")
    axes.legend(fontsize="small")
    return _png(figure)


def latency_vs_resolution_png(sweep: Mapping[str, Any]) -> str | None:
    """Mean latency per call against resolution at the smallest batch."""
    ok = _ok(sweep.get("points") or [])
    if not ok:
        return None
    batch = min(p["batch"] for p in ok)
    means = sorted((p["resolution"], _finite(p["latency"].get("mean_ms"))) for p in ok if p["batch"] == batch)
    series = [(r, m) for r, m in means if m is not None]
    if len(series) < 2:
        return None
    figure = Figure(figsize=(5.2, 3.4), layout="constrained")
    axes = figure.add_subplot()
    axes.plot([r for r, _ in series], [m for _, m in series], marker="o", color=DEVICE_COLOUR,
              label=f"batch {batch}")
    axes.set_xlabel("resolution (pixels per side)")
    axes.set_ylabel("mean latency per call (ms)")
    axes.set_title("Latency vs resolution")
    axes.legend(fontsize="small")
    return _png(figure)
