"""The terminal summary: what was compared, the figures, and whether the run can sign anything off.

Given the live RunResults, it reads the section types (acceptance/sections.py), not their JSON.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..builtin import ARCHITECTURE_ONLY_LABEL
from ..results import RunResults
from ..sections import DiagnosisSection, DtypeMatrixRow, LatencySection, LatencySide
from ..thresholds import Thresholds
from ..timing import PERCENTILES, min_samples_for

if TYPE_CHECKING:
    pass


def summary_lines(results: RunResults, thresholds: Thresholds, dtype: str) -> list[str]:
    device = results.device
    lines = [f"model:  {results.checkpoint.get('path', '?')}"]
    if results.architecture_only:
        lines.append(f"        {ARCHITECTURE_ONLY_LABEL.upper()} (built-in seeded random weights)")
    lines.append(f"device: {device.get('device', '?')} ({device.get('name', '?')}), dtype {dtype}; "
                 "reference: cpu float32")
    if device.get("simulation"):
        lines.append(f"        {str(device['simulation']).upper().split(':')[0]}: no hardware ran the device model")
    if results.checkpoint.get("weights_format") == "pickle":
        lines.append("        weights read from a pickle (pytorch_model.bin), allowed by --allow-pickle")
    if results.preprocessor:
        lines.append(f"input:  {results.image.get('source', '?')} via {results.preprocessor}")
    if results.image.get("conversions"):
        lines.append(f"        image conversions: {'; '.join(results.image['conversions'])}")
    for side in ("reference", "device"):
        for name, summary in results.outputs.get(side, {}).items():
            lines.append(f"{side:>9} {name}: shape {summary['shape']} {summary['dtype']}, "
                         f"mean {summary['mean']:+.6f}, std {summary['std']:.6f}")
    limits = thresholds.accuracy_for(dtype)
    for name, comparison in results.comparisons.items():
        lines.append(f"accuracy {name}: max_diff {comparison.max_abs_diff:.3e}, mean_diff "
                     f"{comparison.mean_abs_diff:.3e}, rel_err {comparison.relative_error:.4%} "
                     f"(< {limits.max_relative_error:.2%}), cosine {comparison.cosine:.6f} "
                     f"(>= {limits.min_cosine})")
    if results.reference.recorded:
        lines.append(results.reference.summary())
    lines += latency_lines(results.latency)
    lines += diagnosis_lines(results.diagnosis)
    lines += server_lines(results)
    lines += problem_lines(results)
    return lines


def _figure(value: Any, template: str) -> str:
    return "n/a" if value is None else template.format(value)


def server_lines(results: RunResults) -> list[str]:
    """A whole-server run: how the cards were timed, then one line per card (figures, the vendor tool's view)."""
    server = results.server
    if server is None:
        return []
    spread = server.p50_spread
    at_once = f", {server.timed_at_once} at a time" if server.timing_mode == "parallel" and server.timed_at_once else ""
    lines = [f"server {server.spec}: {len(server.listed)} card(s) timed {server.timing_mode}{at_once}"
             + (f", p50 spread {spread:.1%} (slowest / fastest - 1)" if spread is not None else "")
             + (f"; {server.state_note}" if server.state_note else "")]
    for row in server.rows():
        stats, state = row.latency, row.state_after or row.state_before
        determinism = results.determinism.get(row.card)
        peak = row.peak_memory_bytes / 2 ** 20 if row.peak_memory_bytes is not None else None
        parts = [f"  {row.card:<8} {row.verdict:<7}",
                 "p50 " + _figure(stats.p50_ms if stats else None, "{:.3f} ms"),
                 _figure(stats.throughput_img_per_s if stats else None, "{:.2f} img/s"),
                 "peak " + _figure(peak, "{:.1f} MiB"),
                 "deterministic" if determinism is not None and determinism.bitwise_identical
                 else "determinism " + ("n/a" if determinism is None else f"spread {determinism.max_abs_spread:.3e}")]
        if row.sweep is not None:
            parts.append(f"sweep {sum(point.ok for point in row.sweep.points)}/{len(row.sweep.points)} points")
        if state is not None:
            parts.append(f"health {state.health or 'n/a'}, ECC {_figure(state.ecc_uncorrectable, '{}')}, "
                         f"driver {state.driver or 'n/a'}, firmware {state.firmware or 'n/a'}")
        lines.append("; ".join(parts))
    return lines


def _settings_text(settings: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in settings.items()) or "none reported"


def diagnosis_lines(section: DiagnosisSection) -> list[str]:
    """Precision mode and settings, the effective-precision fingerprint and where drift begins (issue 5)."""
    lines = []
    precision = section.precision
    if precision:
        lines.append(f"precision: {precision.mode} ({_settings_text(precision.settings)})")
    fingerprint = section.fingerprint
    if fingerprint:
        distances = ", ".join(f"{name} {value:.2f}" for name, value in fingerprint.distances.items())
        lines.append(f"fingerprint: {fingerprint.verdict} (distance in decades: {distances})")
    drift = section.drift
    if drift is not None and drift.rows:
        first = drift.first_drifting
        limit = drift.limits.max_relative_error
        if first is None:
            worst = drift.worst
            lines.append(f"layers: no probe point over its limit (< {limit:.2%}); largest rel_err "
                         f"{worst.relative_error:.4%} at {worst.name}")
        else:
            lines.append(f"layers: drift begins at {first.name}: rel_err {first.relative_error:.4%} "
                         f"(< {limit:.2%} allowed), cosine {first.cosine:.6f}")
    return lines


def layer_table_lines(section: DiagnosisSection) -> list[str]:
    """The per-layer table: one row per probe point, with the emulated profile closest to the device's."""
    fingerprint = section.fingerprint
    closest = fingerprint.closest if fingerprint else None
    expected = fingerprint.profiles.get(closest) if fingerprint and closest else None
    header = f"{'probe point':<12} {'rel_err':>10} {'cosine':>10} {'max|diff|':>10} {'<0.1%':>8} {'<0.5%':>8}"
    if expected and closest:
        header += f" {closest + ' emul.':>16}"
    lines = [header]
    first = section.first_drifting_layer
    for index, row in enumerate(section.drift.rows if section.drift else ()):
        line = (f"{row.name:<12} {row.relative_error:>10.3e} {row.cosine:>10.6f} {row.max_abs_diff:>10.3e} "
                f"{row.frac_rel_err_below_0_1pct:>8.2%} {row.frac_rel_err_below_0_5pct:>8.2%}")
        if expected:
            line += f" {expected[index]:>16.3e}"
        if row.name == first:
            line += "  <- drift begins"
        lines.append(line)
    return lines


def dtype_matrix_lines(rows: list[DtypeMatrixRow]) -> list[str]:
    """One line per dtype and output: error, cosine, the dtype's own limits, verdict and first drifting layer."""
    lines = [f"{'dtype':<9} {'tensor':<18} {'rel_err':>9} {'allowed':>8} {'cosine':>9} {'verdict':>7}  first drifting"]
    for row in rows:
        lines.append(f"{row.dtype:<9} {row.comparison.name:<18} {row.comparison.relative_error:>9.4%} "
                     f"{'<' + format(row.limits.max_relative_error, '.2%'):>8} {row.comparison.cosine:>9.6f} "
                     f"{'PASS' if row.passed else 'FAIL':>7}  {row.first_drifting_layer or '-'}")
    return lines


#: rows of the latency table: (LatencyStats field, decimals)
LATENCY_ROWS = (("cold_ms", 3), ("mean_ms", 3), ("min_ms", 3), ("max_ms", 3), ("p50_ms", 3), ("p90_ms", 3),
                ("p99_ms", 3), ("std_ms", 3), ("throughput_img_per_s", 2))
EVENT_ROWS = (("event_mean_ms", 3), ("event_p50_ms", 3))


def _cell(side: LatencySide | None, name: str, decimals: int, notes: dict[str, str]) -> str:
    if side is None:
        return "not measured"
    value = getattr(side.stats, name)
    if value is None:
        reason = side.stats.unavailable.get(name)
        if reason is None:
            return "-"
        flag = "--cpu-runs" if side.side == "cpu" else "--num-runs"  # the option that sets this side's runs
        hint = f" (pass {flag} {min_samples_for(PERCENTILES[name])})" if name in PERCENTILES else ""
        marker = notes.setdefault(f"{name}: {reason}{hint}", f"[{len(notes) + 1}]")
        return f"unavailable {marker}"
    return f"{value:.{decimals}f}" if math.isfinite(value) else str(value)


def latency_lines(section: LatencySection) -> list[str]:
    """The CPU and device latency table, in the seed's layout (metric rows, one column per side)."""
    cpu, device = section.cpu, section.device
    if cpu is None and device is None:
        return []
    first = cpu or device
    headers = {"cpu": f"CPU ({cpu.name}, {cpu.dtype})" if cpu else "CPU",
               "device": f"device {device.device} ({device.name}, {device.dtype})" if device else "device"}
    assert first is not None
    runs = {side.num_runs for side in (cpu, device) if side is not None}
    counted = (f"{first.num_runs} timed runs" if len(runs) == 1 or cpu is None or device is None else
               f"CPU {cpu.num_runs} timed runs, device {device.num_runs} timed runs")
    lines = ["", f"latency: batch {first.stats.batch_size}, {counted} after a timed cold call "
                 f"and {first.warmup} untimed warm-up runs; {first.stats.timing_method}"]
    rows = list(LATENCY_ROWS)
    if any(side and side.stats.event_samples for side in (cpu, device)):
        rows += EVENT_ROWS
    notes: dict[str, str] = {}
    table = [("metric", headers["cpu"], headers["device"])]
    for name, decimals in rows:
        table.append((name, _cell(cpu, name, decimals, notes), _cell(device, name, decimals, notes)))
    value = section.speedup
    table.append(("speedup (CPU mean / device mean)", "-",
                  "-" if value is None else (f"{value:.2f}x" if math.isfinite(value) else str(value))))
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        lines.append(f"  {row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}")
    lines += [f"  {marker} {text}" for text, marker in notes.items()]
    if device and device.device == "cpu":
        lines.append("  the device under test is the CPU: both columns ran on the host CPU "
                     f"({device.torch_threads} torch threads); the speedup compares the CPU with itself")
    limits = section.thresholds
    if limits:
        shown = ", ".join(f"{key} {value}" for key, value in limits.limits.items())
        lines.append(f"  limits: [[latency]] device {limits.device!r} {limits.dtype} "
                     f"batch {limits.batch_size}: {shown}")
    elif device:
        lines.append(f"  limits: no [[latency]] entry matches {device.name!r} {device.dtype} "
                     f"batch {device.stats.batch_size}: reported, not judged")
    return lines


def problem_lines(results: RunResults) -> list[str]:
    """Each check that failed or errored, with its one-line reason: what went wrong, in one place."""
    problems = [check for check in results.checks.values() if check.outcome in ("failed", "error")]
    if not problems:
        return []
    lines = [f"problems: {len(problems)} of {len(results.checks)} checks did not pass"]
    for check in problems:
        reason = check.message.splitlines()[0] if check.message else "(no message)"
        lines.append(f"  {check.outcome.upper()} {check.nodeid}: {reason}")
    return lines
