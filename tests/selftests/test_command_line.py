"""The suite's command lines exactly as a pytest user types them, from the repository root.

pytest chooses its rootdir and ini file from the arguments it takes for test paths
before any plugin can add options, so ``--model-path DIR`` with a space first makes
DIR a test path. The installed plugin (fixtures/plugin.py) runs the command again
with each option joined to its value; these tests run the real command lines in
subprocesses and read the reports they leave.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from acceptance.images import synthetic_image
from fixtures.plugin import installed, join_option_values
from tests.selftests.conftest import SUITE_COUNTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def typed(python_run):
    """``pytest ARGS`` in the repository root, as a shell would start it (no DINOV3_* from this run)."""
    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return python_run("-m", "pytest", *args, env=env)

    return run


def report(folder: Path) -> dict:
    return json.loads((folder / "benchmark_report.json").read_text())


@pytest.fixture(autouse=True)
def _plugin_installed():
    assert installed(), ("the suite's pytest plugin is not installed in this Python; README's set-up command "
                         "does it: pip install -e .")


def test_device_then_model_path_with_spaces(tiny_checkpoint, tmp_path, typed):
    """`pytest --device cpu --model-path DIR` - the form the issue reports as broken."""
    reports = tmp_path / "reports"
    result = typed("--device", "cpu", "--model-path", str(tiny_checkpoint), "-p", "no:cacheprovider",
                   env={"DINOV3_REPORT_DIR": str(reports)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = report(reports)
    assert data["model"]["path"] == str(tiny_checkpoint)
    assert data["device"]["kind"] == "cpu" and data["verdict"]["counts"] == SUITE_COUNTS
    assert "rootdir: " + str(ROOT) in result.stdout


def test_every_path_option_with_spaces_in_any_order(tiny_checkpoint, tmp_path, typed):
    """`pytest --model-path DIR --device cpu --image PNG --report-dir OUT`."""
    image = tmp_path / "pictures" / "cat.png"
    image.parent.mkdir()
    synthetic_image(96, seed=5).save(image)
    out = tmp_path / "out"
    out.mkdir()
    result = typed("--model-path", str(tiny_checkpoint), "--device", "cpu", "--image", str(image),
                   "--report-dir", str(out), "-m", "shapes or accuracy", "-p", "no:cacheprovider")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = report(out)
    assert data["model"]["path"] == str(tiny_checkpoint)
    assert data["input"]["image"]["source"] == str(image)
    assert data["run"]["options"]["report_dir"] == str(out)
    assert data["accuracy"]["pass"] is True


def test_options_join_their_values():
    args = ["--device", "cpu", "--model-path", "/tmp", "-m", "accuracy", "--allow-pickle", "tests/acceptance",
            "--num-runs", "5", "--image", "/nonexistent.png", "--baseline", "-x"]
    joined, paths = join_option_values(args)
    assert joined == ["--device=cpu", "--model-path=/tmp", "-m", "accuracy", "--allow-pickle", "tests/acceptance",
                      "--num-runs=5", "--image=/nonexistent.png", "--baseline", "-x"]
    assert paths == ["--model-path /tmp"]  # only existing paths can mislead pytest's rootdir search


def test_inside_another_program_the_fix_is_one_line(tiny_checkpoint, tmp_path, python_run):
    """pytest.main() in another process cannot be restarted: one line says what happened and the fix."""
    code = ("import sys, pytest; sys.exit(pytest.main(['--device', 'cpu', '--model-path', sys.argv[1], "
            "'-p', 'no:cacheprovider']))")
    result = python_run("-c", code, str(tiny_checkpoint), timeout=300)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert result.stderr.startswith(f"ERROR: pytest took the value of --model-path {tiny_checkpoint} for a test path")
    assert f"fix: write the option with '=': --model-path={tiny_checkpoint}" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
