"""Layer-wise drift: every probe point of the model family (a ViT's embeddings, each block, final norm) against
the CPU reference."""

import pytest
import torch

pytestmark = pytest.mark.layers


def test_every_probe_point_captured(reference_run, device_run, checkpoint, pixel_values):
    family = checkpoint.family
    batch, _, height, width = pixel_values.shape
    shapes = family.probe_shapes(checkpoint.config, batch, height, width)
    expected, last = list(shapes), list(shapes)[-1]
    for side, run in (("reference", reference_run), ("device", device_run)):
        assert run.names == expected, (
            f"{side}: captured probe points {run.names}; expected {expected} "
            f"({family.describe_probe_points(checkpoint.config)})")
        wrong = {name: list(tensor.shape) for name, tensor in run.layers.items() if list(tensor.shape) != shapes[name]}
        assert not wrong, (f"{side}: probe points with another shape than the config gives: "
                           + "; ".join(f"{name} {shape}, expected {shapes[name]}" for name, shape in wrong.items()))
        # the last probe point is what the model returns: the hooks watch the real forward pass
        assert torch.equal(run.layers[last], run.outputs["last_hidden_state"]), (
            f"{side}: the captured {last} differs from last_hidden_state by max |diff| "
            f"{(run.layers[last].double() - run.outputs['last_hidden_state'].double()).abs().max().item():.3e}; "
            "allowed 0 (same tensor)")


def test_layers_within_limits(layer_drift, device, run_config):
    first = layer_drift.first_drifting
    assert first is None, (
        f"probe points on {device.label} ({run_config.dtype}) vs CPU float32: {layer_drift.localisation()} "
        f"([layers.{run_config.dtype}] in {run_config.thresholds_path})")
