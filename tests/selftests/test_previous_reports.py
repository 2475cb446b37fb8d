"""Reports written by the previous release still validate against the shipped schema, with a stock validator, and
render: the summary with every feature's section in place, no part that could not be drawn, and the fleet page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import merge_reports
from acceptance.report.html import summary_html
from acceptance.report.schema import SCHEMA_FILE
from fixtures.schema import feature_sections

REPORTS = Path(__file__).parent / "data" / "reports"
PREVIOUS = sorted(REPORTS.glob("*.json"))


@pytest.mark.parametrize("path", PREVIOUS, ids=[path.stem for path in PREVIOUS])
def test_a_previous_report_validates_against_the_shipped_schema_file(path):
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    errors = sorted(Draft202012Validator(schema).iter_errors(json.loads(path.read_text(encoding="utf-8"))),
                    key=lambda error: list(error.absolute_path))
    assert [f"/{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors] == []


@pytest.mark.parametrize("path", PREVIOUS, ids=[path.stem for path in PREVIOUS])
def test_a_previous_report_renders_every_section(path):
    report = json.loads(path.read_text(encoding="utf-8"))
    html = summary_html(report, feature_sections())
    assert "could not be drawn" not in html
    assert 'id="dinov3-verdict"' in html and 'id="dinov3-accuracy"' in html and "Operator-level drift" in html
    if "server" in report["sections"]:
        assert 'id="dinov3-server"' in html and report["verdict"]["status"] == "FAIL"


def test_previous_reports_merge_into_a_fleet_page(tmp_path, capsys):
    """merge_reports.py validates each report (load_report) before it merges them: an old one is accepted."""
    out = tmp_path / "fleet"
    assert merge_reports.main([str(path) for path in PREVIOUS] + ["-o", str(out)]) == 0, capsys.readouterr().err
    fleet = json.loads((out / "fleet_report.json").read_text())
    assert fleet["verdict"]["status"] == "FAIL"  # the server report's outlier card
    assert (out / "fleet_report.html").read_text().count("<tr>") >= 3  # a row per card, and the CPU host
