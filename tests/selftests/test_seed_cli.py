"""The seed's command lines, inference.py and benchmark.py, run as a user runs them."""

from __future__ import annotations

import json
import subprocess

import pytest

from acceptance.report.schema import schema_errors
from tests.selftests.conftest import ROOT, SUITE_COUNTS


@pytest.fixture
def run(python_run):
    """``python SCRIPT ARGS`` in ``cwd``, as a user's shell starts it."""
    def start(script: str, *args: str, cwd) -> subprocess.CompletedProcess:
        return python_run(str(ROOT / script), *args, cwd=cwd)

    return start


def test_inference_compare_prints_the_seed_layout(tiny_checkpoint, tmp_path, run):
    done = run("inference.py", "--model_path", str(tiny_checkpoint), "--device", "cpu", "--compare",
               "--num_runs", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    expected_in_order = [
        "Model path: ", "Input image: synthetic 224x224", "PyTorch version: ", "Loading model...", "Model loaded",
        "[CPU baseline inference]", "[CPU] Output keys: ['last_hidden_state', 'pooler_output']",
        "[CPU] last_hidden_state shape: torch.Size([1, 201, 64]), dtype: torch.float32",
        "[CPU] last_hidden_state mean: ", "[CPU] pooler_output shape: torch.Size([1, 64]), dtype: torch.float32",
        "[CPU] Average latency: ", "[CPU inference] (device under test)", "[CPU] Average latency: ",
        "Precision comparison (CPU vs CPU)", "last_hidden_state: max_diff=0.000000e+00, mean_diff=0.000000e+00, "
        "rel_err=0.000000e+00", "pooler_output: max_diff=", "Precision check: PASS (relative_error < 1%",
        "CPU speedup (vs CPU): ", "NOTE: built-in seeded random weights",
    ]
    position = 0
    for fragment in expected_in_order:
        position = next((i for i in range(position, len(lines)) if fragment in lines[i]), None)
        assert position is not None, f"{fragment!r} missing or out of order in:\n{done.stdout}"
    assert " ms (min=" in done.stdout and ", max=" in done.stdout


def test_inference_without_compare_runs_the_device_only(tiny_checkpoint, tmp_path, run):
    done = run("inference.py", "--model_path", str(tiny_checkpoint), "--device", "cpu", "--dtype", "bfloat16",
               "--num_runs", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "baseline" not in done.stdout and "dtype: torch.bfloat16" in done.stdout


def test_inference_precision_failure_exits_1(tiny_checkpoint, tmp_path, run):
    strict = tmp_path / "strict.toml"  # bfloat16 held to a float32-impossible limit
    strict.write_text((ROOT / "thresholds.toml").read_text().replace("max_relative_error = 0.02",
                                                                      "max_relative_error = 1e-9"))
    done = run("inference.py", "--model_path", str(tiny_checkpoint), "--device", "cpu", "--dtype", "bfloat16",
               "--compare", "--num_runs", "1", "--thresholds", str(strict), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Precision check: FAIL" in done.stdout


@pytest.mark.parametrize("args,message", [
    (("--device", "npu"), "error: --device npu was requested but is not usable here: torch_npu is not installed"),
    (("--num_runs", "0"), "error: bad value for --num_runs"),
    (("--model_path", "/nonexistent/dinov3"), "error: model folder /nonexistent/dinov3 does not exist"),
    (("--dtype", "float64"), "error: bad value for --dtype"),
])
def test_inference_bad_input_is_one_clear_error(args, message, tmp_path, run):
    done = run("inference.py", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(message) and "fix:" in done.stderr and "Traceback" not in done.stderr
    # the script's own option names, not the suite's (issue 23)
    assert "--model-path" not in done.stderr and "--num-runs" not in done.stderr and "pytest --help" not in done.stderr


def test_benchmark_help_shows_each_option_once(run):
    done = run("benchmark.py", "--help", cwd=ROOT)
    assert done.returncode == 0
    options = [line.split()[:3] for line in done.stdout.splitlines() if line.startswith("  --")]
    device = [words for words in options if words[0] in ("--device", "--device,")]
    assert len(device) == 1 and " ".join(device[0]).count("--device") == 1, device  # was "--device DEVICE, --device"
    # the two spellings of a two-word option, as argparse of this Python shows them
    assert any(words[0].startswith("--model_path") and "--model-path" in " ".join(words) for words in options), options


def test_benchmark_writes_the_suites_json_report(tiny_checkpoint, tmp_path, run):
    output = tmp_path / "out" / "benchmark_report.json"
    done = run("benchmark.py", "--model_path", str(tiny_checkpoint), "--device", "cpu", "--num_runs", "3",
               "--report_dir", str(tmp_path / "reports"), "--output", str(output), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    report = json.loads(output.read_text())
    assert schema_errors(report) == []
    assert report["verdict"]["counts"] == SUITE_COUNTS
    assert report["performance"]["device"]["samples"] == 3 and report["performance"]["device"]["num_runs"] == 3
    assert f"report written to {output}" in done.stdout


def test_benchmark_with_a_missing_device_writes_nothing(tmp_path, run):
    output = tmp_path / "benchmark_report.json"
    done = run("benchmark.py", "--device", "npu", "--report_dir", str(tmp_path / "reports"), "--output", str(output),
               cwd=tmp_path)
    assert done.returncode == 4
    assert "torch_npu is not installed" in done.stdout + done.stderr and not output.exists()
