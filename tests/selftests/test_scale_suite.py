"""The scale tests in real acceptance runs on a tiny checkpoint: sweep points, soak, compile in the JSON."""

from __future__ import annotations

import json
import os

from .conftest import ROOT, expect_suite


def _report(run_suite_result, tmp_path):
    return json.loads((tmp_path / "reports" / "benchmark_report.json").read_text())


def test_sweep_soak_and_compile_in_the_json(run_suite, tiny_checkpoint, tmp_path):
    result = run_suite(f"--model-path={tiny_checkpoint}", "-m", "sweep or soak or graph_mode or determinism",
                       "--sweep-batches=1,2,4", "--sweep-resolutions=32,64", "--soak-seconds=1", "--compile=on")
    result.assert_outcomes(passed=5)
    sections = _report(result, tmp_path)["sections"]
    points = {(p["batch"], p["resolution"]): p for p in sections["sweep"]["points"]}
    assert set(points) == {(1, 32), (2, 32), (4, 32), (1, 64)}
    assert all(p["status"] == "ok" and p["flops_per_forward"] > 0 for p in points.values())
    assert points[(2, 32)]["flops_per_forward"] == 2 * points[(1, 32)]["flops_per_forward"]
    assert sections["soak"]["cpu"]["iterations"] > 0 and sections["soak"]["cpu"]["memory_note"]
    assert sections["compile"]["backend"] == "inductor" and sections["compile"]["compile_seconds"] > 0
    assert sections["utilisation"]["peak"]["source"].startswith("measured")
    html = (tmp_path / "reports" / "acceptance.html").read_text()
    assert "Throughput vs batch" in html and "Latency vs resolution" in html


def test_whole_suite_counts_and_sweep_off(run_suite, tiny_checkpoint):
    expect_suite(run_suite(f"--model-path={tiny_checkpoint}"))
    result = run_suite(f"--model-path={tiny_checkpoint}", "--sweep=off", "-m", "sweep")
    result.assert_outcomes(passed=1, skipped=1)  # FLOPs still counted; the sweep itself skipped


def test_two_standin_cards_parametrize_the_per_card_tests(run_suite, tiny_checkpoint, tmp_path, monkeypatch):
    """--device npu (or auto) with two visible (stand-in) cards: every per-card test once per card; npu:1 just
    card 1."""
    package = tmp_path / "standin" / "torch_npu"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('__version__ = "2.9.0.post1+standin"\n'
                                         "from tests.selftests.standins import torch_npu_standin\n"
                                         "from tests.selftests.standins.torch_npu_standin import "
                                         "npu_fusion_attention\n"
                                         'torch_npu_standin.install(device_count=2, name="Ascend910B2")\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(package.parent), str(ROOT)]))
    every = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu", "--collect-only", "-q",
                      "-m", "determinism or soak")
    ids = {line.rsplit("::", 1)[-1] for line in every.stdout.lines if "::" in line}
    assert ids == {"test_repeated_forwards_identical[card0]", "test_repeated_forwards_identical[card1]",
                   "test_soak[card0]", "test_soak[card1]"}, every.stdout.str()
    auto = run_suite(f"--model-path={tiny_checkpoint}", "--device=auto", "--collect-only", "-q",
                     "-m", "determinism or soak")  # auto resolves to npu: once per card, as --device npu
    assert {line.rsplit("::", 1)[-1] for line in auto.stdout.lines if "::" in line} == ids, auto.stdout.str()
    one = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu:1", "--collect-only", "-q",
                    "-m", "determinism or soak")
    ids = {line.rsplit("::", 1)[-1] for line in one.stdout.lines if "::" in line}
    assert ids == {"test_repeated_forwards_identical[card1]", "test_soak[card1]"}, one.stdout.str()


def test_mfu_above_one_against_a_spec_sheet_peak_fails(run_suite, tiny_checkpoint, monkeypatch):
    """An achieved rate above the table's peak is impossible: the sweep says so instead of recording MFU > 1."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=cpu", "-m", "sweep", "--sweep-batches=1",
                       "--sweep-resolutions=32", "-p", "tests.selftests.plugins.tiny_peak")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*MFU = achieved / peak (1e-12 TFLOP/s, peak_flops.toml (a wrong entry)) must be "
                                 "finite and in (0, 1.0] per sweep point: batch 1 at 32: * TFLOP/s achieved, MFU *"])
