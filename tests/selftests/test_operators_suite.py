"""Operator-level drift in the acceptance suite, on the simulated Ascend card: a fault seeded in one operator of
one block is named, nothing before it is, a clean card flags nothing; --dump writes what ``msprobe compare``
reads, and (where mindstudio-probe is installed) its CSV's first error row is the suite's operator."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from acceptance.report.schema import schema_errors

SIMULATION_POSSIBLE = hasattr(torch.utils.backend_registration, "_setup_privateuseone_for_python_backend")
pytestmark = pytest.mark.skipif(not SIMULATION_POSSIBLE, reason=(
    f"torch {torch.__version__} has no Python PrivateUse1 backend (torch >= 2.10): the simulated card cannot "
    "exist here; tests/selftests/test_operators.py covers the comparison on the CPU"))

SIM = ("-p", "simulated_npu", "--device=npu")
FAULT = "0: op=layer.7.mlp:gelu*1.01"  # layer.7 of tiny_deep_checkpoint's 9


def _report(tmp_path):
    return json.loads((tmp_path / "reports" / "benchmark_report.json").read_text())


def test_a_faulty_gelu_in_one_block_is_named_with_its_module(run_suite, tiny_deep_checkpoint, tmp_path,
                                                            monkeypatch):
    monkeypatch.setenv("SIMULATED_NPU_FAULTS", FAULT)
    result = run_suite(f"--model-path={tiny_deep_checkpoint}", *SIM, "--ops", "on", "-m", "operators")
    assert result.ret == 1
    report = _report(tmp_path)
    section = report["sections"]["operators"]
    assert (section["first_error"], section["first_error_module"]) == ("Functional.gelu.7.forward",
                                                                       "layer.7.mlp.act_fn")
    rows = section["operators"]
    first = next(index for index, row in enumerate(rows) if row["status"] == "error")
    assert rows[first]["name"] == "Functional.gelu.7.forward"
    assert all(row["status"] == "pass" for row in rows[:first]), \
        [row["name"] for row in rows[:first] if row["status"] != "pass"]
    assert not section["unmatched_device"] and not section["unmatched_reference"]
    assert any("Functional.gelu.7.forward in layer.7.mlp.act_fn" in reason for reason in report["verdict"]["reasons"])
    assert schema_errors(report) == []
    html = (tmp_path / "reports" / "acceptance.html").read_text()
    assert 'id="dinov3-operators"' in html and "first error" in html
    result.stdout.fnmatch_lines(["*operator-level drift vs CPU float32*",
                                 "*Functional.gelu.7.forward*layer.7.mlp.act_fn*error"])


def test_a_clean_card_flags_no_operator_and_auto_runs_only_on_drift(run_suite, tiny_checkpoint, tmp_path):
    result = run_suite(f"--model-path={tiny_checkpoint}", *SIM, "--ops=on", "-m", "operators")
    result.assert_outcomes(passed=2)
    section = _report(tmp_path)["sections"]["operators"]
    assert section["counts"]["error"] == 0 and section["first_error"] is None and section["operators"]
    auto = run_suite(f"--model-path={tiny_checkpoint}", *SIM, "-m", "operators or layers")
    auto.assert_outcomes(passed=2, skipped=2)
    assert _report(tmp_path)["sections"]["operators"]["skipped"].startswith("no probe point over its limits")


def test_dump_is_read_by_msprobe_compare_which_names_the_same_operator(run_suite, tiny_deep_checkpoint, tmp_path,
                                                                         monkeypatch):
    # strict precision: every input of the faulty gelu is exact, so msprobe's own one-thousandth rule fires
    monkeypatch.setenv("SIMULATED_NPU_FAULTS", FAULT)
    dump = tmp_path / "dump"
    result = run_suite(f"--model-path={tiny_deep_checkpoint}", *SIM, "--precision=strict", "--dump", str(dump),
                       "-m", "operators")
    assert result.ret == 1
    section = _report(tmp_path)["sections"]["operators"]
    assert section["first_error"] == "Functional.gelu.7.forward"
    cpu, device = dump / "cpu" / "step0" / "rank0", dump / "npu-0" / "step0" / "rank0"
    for side in (cpu, device):
        assert {path.name for path in side.iterdir()} == {"dump.json", "construct.json", "stack.json",
                                                          "dump_tensor_data"}
    assert section["dumps"] == {"cpu": str((cpu / "dump.json").resolve()),
                                "device": str((device / "dump.json").resolve())}
    beside = Path(sys.executable).parent / "msprobe"  # this environment's console script, on PATH or not
    msprobe = str(beside) if beside.exists() else shutil.which("msprobe")
    if msprobe is None or importlib.util.find_spec("msprobe") is None:
        pytest.skip("mindstudio-probe is not installed here (pip install mindstudio-probe): the dump layout was "
                    "checked, msprobe compare itself was not run")
    out = tmp_path / "compare"
    done = subprocess.run([msprobe, "compare", "-tp", str(device / "dump.json"), "-gp", str(cpu / "dump.json"),
                           "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (table,) = out.glob("compare_result_*.csv")
    rows = list(csv.DictReader(table.open()))
    errors = [row["NPU Name"] for row in rows if row["Result"] == "error"]
    assert errors and errors[0] == "Functional.gelu.7.forward.output.0", errors[:5]
