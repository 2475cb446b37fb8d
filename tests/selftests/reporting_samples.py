"""Hand-built run results for the report tests: an Ascend run with the seed's figures.

The latency and diagnosis sections have the shapes the latency and diagnosis
parts of the suite fill in, so their rendering is tested without running them.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import torch

from acceptance.models.vit import VITB16_CONFIG
from acceptance.metrics import compare
from acceptance.report.json_report import build_report
from acceptance.report.verdict import SignoffRules, decide
from acceptance.results import CheckRecord, RunResults
from acceptance.thresholds import load_thresholds

ROOT = Path(__file__).resolve().parents[2]
RULES = SignoffRules(required_markers=("shapes", "accuracy"))

#: a string that would run script if a report forgot to escape it
HOSTILE = '<script>alert("x")</script>"><img src=x onerror=alert(1)>'
ALLOWED_TAGS = {"style", "div", "ul", "li", "b", "p", "h3", "table", "thead", "tbody", "tr", "th", "td", "code",
                "img", "br"}


class TagCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attributes, self.images = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [name for name, _ in attrs]
        if tag == "img":
            self.images.append(dict(attrs))


def parse(markup):
    collector = TagCollector()
    collector.feed(markup)
    return collector


def latency_stats(device: str, name: str, centre_ms: float, spread_ms: float, runs: int = 19,
                  p99_available: bool = True) -> dict:
    """A latency section entry with the fields the latency tests record, from seeded samples."""
    samples = (centre_ms + spread_ms * np.random.default_rng(7).standard_normal(runs)).round(4).tolist()
    array = np.asarray(samples)
    return {
        "device": device, "name": name, "dtype": "float32", "batch_size": 1, "num_runs": runs, "warmup": 1,
        "samples_ms": samples, "cold_ms": centre_ms * 3, "mean_ms": float(array.mean()),
        "min_ms": float(array.min()), "max_ms": float(array.max()), "std_ms": float(array.std(ddof=1)),
        "p50_ms": float(np.percentile(array, 50)), "p90_ms": float(np.percentile(array, 90)),
        "p99_ms": float(np.percentile(array, 99)) if p99_available else None,
        "unavailable": {} if p99_available else {"p99_ms": f"needs at least 100 timed runs, had {runs}"},
        "throughput_img_per_s": 1000.0 / float(array.mean()),
    }


def sample_results(*, device_kind: str = "npu", architecture_only: bool = False, latency: bool = True,
                   diagnosis: bool = False, failing: bool = False, device_name: str = "Ascend910",
                   hostname: str = "node-1") -> RunResults:
    results = RunResults(config={"device": f"{device_kind}:0", "dtype": "float32", "batch_size": 1})
    results.finished_at = results.started_at
    label = "cpu" if device_kind == "cpu" else f"{device_kind}:0"
    results.device = {"kind": device_kind, "device": label, "name": device_name, "count": 2,
                      "versions": {"torch_npu": "2.9.0.post1", "cann": "8.3.RC1"} if device_kind == "npu" else {},
                      "precision_settings": {"conv_allow_hf32": True, "matmul_allow_hf32": False},
                      "selection": [f"requested: {label}"]}
    results.checkpoint = {"path": "/opt/models/dinov3-vitb16-pretrain-lvd1689m", "model_type": "dinov3_vit",
                          "architecture_only": architecture_only, "config_sha256": "a" * 64,
                          "weights_sha256": {"model.safetensors": "b" * 64}, "config": dict(VITB16_CONFIG)}
    results.image = {"path": "/tmp/input_image.png", "file_sha256": "c" * 64, "pixel_sha256": "d" * 64,
                     "size": [224, 224], "mode": "RGB", "source": "synthetic 224x224, seed 0", "conversions": []}
    results.preprocessor = "built-in DINOv3 pipeline"
    results.versions = {"python": "3.10.12", "torch": "2.9.0+cpu", "torch_npu": "2.9.0.post1",
                        "transformers": "4.57.6", "numpy": "1.26.4", "Pillow": "10.4.0"}
    results.host = {"hostname": hostname, "platform": "Linux-5.10.0-aarch64", "machine": "aarch64"}
    generator = torch.Generator().manual_seed(0)
    for name, shape in (("last_hidden_state", (1, 201, 768)), ("pooler_output", (1, 768))):
        reference = torch.randn(shape, generator=generator)
        device = reference + 0.0045 * torch.randn(shape, generator=generator)  # ~0.35 % relative error
        results.comparisons[name] = compare(name, reference, device)
        results.record_check(CheckRecord(f"tests/acceptance/test_accuracy.py::test_accuracy_vs_cpu_reference[{name}]",
                                         "passed", 0.01, markers=("accuracy", "parametrize")))
    results.record_check(CheckRecord("tests/acceptance/test_outputs.py::test_output_shape", "passed", 0.01,
                                     markers=("shapes",)))
    if failing:
        results.record_check(CheckRecord("tests/acceptance/test_extra.py::test_raises", "failed", 0.01,
                                         message="RuntimeError: device lost"))
    if latency:
        results.sections["latency"] = {
            "cpu": latency_stats("cpu", "Kunpeng 920", 653.7, 1.5),
            "device": latency_stats(label, device_name, 8.756, 0.28, p99_available=False),
            "speedup": 653.7 / 8.756, "thresholds": {"max_p50_ms": 12.0}}
    if diagnosis:
        results.sections["diagnosis"] = {
            "precision": {"conv_allow_hf32": True},
            "layers": [{"name": f"layer.{i}", "relative_error": 0.001 * (i + 1), "cosine": 0.9999,
                        "max_abs_diff": 0.01, "frac_rel_err_below_0.1pct": 0.8, "frac_rel_err_below_0.5pct": 0.97}
                       for i in range(3)],
            "fingerprint": {"closest": "hf32 convolution", "distances": {"hf32 convolution": 0.1, "bfloat16": 0.9}}}
    return results


def sample_report(**kwargs) -> dict:
    """benchmark_report.json for ``sample_results(**kwargs)``."""
    results = sample_results(**kwargs)
    verdict = decide(results.checks, architecture_only=results.architecture_only,
                     device_kind=results.device["kind"], exit_status="OK", rules=RULES)
    return build_report(results, verdict, thresholds=load_thresholds(ROOT / "thresholds.toml"), dtype="float32",
                        exit_status="OK", run_id=f"20250101-000000-{results.host['hostname']}-npu0",
                        environment={"ASCEND_RT_VISIBLE_DEVICES": "0"})
