"""The input set (fixtures/features/input_set.py): a device that agrees on the one image but not on a saturated one
passes the accuracy tests and fails exactly the white input, in the test, the report section, the HTML and the
terminal."""

from __future__ import annotations

import json

from acceptance.report.schema import schema_errors


def test_a_device_wrong_only_on_a_saturated_image_fails_the_white_input(run_suite, tiny_checkpoint, tmp_path):
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device", "cpu", "--dtype", "bfloat16",
                       "-p", "tests.selftests.plugins.saturation_bug", "-m", "accuracy or input_set")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines([
        "*FAILED *test_input_set.py::test_accuracy_on_input[[]white[]]: last_hidden_state of the white input "
        "(every pixel 255*) on cpu (bfloat16) vs CPU float32: relative error 4.9*% (allowed < 2.0000%)*",
        "*DINOv3 accuracy beyond the one image*",
        "cpu * white * FAIL",
    ])
    report = json.loads((tmp_path / "reports" / "benchmark_report.json").read_text())
    assert schema_errors(report) == []
    rows = report["sections"]["input_set"]["rows"]
    assert {row["input"] for row in rows if not row["pass"]} == {"white"}
    assert not next(row for row in rows if (row["input"], row["output"]) == ("white", "last_hidden_state"))["pass"]
    assert len(rows) == 8 and report["sections"]["input_set"]["criterion"].startswith("relative_error < 2.00%")
    html = (tmp_path / "reports" / "acceptance.html").read_text()
    assert 'id="dinov3-input-set"' in html and html.index('id="dinov3-accuracy"') < html.index('id="dinov3-input-set"')
