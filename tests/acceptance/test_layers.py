"""Layer-wise drift: every probe point (embeddings, each transformer block, final norm) against the CPU reference."""

import pytest
import torch

pytestmark = pytest.mark.layers


def test_every_probe_point_captured(reference_run, device_run, checkpoint, pixel_values):
    layers = int(checkpoint.config["num_hidden_layers"])
    expected = ["embeddings", *(f"layer.{index}" for index in range(layers)), "norm"]
    batch, _, height, width = pixel_values.shape
    shape = [batch, checkpoint.token_count(height, width), checkpoint.hidden_size]
    for side, run in (("reference", reference_run), ("device", device_run)):
        assert run.names == expected, (
            f"{side}: captured probe points {run.names}; expected embeddings, the {layers} layers of "
            f"config.json's num_hidden_layers and the final norm")
        wrong = {name: list(tensor.shape) for name, tensor in run.layers.items() if list(tensor.shape) != shape}
        assert not wrong, f"{side}: probe points with a shape other than {shape} = [batch, tokens, hidden]: {wrong}"
        # the last probe point is what the model returns: the hooks watch the real forward pass
        assert torch.equal(run.layers["norm"], run.outputs["last_hidden_state"]), (
            f"{side}: the captured final norm differs from last_hidden_state by max |diff| "
            f"{(run.layers['norm'].double() - run.outputs['last_hidden_state'].double()).abs().max().item():.3e}; "
            "allowed 0 (same tensor)")


def test_layers_within_limits(layer_drift, device, run_config):
    first = layer_drift.first_drifting
    assert first is None, (
        f"probe points on {device.label} ({run_config.dtype}) vs CPU float32: {layer_drift.localisation()} "
        f"([layers.{run_config.dtype}] in {run_config.thresholds_path})")
