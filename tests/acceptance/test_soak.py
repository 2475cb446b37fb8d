"""Soak: --soak-seconds of continuous forwards without NaN/Inf, drift or allocated-memory growth."""

from __future__ import annotations

import math

import pytest
import torch

from acceptance.sections import SoakResult
from acceptance.soak import soak
from fixtures.features.benchmarking import fail_under_xdist

pytestmark = pytest.mark.soak


def test_soak(pytestconfig, card_device, card_model, pixel_values, run_config, results):
    if run_config.soak_seconds == 0:
        pytest.skip("--soak-seconds 0: the soak run is off (pass --soak-seconds S to run it)")
    fail_under_xdist(pytestconfig)
    inputs = pixel_values.to(card_device.torch_device, getattr(torch, run_config.dtype))

    def forward() -> torch.Tensor:
        with torch.no_grad():
            return card_model(pixel_values=inputs).last_hidden_state

    index = card_device.index or 0
    report = SoakResult(**soak(forward, run_config.soak_seconds, synchronize=card_device.synchronize,
                               memory=lambda: card_device.backend.memory_allocated(index)))
    max_drift = run_config.thresholds.soak_max_drift
    max_growth = run_config.thresholds.soak_max_memory_growth_bytes
    results.soak[card_device.label] = report
    problems = []
    if report.first_nonfinite_iteration is not None:
        problems.append(f"NaN/Inf in the output at iteration {report.first_nonfinite_iteration}")
    if not (math.isfinite(report.max_drift) and report.max_drift <= max_drift):
        problems.append(f"drift from the first output {report.max_drift:.3e} (allowed <= {max_drift}, "
                        f"first over at iteration {report.first_drift_iteration})")
    growth = report.memory_growth_bytes
    if growth is not None and growth > max_growth:
        problems.append(f"allocated memory grew by {growth} bytes (allowed <= {int(max_growth)})")
    assert report.iterations > 0, f"no iteration finished in {run_config.soak_seconds} s"
    assert not problems, f"soak on {card_device.label} for {run_config.soak_seconds} s, " \
                         f"{report.iterations} iterations: " + "; ".join(problems)
