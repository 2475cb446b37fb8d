"""HTML fragments for the acceptance report, rendered from the report dict (benchmark_report.json).

pytest-html inserts these strings unescaped, so every value that came from
outside the code - paths, device names, test ids, failure messages,
environment values - goes through ``esc``. Numbers are formatted here, with
their units; a value that was not measured shows as "n/a" with the reason.
"""

from __future__ import annotations

import base64
from typing import Any, Callable, Iterable, Mapping

from .feature_section import FeatureSection
from .html_profile import profile_html
from .html_scale import scale_html
from .html_server import server_html
from .markup import esc, fmt, num, number, pass_cell, table
from .verdict import FAIL, NOT_VALID, PASS

BANNER_CLASS = {PASS: "dinov3-pass", FAIL: "dinov3-fail", NOT_VALID: "dinov3-not-valid"}

#: pytest-html's page, reordered: title, date, then the verdict and figures, the test list, the environment
LAYOUT = """
body { display: flex; flex-direction: column; }
#title { order: -3; } body > p:first-of-type { order: -2; } .summary, #results-table { order: -1; }
"""

#: the look of the report's own parts (also used by the fleet page)
COMPONENTS = """
.dinov3 { color: #222; font-size: 13px; margin: 8px 0 14px; }
.dinov3 h3 { margin: 14px 0 6px; font-size: 15px; }
.dinov3-banner { padding: 14px 18px; border-radius: 4px; color: #fff; margin: 6px 0 10px; }
.dinov3-banner .dinov3-status { font-size: 28px; font-weight: bold; letter-spacing: 1px; }
.dinov3-banner ul { margin: 6px 0 0; padding-left: 20px; }
.dinov3-pass { background: #2e7d32; } .dinov3-fail { background: #c62828; }
.dinov3-not-valid { background: #e65100; }
table.dinov3-table { border-collapse: collapse; margin: 4px 0 8px; }
table.dinov3-table th, table.dinov3-table td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
table.dinov3-table th { background: #f0f0f0; }
table.dinov3-table td.num { text-align: right; font-family: monospace; }
.dinov3-ok { color: #2e7d32; font-weight: bold; } .dinov3-bad { color: #c62828; font-weight: bold; }
.dinov3-warn { color: #e65100; font-weight: bold; }
.dinov3-note { color: #555; font-size: 12px; margin: 2px 0; }
.dinov3 img { max-width: 100%; border: 1px solid #ddd; margin: 4px 8px 4px 0; }
.dinov3 code { font-size: 11px; word-break: break-all; }
"""


def verdict_banner(report: Mapping[str, Any]) -> str:
    verdict = report["verdict"]
    status = verdict["status"]
    reasons = "".join(f"<li>{esc(reason)}</li>" for reason in verdict["reasons"])
    counts = ", ".join(f"{count} {esc(outcome)}" for outcome, count in verdict["counts"].items()) or "no checks"
    return (f'<div class="dinov3-banner {BANNER_CLASS[status]}" id="dinov3-verdict">'
            f'<div class="dinov3-status">{esc(status)}</div>'
            f'<div>{esc(report["title"])} &middot; checks: {counts}</div>'
            + (f"<ul>{reasons}</ul>" if reasons else "") + "</div>")


def hardware_facts(report: Mapping[str, Any]) -> str:
    """Which paths ran on real hardware: the device under test, and the CPU reference."""
    device, model = report["device"], report["model"]
    precision = report["precision"]
    if device.get("simulation"):
        where = (f"<b>{esc(device['device'])}</b> - {esc(device['name'])} ({esc(device['count'])} visible): "
                 f"<b>{esc(device['simulation'])}</b>; no hardware ran the device model")
    elif device.get("accelerator"):
        where = (f"<b>{esc(device['device'])}</b> - {esc(device['name'])} ({esc(device['count'])} visible): "
                 "a real accelerator ran the device model")
    elif device.get("kind") == "cpu":
        where = (f"<b>cpu</b> - {esc(device['name'])}: <b>no accelerator ran in this session</b>; "
                 "every figure is from the host CPU")
    else:
        where = "<b>no device was resolved</b>: the session ended before the device under test was opened"
    weights = ("<b>built-in seeded random weights (architecture-only, not valid for sign-off)</b>"
               if model.get("architecture_only") else f"weights from <code>{esc(model.get('path', '?'))}</code>")
    return (f'<p class="dinov3-note">Device under test: {where}. Device model dtype {esc(precision["dtype"])}; '
            f'reference: CPU float32 on the host. Model: DINOv3 {esc(model["architecture"])}, {weights}.</p>')


def accuracy_table(report: Mapping[str, Any]) -> str:
    accuracy = report["accuracy"]
    if not accuracy["tensors"]:
        return ('<h3>Accuracy vs CPU float32 reference</h3>'
                '<p class="dinov3-note">not measured: no accuracy check ran in this session</p>')
    rows = [[esc(name), esc(entry["shape"]), num(fmt(entry["max_diff"], "sci")), num(fmt(entry["mean_diff"], "sci")),
             num(fmt(entry["relative_error"], "percent")), num(fmt(entry["cosine"], "cosine")),
             pass_cell(entry["pass"])]
            for name, entry in accuracy["tensors"].items()]
    return ("<h3>Accuracy vs CPU float32 reference</h3>"
            + table(["Tensor", "Shape", "Max Diff", "Mean Diff", "Relative Error", "Cosine", "Pass"], rows,
                     "dinov3-accuracy")
            + f'<p class="dinov3-note">pass: {esc(accuracy["criterion"])} ({esc(accuracy["definition"])}); '
              f'device dtype {esc(accuracy["dtype"])}</p>')


LATENCY_ROWS = (("mean_ms", "mean", "ms"), ("min_ms", "min", "ms"), ("max_ms", "max", "ms"),
                ("p50_ms", "p50", "ms"), ("p90_ms", "p90", "ms"), ("p99_ms", "p99", "ms"),
                ("std_ms", "std", "ms"), ("cold_ms", "cold (first call)", "ms"),
                ("event_mean_ms", "mean, device events", "ms"), ("throughput_img_per_sec", "throughput", "rate"))


#: the keys of a [[latency]] entry that choose it rather than limit anything
LATENCY_SELECTORS = ("device", "dtype", "batch_size", "stale_fraction")


def latency_table(report: Mapping[str, Any]) -> str:
    performance = report["performance"]
    if not performance["measured"]:
        return ("<h3>Latency</h3>"
                f'<p class="dinov3-note">not measured: {esc(performance.get("reason", ""))}</p>')
    sides = [(side, performance.get(side)) for side in ("cpu", "device") if performance.get(side)]
    header = ["Metric"] + [f"{'CPU reference' if side == 'cpu' else 'Device'}: {esc(stats.get('device', side))} "
                           f"{esc(stats.get('dtype', ''))}" for side, stats in sides]
    rows, notes = [], []
    for field, label, kind in LATENCY_ROWS:
        if not any(field in stats for _, stats in sides):
            continue
        rows.append([esc(label)] + [num(fmt(stats.get(field), kind)) for _, stats in sides])
    if performance.get("speedup") is not None or len(sides) == 2:
        rows.append(["speedup (CPU mean / device mean)"] + [num("-")] * (len(sides) - 1)
                    + [num(fmt(performance.get("speedup"), "speedup"))])
    for side, stats in sides:
        for field, reason in (stats.get("unavailable") or {}).items():
            notes.append(f"{esc(side)} {esc(field)} n/a: {esc(reason)}")
        runs = [f"{label} {stats[key]}" if key == "batch_size" else f"{stats[key]} {label}" for key, label in
                (("num_runs", "timed runs"), ("warmup", "warm-up runs"), ("batch_size", "batch size"))
                if stats.get(key) is not None]
        if runs:
            notes.append(f"{esc(side)}: " + esc(", ".join(runs)))
    thresholds = performance.get("thresholds")
    if thresholds:  # LatencyLimits.to_dict(): the entry's selectors, then its limits
        limits = ", ".join(f"{key} = {value}" for key, value in thresholds.items() if key not in LATENCY_SELECTORS)
        entry = ", ".join(f"{key} = {thresholds[key]}" for key in LATENCY_SELECTORS
                          if thresholds.get(key) is not None)
        notes.append("limits: " + esc(limits) + (f" ([[latency]] entry {esc(entry)})" if entry else ""))
    return ("<h3>Latency (synchronized, per forward pass)</h3>" + table(header, rows, "dinov3-latency")
            + "".join(f'<p class="dinov3-note">{note}</p>' for note in notes))


def latency_plots(report: Mapping[str, Any]) -> str:
    from . import (
        plots,  # matplotlib: imported when a plot is drawn, not when the suite starts
    )

    performance = report["performance"]
    if not performance["measured"]:
        return ""
    images = [(name, png) for name, png in
              (("latency distribution", plots.latency_distribution_png(performance)),
               ("CPU vs device", plots.cpu_vs_device_png(performance))) if png]
    return "".join(f'<img class="dinov3-plot" alt="{esc(name)}" src="data:image/png;base64,{png}"/>'
                   for name, png in images)


def diagnosis_table(report: Mapping[str, Any]) -> str:
    """Layer-wise drift from the diagnosis section, when a diagnosis ran."""
    diagnosis = report["sections"].get("diagnosis")
    if not diagnosis:
        return ""
    parts = ["<h3>Numerical diagnosis</h3>"]
    precision = diagnosis.get("precision")
    if precision:
        parts.append('<p class="dinov3-note">precision: '
                     + esc(", ".join(f"{key} = {value}" for key, value in precision.items())) + "</p>")
    layers = diagnosis.get("layers") or []
    if layers:
        rows = [[esc(layer.get("name", "?")), num(fmt(layer.get("relative_error"), "percent")),
                 num(fmt(layer.get("cosine"), "cosine")), num(fmt(layer.get("max_abs_diff"), "sci")),
                 num(fmt(layer.get("frac_rel_err_below_0.1pct"), "fraction")),
                 num(fmt(layer.get("frac_rel_err_below_0.5pct"), "fraction"))] for layer in layers]
        parts.append(table(["Layer", "Relative Error", "Cosine", "Max Abs Diff", "Elements < 0.1 % rel. err",
                             "Elements < 0.5 % rel. err"], rows, "dinov3-diagnosis"))
        from . import plots_diagnosis  # matplotlib, only when a plot is drawn

        png = base64.b64encode(plots_diagnosis.layer_drift_png(diagnosis)).decode("ascii")
        parts.append(f'<img class="dinov3-plot" alt="error against depth" src="data:image/png;base64,{png}"/>')
    fingerprint = diagnosis.get("fingerprint")
    if fingerprint:
        distances = ", ".join(f"{label}: {fmt(value, 'sci')}"
                              for label, value in (fingerprint.get("distances") or {}).items())
        parts.append(f'<p class="dinov3-note">error fingerprint closest to {esc(fingerprint.get("closest"))}'
                     + (f" (distances {esc(distances)})" if distances else "") + "</p>")
    return "".join(parts)


def provenance_table(report: Mapping[str, Any]) -> str:
    model, run, image = report["model"], report["run"], report["input"]["image"] or {}
    weights = "<br/>".join(f"{esc(name)}: <code>{esc(digest)}</code>"
                           for name, digest in (model.get("weights_sha256") or {}).items()) or "n/a"
    files = "<br/>".join(f"{esc(name)}: <code>{esc(path)}</code>" for name, path in run["files"].items()) or "n/a"
    rows = [
        ("Model", f"{esc(model['name'])} ({esc(model['architecture'])}, {esc(model.get('model_type', '?'))}) "
                  f"<code>{esc(model.get('path', '?'))}</code>"),
        ("Architecture-only", "<b>yes: seeded random weights, not valid for sign-off</b>"
                              if model.get("architecture_only") else "no"),
        ("config.json sha256", f"<code>{esc(model.get('config_sha256', 'n/a'))}</code>"),
        ("Weights sha256", weights),
        ("Input image", f"{esc(image.get('source', 'n/a'))}; pixels sha256 "
                        f"<code>{esc(image.get('pixel_sha256', 'n/a'))}</code>"),
        ("Preprocessing", esc(report["input"]["preprocessor"] or "n/a")),
        ("Thresholds", f"<code>{esc(report['thresholds']['path'])}</code> sha256 "
                       f"<code>{esc(report['thresholds']['sha256'] or 'n/a')}</code>"),
        ("Precision settings", esc(", ".join(f"{k} = {v}" for k, v in report["precision"]["settings"].items())
                                   or "defaults")),
        ("Run", f"{esc(run['id'])} on {esc((run['host'] or {}).get('hostname', '?'))}: {esc(run['started_at'])} to "
                f"{esc(run['finished_at'] or 'not finished')} (pytest exit status {esc(run['exit_status'])})"),
        ("Report files", files),
    ]
    return "<h3>Provenance</h3>" + table(["What", "Value"], [[esc(name), value] for name, value in rows],
                                           "dinov3-provenance")


SECTIONS = (verdict_banner, server_html, hardware_facts, accuracy_table, latency_table, latency_plots,
            profile_html, diagnosis_table, scale_html, provenance_table)


def _section(render, report: Mapping[str, Any]) -> str:
    """One part of the summary. A part that cannot be drawn says so in the report instead of
    taking the whole report down: a sign-off document must survive a bug in one of its tables."""
    try:
        return render(report)
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        return (f'<p class="dinov3-note dinov3-render-error">{esc(render.__name__)} could not be drawn: '
                f"{esc(type(error).__name__)}: {esc(error)} (the JSON report holds the data)</p>")


def summary_html(report: Mapping[str, Any], features: Iterable[FeatureSection] = ()) -> str:
    """Everything the report adds above pytest-html's results table, in reading order: each feature's part after
    the part it names (``html_after``), at the end if that part is not here."""
    after: dict[str, list[Callable[[Mapping[str, Any]], str]]] = {}
    for feature in features:
        if feature.html is not None:
            place = feature.html_after if feature.html_after in {render.__name__ for render in SECTIONS} else ""
            after.setdefault(place, []).append(feature.html)
    renders = [render for part in SECTIONS for render in (part, *after.get(part.__name__, ()))] + after.get("", [])
    return (f"<style>{LAYOUT}{COMPONENTS}</style>" + '<div class="dinov3" id="dinov3-summary">'
            + "".join(_section(render, report) for render in renders) + "</div>")


def metrics_extra(metrics: Mapping[str, Any]) -> str:
    """A test's recorded figures (its user properties), for the extras of its results-table row."""
    def text(value: Any) -> str:
        figure = number(value)
        return f"{figure:.6g}" if figure is not None and not isinstance(value, int) else str(value)

    rows = [[esc(name), num(esc(text(value)))] for name, value in metrics.items()]
    return '<div class="dinov3 dinov3-metrics">' + table(["Figure", "Value"], rows) + "</div>"
