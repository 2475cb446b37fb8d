"""The scale part of the HTML summary: sweep table and plots, utilisation, compile, determinism, soak."""

from __future__ import annotations

from typing import Any, Mapping

from ..sections import NOT_MEASURABLE
from .markup import esc, fmt, num, table

#: graph mode times eager and compiled at most this many runs each (tests/acceptance/test_compile.py)
COMPILE_RUNS_CAP = 10


def _mib(value: Any) -> str:
    return NOT_MEASURABLE if value is None else f"{value / 2 ** 20:.1f} MiB"


def _value(key: str, value: Any) -> str:
    """A per-card figure as a reader wants it: bytes in MiB, yes/no, 4 significant digits, never Python's None."""
    if key.endswith("_bytes"):
        return _mib(value)
    if value is None:
        return "not measured"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_value(key, item) for item in value) or "none"
    return str(value)


def _sweep(sweep: Mapping[str, Any]) -> str:
    from . import plots_scale  # matplotlib, only when a plot is drawn

    rows = []
    for p in sweep.get("points") or []:
        if p.get("status") != "ok":
            rows.append([esc(p["batch"]), esc(p["resolution"]), esc(p["status"]), esc(p.get("error", "")),
                         "", "", "", "", ""])
            continue
        lat, acc = p["latency"], p["accuracy"]
        rows.append([esc(p["batch"]), esc(p["resolution"]), "ok", num(fmt(lat.get("mean_ms"))),
                     num(fmt(p.get("throughput_img_per_s"))), esc(_mib(p.get("peak_memory_bytes"))),
                     num(f"{p['flops_per_forward'] / 1e9:.2f}"), num(fmt(p.get("achieved_tflops"), "sci")),
                     num(fmt(p.get("mfu"), "sci")) + f" / rel. err {esc(fmt(acc.get('relative_error'), 'percent'))}"])
    images = "".join(f'<img class="dinov3-plot" alt="{esc(name)}" src="data:image/png;base64,{png}"/>'
                     for name, png in (("Throughput vs batch", plots_scale.throughput_vs_batch_png(sweep)),
                                       ("Latency vs resolution", plots_scale.latency_vs_resolution_png(sweep)))
                     if png)
    return (f"<h3>Sweep ({esc(sweep.get('profile'))}, {esc(sweep.get('device'))}, {esc(sweep.get('dtype'))})</h3>"
            + table(["Batch", "Resolution", "Status", "Mean ms", "Images/s", "Peak memory", "GFLOP/forward",
                      "TFLOP/s", "MFU / accuracy"], rows, "dinov3-sweep") + images)


def scale_html(report: Mapping[str, Any]) -> str:
    """HTML for the report's sections sweep, utilisation, compile, determinism and soak ('' when none ran)."""
    sections = report.get("sections") or {}
    parts = []
    if sections.get("sweep"):
        parts.append(_sweep(sections["sweep"]))
    utilisation = sections.get("utilisation") or {}
    if utilisation:
        peak = utilisation.get("peak") or {}
        parts.append(f'<p class="dinov3-note">FLOPs per forward (torch.utils.flop_counter): '
                     f'{esc(utilisation.get("flops_per_forward"))}; peak {esc(fmt(peak.get("tflops"), "sci"))} '
                     f'TFLOP/s ({esc(peak.get("source"))})</p>')
    compiled = sections.get("compile")
    if compiled:
        text = (f"skipped: {compiled['skipped']}" if "skipped" in compiled else
                f"backend {compiled['backend']}, compile {compiled['compile_seconds']:.1f} s, speedup vs eager "
                f"{fmt(compiled.get('speedup_vs_eager'), 'speedup')} "
                f"(eager and compiled {compiled['eager']['samples']} "
                f"timed runs each: --num-runs, at most {COMPILE_RUNS_CAP}), relative error "
                f"{fmt(compiled['accuracy'].get('relative_error'), 'percent')}")
        parts.append(f'<p class="dinov3-note">Graph mode (torch.compile): {esc(text)}</p>')
    for name in ("determinism", "soak"):
        for card, data in (sections.get(name) or {}).items():
            summary = ", ".join(f"{key.replace('_', ' ')} {_value(key, value)}" for key, value in data.items())
            parts.append(f'<p class="dinov3-note">{esc(name.capitalize())} on {esc(card)}: {esc(summary)}</p>')
    return "".join(parts)
