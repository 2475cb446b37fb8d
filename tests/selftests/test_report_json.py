"""benchmark_report.json: the seed's fields, provenance, the schema, atomic writes and run folders."""

import copy
import datetime as dt
import json
import math
import os

import numpy as np
import pytest
import torch

from acceptance.hashing import file_sha256
from acceptance.metrics import compare
from acceptance.report.json_report import (
    architecture_name,
    build_report,
    dumps,
    jsonable,
    new_run_folder,
    write_atomic,
)
from acceptance.report.schema import schema_errors
from acceptance.report.verdict import NOT_VALID, PASS, decide
from acceptance.thresholds import load_thresholds

from .reporting_samples import ROOT, RULES, sample_report, sample_results


def test_sample_report_is_valid_and_passes():
    report = sample_report(diagnosis=True)
    assert schema_errors(report) == []
    assert report["verdict"]["status"] == PASS, report["verdict"]
    assert report["title"].startswith("DINOv3 ViT-B/16 (dinov3-vitb16-pretrain-lvd1689m) on npu:0 (Ascend910)")


def test_seed_latency_fields_per_device():
    performance = sample_report()["performance"]
    assert performance["measured"] is True
    for side in ("cpu", "device"):
        stats = performance[side]
        for field in ("mean_ms", "min_ms", "max_ms", "p50_ms", "p99_ms", "std_ms", "throughput_img_per_sec"):
            assert field in stats, (side, field)
        assert stats["throughput_img_per_sec"] == pytest.approx(1000 / stats["mean_ms"])
        assert "throughput_img_per_s" not in stats
        assert len(stats["samples_ms"]) == stats["num_runs"]
    assert performance["cpu"]["p99_ms"] == pytest.approx(max(performance["cpu"]["samples_ms"]), rel=0.01)
    # unavailable p99: null with the reason, never the max in disguise
    assert performance["device"]["p99_ms"] is None
    assert "100 timed runs" in performance["device"]["unavailable"]["p99_ms"]
    assert performance["speedup"] == pytest.approx(653.7 / 8.756)


def test_seed_accuracy_fields_per_tensor():
    accuracy = sample_report()["accuracy"]
    assert set(accuracy["tensors"]) == {"last_hidden_state", "pooler_output"}
    hidden = accuracy["tensors"]["last_hidden_state"]
    assert hidden["shape"] == [1, 201, 768]
    assert 0.002 < hidden["relative_error"] < 0.005  # 0.45 % noise on unit normals: ~0.36 %
    assert hidden["mean_diff"] < hidden["max_diff"]
    assert hidden["pass"] is True and accuracy["pass"] is True
    assert accuracy["max_relative_error"] == 0.01


def test_provenance():
    report = sample_report()
    assert report["model"]["weights_sha256"] == {"model.safetensors": "b" * 64}
    assert report["model"]["architecture_only"] is False
    assert report["input"]["image"]["pixel_sha256"] == "d" * 64
    versions = report["versions"]
    assert (versions["torch_npu"], versions["cann"], versions["numpy"]) == ("2.9.0.post1", "8.3.RC1", "1.26.4")
    assert report["device"] == {"kind": "npu", "device": "npu:0", "name": "Ascend910", "count": 2,
                                "accelerator": True, "selection": ["requested: npu:0"], "simulation": None}
    assert report["precision"]["settings"] == {"conv_allow_hf32": True, "matmul_allow_hf32": False}
    assert report["thresholds"]["sha256"] == file_sha256(ROOT / "thresholds.toml")
    assert report["thresholds"]["accuracy"] == {"dtype": "float32", "max_relative_error": 0.01, "min_cosine": 0.99}
    assert report["thresholds"]["latency"] == {"device": "Ascend910*", "dtype": "float32", "batch_size": 1,
                                               "stale_fraction": None, "max_p50_ms": 12.0}
    assert report["run"]["host"]["hostname"] == "node-1"
    assert report["run"]["started_at"] and report["run"]["finished_at"]
    assert report["environment_variables"] == {"ASCEND_RT_VISIBLE_DEVICES": "0"}


def test_absent_sections_are_explicit():
    report = sample_report(latency=False, device_kind="cpu", architecture_only=True)
    assert schema_errors(report) == []
    assert report["performance"] == {"measured": False, "reason": "no latency test ran in this session",
                                     "cpu": None, "device": None, "speedup": None, "thresholds": None}
    assert report["sections"] == {}
    assert report["verdict"]["status"] == NOT_VALID
    assert report["device"]["accelerator"] is False


def test_nan_output_is_recorded_and_never_passes():
    results = sample_results()
    reference = torch.ones(1, 4)
    results.comparisons["pooler_output"] = compare("pooler_output", reference, torch.tensor([[1.0, math.nan, 1, 1]]))
    verdict = decide(results.checks, architecture_only=False, device_kind="npu", exit_status="OK", rules=RULES)
    report = build_report(results, verdict, thresholds=load_thresholds(ROOT / "thresholds.toml"), dtype="float32",
                          exit_status="OK", run_id="r")
    entry = report["accuracy"]["tensors"]["pooler_output"]
    assert entry["relative_error"] == "NaN" and entry["pass"] is False and entry["nonfinite_device"] == 1
    assert report["accuracy"]["pass"] is False
    assert schema_errors(report) == []
    assert json.loads(dumps(report))["accuracy"]["tensors"]["pooler_output"]["relative_error"] == "NaN"


def test_jsonable_spells_non_finite_numbers():
    assert jsonable({"a": (1, math.inf, -math.inf, math.nan), 2: None}) == {"a": [1, "Infinity", "-Infinity", "NaN"],
                                                                           "2": None}
    with pytest.raises(ValueError):
        dumps({"raw": math.nan})


def test_jsonable_takes_numpy_and_torch_values():
    assert jsonable({"a": np.array([1.5, np.nan]), "b": np.float32(2.0), "c": np.bool_(True), "d": np.int64(3),
                     "e": torch.tensor([[1, 2]])}) == {"a": [1.5, "NaN"], "b": 2.0, "c": True, "d": 3, "e": [[1, 2]]}


@pytest.mark.parametrize("mutate, where", [
    (lambda r: r["verdict"].update(status="OK"), "/verdict/status"),
    (lambda r: r["verdict"]["reasons"].append("x"), "/verdict/reasons"),  # PASS must have no reasons
    (lambda r: r["performance"]["device"].pop("p99_ms"), "/performance/device"),
    (lambda r: r["accuracy"]["tensors"]["pooler_output"].update(relative_error="0.3%"), "relative_error"),
    (lambda r: r["model"].update(config_sha256="not-a-hash"), "/model/config_sha256"),
    (lambda r: r.pop("versions"), "versions"),
])
def test_schema_rejects_broken_reports(mutate, where):
    report = copy.deepcopy(sample_report())
    mutate(report)
    errors = schema_errors(report)
    assert any(where in error for error in errors), errors


def test_write_atomic_replaces_whole_files_only(tmp_path, monkeypatch):
    target = tmp_path / "benchmark_report.json"
    write_atomic(target, "first\n")
    assert target.read_text() == "first\n"
    assert oct(target.stat().st_mode & 0o777) == "0o644"

    def refuse(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "second\n")
    assert target.read_text() == "first\n"
    assert [path.name for path in tmp_path.iterdir()] == ["benchmark_report.json"]  # no temporary left behind


def test_run_folders_are_never_reused(tmp_path):
    when = dt.datetime(2025, 1, 31, 12, 0, 0)
    first = new_run_folder(tmp_path, when, "node-1", "npu:0")
    (first / "benchmark_report.json").write_text("{}")
    second = new_run_folder(tmp_path, when, "node-1", "npu:0")
    assert first.name == "20250131-120000-node-1-npu0"
    assert second.name == "20250131-120000-node-1-npu0-2"
    assert (first / "benchmark_report.json").read_text() == "{}"


@pytest.mark.parametrize("config, name", [
    ({"hidden_size": 768, "patch_size": 16}, "ViT-B/16"),
    ({"hidden_size": 384, "use_gated_mlp": True}, "ViT-S+/16"),
    ({"hidden_size": 4096, "use_gated_mlp": True}, "ViT-7B/16"),
    ({"hidden_size": 64, "num_hidden_layers": 2}, "ViT/16 (hidden 64, 2 layers)"),
    ({"model_type": "dinov3_vit", "hidden_size": 1280, "use_gated_mlp": True}, "ViT-H+/16"),
    ({"model_type": "dinov3_vit", "hidden_size": 1024}, "ViT-L/16"),
    ({"model_type": "dinov3_convnext", "hidden_sizes": [96, 192, 384, 768], "depths": [3, 3, 9, 3]}, "ConvNeXt-T"),
    ({"model_type": "dinov3_convnext", "hidden_sizes": [96, 192, 384, 768], "depths": [3, 3, 27, 3]}, "ConvNeXt-S"),
    ({"model_type": "dinov3_convnext", "hidden_sizes": [128, 256, 512, 1024], "depths": [3, 3, 27, 3]},
     "ConvNeXt-B"),
    ({"model_type": "dinov3_convnext", "hidden_sizes": [192, 384, 768, 1536], "depths": [3, 3, 27, 3]},
     "ConvNeXt-L"),
    ({"model_type": "dinov3_convnext", "hidden_sizes": [16, 32, 48, 64], "depths": [1, 1, 2, 1]},
     "ConvNeXt (hidden sizes 16/32/48/64, depths 1/1/2/1)"),
    ({"model_type": "dinov2", "hidden_size": 768}, "dinov2"),
])
def test_architecture_names(config, name):
    assert architecture_name(config) == name
