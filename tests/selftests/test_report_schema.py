"""The JSON Schema describes every section: a full real run validates, each section type writes what its
fragment says, and a section of the wrong shape fails validation."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from dataclasses import fields

import pytest
import torch

from acceptance.baseline import RegressionCheck, RegressionLimits
from acceptance.devices.card_state import CardState
from acceptance.metrics import TensorComparison, compare
from acceptance.operator_drift import OperatorDrift, OperatorRow, TensorMetrics
from acceptance.reference_cache import CacheUse, ModelIdentity
from acceptance.report.json_report import build_report
from acceptance.report.schema import (
    SCHEMA_FILE,
    fragment_errors,
    load_schema,
    schema_errors,
)
from acceptance.report.verdict import decide
from acceptance.sections import (
    DEFS,
    LATENCY_STATS_PROPERTIES,
    SECTION_SCHEMAS,
    BaselineUsed,
    CardCheck,
    CompileSection,
    DeterminismResult,
    LatencySection,
    NightlySection,
    PeakRecord,
    ProfileSection,
    SavedBaseline,
    ServerSection,
    SoakResult,
    SweepPoint,
    SweepSection,
)
from acceptance.soak import repeat_spread, soak
from acceptance.thresholds import AccuracyLimits, load_thresholds
from acceptance.timing import LatencyStats
from fixtures.features.input_set import InputSetRow, InputSetSection
from fixtures.features.operators import OperatorsSection
from fixtures.schema import feature_sections, published_schema_text
from tests.selftests.test_profile_library import stand_in_profile

from .conftest import ROOT
from .reporting_samples import RULES, sample_results

ALL_SECTIONS = {"diagnosis", "nightly", "utilisation", "sweep", "compile", "determinism", "soak", "reference",
                "profile", "operators", "input_set"}
#: and the whole-server section, written only by --device npu:all / npu:0,2,5 runs
EVERY_SECTION = ALL_SECTIONS | {"server"}


STOCK_VALIDATOR = """
import json, sys
from pathlib import Path
from jsonschema import Draft202012Validator
report_file = Path(sys.argv[1])
report = json.loads(report_file.read_text())
schema = json.loads((report_file.parent / report["$schema"]).read_text())
Draft202012Validator.check_schema(schema)
errors = [error.message for error in Draft202012Validator(schema).iter_errors(report)]
assert not any(name.startswith(("acceptance", "fixtures")) for name in sys.modules)
print("valid" if not errors else "invalid: " + errors[0])
"""


def _stock_validation(report_file) -> tuple[int, str]:
    """Validate with jsonschema alone (python -I: no suite on the path), as a dashboard or CI step outside would."""
    done = subprocess.run([sys.executable, "-I", "-c", STOCK_VALIDATOR, str(report_file)], capture_output=True,
                          text=True, cwd=report_file.parent, timeout=120)
    return done.returncode, (done.stdout + done.stderr).strip()


def test_the_shipped_schema_file_is_whole_and_current(tmp_path):
    """benchmark_report.schema.json is the composed schema (python -m fixtures.schema writes it), so a
    report validates against the file alone; an old report (no "$schema", no later sections) still does."""
    assert SCHEMA_FILE.read_text(encoding="utf-8") == published_schema_text(), \
        "benchmark_report.schema.json is not current: run python -m fixtures.schema"
    report = full_report()
    (tmp_path / "benchmark_report.json").write_text(json.dumps(report))
    shutil.copyfile(SCHEMA_FILE, tmp_path / "benchmark_report.schema.json")
    assert _stock_validation(tmp_path / "benchmark_report.json") == (0, "valid")
    old = copy.deepcopy(report)
    old.pop("$schema")
    old["sections"].pop("operators")
    assert schema_errors(old) == []
    report["verdict"]["status"] = "PASSED"
    (tmp_path / "benchmark_report.json").write_text(json.dumps(report))
    code, said = _stock_validation(tmp_path / "benchmark_report.json")
    assert said.startswith("invalid: 'PASSED' is not one of"), said


def test_a_full_run_report_validates(run_suite, tiny_checkpoint, tmp_path, monkeypatch):
    """Every section present from a real run: sweep, soak, determinism, nightly (--save-baseline), diagnosis,
    utilisation, and graph mode skipped for want of a backend."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    dump = tmp_path / "results.json"
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=cpu", "--num-runs=5", "--warmup=0",
                       "--sweep-batches=1,2", "--sweep-resolutions=32", "--soak-seconds=1", "--compile=on",
                       f"--baselines-dir={tmp_path / 'baselines'}", "--save-baseline=nightly",
                       "-p", "tests.selftests.plugins.no_compile_backend",
                       "-p", "tests.selftests.diagnosis_plugin", "--dump-results", str(dump))
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("error", 0) == 0, result.stdout.str()
    report = json.loads((tmp_path / "reports" / "benchmark_report.json").read_text())
    assert schema_errors(report) == [], schema_errors(report)
    # the run folder and the report folder hold the schema the report names: a stock validator needs nothing else
    assert report["$schema"] == "benchmark_report.schema.json" and \
        "benchmark_report.schema.json" in report["run"]["files"]
    assert _stock_validation(tmp_path / "reports" / "benchmark_report.json") == (0, "valid")
    sections = report["sections"]
    assert set(sections) == ALL_SECTIONS, sorted(sections)
    assert set(sections["diagnosis"]) == {"precision", "layers", "layer_dtype", "layer_limits",
                                          "first_drifting_layer", "fingerprint", "dtype_matrix"}
    assert sections["compile"] == {"skipped": "no torch.compile backend for cpu in this self-test"}
    assert sections["nightly"]["saved_baseline"]["saved"] is True, sections["nightly"]
    assert sections["soak"]["cpu"]["iterations"] > 0 and sections["determinism"]["cpu"]["runs"] >= 2
    assert set(sections["utilisation"]) == {"peak", "flops_per_forward", "batch_size", "resolution"}
    assert report["performance"]["measured"] is True
    # the latency section itself (the report's "performance" is its seed layout) has its fragment too
    latency = json.loads(dump.read_text())["sections"]["latency"]
    assert fragment_errors(LatencySection.SCHEMA, latency) == []
    assert set(latency["verdicts"]) == set() and latency["cpu"]["side"] == "cpu"


def _stats(mean_ms: float = 2.0) -> LatencyStats:
    return LatencyStats(samples=3, batch_size=1, mean_ms=mean_ms, min_ms=1.0, max_ms=3.0, std_ms=1.0, p50_ms=2.0,
                        p90_ms=None, p99_ms=None, throughput_img_per_s=1000 / mean_ms,
                        unavailable={"p90_ms": "needs 10 samples", "p99_ms": "needs 100 samples"})


def _comparison() -> TensorComparison:
    reference = torch.linspace(-1, 1, 8).reshape(1, 8)
    return compare("last_hidden_state", reference, reference * 1.001)


def full_results():
    """The hand-built sample run with every section of the report filled, as the suite's writers fill them."""
    results = sample_results(diagnosis=True)
    ok = SweepPoint(1, 32, "ok", latency=_stats(), peak_memory_bytes=None, flops_per_forward=10 ** 6,
                    achieved_tflops=5e-7, mfu=0.01, accuracy=_comparison())
    results.sweep = SweepSection(profile="quick", batches=(1, 2, 4), resolutions=(32,), grid=False, num_runs=3,
                                 warmup=0, device="npu:0", dtype="float32",
                                 points=(ok, SweepPoint(2, 32, "out_of_memory", error="NPU out of memory"),
                                         SweepPoint(4, 32, "skipped", error="batch 2 already ran out of memory")))
    results.soak["npu:0"] = SoakResult(**soak(lambda: torch.ones(2), 0.01, memory=lambda: None,
                                              synchronize=lambda: None))
    results.determinism["npu:0"] = DeterminismResult(**repeat_spread(lambda: torch.ones(2), 2),
                                                     allowed_max_abs_spread=0.0)
    results.compile = CompileSection(backend="npu", compile_seconds=12.5, accuracy=_comparison(), eager=_stats(4.0),
                                     compiled=_stats(2.0), speedup_vs_eager=2.0)
    limits = RegressionLimits(max_latency_regression_percent=15, max_relative_error_increase=0.001)
    results.nightly = NightlySection(
        required_device="npu", failures=[],
        baseline=BaselineUsed("nightly", "Ascend910 | float32 | batch 1", "2025-01-01T00:00:00+00:00", "run-1",
                              limits),
        regression={"tests/acceptance/test_latency.py::test_latency[device]": [
            RegressionCheck("device.p50_ms", 8.9, 8.7, 10.0, True, "device p50_ms 8.9 ms vs 8.7 ms")]},
        saved_baseline=SavedBaseline("nightly", saved=False, reason="not saved: 1 check(s) failed or errored"))
    results.utilisation.peak = PeakRecord(tflops=376.0, source="peak_flops.toml (Ascend910, float32)",
                                          measured=False, device="Ascend910", dtype="float32")
    results.utilisation.flops_per_forward, results.utilisation.batch_size, results.utilisation.resolution = \
        2 * 10 ** 10, 1, 224
    identity = ModelIdentity("c" * 64, (("model.safetensors", "w" * 64),), "2.13.0", "4.57.1")
    results.reference.cache_dir = "/cache/references"
    results.reference.uses = [
        CacheUse("outputs", identity.key("outputs", torch.ones(1, 3, 4, 4)), "cached", from_run="run-1",
                 created_at="2025-01-01T00:00:00+00:00", seconds=0.01),
        CacheUse("capture", identity.key("capture", torch.ones(1, 3, 4, 4)), "computed", reason="miss",
                 from_run="20250101-000000-node-1-npu0", seconds=0.6, stored=True)]
    results.profile = ProfileSection(batch_size=1, dtype="float32", cpu=stand_in_profile("cpu"),
                                     device=stand_in_profile("device"))
    metrics = TensorMetrics(0.999, 0.02, 0.01, 0.0, 0.0, 0.01, True, True)
    rows = (OperatorRow(0, "Functional.gelu.0.forward", "Functional.gelu", "layer.0.mlp.act_fn", (1, 201, 3072),
                        "float32", "float32", metrics, 1.0, 1.0, 0.0, "error", "off by 1 %"),
            OperatorRow(1, "Torch.arange.0.forward", "Torch.arange", "rope_embeddings", (14,), "float32", "float32",
                        metrics, None, None, None, "pass"))
    results.feature_sections["operators"] = OperatorsSection(drift=OperatorDrift(
        rows=rows, dtype="float32", costs={"spilled_bytes": 1.0}, dumps={"cpu": "/d/cpu/step0/rank0/dump.json"}))
    results.feature_sections["input_set"] = InputSetSection(
        rows={"npu:0/white/last_hidden_state": InputSetRow("npu:0", "white", _comparison(), True)},
        criterion="relative_error < 1.00%",
        inputs={"white": "every pixel 255"})
    results.server = ServerSection(spec="npu:0,1", listed=["npu:0", "npu:1"])
    card = results.server.card("npu:0", "Ascend910")
    card.comparisons["last_hidden_state"], card.latency, card.latency_mode = _comparison(), _stats(), "sequential"
    card.peak_memory_bytes = 2 ** 30
    card.sweep, card.profile_top = results.sweep, "MatMulV2 41.0%, FlashAttentionScore 20.3%, GeluV2 9.9%"
    card.state_before = CardState(tool="npu-smi 24.1.rc1", index=0, name="910B3", bus_id="0000:C1:00.0", health="OK",
                                  temperature_c=43.0, power_w=101.8, memory_used_mib=3318.0, memory_total_mib=65536.0,
                                  ecc_uncorrectable=0, driver="25.5.1", firmware="7.8.0.6.201")
    card.state_after = CardState(tool="nvidia-smi", index=0)
    results.server.timing_mode = "parallel"
    card.checks["tests/acceptance/test_accuracy.py::test_accuracy_vs_cpu_reference[npu:0-last_hidden_state]"] = \
        CardCheck("passed")
    results.server.card("npu:1", "Ascend910").checks["x[npu:1]"] = CardCheck("failed", "device lost")
    return results


def full_report() -> dict:
    results = full_results()
    verdict = decide(results.checks, architecture_only=False, device_kind="npu", exit_status="OK", rules=RULES)
    return build_report(results, verdict, thresholds=load_thresholds(ROOT / "thresholds.toml"), dtype="float32",
                        exit_status="OK", run_id="20250101-000000-node-1-npu0")


def test_every_section_type_writes_what_its_fragment_says():
    report = full_report()
    assert set(report["sections"]) == EVERY_SECTION
    assert schema_errors(report) == [], schema_errors(report)
    features = {feature.name: feature.schema for feature in feature_sections()}
    for name, fragment in {**SECTION_SCHEMAS, **features}.items():
        assert fragment_errors(fragment, report["sections"][name]) == [], name
    # the points' limits come from the points: an out-of-memory batch is the resolution's limit
    assert report["sections"]["sweep"]["limits"] == {"32": {"max_batch_ok": 1, "first_oom_batch": 2}}
    assert report["sections"]["soak"]["npu:0"]["memory_note"] == "not measurable on this backend"


def test_the_fragments_name_every_field_of_the_types_they_describe():
    """A field added to a type but not to its fragment (or the other way round) fails here, not in a report."""
    assert set(LATENCY_STATS_PROPERTIES) == {item.name for item in fields(LatencyStats)}
    assert set(DEFS["tensorComparison"]["properties"]) == {item.name for item in fields(TensorComparison)}
    assert set(SoakResult.SCHEMA["properties"]) == {item.name for item in fields(SoakResult)} | {"memory_note"}
    assert set(DeterminismResult.SCHEMA["properties"]) == {item.name for item in fields(DeterminismResult)}
    assert set(NightlySection.SCHEMA["properties"]) == {item.name for item in fields(NightlySection)}
    assert set(DEFS["accuracyLimits"]["properties"]) == {item.name for item in fields(AccuracyLimits)}


def test_the_schema_composes_every_section_and_loads_without_torch():
    schema = load_schema()
    assert set(schema["properties"]["sections"]["properties"]) == EVERY_SECTION
    assert schema["properties"]["sections"]["additionalProperties"] is False
    assert schema["properties"]["performance"] == LatencySection.REPORT_SCHEMA
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema)
    # the fleet merge validates reports: the section types must not pull torch in
    code = ("import sys; from acceptance.report.schema import schema_errors, load_schema; load_schema(); "
            "assert 'torch' not in sys.modules and 'jsonschema' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def _point(report: dict, status: str) -> dict:
    return next(p for p in report["sections"]["sweep"]["points"] if p["status"] == status)


@pytest.mark.parametrize("mutate, where", [
    (lambda r: r["sections"].update(extra={}), "/sections"),  # an unknown section
    (lambda r: r["sections"]["diagnosis"]["layers"][0].update(relative_error="0.1%"), "/sections/diagnosis/layers/0"),
    (lambda r: r["sections"]["diagnosis"].pop("layer_limits"), "/sections/diagnosis"),  # layers without limits
    (lambda r: r["sections"]["diagnosis"]["precision"].update(mode=3), "/sections/diagnosis/precision/mode"),
    (lambda r: r["sections"]["sweep"].update(points={}), "/sections/sweep/points"),
    (lambda r: _point(r, "ok").update(batch="1"), "/sections/sweep/points/0"),
    (lambda r: _point(r, "ok").pop("accuracy"), "/sections/sweep/points/0"),
    (lambda r: _point(r, "out_of_memory").update(latency={}), "/sections/sweep/points/1"),
    (lambda r: r["sections"]["soak"]["npu:0"].update(iterations=1.5), "/sections/soak/npu:0/iterations"),
    (lambda r: r["sections"]["determinism"]["npu:0"].update(bitwise_identical="yes"),
     "/sections/determinism/npu:0/bitwise_identical"),
    (lambda r: r["sections"]["compile"].update(skipped="no backend"), "/sections/compile"),  # both shapes at once
    (lambda r: r["sections"]["compile"]["eager"].pop("mean_ms"), "/sections/compile"),
    (lambda r: r["sections"]["nightly"].update(failures="none"), "/sections/nightly/failures"),
    (lambda r: r["sections"]["nightly"]["saved_baseline"].update(saved=True), "/sections/nightly/saved_baseline"),
    (lambda r: next(iter(r["sections"]["nightly"]["regression"].values()))[0].update(passed=None),
     "/sections/nightly/regression"),
    (lambda r: r["sections"]["utilisation"].update(flops_per_forward=-1),
     "/sections/utilisation/flops_per_forward"),
    (lambda r: r["sections"]["utilisation"]["peak"].update(measured="no"), "/sections/utilisation/peak/measured"),
    (lambda r: r["performance"].update(thresholds={"max_p50_ms": 12.0}), "/performance/thresholds"),
])
def test_a_section_of_the_wrong_shape_fails_validation(mutate, where):
    report = copy.deepcopy(full_report())
    mutate(report)
    errors = schema_errors(report)
    assert any(where in error for error in errors), errors
