"""The run history and its trend: each run's benchmark_report.json kept under <report dir>/history/.

A trend only mixes runs of the same target - device name, dtype and model
(the sha256 of its weights) - so a line never joins two different cards or
checkpoints; runs of other targets are counted and named as left out.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

from .json_report import copy_atomic
from .markup import esc

HISTORY_FOLDER = "history"


def target_of(report: Mapping[str, Any]) -> tuple[str, str, str]:
    """(device name, dtype, model weights sha256) of a report: what a trend may mix."""
    weights = (report.get("model") or {}).get("weights_sha256") or {}
    sha = ",".join(f"{name}:{digest}" for name, digest in sorted(weights.items())) if isinstance(weights, dict) \
        else str(weights)
    return (str((report.get("device") or {}).get("name")), str((report.get("precision") or {}).get("dtype")), sha)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def point(report: Mapping[str, Any]) -> dict[str, Any]:
    """One run's trend figures: device p50 latency and the relative error per output (None: not measured)."""
    device = (report.get("performance") or {}).get("device") or {}
    tensors = (report.get("accuracy") or {}).get("tensors") or {}
    return {"run_id": (report.get("run") or {}).get("id"), "started_at": (report.get("run") or {}).get("started_at"),
            "p50_ms": _finite(device.get("p50_ms")),
            "relative_error": {name: _finite(t.get("relative_error")) for name, t in tensors.items()}}


def load_history(folder: Path) -> list[dict[str, Any]]:
    """The kept reports, oldest first (file names start with the run's time); unreadable files are skipped
    (a history is a convenience: one bad file must not break a report)."""
    reports = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            reports.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return reports


def keep(report_file: Path, folder: Path, run_id: str, size: int) -> list[Path]:
    """Copy this run's report into the history and drop the oldest beyond ``size``; returns what was dropped."""
    if size <= 0:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    copy_atomic(report_file, folder / f"{run_id}.json")
    files = sorted(folder.glob("*.json"))
    dropped = files[:max(0, len(files) - size)]
    for path in dropped:
        path.unlink()
    return dropped


def trend(history: Iterable[Mapping[str, Any]], current: Mapping[str, Any], last: int) -> dict[str, Any]:
    """The last ``last`` runs (this one included) of this run's target, and how many of other targets were left out."""
    key = target_of(current)
    runs = [report for report in history if (report.get("run") or {}).get("id") != (current.get("run") or {}).get("id")]
    same = [point(report) for report in runs if target_of(report) == key]
    points = (same + [point(current)])[-last:] if last > 0 else [point(current)]
    return {"device_name": key[0], "dtype": key[1], "model_sha256": key[2], "points": points,
            "other_targets_left_out": sum(1 for report in runs if target_of(report) != key)}


def trend_html(data: Mapping[str, Any]) -> str:
    """The trend section of the HTML report (plot when two or more runs match)."""
    points = data["points"]
    note = (f"Runs of device {esc(data['device_name'])}, dtype {esc(data['dtype'])} and the same model weights "
            f"only ({len(points)} run(s), this one last); {data['other_targets_left_out']} kept run(s) of other "
            "targets left out.")
    from . import plots  # matplotlib, only when a plot is drawn

    png = plots.trend_png(points) if len(points) >= 2 else None
    body = f'<img alt="trend" src="data:image/png;base64,{png}">' if png else \
        '<p class="dinov3-note">No trend yet: it needs two or more runs of this target in the history.</p>'
    return (f'<div class="dinov3" id="dinov3-trend"><h3>Trend over the last runs</h3>'
            f'<p class="dinov3-note">{note}</p>{body}</div>')


def nightly_html(section: Mapping[str, Any]) -> str:
    """The nightly part of the HTML report: requirement failures and each figure against the baseline."""
    parts = ['<div class="dinov3" id="dinov3-nightly"><h3>Nightly</h3>']
    if section.get("required_device"):
        parts.append(f'<p class="dinov3-note">Required device: {esc(section["required_device"])}</p>')
    parts += [f'<p class="dinov3-bad">FAILED requirement: {esc(reason)}</p>' for reason in section.get("failures", [])]
    baseline = section.get("baseline")
    if baseline:
        parts.append(f'<p class="dinov3-note">Baseline {esc(baseline["name"])} ({esc(baseline["key"])}, saved '
                     f'{esc(baseline["saved_at"])}, run {esc(baseline["run_id"])})</p>')
        rows = []
        for nodeid, checks in (section.get("regression") or {}).items():
            for check in checks:
                verdict = '<td class="dinov3-ok">PASS</td>' if check["passed"] else '<td class="dinov3-bad">FAIL</td>'
                rows.append(f"<tr><td>{esc(nodeid)}</td><td>{esc(check['figure'])}</td>"
                            f"<td class=\"num\">{check['measured']:.6g}</td>"
                            f"<td class=\"num\">{check['baseline']:.6g}</td>"
                            f"<td class=\"num\">{check['allowed']:.6g}</td>{verdict}</tr>")
        parts.append('<table class="dinov3-table" id="dinov3-regression"><tr><th>Test</th><th>Figure</th>'
                     '<th>Measured</th><th>Baseline</th><th>Allowed</th><th>Result</th></tr>'
                     + "".join(rows) + "</table>")
    saved = section.get("saved_baseline")
    if saved:
        measured = (f' (measured in this run: {esc(", ".join(saved["figures"]))}'
                    + (f'; kept from earlier runs: {esc(", ".join(saved["kept"]))}' if saved.get("kept") else "")
                    + ")") if saved.get("figures") else ""
        parts.append(f'<p class="dinov3-note">Baseline {esc(saved["name"])}: '
                     + (f'saved to {esc(saved["path"])}{measured}' if saved["saved"] else esc(saved["reason"]))
                     + "</p>")
    return "".join(parts) + "</div>"
