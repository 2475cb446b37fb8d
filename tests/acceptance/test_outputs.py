"""Output shapes, dtypes and finiteness, all derived from the checkpoint's config."""

import pytest
import torch

from acceptance.loading import TORCH_DTYPES
from acceptance.metrics import first_nonfinite
from acceptance.outputs import OUTPUT_NAMES

pytestmark = pytest.mark.shapes

#: the device fixture is requested by the tests that read a side by name, so a whole-server run
#: (--device npu:all) checks each card's outputs
SIDES = ("reference", "device")


def expected_shape(name, checkpoint, pixel_values):
    """The model family's shape for this input (acceptance/models/), from config.json."""
    batch, _, height, width = pixel_values.shape
    return checkpoint.output_shapes(batch, height, width)[name]


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("name", OUTPUT_NAMES)
def test_output_shape(name, side, request, device, checkpoint, pixel_values, record_property):
    outputs = request.getfixturevalue(f"{side}_outputs")
    expected = expected_shape(name, checkpoint, pixel_values)
    actual = list(outputs[name].shape)
    record_property("shape", str(actual))
    record_property("expected_shape", str(expected))
    assert actual == expected, (f"{side} {name} has shape {actual}; expected {expected} = "
                                f"{checkpoint.family.explain_shape(name, checkpoint.config)}")


@pytest.mark.parametrize("name", OUTPUT_NAMES)
def test_output_dtype(name, device_outputs, run_config):
    expected = TORCH_DTYPES[run_config.dtype]
    actual = device_outputs[name].dtype
    assert actual == expected, f"device {name} has dtype {actual}; --dtype asked for {expected}"


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("name", OUTPUT_NAMES)
def test_output_finite(name, side, request, device):
    tensor = request.getfixturevalue(f"{side}_outputs")[name]
    where = first_nonfinite(tensor)
    count = int((~torch.isfinite(tensor)).sum()) if where is not None else 0
    assert where is None, f"{side} {name} has {count} NaN/Inf values, the first at index {list(where)}; allowed 0"
