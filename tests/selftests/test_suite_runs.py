"""The acceptance suite driven end to end through pytester, on tiny checkpoints and the CPU."""

import dataclasses
import json

import pytest

from acceptance.images import default_image
from acceptance.loading import inspect_checkpoint, load_model
from acceptance.outputs import forward
from acceptance.preprocessing import load_preprocessor
from tests.selftests.conftest import ROOT, SUITE_TOTAL, expect_suite
from tests.selftests.test_reference_library import (
    real_copy,
    tiny_reference,
    write_reference,
)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_suite_passes_on_tiny_checkpoint(run_suite, tiny_checkpoint, dtype):
    result = run_suite("--model-path", str(tiny_checkpoint), "--device", "cpu", "--dtype", dtype)
    expect_suite(result)
    result.stdout.fnmatch_lines(["*last_hidden_state: shape [[]1, 201, 64[]]*", "*accuracy pooler_output*"])


def test_gated_mlp_with_two_registers(run_suite, tiny_gated_checkpoint):
    result = run_suite("--model-path", str(tiny_gated_checkpoint), "--device", "cpu")
    expect_suite(result)
    # 1 CLS + 2 registers + 196 patches
    result.stdout.fnmatch_lines(["*last_hidden_state: shape [[]1, 199, 64[]]*"])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_convnext_passes_the_whole_suite(run_suite, tiny_convnext_checkpoint, tmp_path, dtype):
    """dinov3_convnext: the same tests, shapes from hidden_sizes[-1] and stride 32, probe points its stages."""
    result = run_suite("--model-path", str(tiny_convnext_checkpoint), "--device", "cpu", "--dtype", dtype)
    expect_suite(result)
    # 1 pooled token + (224/32)^2 positions
    result.stdout.fnmatch_lines(["*last_hidden_state: shape [[]1, 50, 64[]]*", "*accuracy pooler_output*"])
    report = json.loads((tmp_path / "reports" / "benchmark_report.json").read_text())
    assert report["model"]["architecture"] == "ConvNeXt (hidden sizes 16/32/48/64, depths 1/1/2/1)"
    for side in ("reference", "device"):
        shapes = {name: output["shape"] for name, output in report["outputs"][side].items()}
        assert shapes == {"last_hidden_state": [1, 50, 64], "pooler_output": [1, 64]}, (side, shapes)
    assert report["accuracy"]["tensors"]["last_hidden_state"]["shape"] == [1, 50, 64]
    layers = [row["name"] for row in report["sections"]["diagnosis"]["layers"]]
    assert layers == ["stages.0", "stages.1", "stages.2", "stages.3", "layer_norm"], layers
    assert {point["resolution"] for point in report["sections"]["sweep"]["points"]} == {224, 448}


@pytest.mark.parametrize("perturb", [False, True], ids=["published-values-agree", "one-value-perturbed"])
def test_published_reference_check_runs_for_a_recognised_checkpoint_and_image(run_suite, tiny_checkpoint, tmp_path,
                                                                              monkeypatch, perturb):
    """A test-only 'published' entry for a copy of the tiny checkpoint (values computed from it): the check runs,
    passes, and fails on one perturbed value with the checkpoint, tensor, index, values, tolerance and source."""
    checkpoint = inspect_checkpoint(real_copy(tiny_checkpoint, tmp_path))
    image = default_image()
    outputs = forward(load_model(checkpoint, "float32", "cpu"), load_preprocessor(checkpoint.path)(image.image))
    reference = tiny_reference(checkpoint, outputs, image.pixel_sha256)
    if perturb:
        patch = reference.slices[1]
        values = (*patch.values[:3], patch.values[3] + 0.5, patch.values[4])
        reference = dataclasses.replace(reference, slices=(reference.slices[0],
                                                           dataclasses.replace(patch, values=values)))
    monkeypatch.setenv("SELFTEST_PUBLISHED_REFERENCE", write_reference(tmp_path / "reference.json", reference))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    result = run_suite("--model-path", str(checkpoint.path), "--device", "cpu", "-m", "reference",
                       "-p", "tests.selftests.plugins.known_reference")
    if not perturb:
        result.assert_outcomes(passed=1, deselected=SUITE_TOTAL - 1)
        return
    result.assert_outcomes(failed=1, deselected=SUITE_TOTAL - 1)
    result.stdout.fnmatch_lines(["*selftest/dinov3-tiny: CPU float32 last_hidden_state[[]0, 5, 3[]] is *, "
                                 "published *allowed 0.0001 + 0.0001[*]|expected|*"
                                 "source tests/selftests/test_reference_library.py*"])


def test_missing_npu_ends_session_at_once(run_suite, tiny_checkpoint):
    result = run_suite("--model-path", str(tiny_checkpoint), "--device", "npu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --device npu was requested but is not usable here: torch_npu is not installed",
                                 "*fix:*source*set_env.sh*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
