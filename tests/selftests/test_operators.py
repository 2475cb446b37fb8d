"""Operator-level drift (acceptance/operators.py, operator_drift.py) and msprobe's dump layout (msprobe_dump.py),
on a tiny DINOv3 ViT on the CPU; a fault is a torch function mode active during the device side's capture only."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from torch.overrides import TorchFunctionMode

import acceptance.operator_drift as operator_drift
from acceptance.msprobe_dump import DumpWriter
from acceptance.operator_drift import (
    TensorMetrics,
    compare_operators,
    msprobe_status,
    tensor_metrics,
)
from acceptance.operators import capture_operators


@pytest.fixture(scope="module")
def model():
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    torch.manual_seed(0)
    config = DINOv3ViTConfig(hidden_size=32, num_hidden_layers=LAYERS, num_attention_heads=2, intermediate_size=64,
                             image_size=32, patch_size=16, num_register_tokens=2)
    return DINOv3ViTModel(config).eval()


@pytest.fixture(scope="module")
def pixels():
    return torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))


LAYERS = 3


class _Faulty(TorchFunctionMode):
    """Scales (or NaNs) the output of one torch API's ``which``-th call in each forward (one call per layer:
    the capture runs one uncaptured forward first)."""

    def __init__(self, api, which: int, factor: float = 1.01, period: int = LAYERS):
        super().__init__()
        self.api, self.which, self.factor, self.period, self.calls = api, which, factor, period, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is self.api:
            self.calls += 1
            if (self.calls - 1) % self.period == self.which:
                out = out * self.factor
        return out


def _compare(model, pixels, monkeypatch, fault=None, **dumps):
    device_model = copy.deepcopy(model)
    real = operator_drift.capture_operators

    def capture(captured, pixel_values, sink):
        if captured is device_model and fault is not None:
            fault.calls = 0
            with fault:
                return real(captured, pixel_values, sink)
        return real(captured, pixel_values, sink)

    monkeypatch.setattr(operator_drift, "capture_operators", capture)
    return compare_operators(model, pixels, device_model, pixels.clone(), "float32", lambda: None, **dumps)


class _Names:
    def __init__(self):
        self.operators, self.modules = [], []

    def operator(self, call, tensors):
        self.operators.append((call, tensors))

    def module(self, call, tensors):
        self.modules.append(call)


def test_capture_names_each_api_call_and_its_module_as_the_checkpoint_does(model, pixels):
    with torch.inference_mode():
        plain = model(pixel_values=pixels).last_hidden_state
    sink = _Names()
    calls = capture_operators(model, pixels, sink)
    with torch.inference_mode():
        again = model(pixel_values=pixels).last_hidden_state
    assert torch.equal(plain, again)  # the capture leaves the model as it was
    names = [(call.api, call.module) for call in calls]
    assert ("Functional.gelu", "layer.1.mlp.act_fn") in names
    assert ("Functional.conv2d", "embeddings.patch_embeddings") in names
    assert ("Functional.scaled_dot_product_attention", "layer.2.attention") in names
    assert not any(call.module.startswith("model.") for call in calls)  # transformers 5's wrapper is not named
    assert not any(call.api.split(".")[-1] in ("view", "transpose", "__getitem__", "size") for call in calls)
    gelu, tensors = next((c, t) for c, t in sink.operators
                         if c.api == "Functional.gelu" and c.module == "layer.1.mlp.act_fn")
    assert gelu.name == "Functional.gelu.1.forward" and \
        gelu.parent == "Module.layer.1.mlp.act_fn.GELUActivation.forward.0"
    linear = next(t for c, t in sink.operators if c.api == "Functional.linear" and c.module == "layer.0.mlp.up_proj")
    assert [item.parameter for item in linear if item.parameter] == ["layer.0.mlp.up_proj.weight",
                                                                     "layer.0.mlp.up_proj.bias"]
    assert [call.index for call in calls] == list(range(len(calls)))


def test_a_clean_device_flags_no_operator(model, pixels, monkeypatch):
    drift = _compare(model, pixels, monkeypatch)
    assert drift.first_error is None and drift.counts["error"] == drift.counts["warning"] == 0
    assert not drift.unmatched_device and not drift.unmatched_reference
    assert all(row.output.relative_error == 0 for row in drift.rows)
    assert drift.localisation().startswith("no operator's output goes wrong")
    assert drift.costs["spilled_bytes"] > 0 and drift.costs["operators"] == len(drift.rows)


def test_one_operator_off_by_one_percent_is_named_and_nothing_before_it(model, pixels, monkeypatch):
    drift = _compare(model, pixels, monkeypatch, _Faulty(torch.nn.functional.gelu, which=1))
    first = drift.first_error
    assert (first.name, first.module) == ("Functional.gelu.1.forward", "layer.1.mlp.act_fn"), drift.localisation()
    assert math.isclose(first.output.relative_error, 0.01, rel_tol=1e-4)
    assert first.input_one_thousandth == 1.0 and first.output.one_thousandth < 0.1
    assert all(row.status == "pass" for row in drift.rows if row.index < first.index)
    assert drift.counts["error"] == 1  # later operators' inputs are off already: not flagged (msprobe's rule)
    assert "Functional.gelu.1.forward in layer.1.mlp.act_fn" in drift.localisation()


def test_a_nan_is_an_error_where_it_appears(model, pixels, monkeypatch):
    drift = _compare(model, pixels, monkeypatch, _Faulty(torch.nn.functional.layer_norm, which=2, factor=math.nan,
                                                              period=2 * LAYERS + 1))
    first = drift.first_error
    assert first.api == "Functional.layer_norm" and first.module == "layer.1.norm1", drift.localisation()
    assert "NaN/Inf in a device output" in first.reason and math.isnan(first.output.relative_error)


def test_msprobe_metrics_and_rule_by_hand():
    reference = torch.tensor([1.0, 2.0, 0.0, -4.0])
    metrics = tensor_metrics(reference, torch.tensor([1.0005, 2.0, 0.0, -4.04]))
    assert metrics.max_abs_err == pytest.approx(0.04) and metrics.max_relative_err == pytest.approx(0.01)
    assert metrics.one_thousandth == 0.75 and metrics.five_thousandths == 0.75  # 0.05 % passes, 1 % does not
    fine = TensorMetrics(1.0, 0.0, 0.0, 1.0, 1.0, 0.0, True, True)
    wrong = TensorMetrics(0.999, 0.1, 0.01, 0.05, 0.05, 0.01, True, True)
    assert msprobe_status([fine], [wrong])[0] == "error"
    assert msprobe_status([wrong], [wrong])[0] == "pass"  # its inputs were off already
    assert msprobe_status([fine], [TensorMetrics(0.85, 0.1, 0.01, 0.5, 0.5, 0.01, True, True)])[0] == "warning"
    nan = TensorMetrics(*(math.nan,) * 6, False, True)
    assert msprobe_status([fine], [nan])[0] == "error"
    assert msprobe_status([], [fine]) == ("pass", "")  # no tensor inputs (torch.arange): only NaN can flag it


def test_dump_is_msprobes_layout_with_every_tensor_written(model, pixels, monkeypatch, tmp_path):
    writers = DumpWriter(tmp_path / "cpu"), DumpWriter(tmp_path / "npu")
    drift = _compare(model, pixels, monkeypatch, _Faulty(torch.nn.functional.gelu, which=1),
                     reference_dump=writers[0], device_dump=writers[1])
    paths = [writer.close() for writer in writers]
    assert paths[0] == (tmp_path / "cpu" / "step0" / "rank0" / "dump.json").resolve()
    dump = json.loads(paths[1].read_text())
    assert {key: dump[key] for key in ("task", "level", "framework")} == {"task": "tensor", "level": "mix",
                                                                         "framework": "pytorch"}
    gelu = dump["data"]["Functional.gelu.1.forward"]
    tensor = gelu["output"][0]
    assert set(tensor) == {"type", "dtype", "shape", "Max", "Min", "Mean", "Norm", "requires_grad", "data_name"}
    saved = torch.load(paths[1].parent / "dump_tensor_data" / tensor["data_name"], weights_only=True)
    assert list(saved.shape) == tensor["shape"] and tensor["Max"] == pytest.approx(saved.max().item())
    linear = dump["data"]["Functional.linear.0.forward"]["input_args"]
    assert linear[1]["requires_grad"] is True and linear[0]["requires_grad"] is False  # weight vs activation
    construct = json.loads((paths[1].parent / "construct.json").read_text())
    assert construct["Functional.gelu.1.forward"] == "Module.layer.1.mlp.act_fn.GELUActivation.forward.0"
    assert construct["Module.layer.1.mlp.act_fn.GELUActivation.forward.0"] == \
        "Module.layer.1.mlp.DINOv3ViTMLP.forward.0"
    assert "Module.layer.1.DINOv3ViTLayer.forward.0" in dump["data"]
    assert drift.first_error.name == "Functional.gelu.1.forward"


class _InPlace(torch.nn.Module):
    """A model whose forward overwrites its input in place (mul_), as some kernels' Python code does."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.full((4,), 2.0))

    def forward(self, pixel_values):
        hidden = pixel_values.flatten(1)[:, :4].clone()
        return hidden.mul_(self.scale)


def test_an_in_place_operator_is_recorded_with_its_input_as_it_was():
    sink = _Names()
    model = _InPlace()
    capture_operators(model, torch.ones(1, 3, 2, 2), sink)
    _, tensors = next((c, t) for c, t in sink.operators if c.api == "Tensor.mul_")
    values = {item.role: item.tensor for item in tensors}
    assert torch.equal(values[("input", 0)], torch.ones(1, 4))
    assert torch.equal(values[("output", 0)], 2 * torch.ones(1, 4))
    # a CPU parameter is handed on as it is (shared, never a second copy of the weights)
    parameter = next(item for item in tensors if item.parameter == "scale")
    assert parameter.tensor.data_ptr() == model.scale.data_ptr()


def test_an_output_shape_that_differs_is_an_error_row(tmp_path):
    from acceptance.operator_drift import DeviceComparison, ReferenceStore
    from acceptance.operators import CapturedTensor, OperatorCall

    call = OperatorCall(index=0, api="Functional.linear", count=0, module="head", occurrence=0)
    store = ReferenceStore(tmp_path)
    store.operator(call, [CapturedTensor(("output", 0), torch.ones(2, 3))])
    comparison = DeviceComparison(store, "float32")
    comparison.operator(call, [CapturedTensor(("output", 0), torch.ones(2, 4))])
    store.close()
    (row,) = comparison.rows
    assert row.status == "error" and "shape differs" in row.reason and not comparison.unmatched
    assert not list(tmp_path.iterdir())  # the spill folder is gone


def test_dump_of_a_cpu_target_keeps_the_two_sides_apart(run_suite, tiny_checkpoint, tmp_path):
    dump = tmp_path / "dump"
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=cpu", "--dump", str(dump), "-m", "operators")
    result.assert_outcomes(passed=2)
    reference, device = (json.loads((dump / side / "step0" / "rank0" / "dump.json").read_text())
                         for side in ("cpu", "cpu-device"))
    assert reference["data"].keys() == device["data"].keys() and reference["dump_data_dir"] != device["dump_data_dir"]
    assert not list((tmp_path / "reports" / "runs").glob("*/.operator-spill-*"))  # spilled in the run folder, removed
