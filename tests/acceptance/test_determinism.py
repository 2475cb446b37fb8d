"""Determinism on each card: repeated forwards of the same input give identical outputs."""

from __future__ import annotations

import math

import pytest
import torch

from acceptance.sections import DeterminismResult
from acceptance.soak import repeat_spread

pytestmark = pytest.mark.determinism


def test_repeated_forwards_identical(card_device, card_model, pixel_values, run_config, results):
    if run_config.determinism_runs < 2:
        pytest.skip(f"--determinism-runs {run_config.determinism_runs}: at least 2 runs are needed to compare")
    inputs = pixel_values.to(card_device.torch_device, getattr(torch, run_config.dtype))

    def forward() -> torch.Tensor:
        with torch.no_grad():
            output = card_model(pixel_values=inputs).last_hidden_state
        card_device.synchronize()
        return output

    allowed = run_config.thresholds.determinism_max_abs_spread
    spread = DeterminismResult(**repeat_spread(forward, run_config.determinism_runs), allowed_max_abs_spread=allowed)
    results.determinism[card_device.label] = spread
    assert spread.bitwise_identical or (math.isfinite(spread.max_abs_spread) and spread.max_abs_spread <= allowed), (
        f"{spread.runs} forwards on {card_device.label}: max |output - first output| = "
        f"{spread.max_abs_spread:.3e}, allowed <= {allowed} ([determinism] max_abs_spread)")
