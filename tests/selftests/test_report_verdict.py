"""The overall verdict: every combination that must not be PASS, and the one that is."""

import re
from pathlib import Path

import pytest

from acceptance.errors import ConfigError
from acceptance.report.verdict import (
    FAIL,
    NOT_VALID,
    PASS,
    SignoffRules,
    decide,
    signoff_rules,
)
from acceptance.results import CheckRecord
from acceptance.thresholds import load_thresholds

ROOT = Path(__file__).resolve().parents[2]
RULES = SignoffRules(required_markers=("accuracy",))


def checks(*outcomes_and_markers):
    return {f"t{i}": CheckRecord(f"t{i}", outcome, 0.0, message=f"m{i}", markers=markers)
            for i, (outcome, markers) in enumerate(outcomes_and_markers)}


GOOD = (("passed", ("accuracy",)), ("passed", ("shapes",)))


@pytest.mark.parametrize("records, architecture_only, kind, exit_status, status, reason", [
    (GOOD, False, "npu", "OK", PASS, None),
    (GOOD, False, "cuda", "OK", PASS, None),
    (GOOD + (("skipped", ()),), False, "npu", "OK", PASS, None),
    (GOOD, True, "npu", "OK", NOT_VALID, "architecture-only"),
    (GOOD, False, "cpu", "OK", NOT_VALID, "the CPU"),
    (GOOD, True, "cpu", "OK", NOT_VALID, "the CPU"),
    (GOOD, False, "npu", "INTERRUPTED", NOT_VALID, "interrupted"),
    (GOOD, False, "npu", "RUNNING", NOT_VALID, "had not finished"),
    (GOOD, False, "npu", "INTERNAL_ERROR", NOT_VALID, "INTERNAL_ERROR"),
    (GOOD, False, None, "OK", NOT_VALID, "no device"),
    ((), False, "npu", "NO_TESTS_COLLECTED", NOT_VALID, "no checks ran"),
    ((("passed", ("shapes",)),), False, "npu", "OK", NOT_VALID, "'accuracy' check passed"),
    ((("skipped", ("accuracy",)), ("passed", ("shapes",))), False, "npu", "OK", NOT_VALID, "was skipped"),
    (GOOD + (("failed", ()),), False, "npu", "TESTS_FAILED", FAIL, "1 check(s) failed: t2 (m2)"),
    (GOOD + (("error", ()),), False, "npu", "TESTS_FAILED", FAIL, "raised an error"),
    # a failure is shown even where the run could never have signed off
    (GOOD + (("failed", ()),), True, "cpu", "INTERRUPTED", FAIL, "failed"),
    ((("failed", ("accuracy",)),), False, "npu", "TESTS_FAILED", FAIL, "failed"),
])
def test_verdict_table(records, architecture_only, kind, exit_status, status, reason):
    verdict = decide(checks(*records), architecture_only=architecture_only, device_kind=kind,
                     exit_status=exit_status, rules=RULES)
    assert verdict.status == status, verdict.reasons
    assert verdict.valid_for_signoff == (status == PASS)
    if reason is None:
        assert verdict.reasons == ()
    else:
        assert any(reason in text for text in verdict.reasons), (reason, verdict.reasons)


def test_failures_are_listed_before_other_reasons_and_counted():
    verdict = decide(checks(*GOOD, ("failed", ())), architecture_only=True, device_kind="cpu",
                     exit_status="TESTS_FAILED", rules=RULES)
    assert "failed" in verdict.reasons[0]
    assert verdict.counts == {"failed": 1, "passed": 2}
    # a failed accuracy check is a failure, not also "no accuracy check passed"
    assert not any("'accuracy' check passed" in reason for reason in verdict.reasons)


def test_signoff_rules_from_the_thresholds_file(tmp_path):
    source = (ROOT / "thresholds.toml").read_text()
    assert "accuracy" in signoff_rules(load_thresholds(ROOT / "thresholds.toml")).required_markers
    bad = tmp_path / "thresholds.toml"
    bad.write_text(re.sub(r"(?m)^required_markers = .*$", 'required_markers = "accuracy"', source))
    with pytest.raises(ConfigError, match="signoff.required_markers must be a list"):
        signoff_rules(load_thresholds(bad))
