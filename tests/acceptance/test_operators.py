"""Operator-level drift: every torch API call on the device against the same call in the CPU reference
(--ops; by default only when a probe point drifts)."""

import pytest

pytestmark = pytest.mark.operators


def test_operators_line_up(operator_drift, device):
    """Both sides made the same calls: a device that takes another code path is compared where it can be."""
    assert not operator_drift.unmatched_device and not operator_drift.unmatched_reference, (
        f"operators on {device.label} without a CPU reference call of the same module and API: "
        f"{list(operator_drift.unmatched_device)[:5]}; reference calls the device did not make: "
        f"{list(operator_drift.unmatched_reference)[:5]}")


def test_no_operator_goes_wrong(operator_drift, device, run_config):
    first = operator_drift.first_error
    assert first is None, (f"operators on {device.label} ({run_config.dtype}) vs CPU float32: "
                           f"{operator_drift.localisation()}")
