"""Hand-built run results for the report tests: an Ascend run with the seed's figures.

The latency and diagnosis sections are the types the latency and diagnosis
parts of the suite fill in, so their rendering is tested without running them.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import torch

from acceptance.drift import LayerDrift, LayerRow
from acceptance.fingerprint import Fingerprint
from acceptance.metrics import compare
from acceptance.models.vit import VITB16_CONFIG
from acceptance.report.json_report import build_report
from acceptance.report.verdict import SignoffRules, decide
from acceptance.results import CheckRecord, RunResults
from acceptance.sections import LatencySide, PrecisionRecord
from acceptance.thresholds import AccuracyLimits, LatencyLimits, load_thresholds
from acceptance.timing import LatencyStats

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
                  p99_available: bool = True) -> LatencySide:
    """One side of the latency section, as the latency tests record it, from seeded samples."""
    samples = (centre_ms + spread_ms * np.random.default_rng(7).standard_normal(runs)).round(4).tolist()
    array = np.asarray(samples)
    stats = LatencyStats(
        samples=runs, batch_size=1, mean_ms=float(array.mean()), min_ms=float(array.min()),
        max_ms=float(array.max()), std_ms=float(array.std(ddof=1)), p50_ms=float(np.percentile(array, 50)),
        p90_ms=float(np.percentile(array, 90)), p99_ms=float(np.percentile(array, 99)) if p99_available else None,
        throughput_img_per_s=1000.0 / float(array.mean()), cold_ms=centre_ms * 3,
        unavailable={} if p99_available else {"p99_ms": f"needs at least 100 timed runs, had {runs}"},
        timing_method="time.perf_counter around synchronize")
    return LatencySide(stats=stats, side="cpu" if device == "cpu" else "device", device=device, name=name,
                       dtype="float32", num_runs=runs, warmup=1, torch_threads=4, samples_ms=tuple(samples))


#: the sample run's [[latency]] entry
SAMPLE_LATENCY_LIMITS = LatencyLimits(device="Ascend910*", dtype="float32", batch_size=1, limits={"max_p50_ms": 12.0})


def sample_diagnosis(results: RunResults) -> None:
    """A diagnosis as the diagnosis fixtures record it: precision, three probe points, a fingerprint."""
    results.diagnosis.precision = PrecisionRecord(mode="vendor-default", settings={"conv_allow_hf32": True},
                                                  strict_settings={"conv_allow_hf32": False})
    limits = AccuracyLimits(max_relative_error=0.01, min_cosine=0.99)
    rows = tuple(LayerRow(name=f"layer.{i}", depth=i + 1, relative_error=0.001 * (i + 1), cosine=0.9999,
                          max_abs_diff=0.01, frac_rel_err_below_0_1pct=0.8, frac_rel_err_below_0_5pct=0.97,
                          within_limits=True) for i in range(3))
    results.diagnosis.drift = LayerDrift(rows=rows, dtype="float32", limits=limits)
    results.diagnosis.fingerprint = Fingerprint(
        closest="hf32 convolution", distances={"hf32 convolution": 0.1, "bfloat16": 0.9},
        measured=[row.relative_error for row in rows],
        profiles={"hf32 convolution": [0.001, 0.002, 0.003], "bfloat16": [0.01, 0.02, 0.03]},
        names=[row.name for row in rows], floors=[2 ** -24] * 3)


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
        results.latency.record(latency_stats("cpu", "Kunpeng 920", 653.7, 1.5))
        results.latency.record(latency_stats(label, device_name, 8.756, 0.28, p99_available=False))
        results.latency.speedup = 653.7 / 8.756
        results.latency.thresholds = SAMPLE_LATENCY_LIMITS
    if diagnosis:
        sample_diagnosis(results)
    return results


def sample_report(**kwargs) -> dict:
    """benchmark_report.json for ``sample_results(**kwargs)``."""
    results = sample_results(**kwargs)
    verdict = decide(results.checks, architecture_only=results.architecture_only,
                     device_kind=results.device["kind"], exit_status="OK", rules=RULES)
    return build_report(results, verdict, thresholds=load_thresholds(ROOT / "thresholds.toml"), dtype="float32",
                        exit_status="OK", run_id=f"20250101-000000-{results.host['hostname']}-npu0",
                        environment={"ASCEND_RT_VISIBLE_DEVICES": "0"})
