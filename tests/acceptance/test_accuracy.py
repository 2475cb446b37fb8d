"""Each device output against the CPU float32 reference: relative error and cosine, limits from the thresholds file."""

import pytest

from acceptance.metrics import compare, less_than
from acceptance.outputs import OUTPUT_NAMES
from fixtures.features.diagnosis import drift_hint

pytestmark = pytest.mark.accuracy


def _rejection(comparison, limits, what: str, source: str) -> str:
    """Why ``limits.accepts(comparison)`` is False: the first part of the rule the comparison breaks."""
    if not comparison.finite:
        return f"{what}: {comparison.nonfinite_message()}; NaN/Inf never passes"
    if not less_than(comparison.relative_error, limits.max_relative_error):
        return (f"{what}: relative error mean|dev-ref|/mean|ref| = {comparison.relative_error:.4%}, "
                f"allowed < {limits.max_relative_error:.4%} ({source}); max |diff| {comparison.max_abs_diff:.3e}")
    return f"{what}: cosine similarity {comparison.cosine:.6f}, allowed >= {limits.min_cosine} ({source})"


@pytest.mark.parametrize("name", OUTPUT_NAMES)
def test_accuracy_vs_cpu_reference(name, reference_outputs, device_outputs, run_config, device, results,
                                   record_property, request, regression):
    comparison = compare(name, reference_outputs[name], device_outputs[name])
    results.record_comparison(device.label, comparison)
    limits = run_config.thresholds.accuracy_for(run_config.dtype)
    for figure, value in (("relative_error", comparison.relative_error),
                          ("max_relative_error", limits.max_relative_error),
                          ("cosine", comparison.cosine), ("min_cosine", limits.min_cosine),
                          ("max_abs_diff", comparison.max_abs_diff), ("mean_abs_diff", comparison.mean_abs_diff)):
        record_property(figure, value)  # shown in the HTML row and the JUnit XML
    what = f"{name} on {device.label} ({run_config.dtype}) vs CPU float32"
    source = f"[accuracy.{run_config.dtype}] in {run_config.thresholds_path}"
    # limits.accepts decides; the message says which part of the rule failed. drift_hint runs only
    # when the assertion fails (an assert's message is evaluated then): it names the first layer over its limits
    assert limits.accepts(comparison), _rejection(comparison, limits, what, source) + drift_hint(request, name)
    check = regression.accuracy(name, comparison.relative_error, what)
    if check is not None and not check.passed:  # --baseline: no drift beyond [regression]
        pytest.fail(check.message, pytrace=False)
