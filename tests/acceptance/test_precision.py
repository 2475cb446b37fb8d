"""Precision settings in force, and which arithmetic the device's error profile is consistent with."""

import pytest

from acceptance.fingerprint import CONSISTENT_WITH_DTYPE
from acceptance.metrics import at_most

pytestmark = pytest.mark.precision


def test_precision_settings_in_force(device, run_config, results):
    recorded = results.diagnosis.precision.settings
    now = device.backend.precision_settings()
    required = device.backend.strict_settings()
    unread = sorted(set(required) - set(now))
    assert not unread, (f"{device.label}: the precision switches {unread} (those --precision strict sets) could not "
                        f"be read back from the framework, so the report cannot show whether they are in force; "
                        f"read back: {now}")
    assert now == recorded, (
        f"{device.label}: precision settings changed during the run: recorded at start {recorded}, now {now}; "
        "the report must show what was in force")
    if run_config.precision == "strict":
        wrong = {key: {"in force": now.get(key), "strict requires": value}
                 for key, value in required.items() if now.get(key) != value}
        assert not wrong, (f"--precision strict on {device.label}: settings read back differ from what strict "
                           f"sets: {wrong}")


def test_effective_precision(fingerprint, diagnosis_limits, layer_drift, device, run_config):
    what = (f"per-layer error of {device.label} ({run_config.dtype}, --precision {run_config.precision}) "
            "vs CPU float32")
    allowed = diagnosis_limits.max_fingerprint_distance
    assert at_most(fingerprint.closest_distance, allowed), (
        f"{what} matches no emulated arithmetic: {fingerprint.describe()}; the closest may be at most {allowed} "
        f"decades away ([fingerprint] max_distance_decades in {run_config.thresholds_path}); an error unlike "
        f"any rounding suggests a wrong kernel - {layer_drift.localisation()}")
    if run_config.precision == "strict":
        expected = CONSISTENT_WITH_DTYPE[run_config.dtype]
        assert fingerprint.closest in expected, (
            f"{what}: --precision strict promises {run_config.dtype} arithmetic, but the error is "
            f"{fingerprint.describe()}; expected the closest profile to be {' or '.join(expected)}")
