"""The diagnosis library on its own: metrics by hand, mantissa rounding, hooks, localisation, fingerprint."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from acceptance.drift import compare_layers
from acceptance.fingerprint import (
    ERROR_FLOOR,
    ReducedPrecisionInputs,
    cast_copies,
    classify,
    emulate_profiles,
    error_profile,
    profile_distance,
    round_mantissa,
)
from acceptance.images import default_image
from acceptance.layers import probe_points, run_with_capture
from acceptance.loading import TORCH_DTYPES, inspect_checkpoint, load_model
from acceptance.metrics import (
    elementwise_relative_error,
    fraction_rel_err_below_0_1pct,
    fraction_rel_err_below_0_5pct,
)
from acceptance.models.vit import transformer_blocks
from acceptance.preprocessing import load_preprocessor
from acceptance.report.plots_diagnosis import layer_drift_png
from acceptance.thresholds import AccuracyLimits

FLOAT32_LIMITS = AccuracyLimits(max_relative_error=0.01, min_cosine=0.99)


def load(checkpoint_path, dtype="float32"):
    checkpoint = inspect_checkpoint(checkpoint_path)
    model = load_model(checkpoint, dtype, "cpu")
    pixel_values = load_preprocessor(checkpoint.path)(default_image().image)
    return checkpoint, model, pixel_values


def model_source(checkpoint, reference_model):
    """Reduced-precision models loaded as the suite loads the device model; float64 as a cast copy."""
    cast = cast_copies(reference_model)
    names = {dtype: name for name, dtype in TORCH_DTYPES.items()}
    return lambda dtype: load_model(checkpoint, names[dtype], "cpu") if dtype in (torch.bfloat16, torch.float16) \
        else cast(dtype)


# --- msprobe-style fractions -----------------------------------------------------------------------------

def test_fractions_by_hand():
    reference = torch.tensor([1.0, 2.0, 4.0, 8.0])
    # element-wise relative errors 0.05 %, 0.25 %, 1 %, 0 %
    candidate = torch.tensor([1.0005, 2.005, 4.04, 8.0])
    assert fraction_rel_err_below_0_1pct(reference, candidate) == pytest.approx(0.5)
    assert fraction_rel_err_below_0_5pct(reference, candidate) == pytest.approx(0.75)


def test_near_zero_reference_is_measured_against_the_tensor_scale():
    # mean |ref| = 250; floor = 0.25: the element at 1e-6 is judged by its error relative to 0.25
    reference = torch.tensor([1e-6, 500.0, 500.0, 0.0])
    candidate = torch.tensor([1e-4, 500.0, 500.0, 1e-4])
    errors = elementwise_relative_error(reference, candidate)
    assert errors.tolist() == pytest.approx([(1e-4 - 1e-6) / 0.25, 0.0, 0.0, 1e-4 / 0.25])
    assert fraction_rel_err_below_0_1pct(reference, candidate) == 1.0


def test_all_zero_reference_and_nan_never_pass():
    zeros = torch.zeros(4)
    assert fraction_rel_err_below_0_1pct(zeros, zeros) == 1.0
    assert fraction_rel_err_below_0_1pct(zeros, torch.tensor([0.0, 0.0, 0.0, 1e-30])) == 0.75
    assert math.isnan(fraction_rel_err_below_0_5pct(torch.ones(3), torch.tensor([1.0, math.nan, 1.0])))
    assert math.isnan(fraction_rel_err_below_0_5pct(torch.tensor([1.0, math.inf, 1.0]), torch.ones(3)))


# --- mantissa rounding and the TF32/HF32 emulation --------------------------------------------------------

def test_round_mantissa_to_ten_bits():
    ulp = 2.0 ** -10  # spacing of 10-bit-mantissa values in [1, 2)
    values = torch.tensor([1 + ulp / 2, 1 + 1.5 * ulp, 1 + ulp / 2 + 2.0 ** -20, -(1 + 1.5 * ulp), 3.0, 0.0])
    expected = [1.0, 1 + 2 * ulp, 1 + ulp, -(1 + 2 * ulp), 3.0, 0.0]  # ties to even, sign kept
    assert round_mantissa(values).tolist() == expected
    special = torch.tensor([math.inf, -math.inf, math.nan, torch.finfo(torch.float32).max])
    rounded = round_mantissa(special)
    assert rounded[0] == math.inf and rounded[1] == -math.inf and math.isnan(rounded[2])
    assert rounded[3] == math.inf  # TF32 keeps float32's exponent range: the largest float32 rounds up to Inf
    assert round_mantissa(torch.ones(2, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_rounded_values_have_ten_mantissa_bits():
    values = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 100
    bits = round_mantissa(values).view(torch.int32)
    assert int((bits & ((1 << 13) - 1)).abs().sum()) == 0
    relative = ((round_mantissa(values) - values).abs() / values.abs()).max().item()
    assert relative <= 2.0 ** -11  # half an ulp of a 10-bit mantissa


def test_attention_emulation_without_rounding_matches_sdpa():
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 5, 8, generator=generator) for _ in range(3))
    with ReducedPrecisionInputs(bits=23):  # 23 bits: rounding is a no-op, only the decomposition is tested
        decomposed = F.scaled_dot_product_attention(q, k, v, scale=0.3)
    torch.testing.assert_close(decomposed, F.scaled_dot_product_attention(q, k, v, scale=0.3))


def test_emulation_rounds_only_the_chosen_operations():
    generator = torch.Generator().manual_seed(0)
    x, w = torch.randn(4, 8, generator=generator), torch.randn(3, 8, generator=generator)
    image, kernel = torch.randn(1, 3, 8, 8, generator=generator), torch.randn(2, 3, 2, 2, generator=generator)
    with ReducedPrecisionInputs(("conv",)):
        linear, conv = F.linear(x, w), F.conv2d(image, kernel)
    assert torch.equal(linear, F.linear(x, w))
    assert torch.equal(conv, F.conv2d(round_mantissa(image), round_mantissa(kernel)))
    with ReducedPrecisionInputs(("matmul",)):
        linear, product = F.linear(x, w), x @ w.T
    assert torch.equal(linear, F.linear(round_mantissa(x), round_mantissa(w)))
    assert torch.equal(product, round_mantissa(x) @ round_mantissa(w).T)
    with pytest.raises(ValueError, match="unknown operation kinds"):
        ReducedPrecisionInputs(("softmax",))


# --- distances and classification -----------------------------------------------------------------------

def test_distance_is_mean_log10_gap_above_the_floor():
    assert profile_distance([1e-3, 1e-2], [1e-4, 1e-2], [ERROR_FLOOR] * 2) == pytest.approx(0.5)
    # below the floor everything reads as the floor: an exact match is as good as float32 noise
    assert profile_distance([0.0, 0.0], [1e-7, 1e-7], [1e-7, 1e-7]) == 0.0
    assert math.isnan(profile_distance([math.nan, 1.0], [1.0, 1.0], [ERROR_FLOOR] * 2))
    with pytest.raises(ValueError, match="differ in length"):
        profile_distance([1.0], [1.0, 2.0], [ERROR_FLOOR])


def test_classify_picks_the_nearest_profile_and_reports_all_distances():
    profiles = {"float32": [1e-7, 1e-7], "bfloat16": [3e-3, 1e-2]}
    found = classify([2e-3, 1.2e-2], profiles, ["a", "b"])
    assert found.closest == "bfloat16" and found.verdict == "consistent with bfloat16"
    assert set(found.distances) == {"float32", "bfloat16"} and found.distances["float32"] > 4
    unusable = classify([math.nan, 1.0], profiles, ["a", "b"])
    assert unusable.closest is None and "not finite" in unusable.verdict


# --- layer capture ----------------------------------------------------------------------------------------

def test_probe_points_follow_the_config(tiny_deep_checkpoint):
    _, model, _ = load(tiny_deep_checkpoint)
    names = [point.name for point in probe_points(model)]
    assert names == ["embeddings", *(f"layer.{i}" for i in range(9)), "norm"]
    assert [point.depth for point in probe_points(model)] == list(range(11))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_hooks_do_not_change_outputs(tiny_deep_checkpoint, dtype):
    _, model, pixel_values = load(tiny_deep_checkpoint, dtype)
    inputs = pixel_values.to(TORCH_DTYPES[dtype])
    with torch.inference_mode():
        plain = model(pixel_values=inputs)
    captured = run_with_capture(model, inputs)
    for name in ("last_hidden_state", "pooler_output"):
        assert torch.equal(captured.outputs[name], plain[name]), f"hooks changed {name}"
    assert torch.equal(captured.layers["norm"], plain["last_hidden_state"])
    with torch.inference_mode():  # and the hooks are gone afterwards
        assert all(not point.module._forward_hooks for point in probe_points(model))


def test_perturbed_layer_7_is_where_drift_begins(tiny_deep_checkpoint):
    _, model, pixel_values = load(tiny_deep_checkpoint)
    reference = run_with_capture(model, pixel_values)
    handle = transformer_blocks(model)[7].register_forward_hook(
        lambda module, args, output: output + 0.05 * output.std() * torch.randn(
            output.shape, generator=torch.Generator().manual_seed(0)))
    try:
        perturbed = run_with_capture(model, pixel_values)
    finally:
        handle.remove()
    drift = compare_layers(reference, perturbed, "float32", FLOAT32_LIMITS)
    assert drift.first_drifting is not None and drift.first_drifting.name == "layer.7"
    assert all(row.relative_error == 0.0 for row in drift.rows[:8])  # embeddings, layer.0 .. layer.6 untouched
    assert "layer.7 (relative error" in drift.localisation()
    cls_drift = compare_layers(reference, perturbed, "float32", FLOAT32_LIMITS, token=0)
    assert cls_drift.scope == "token 0 (CLS)" and cls_drift.first_drifting.name == "layer.7"


def test_convnext_probe_points_are_its_stages_and_final_norm(tiny_convnext_checkpoint):
    checkpoint, model, pixel_values = load(tiny_convnext_checkpoint)
    points = probe_points(model)
    assert [(p.name, p.depth, p.tokens) for p in points] == [
        ("stages.0", 0, False), ("stages.1", 1, False), ("stages.2", 2, False), ("stages.3", 3, False),
        ("layer_norm", 4, True)]
    captured = run_with_capture(model, pixel_values)
    shapes = {name: list(tensor.shape) for name, tensor in captured.layers.items()}
    assert shapes == checkpoint.family.probe_shapes(checkpoint.config, 1, 224, 224)
    assert shapes["stages.2"] == [1, 48, 14, 14] and shapes["layer_norm"] == [1, 50, 64]
    assert all(tensor.is_contiguous() for tensor in captured.layers.values())  # stages return permuted views
    assert torch.equal(captured.layers["layer_norm"], captured.outputs["last_hidden_state"])


def test_convnext_drift_at_stage_2_and_the_pooled_token_scope(tiny_convnext_checkpoint):
    """pooler_output's drift compares token 0 where there are tokens; a [B, C, H, W] stage is compared whole."""
    _, model, pixel_values = load(tiny_convnext_checkpoint)
    reference = run_with_capture(model, pixel_values)
    stages = next(module for path, module in model.named_modules() if path.split(".")[-1] == "stages")
    handle = stages[2].register_forward_hook(
        lambda module, args, output: output + 0.05 * output.std() * torch.randn(
            output.shape, generator=torch.Generator().manual_seed(0)))
    try:
        perturbed = run_with_capture(model, pixel_values)
    finally:
        handle.remove()
    drift = compare_layers(reference, perturbed, "float32", FLOAT32_LIMITS)
    assert drift.first_drifting is not None and drift.first_drifting.name == "stages.2"
    assert [row.relative_error for row in drift.rows[:2]] == [0.0, 0.0]
    pooled = compare_layers(reference, perturbed, "float32", FLOAT32_LIMITS, token=0, token_name="pooled")
    assert pooled.scope == ("token 0 (pooled) at layer_norm; the whole tensor at stages.0, stages.1, stages.2, "
                            "stages.3 (channels-first maps have no tokens)")
    assert pooled.first_drifting.name == "stages.2"
    assert pooled.rows[2] == drift.rows[2]  # the whole map, not channel 0


# --- the fingerprint, validated on this machine -----------------------------------------------------------

def classify_cases(checkpoint_path):
    checkpoint, model, pixel_values = load(checkpoint_path)
    reference = run_with_capture(model, pixel_values)
    emulated = emulate_profiles(model_source(checkpoint, model), pixel_values, reference)
    bf16_model = load_model(checkpoint, "bfloat16", "cpu")
    bf16 = run_with_capture(bf16_model, pixel_values.to(torch.bfloat16))
    with ReducedPrecisionInputs(("conv",)):  # only the patch embedding is a convolution
        conv_only = run_with_capture(model, pixel_values)
    measured = {"float32": error_profile(reference, run_with_capture(model, pixel_values)),
                "bfloat16": error_profile(reference, bf16),
                "conv-only": error_profile(reference, conv_only)}
    return {name: classify(profile, emulated.profiles, emulated.names) for name, profile in measured.items()}


def check_classification(found):
    assert found["float32"].closest == "float32", found["float32"].describe()
    assert found["bfloat16"].closest == "bfloat16", found["bfloat16"].describe()
    assert found["conv-only"].closest == "tf32/hf32", found["conv-only"].describe()
    assert found["conv-only"].verdict == "consistent with TF32/HF32 matmul or conv"


def test_fingerprint_classifies_cpu_runs_on_tiny_model(tiny_deep_checkpoint):
    check_classification(classify_cases(tiny_deep_checkpoint))


@pytest.mark.slow
def test_fingerprint_classifies_cpu_runs_on_builtin_vitb16():
    from acceptance.builtin import builtin_checkpoint

    found = classify_cases(builtin_checkpoint())
    check_classification(found)
    # HF32 on the patch embedding alone is closer to TF32/HF32 everywhere than to float16's profile
    assert found["conv-only"].distances["tf32/hf32"] < found["conv-only"].distances["float16"]


def test_plot_is_a_png(tiny_deep_checkpoint):
    _, model, pixel_values = load(tiny_deep_checkpoint)
    reference = run_with_capture(model, pixel_values)
    drift = compare_layers(reference, reference, "float32", FLOAT32_LIMITS)
    section = {"layers": [row.to_dict() for row in drift.rows], "layer_dtype": "float32",
               "layer_limits": {"max_relative_error": 0.01, "min_cosine": 0.99}, "first_drifting_layer": "layer.7",
               "fingerprint": {"closest": "float32", "profiles": {"float32": [1e-7] * len(drift.rows)}}}
    png = layer_drift_png(section)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    with pytest.raises(ValueError, match="no layer rows"):
        layer_drift_png({})
