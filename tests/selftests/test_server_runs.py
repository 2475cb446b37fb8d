"""Runs under pytest-xdist: the workers' results reach the controller, which writes one complete report."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("xdist")

SELECTION = ("-m", "accuracy or shapes", "--device=cpu")


def _report(tmp_path):
    return json.loads((tmp_path / "reports" / "benchmark_report.json").read_text())


def _outcomes(report):
    return {check["nodeid"]: check["outcome"] for check in report["checks"]}


def test_xdist_run_writes_the_same_report_as_the_serial_run(run_suite, tiny_checkpoint, tmp_path):
    serial_run = run_suite(f"--model-path={tiny_checkpoint}", *SELECTION)
    serial_run.assert_outcomes(passed=12)
    serial = _report(tmp_path)
    parallel_run = run_suite(f"--model-path={tiny_checkpoint}", *SELECTION, "-n", "2")
    parallel_run.assert_outcomes(passed=12)
    parallel_run.stdout.fnmatch_lines(["*2 workers*"])
    parallel = _report(tmp_path)

    assert parallel["run"]["id"] != serial["run"]["id"], "the second run did not write its own report"
    assert parallel["verdict"] == serial["verdict"], (parallel["verdict"], serial["verdict"])
    assert parallel["verdict"]["counts"] == {"passed": 12}
    assert parallel["accuracy"] == serial["accuracy"] and parallel["accuracy"]["tensors"]
    assert parallel["outputs"] == serial["outputs"]
    assert _outcomes(parallel) == _outcomes(serial)
    # the worker's own records (with the test's markers) and the figures each test recorded
    by_node = {check["nodeid"]: check for check in serial["checks"]}
    for check in parallel["checks"]:
        assert check["markers"] == by_node[check["nodeid"]]["markers"], check["nodeid"]
        assert check["metrics"] == by_node[check["nodeid"]]["metrics"], check["nodeid"]
    assert parallel["sections"].keys() == serial["sections"].keys()
    assert parallel["input"] == serial["input"]
    html = (tmp_path / "reports" / "acceptance.html").read_text()
    assert "no checks ran" not in html and "relative_error" in html
