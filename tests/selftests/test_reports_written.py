"""A real acceptance run (tiny checkpoint, CPU) leaves the three reports - also when a test raises,
the session is interrupted or the process dies - and the merge command combines runs."""

import json
import xml.etree.ElementTree as ET

import pytest

from acceptance.options import OPTIONS
from acceptance.report.schema import schema_errors
from tests.selftests.conftest import SUITE_COUNTS, SUITE_TOTAL, expect_suite

from .conftest import ROOT

REPORTS = ("benchmark_report.json", "acceptance.html", "junit.xml")
SECRET = "hf_dinov3SelfTestSecret42"


def run_folders(reports):
    return sorted(path for path in (reports / "runs").iterdir() if path.is_dir())


def load(path):
    report = json.loads(path.read_text())
    assert schema_errors(report) == [], schema_errors(report)
    return report


def extra_test(tmp_path, name, body):
    """A test file run together with the acceptance suite (it shares its plugins and fixtures)."""
    path = tmp_path / "extra" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(body)
    return str(path)


def test_plain_run_leaves_three_reports_and_keeps_earlier_runs(run_suite, tiny_checkpoint, tmp_path, monkeypatch,
                                                               python_run):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("HF_ENDPOINT", f"https://user:{SECRET}@mirror.example")
    result = run_suite("--model-path", str(tiny_checkpoint), "--device", "cpu")
    expect_suite(result)
    result.stdout.fnmatch_lines(["*DINOv3 verdict*", "NOT VALID FOR SIGN-OFF",
                                 "*the device under test is the CPU*", "*architecture-only*"])
    reports = tmp_path / "reports"
    [first] = run_folders(reports)
    for name in REPORTS:
        assert (reports / name).is_file() and (first / name).is_file(), name
        assert (reports / name).read_bytes() == (first / name).read_bytes(), name
        assert SECRET not in (reports / name).read_text(), f"secret leaked into {name}"

    report = load(reports / "benchmark_report.json")
    assert report["run"]["id"] == first.name and report["run"]["exit_status"] == "OK"
    assert report["verdict"]["status"] == "NOT VALID FOR SIGN-OFF" and report["verdict"]["counts"] == SUITE_COUNTS
    assert report["model"]["architecture_only"] is True
    recorded = report["run"]["options"]
    assert sorted(recorded) == sorted(option.field for option in OPTIONS), f"run.options {sorted(recorded)}"
    assert recorded["device"] == "cpu" and recorded["model_path"] == str(tiny_checkpoint)
    assert report["environment_variables"]["HF_TOKEN"] == "[redacted]"
    assert report["environment_variables"]["HF_ENDPOINT"] == "https://[redacted]@mirror.example"
    hidden = report["accuracy"]["tensors"]["last_hidden_state"]
    assert hidden["shape"] == [1, 201, 64] and hidden["pass"] is True
    accuracy_check = next(c for c in report["checks"] if "test_accuracy_vs_cpu_reference[pooler_output]" in c["nodeid"])
    assert accuracy_check["metrics"]["max_relative_error"] == 0.01

    suite = ET.parse(reports / "junit.xml").getroot().find("testsuite")
    assert suite.get("name") == "dinov3-acceptance" and suite.get("tests") == str(SUITE_TOTAL)
    properties = {p.get("name") for p in suite.iter("property")}
    assert {"relative_error", "cosine", "max_abs_diff"} <= properties

    page = (reports / "acceptance.html").read_text()
    assert 'id="dinov3-verdict"' in page and "NOT VALID FOR SIGN-OFF" in page
    assert "DINOv3 ViT/16 (hidden 64, 2 layers) (checkpoint, architecture-only) on cpu" in page
    assert "HF_TOKEN" in page

    # a second run gets its own folder; the stable names now hold it, the first run is untouched
    first_json = (first / "benchmark_report.json").read_bytes()
    expect_suite(run_suite("--model-path", str(tiny_checkpoint), "--device", "cpu"))
    folders = run_folders(reports)
    assert len(folders) == 2 and (first / "benchmark_report.json").read_bytes() == first_json
    second = next(folder for folder in folders if folder != first)
    assert load(reports / "benchmark_report.json")["run"]["id"] == second.name

    # the merge command combines the two runs into one fleet table
    out = tmp_path / "fleet"
    merged = python_run(str(ROOT / "merge_reports.py"), "-o", str(out),
                        *[str(folder / "benchmark_report.json") for folder in folders], cwd=tmp_path)
    assert merged.returncode == 0, merged.stderr
    fleet = json.loads((out / "fleet_report.json").read_text())
    assert [row["run_id"] for row in fleet["rows"]] == [folder.name for folder in folders]
    assert fleet["verdict"]["status"] == "NOT VALID FOR SIGN-OFF"
    assert all(row["relative_errors"]["pooler_output"] == 0.0 for row in fleet["rows"])
    assert 'id="dinov3-fleet"' in (out / "fleet_report.html").read_text()
    assert "fleet verdict: NOT VALID FOR SIGN-OFF" in merged.stdout


def test_a_raising_test_still_leaves_everything_measured(run_suite, tiny_checkpoint, tmp_path):
    extra = extra_test(tmp_path, "test_extra_raises.py",
                       "def test_device_lost():\n    raise RuntimeError('device lost <b>mid-run</b>')\n")
    result = run_suite("--model-path", str(tiny_checkpoint), "--device", "cpu", extra)
    expect_suite(result, failed=1)
    result.stdout.fnmatch_lines(["*DINOv3 verdict*", "FAIL", "*1 check(s) failed*device lost*"])
    reports = tmp_path / "reports"
    for name in REPORTS:
        assert (reports / name).is_file(), name

    report = load(reports / "benchmark_report.json")
    assert report["run"]["exit_status"] == "TESTS_FAILED"
    assert report["verdict"]["status"] == "FAIL" and report["verdict"]["counts"] == {**SUITE_COUNTS, "failed": 1}
    failed = [check for check in report["checks"] if check["outcome"] == "failed"]
    assert len(failed) == 1 and failed[0]["nodeid"].endswith("test_device_lost")
    assert failed[0]["message"] == "RuntimeError: device lost <b>mid-run</b>"
    assert report["accuracy"]["pass"] is True and len(report["accuracy"]["tensors"]) == 2  # still measured

    suite = ET.parse(reports / "junit.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == (str(SUITE_TOTAL + 1), "1")
    page = (reports / "acceptance.html").read_text()
    assert '<div class="dinov3-banner dinov3-fail" id="dinov3-verdict"><div class="dinov3-status">FAIL</div>' in page
    assert "device lost &lt;b&gt;mid-run&lt;/b&gt;" in page and "device lost <b>" not in page


def test_an_interrupted_session_writes_its_reports(run_suite, tiny_checkpoint, tmp_path):
    extra = extra_test(tmp_path, "test_extra_interrupt.py", "def test_ctrl_c():\n    raise KeyboardInterrupt\n")
    result = run_suite("--model-path", str(tiny_checkpoint), "--device", "cpu", extra)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    reports = tmp_path / "reports"
    for name in REPORTS:
        assert (reports / name).is_file(), name
    report = load(reports / "benchmark_report.json")
    assert report["run"]["exit_status"] == "INTERRUPTED" and report["run"]["finished_at"]
    assert report["verdict"]["status"] == "NOT VALID FOR SIGN-OFF"
    assert any("interrupted" in reason for reason in report["verdict"]["reasons"])
    assert report["verdict"]["counts"] == SUITE_COUNTS and report["accuracy"]["pass"] is True


def test_a_killed_run_leaves_what_it_measured(run_suite, tiny_checkpoint, tmp_path):
    extra = extra_test(tmp_path, "test_extra_killed.py", "import os\n\ndef test_killed():\n    os._exit(9)\n")
    result = run_suite("--model-path", str(tiny_checkpoint), "--device", "cpu", extra)
    assert result.ret == 9
    reports = tmp_path / "reports"
    [folder] = run_folders(reports)
    assert not (reports / "benchmark_report.json").exists()  # only finished runs become the latest
    report = load(folder / "benchmark_report.json")
    assert report["run"]["exit_status"] == "RUNNING" and report["run"]["finished_at"] is None
    assert report["verdict"]["status"] == "NOT VALID FOR SIGN-OFF"
    assert any("had not finished" in reason for reason in report["verdict"]["reasons"])
    assert report["verdict"]["counts"] == SUITE_COUNTS and len(report["accuracy"]["tensors"]) == 2


def test_a_user_given_html_path_is_left_to_the_user(run_suite, tiny_checkpoint, tmp_path):
    own = tmp_path / "mine" / "report.html"
    run_suite("--model-path", str(tiny_checkpoint), "--device", "cpu", "-k", "test_output_shape", f"--html={own}"
              ).assert_outcomes(passed=4, deselected=SUITE_TOTAL - 4)
    reports = tmp_path / "reports"
    assert own.is_file() and 'id="dinov3-verdict"' in own.read_text()
    assert not (reports / "acceptance.html").exists()
    report = load(reports / "benchmark_report.json")
    assert "acceptance.html" not in report["run"]["files"]
    # only shape checks ran: the accuracy check the sign-off needs is missing
    assert any("no 'accuracy' check passed" in reason for reason in report["verdict"]["reasons"])


@pytest.mark.parametrize("args", [("--device", "npu"), ("--device", "cpu", "--collect-only"), ("--help",),
                                  ("--device", "cpu", "--num-runs", "0")],
                         ids=["usage-error-at-start", "collect-only", "help", "usage-error-at-configure"])
def test_a_run_that_runs_nothing_writes_nothing(run_suite, tiny_checkpoint, tmp_path, args):
    """docs/reports.md: usage errors, --help and --collect-only write nothing - not even an empty folder."""
    result = run_suite("--model-path", str(tiny_checkpoint), *args)
    assert result.ret in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.OK), result.stdout.str()[-2000:]
    assert not (tmp_path / "reports").exists(), sorted(str(path) for path in (tmp_path / "reports").rglob("*"))
