"""The profile part of the HTML summary: where the CPU reference came from, and where the forward's time goes."""

from __future__ import annotations

from typing import Any, Mapping

from .markup import esc, fmt, num, table


def _reference(reference: Mapping[str, Any]) -> str:
    rows = [[esc(use.get("kind")), esc(use.get("source")), esc(use.get("reason") or ""),
             esc(use.get("from_run") or ""), num(f"{float(use.get('seconds') or 0.0) * 1000:.1f}"),
             f"<code>{esc(str(use.get('digest', ''))[:16])}</code>"]
            for use in reference.get("entries") or []]
    return (f"<h3>CPU reference</h3><p class=\"dinov3-note\">{esc(reference.get('summary', ''))}; cache "
            f"{esc(reference.get('mode'))} at <code>{esc(reference.get('cache_dir'))}</code></p>"
            + table(["Part", "Source", "Why computed", "Run", "ms", "Key (sha256)"], rows, "dinov3-reference"))


def _share(value: Any) -> str:
    return f"{float(value) * 100:.1f}%" if isinstance(value, (int, float)) else ""


def _percent(value: Any) -> str:
    return num(_share(value))


def _operator_rows(rows: Any) -> list[list[str]]:
    return [[f"<code>{esc(row['name'])}</code>", esc(row["kind"]), num(str(row["calls"])),
             num(f"{row['total_ms']:.3f}"), num(f"{row['mean_ms']:.4f}"), _percent(row["share"])]
            for row in rows or []]


def _side(name: str, side: Mapping[str, Any]) -> str:
    title = {"device": "Device under test", "cpu": "CPU reference"}[name]
    head = f"<h4>{title}: {esc(side.get('device'))}, by {esc(side.get('time_basis'))}</h4>"
    if side.get("error") and not side.get("operators"):
        return head + f'<p class="dinov3-note">no operator profile: {esc(side["error"])}</p>'
    notes = [f"profiled forward {fmt(side.get('forward_ms'))} ms (wall, under the profiler); the "
             f"{esc(side.get('operator_count'))} operators' self times sum to {fmt(side.get('operators_ms'))} ms"
             + (f" ({_share(side['coverage'])} of the forward)" if isinstance(side.get("coverage"), float) else "")]
    if side.get("trace"):
        notes.append(f'trace: <a href="{esc(side["trace"])}">{esc(side["trace"])}</a> (Chrome trace: '
                     "chrome://tracing or ui.perfetto.dev; a folder: the vendor's profiler output)")
    if side.get("error"):
        notes.append(esc(side["error"]))
    kinds = [[esc(kind), num(f"{value['total_ms']:.3f}"), _percent(value["share"])]
             for kind, value in (side.get("kinds") or {}).items()]
    html = (head + "".join(f'<p class="dinov3-note">{note}</p>' for note in notes)
            + table(["Operator", "Kind", "Calls", "Total ms", "Mean ms", "Share"],
                     _operator_rows(side.get("operators")),
                     f"dinov3-profile-{name}")
            + table(["Kind", "Total ms", "Share"], kinds, f"dinov3-profile-kinds-{name}"))
    if name == "device":
        only = side.get("device_only") or []
        html += ("<p class=\"dinov3-note\"><b>Device-only operators</b> (format conversions, host-device copies, "
                 "synchronisations inside the forward; what a vendor fixes): "
                 + (", ".join(f"<code>{esc(row['name'])}</code> {_share(row['share'])}" for row in only) or "none")
                 + "</p>")
    return html


def _profile(profile: Mapping[str, Any]) -> str:
    from . import plots_profile

    parts = [f"<h3>Operator profile (batch {esc(profile.get('batch_size'))}, one profiled forward per side after "
             "a warm-up, outside the timed runs)</h3>"]
    for name in ("device", "cpu"):
        if profile.get(name):
            parts.append(_side(name, profile[name]))
    png = plots_profile.kind_shares_png(profile)
    if png:
        parts.append(f'<img class="dinov3-plot" alt="Operator kinds" src="data:image/png;base64,{png}"/>')
    return "".join(parts)


def profile_html(report: Mapping[str, Any]) -> str:
    """HTML for the report's sections reference and profile ('' when neither was recorded)."""
    sections = report.get("sections") or {}
    parts = []
    if sections.get("reference"):
        parts.append(_reference(sections["reference"]))
    if sections.get("profile"):
        parts.append(_profile(sections["profile"]))
    return "".join(parts)
