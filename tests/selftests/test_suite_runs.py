"""The acceptance suite driven end to end through pytester, on tiny checkpoints and the CPU."""

import pytest


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_suite_passes_on_tiny_checkpoint(run_suite, tiny_checkpoint, dtype):
    result = run_suite("--model-path", str(tiny_checkpoint), "--device", "cpu", "--dtype", dtype)
    result.assert_outcomes(passed=18, skipped=4)  # the 4 latency limits: no [[latency]] entry for CPUs
    result.stdout.fnmatch_lines(["*last_hidden_state: shape [[]1, 201, 64[]]*", "*accuracy pooler_output*"])


def test_gated_mlp_with_two_registers(run_suite, tiny_gated_checkpoint):
    result = run_suite("--model-path", str(tiny_gated_checkpoint), "--device", "cpu")
    result.assert_outcomes(passed=18, skipped=4)  # the 4 latency limits: no [[latency]] entry for CPUs
    # 1 CLS + 2 registers + 196 patches
    result.stdout.fnmatch_lines(["*last_hidden_state: shape [[]1, 199, 64[]]*"])


def test_missing_npu_ends_session_at_once(run_suite, tiny_checkpoint):
    result = run_suite("--model-path", str(tiny_checkpoint), "--device", "npu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --device npu was requested but is not usable here: torch_npu is not installed",
                                 "*fix:*source*set_env.sh*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
