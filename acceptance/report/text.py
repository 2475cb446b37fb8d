"""The terminal summary: what was compared, the figures, and whether the run can sign anything off."""

from __future__ import annotations

from ..builtin import ARCHITECTURE_ONLY_LABEL
from ..results import RunResults
from ..thresholds import Thresholds


def summary_lines(results: RunResults, thresholds: Thresholds, dtype: str) -> list[str]:
    device = results.device
    lines = [f"model:  {results.checkpoint.get('path', '?')}"]
    if results.architecture_only:
        lines.append(f"        {ARCHITECTURE_ONLY_LABEL.upper()} (built-in seeded random weights)")
    lines.append(f"device: {device.get('device', '?')} ({device.get('name', '?')}), dtype {dtype}; "
                 "reference: cpu float32")
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
    lines += problem_lines(results)
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
