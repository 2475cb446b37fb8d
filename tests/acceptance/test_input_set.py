"""Accuracy beyond the one image: each input of the set (fixtures/features/input_set.py), every output on the device
against the CPU float32 reference, under the run's accuracy limits."""

import pytest

from fixtures.features.input_set import INPUTS

pytestmark = pytest.mark.input_set


@pytest.mark.parametrize("input_name", list(INPUTS))
def test_accuracy_on_input(input_name, input_set_rows, run_config, device, record_property):
    rows = input_set_rows[input_name]
    for row in rows:
        record_property(f"{row.comparison.name}.relative_error", row.comparison.relative_error)
        record_property(f"{row.comparison.name}.cosine", row.comparison.cosine)
    failed = [row for row in rows if not row.passed]
    limits = run_config.thresholds.accuracy_for(run_config.dtype)
    assert not failed, "; ".join(
        f"{row.comparison.name} of the {input_name} input ({INPUTS[input_name][0]}) on {device.label} "
        f"({run_config.dtype}) vs CPU float32: "
        + (f"{row.comparison.nonfinite_message()}; NaN/Inf never passes" if not row.comparison.finite else
           f"relative error {row.comparison.relative_error:.4%} (allowed < {limits.max_relative_error:.4%}), "
           f"cosine {row.comparison.cosine:.6f} (allowed >= {limits.min_cosine})")
        + f" ([accuracy.{run_config.dtype}] in {run_config.thresholds_path})" for row in failed)
