"""The diagnosis inside the acceptance suite, end to end through pytester on tiny checkpoints.

Faults are injected with tests/selftests/diagnosis_plugin.py (loaded with -p):
a noisy layer 7, an HF32-rounded patch embedding.
"""

from __future__ import annotations

import json

import pytest

from tests.selftests.conftest import expect_suite

from .conftest import ROOT

PLUGIN = ("-p", "tests.selftests.diagnosis_plugin")


@pytest.fixture
def run_diagnosed(run_suite, monkeypatch, tmp_path):
    """run_suite with the fault-injection plugin importable; returns (RunResult, results dict from JSON)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))

    def run(*args: str):
        dump = tmp_path / "results.json"
        result = run_suite(*PLUGIN, "--dump-results", str(dump), *args)
        return result, json.loads(dump.read_text()) if dump.is_file() else None

    return run


def test_noisy_layer_7_is_localised_to_layer_7(run_diagnosed, tiny_deep_checkpoint, tmp_path):
    result, results = run_diagnosed("--model-path", str(tiny_deep_checkpoint), "--device", "cpu",
                                    "--perturb-layer", "7")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 3, result.stdout.str()
    result.stdout.fnmatch_lines([
        # the output's failure names where the error begins ...
        "E * last_hidden_state on cpu (float32) vs CPU float32: relative error *"
        "first probe point (all tokens) over its [[]layers.float32[]] limits: layer.7 (relative error *",
        # ... and so do the layer-wise test, the summary and the per-layer table
        "E * probe points on cpu (float32) vs CPU float32: first probe point (all tokens) over its "
        "[[]layers.float32[]] limits: layer.7 *",
        "layers: drift begins at layer.7:*",
        "layer.7 *<- drift begins",
    ])
    # pooler_output is localised on the CLS token
    result.stdout.fnmatch_lines(["E * pooler_output on cpu *first probe point (token 0 (CLS)) over its *: layer.7 *"])
    section = results["sections"]["diagnosis"]
    assert section["first_drifting_layer"] == "layer.7"
    rows = {row["name"]: row for row in section["layers"]}
    assert all(rows[f"layer.{i}"]["relative_error"] == 0.0 for i in range(7))
    assert rows["layer.7"]["within_limits"] is False and rows["layer.7"]["relative_error"] > 0.01
    # noise is not rounding: no emulated arithmetic explains it
    result.stdout.fnmatch_lines(["E * matches no emulated arithmetic: *"])
    assert ('alt="error against depth" src="data:image/png;base64,'
            in (tmp_path / "reports" / "acceptance.html").read_text())


@pytest.mark.parametrize("mode", ["vendor-default", "strict"])
def test_hf32_convolution_is_fingerprinted(run_diagnosed, tiny_deep_checkpoint, tmp_path, mode):
    html = tmp_path / "report.html"
    result, results = run_diagnosed("--model-path", str(tiny_deep_checkpoint), "--device", "cpu",
                                    "--precision", mode, "--hf32-conv", "--html", str(html), "--self-contained-html")
    result.stdout.fnmatch_lines([f"precision: {mode} (float32_matmul_precision=highest)",
                                 "fingerprint: consistent with TF32/HF32 matmul or conv (distance in decades: *"])
    section = results["sections"]["diagnosis"]
    assert section["fingerprint"]["closest"] == "tf32/hf32"
    assert section["precision"] == {"mode": mode, "settings": {"float32_matmul_precision": "highest"},
                                    "strict_settings": {"float32_matmul_precision": "highest"}}
    assert results["config"]["precision"] == mode
    assert results["device"]["precision_settings"] == {"float32_matmul_precision": "highest"}
    page = html.read_text()
    assert "DINOv3 precision" in page and mode in page
    if mode == "vendor-default":  # rounding the convolution is what the vendor default allows
        expect_suite(result)
    else:  # strict promised float32 arithmetic, and the fingerprint catches that it was not
        expect_suite(result, passed=-1, failed=1)
        result.stdout.fnmatch_lines(["E * --precision strict promises float32 arithmetic, but the error is "
                                     "consistent with TF32/HF32 matmul or conv *"])


def test_bfloat16_with_the_whole_dtype_matrix(run_diagnosed, tiny_deep_checkpoint, tmp_path):
    result, results = run_diagnosed("--model-path", str(tiny_deep_checkpoint), "--device", "cpu",
                                    "--dtype", "bfloat16", "--dtypes", "all", "-v")
    expect_suite(result, passed=2)
    result.stdout.fnmatch_lines([
        "*test_dtype_against_cpu_reference[[]float32[]] PASSED*",
        "*test_dtype_against_cpu_reference[[]float16[]] PASSED*",
        "fingerprint: consistent with bfloat16 (distance in decades: float32 *, bfloat16 0.00, *",
        "*DINOv3 layer-wise drift vs CPU float32*",
        "probe point *rel_err *cosine *<0.1%*<0.5%*bfloat16 emul.",
        "embeddings *", "layer.8 *", "norm *",
        "*DINOv3 dtype matrix vs CPU float32*",
        "float32 *last_hidden_state*PASS*", "bfloat16 *pooler_output*PASS*", "float16 *pooler_output*PASS*",
    ])
    section = results["sections"]["diagnosis"]
    assert [row["dtype"] for row in section["dtype_matrix"]] == ["float32"] * 2 + ["bfloat16"] * 2 + ["float16"] * 2
    assert [row["name"] for row in section["layers"]] == ["embeddings", *(f"layer.{i}" for i in range(9)), "norm"]
    assert set(section["layers"][0]) >= {"name", "relative_error", "cosine", "max_abs_diff",
                                         "frac_rel_err_below_0.1pct", "frac_rel_err_below_0.5pct"}
    assert section["fingerprint"]["distances"]["bfloat16"] == 0.0
    page = (tmp_path / "reports" / "acceptance.html").read_text()
    assert 'alt="error against depth" src="data:image/png;base64,iVBORw0KGgo' in page  # a PNG, embedded


def test_bad_precision_mode_ends_session_at_once(run_suite, tiny_checkpoint):
    result = run_suite("--model-path", str(tiny_checkpoint), "--precision", "fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: bad value for --precision (from command line --precision): "
                                 "expected one of vendor-default, strict, got 'fast'", "*fix:*"])


def test_missing_layer_limits_name_the_key(run_suite, tiny_checkpoint, tmp_path):
    thresholds = (ROOT / "thresholds.toml").read_text().replace(
        "[layers.float16]\nmax_relative_error = 0.01\nmin_cosine = 0.99\n", "")
    path = tmp_path / "thresholds.toml"
    path.write_text(thresholds)
    result = run_suite("--model-path", str(tiny_checkpoint), "--thresholds", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: thresholds file {path}: missing table [[]layers.float16[]]",
                                 "*fix: add [[]layers.float16[]] with max_relative_error, min_cosine in*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_one_drift_is_localised_to_one_probe_point_by_every_test(run_suite, tiny_deep_checkpoint, tmp_path):
    """Issue 23: for the same pooler_output drift, test_accuracy named a probe point on token 0 while the dtype
    matrix compared all tokens and named another (or none). One rule (drift_for_output) now serves both."""
    import re

    shipped = (ROOT / "thresholds.toml").read_text()
    tight = re.sub(r"(\[accuracy\.bfloat16\][^\[]*?max_relative_error = )[0-9.]+", r"\g<1>0.000001", shipped)
    tight = re.sub(r"(\[layers\.bfloat16\][^\[]*?max_relative_error = )[0-9.]+", r"\g<1>0.005", tight)
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text(tight)
    result = run_suite(f"--model-path={tiny_deep_checkpoint}", "--device=cpu", "--dtype=bfloat16",
                       f"--thresholds={thresholds}", "-m", "accuracy or dtype_matrix")
    assert result.ret == 1
    report = json.loads((tmp_path / "reports" / "benchmark_report.json").read_text())
    messages = {check["nodeid"].rpartition("::")[2]: check["message"] for check in report["checks"]}
    token_rule = r"first probe point \(token 0 \(CLS\)\) over its \[layers\.bfloat16\] limits: (\S+) "
    from_accuracy = re.findall(token_rule, messages["test_accuracy_vs_cpu_reference[pooler_output]"])
    from_matrix = re.findall(token_rule, messages["test_dtype_against_cpu_reference[bfloat16]"])
    assert from_accuracy and from_matrix == from_accuracy, messages
    [pooler] = [row for row in report["sections"]["diagnosis"]["dtype_matrix"]
                if row["dtype"] == "bfloat16" and row["tensor"] == "pooler_output"]
    assert pooler["first_drifting_layer"] == from_accuracy[0], pooler
