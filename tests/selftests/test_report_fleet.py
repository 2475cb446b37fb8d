"""The fleet merge: several hosts' and cards' reports in one table, and its command line."""

import json

import pytest

import merge_reports
from acceptance.report.fleet import fleet_html, merge
from acceptance.report.json_report import dumps

from .reporting_samples import ALLOWED_TAGS, HOSTILE, parse, sample_report


def test_two_hosts_that_pass_make_a_passing_fleet():
    fleet = merge([("b.json", sample_report(hostname="node-b")), ("a.json", sample_report(hostname="node-a"))])
    assert fleet["verdict"] == {"status": "PASS", "reasons": [],
                                "counts": {"PASS": 2, "FAIL": 0, "NOT VALID FOR SIGN-OFF": 0}}
    assert [row["host"] for row in fleet["rows"]] == ["node-a", "node-b"]
    assert fleet["tensors"] == ["last_hidden_state", "pooler_output"]
    row = fleet["rows"][0]
    assert row["device"] == "npu:0" and row["verdict"] == "PASS"
    assert 0.002 < row["relative_errors"]["last_hidden_state"] < 0.005
    assert row["p50_ms"] == pytest.approx(8.68, abs=0.1) and row["p99_ms"] is None
    assert row["throughput_img_per_sec"] == pytest.approx(1000 / row["mean_ms"])


def test_one_failing_card_fails_the_fleet():
    fleet = merge([("a", sample_report(hostname="a")), ("b", sample_report(hostname="b", failing=True))])
    assert fleet["verdict"]["status"] == "FAIL"
    assert fleet["verdict"]["reasons"][0] == "1 of 2 run(s) FAIL"


def test_runs_of_different_weights_are_not_one_sign_off():
    other = sample_report(hostname="b")
    other["model"]["weights_sha256"] = {"model.safetensors": "e" * 64}
    fleet = merge([("a", sample_report(hostname="a")), ("b", other)])
    assert fleet["verdict"]["status"] == "NOT VALID FOR SIGN-OFF"
    assert any("weights_sha256" in reason for reason in fleet["verdict"]["reasons"])


def test_the_same_run_given_twice_counts_once():
    report = sample_report()
    fleet = merge([("x/benchmark_report.json", report), ("x/runs/r/benchmark_report.json", report)])
    assert len(fleet["rows"]) == 1 and "counted once" in fleet["notes"][0]


def test_fleet_page_escapes_host_names():
    markup = fleet_html(merge([("a", sample_report(hostname=HOSTILE, device_name=HOSTILE))]))
    body = markup.split("<body>", 1)[1]
    assert "<script" not in body and set(parse(body).tags) <= ALLOWED_TAGS | {"h2", "html", "body"}


def write(path, report):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(report))
    return path


def test_command_line(tmp_path, capsys):
    a = write(tmp_path / "host-a" / "benchmark_report.json", sample_report(hostname="host-a"))
    write(tmp_path / "host-b" / "benchmark_report.json", sample_report(hostname="host-b"))
    out = tmp_path / "fleet"
    assert merge_reports.main([str(a), str(tmp_path / "host-b"), "-o", str(out), "--strict"]) == 0
    assert "fleet verdict: PASS" in capsys.readouterr().out
    fleet = json.loads((out / "fleet_report.json").read_text())
    assert [row["host"] for row in fleet["rows"]] == ["host-a", "host-b"]
    assert "host-b" in (out / "fleet_report.html").read_text()

    write(tmp_path / "host-c" / "benchmark_report.json", sample_report(hostname="host-c", device_kind="cpu"))
    assert merge_reports.main([str(a), str(tmp_path / "host-c"), "-o", str(out)]) == 0
    assert merge_reports.main([str(a), str(tmp_path / "host-c"), "-o", str(out), "--strict"]) == 1


@pytest.mark.parametrize("content, message", [
    (None, "is neither a report file nor a folder"),
    ("{not json", "cannot be read as JSON"),
    ('{"schema": "something else"}', "is not a valid benchmark report"),
])
def test_command_line_bad_input(tmp_path, capsys, content, message):
    path = tmp_path / "benchmark_report.json"
    if content is not None:
        path.write_text(content)
    assert merge_reports.main([str(path), "-o", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert message in error and "fix:" in error and "Traceback" not in error


def _card(label, verdict, relative_error, reasons=()):
    return {"card": label, "name": "Ascend910B2", "bus_id": None, "verdict": verdict, "reasons": list(reasons),
            "counts": {}, "accuracy": {"last_hidden_state": {"relative_error": relative_error, "cosine": 1.0,
                                                             "max_abs_diff": 0.0, "finite": verdict == "PASS"}},
            "p50_ms": 8.0, "p90_ms": 9.0, "throughput_img_per_s": 125.0, "latency_mode": "sequential",
            "peak_memory_bytes": None, "peak_memory_note": None, "determinism": None, "worker": None,
            "visible_devices": None}


def test_a_whole_server_report_gives_one_row_per_card():
    """host x card: a server report's cards are rows of their own; the bad card fails alone."""
    server = sample_report(hostname="node-a")
    server["sections"] = {"server": {"spec": "npu:all", "listed": ["npu:0", "npu:1"], "verdict": "FAIL",
                                     "failing_cards": ["npu:1"],
                                     "cards": [_card("npu:0", "PASS", 0.001),
                                               _card("npu:1", "FAIL", "NaN", ["test_x[npu:1]: NaN"])]}}
    server["verdict"] = {**server["verdict"], "status": "FAIL", "reasons": ["card npu:1 (Ascend910B2) FAILS: NaN"]}
    fleet = merge([("a.json", server), ("b.json", sample_report(hostname="node-b"))])
    assert [(row["host"], row["device"], row["verdict"]) for row in fleet["rows"]] == [
        ("node-a", "npu:0", "PASS"), ("node-a", "npu:1", "FAIL"), ("node-b", "npu:0", "PASS")]
    assert fleet["rows"][1]["reasons"] == ["test_x[npu:1]: NaN"]
    assert fleet["verdict"]["reasons"][0] == "1 of 3 run(s) FAIL"
    assert "npu:1" in fleet_html(fleet)
