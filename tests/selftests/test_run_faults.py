"""Faults during a run: NaN/Inf from the device, device out of memory, an exception inside one test.

A fault fails the checks it touches, with a message saying where and what to do;
the other checks still run and pass, and the summary lists every failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from acceptance.errors import DeviceOutOfMemory
from acceptance.faults import device_memory_guard, is_out_of_memory
from acceptance.loading import WEIGHTS_FILE
from tests.selftests.conftest import SUITE_SKIPPED, SUITE_TOTAL, expect_suite

ROOT = Path(__file__).resolve().parents[2]
#: tests that need only the CPU reference: they must pass whatever happens to the device
# 2 environment, 2 reference shapes, 2 reference finiteness, 1 reference consistency, the CPU latency
# measurement and the precision settings record: the checks that never touch the device model
REFERENCE_ONLY = 9


@pytest.fixture
def suite(run_suite, monkeypatch):
    """run_suite, with the repository importable before pytest starts (for ``-p tests.selftests.plugins.*``)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return run_suite


@pytest.fixture(scope="module")
def nan_checkpoint(tiny_checkpoint, tmp_path_factory) -> Path:
    """The tiny checkpoint with one NaN in a weight of the second block: every output becomes NaN."""
    folder = tmp_path_factory.mktemp("nan") / "checkpoint"
    folder.mkdir()
    for path in tiny_checkpoint.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    tensors = load_file(folder / WEIGHTS_FILE)
    tensors["layer.1.mlp.down_proj.weight"][5, 7] = float("nan")
    save_file(tensors, folder / WEIGHTS_FILE, metadata={"format": "pt"})
    return folder


def test_nan_weights_never_pass(suite, nan_checkpoint):
    result = suite("--model-path", str(nan_checkpoint), "--device", "cpu")
    # shapes, dtypes and timing still work; finiteness (4), accuracy (2), consistency (2), the layers (2),
    # the dtype matrix, the fingerprint, the sweep and determinism fail: 14 checks, none passed by a NaN;
    # the layers drift, so the operator comparison runs (--ops auto): its operators line up, and the first
    # operator that makes a NaN fails it; each input of the input set fails too (4)
    expect_suite(result, passed=-17, failed=19, skipped=-2)
    result.stdout.fnmatch_lines([  # in the order pytest reports the failures
        "*12864 NaN/Inf values in the device last_hidden_state (first at index [[]0, 0, 0[]])*NaN/Inf never passes*",
        "*device last_hidden_state has 12864 NaN/Inf values, the first at index [[]0, 0, 0[]]; allowed 0*",
        "*reference pooler_output has 64 NaN/Inf values, the first at index [[]0, 0[]]; allowed 0*",
        f"*problems: 19 of {SUITE_TOTAL} checks did not pass*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_nan_and_inf_from_the_device_are_located(suite, tiny_checkpoint):
    result = suite("--model-path", str(tiny_checkpoint), "--device", "cpu", "-p", "tests.selftests.plugins.device_nan")
    # the NaN reaches accuracy, finiteness, the dtype matrix, the layer capture, the sweep and
    # determinism of last_hidden_state, and the input set's first input (the NaN is in batch row 0)
    expect_suite(result, passed=-7, failed=7)
    result.stdout.fnmatch_lines([
        "*FAILED *test_accuracy_vs_cpu_reference[[]last_hidden_state[]]*2 NaN/Inf values in the device "
        "last_hidden_state (first at index [[]0, 7, 3[]])*",
        "*FAILED *test_output_finite[[]last_hidden_state-device[]]*2 NaN/Inf values, the first at index [[]0, 7, 3[]]*",
    ])
    # the CLS token (pooler_output, consistency) is untouched, and so is the reference
    result.stdout.no_fnmatch_line("*FAILED*pooler_output*")


def assert_reference_checks_pass_and_device_checks_fail(result: pytest.RunResult) -> None:
    """Checks that take the device outputs as a fixture argument error at setup, those that fetch
    them inside the test (request.getfixturevalue) fail; the REFERENCE_ONLY others pass."""
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == REFERENCE_ONLY, outcomes
    # every other check fails or errors, but for skips decided before the device is touched
    assert outcomes.get("skipped", 0) <= SUITE_SKIPPED, outcomes
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == \
        SUITE_TOTAL - REFERENCE_ONLY - outcomes.get("skipped", 0), outcomes
    assert "During handling of the above exception" not in result.stdout.str()


def test_out_of_memory_in_the_forward_pass(suite, tiny_checkpoint):
    result = suite("--model-path", str(tiny_checkpoint), "--device", "cpu",
                   "-p", "tests.selftests.plugins.device_oom_forward")
    assert_reference_checks_pass_and_device_checks_fail(result)
    result.stdout.fnmatch_lines([
        "*fix: try a smaller --dtype (bfloat16), or free the card*",
        "*FAILED *test_output_shape[[]last_hidden_state-device[]]: *device out of memory while running the "
        "forward pass on cpu (batch size 1): CUDA out of memory. Tried to allocate 2.00 GiB*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_out_of_memory_while_loading_names_the_batch_size_fix(suite, tiny_checkpoint):
    result = suite("--model-path", str(tiny_checkpoint), "--device", "cpu", "--dtype", "bfloat16", "--batch-size", "2",
                   "-p", "tests.selftests.plugins.device_oom_load")
    assert_reference_checks_pass_and_device_checks_fail(result)
    result.stdout.fnmatch_lines([
        "*device out of memory while loading the model (bfloat16) on cpu (batch size 2): NPU out of memory. "
        "Tried to allocate 330.00 MiB*",
        "*fix: try --batch-size 1, try a smaller --dtype*",
        "*problems: * of * checks did not pass*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_an_exception_in_one_test_leaves_the_others_running(suite, tiny_checkpoint, pytester):
    raising = pytester.makepyfile(test_raising="""
        def test_raises_inside(device_outputs):
            raise RuntimeError("kernel launch failed in a custom check")
    """)
    result = suite("--model-path", str(tiny_checkpoint), "--device", "cpu", str(raising))
    expect_suite(result, failed=1)
    result.stdout.fnmatch_lines([
        "*accuracy last_hidden_state: max_diff*",  # everything measured is still in the summary
        f"*problems: 1 of {SUITE_TOTAL + 1} checks did not pass*",
        "*FAILED *test_raises_inside: RuntimeError: kernel launch failed in a custom check*",
    ])


# ---- the out-of-memory mapping itself ----

@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB"),
    RuntimeError("NPU out of memory. Tried to allocate 1.40 GiB (NPU 0; 32.00 GiB total capacity)"),
    RuntimeError("EL0004: Failed to allocate memory."),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to "
                 "allocate 1099511627776 bytes"),
], ids=["torch-oom", "npu-words", "cann-el0004", "cpu-allocator"])
def test_out_of_memory_errors_are_recognised(error):
    assert is_out_of_memory(error)
    with pytest.raises(DeviceOutOfMemory, match="device out of memory while running the forward pass on npu:0"):
        with device_memory_guard("running the forward pass", "npu:0", 8):
            raise error


def test_other_errors_pass_through_the_guard():
    assert not is_out_of_memory(RuntimeError("shape '[1, 201, 3, 21]' is invalid for input of size 12864"))
    with pytest.raises(RuntimeError, match="is invalid for input"):
        with device_memory_guard("running the forward pass", "cpu", 1):
            raise RuntimeError("shape '[1, 201, 3, 21]' is invalid for input of size 12864")


def test_a_real_allocation_failure_is_recognised():
    """The CPU allocator's own error for an impossible allocation (1 PiB), not a hand-written one."""
    with pytest.raises(DeviceOutOfMemory, match="device out of memory while allocating on cpu"):
        with device_memory_guard("allocating", "cpu", 1):
            torch.empty(2**48, dtype=torch.float32)
