"""Runs under pytest-xdist: the workers' results reach the controller, which writes one complete report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

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
    # the same image, each run's own copy of it in its own run folder (issue 23: never the shared one)
    without_path = [{**report["input"], "image": {**report["input"]["image"], "path": None}}
                    for report in (parallel, serial)]
    assert without_path[0] == without_path[1]
    for report in (parallel, serial):
        assert report["input"]["image"]["path"] == str(tmp_path / "reports" / "runs" / report["run"]["id"]
                                                       / "input_image.png")
        assert Path(report["input"]["image"]["path"]).is_file()
    # the workers store the reference under the controller's run id
    assert "run None" not in parallel["sections"]["reference"]["summary"], parallel["sections"]["reference"]
    html = (tmp_path / "reports" / "acceptance.html").read_text()
    assert "no checks ran" not in html and "relative_error" in html


# ---- whole-server runs: every listed card against the one CPU reference ----

CARDS_PLUGIN = ("-p", "tests.selftests.plugins.npu_cards")
#: where torch can host the simulated card, these scenarios run on it (test_simulated_npu.py) instead
ON_THE_STAND_IN_ONLY = pytest.mark.skipif(
    hasattr(torch.utils.backend_registration, "_setup_privateuseone_for_python_backend"),
    reason="runs on the simulated card (test_simulated_npu.py): the stand-in covers torch < 2.10 only")
PER_CARD = ("-m", "accuracy or shapes or consistency or determinism")


def _complete(row):
    """A card row with every figure its tests measure: both outputs compared, finite; determinism recorded."""
    assert row["verdict"] == "PASS", row
    assert set(row["accuracy"]) == {"last_hidden_state", "pooler_output"}, row
    assert all(values["finite"] and values["relative_error"] == 0.0 for values in row["accuracy"].values()), row
    assert row["determinism"] and row["determinism"]["bitwise_identical"], row
    assert row["counts"] == {"passed": 15}, row


@ON_THE_STAND_IN_ONLY
def test_eight_cards_with_card_five_returning_nan(run_suite, tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("SELFTEST_NPU_CARDS", "8")
    monkeypatch.setenv("SELFTEST_NAN_CARD", "5")
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu:all", *CARDS_PLUGIN, *PER_CARD)
    result.assert_outcomes(passed=7 * 15 + 9, failed=6)
    result.stdout.fnmatch_lines(["*test_accuracy_vs_cpu_reference?npu:5-last_hidden_state?*"])
    report = _report(tmp_path)
    server = report["sections"]["server"]
    assert [row["card"] for row in server["cards"]] == [f"npu:{card}" for card in range(8)]
    assert server["verdict"] == "FAIL" and server["failing_cards"] == ["npu:5"]
    assert report["verdict"]["status"] == "FAIL"
    assert report["verdict"]["reasons"][0].startswith("card npu:5 (Ascend910B2 stand-in) FAILS: "), report["verdict"]
    for row in server["cards"]:
        if row["card"] != "npu:5":
            _complete(row)
    bad = server["cards"][5]
    assert bad["verdict"] == "FAIL" and bad["accuracy"]["last_hidden_state"]["finite"] is False
    assert any("NaN" in reason for reason in bad["reasons"]), bad["reasons"]
    html = (tmp_path / "reports" / "acceptance.html").read_text()
    assert "Server: npu:all - FAIL (failing: npu:5)" in html


def test_a_card_list_runs_only_the_listed_cards(run_suite, tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("SELFTEST_NPU_CARDS", "8")
    collected = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu:0,2,5", *CARDS_PLUGIN, "--collect-only",
                          "-q", "-m", "determinism")
    ids = {line.rsplit("::", 1)[-1] for line in collected.stdout.lines if "::" in line}
    assert ids == {f"test_repeated_forwards_identical[npu:{card}]" for card in (0, 2, 5)}, collected.stdout.str()
    missing = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu:0,9", *CARDS_PLUGIN)
    assert missing.ret == 4
    missing.stderr.fnmatch_lines(["*npu:9 was requested but only 8 npu device(s) are visible*"])


@ON_THE_STAND_IN_ONLY
def test_one_card_server_and_card_lost_mid_run_under_xdist(run_suite, tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("SELFTEST_NPU_CARDS", "1")
    one = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu:all", *CARDS_PLUGIN, *PER_CARD)
    one.assert_outcomes(passed=15)
    server = _report(tmp_path)["sections"]["server"]
    assert [row["card"] for row in server["cards"]] == ["npu:0"] and server["verdict"] == "PASS"
    _complete(server["cards"][0])

    monkeypatch.setenv("SELFTEST_NPU_CARDS", "2")
    monkeypatch.setenv("SELFTEST_LOST_CARD", "1")
    lost = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu:all", *CARDS_PLUGIN, *PER_CARD, "-n", "2")
    lost.stdout.fnmatch_lines(["*2 workers*"])
    report = _report(tmp_path)
    server = report["sections"]["server"]
    assert server["failing_cards"] == ["npu:1"], server
    _complete(server["cards"][0])  # the good card's results are kept
    lost_row = server["cards"][1]
    assert lost_row["verdict"] == "FAIL" and any("device npu:1 lost" in reason for reason in lost_row["reasons"])
    assert "card npu:1" in report["verdict"]["reasons"][0]
    # one worker per card, bound to it before the runtime started: card k ran on gwk, seeing only card k
    assert [(row["worker"], row["visible_devices"]) for row in server["cards"]] == [("gw0", "0"), ("gw1", "1")]


def test_more_workers_than_listed_cards_start_one_per_card(run_suite, tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("SELFTEST_NPU_CARDS", "3")
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu:0,2", *CARDS_PLUGIN, "-m", "accuracy",
                       "-n", "3")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*2 workers*"])
    server = _report(tmp_path)["sections"]["server"]
    assert [(row["card"], row["worker"], row["visible_devices"]) for row in server["cards"]] == [
        ("npu:0", "gw0", "0"), ("npu:2", "gw1", "2")]
    assert server["verdict"] == "PASS"


@pytest.mark.parametrize("cards", [1, 8])
def test_cuda_all_collects_each_card(run_suite, tiny_checkpoint, monkeypatch, cards):
    """The CUDA stand-in with 1 or 8 cards: cuda:all names each of them in the per-card test ids."""
    monkeypatch.setenv("SELFTEST_CUDA_CARDS", str(cards))
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=cuda:all", "-p",
                       "tests.selftests.plugins.two_cuda_cards", "--collect-only", "-q", "-m", "determinism")
    ids = {line.rsplit("::", 1)[-1] for line in result.stdout.lines if "::" in line}
    assert ids == {f"test_repeated_forwards_identical[cuda:{card}]" for card in range(cards)}, result.stdout.str()


def test_nightly_requirements_are_judged_on_the_merged_results(run_suite, tiny_checkpoint, tmp_path):
    """--require-device under -n: the controller judges the whole run once, as a serial run would
    (a worker that saw half the tests must not leave its own verdict on them)."""
    args = (f"--model-path={tiny_checkpoint}", "--require-device=cpu", "-m", "accuracy", "--device=cpu")
    run_suite(*args)
    serial = _report(tmp_path)
    parallel_run = run_suite(*args, "-n", "2")
    parallel_run.stdout.fnmatch_lines(["*2 workers*"])
    parallel = _report(tmp_path)
    assert parallel["sections"]["nightly"]["failures"] == serial["sections"]["nightly"]["failures"]
    assert serial["sections"]["nightly"]["failures"], serial["sections"]["nightly"]
    assert parallel["verdict"] == serial["verdict"]
