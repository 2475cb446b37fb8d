"""Graph mode: torch.compile on the device against the CPU reference, latency against eager."""

from __future__ import annotations

import time

import pytest
import torch

from acceptance.graph import compile_backend
from acceptance.metrics import compare
from acceptance.report.html_scale import COMPILE_RUNS_CAP
from acceptance.sections import CompileSection
from acceptance.timing import measure, speedup
from fixtures.features.benchmarking import fail_under_xdist

pytestmark = pytest.mark.graph_mode


def test_compiled_matches_reference_and_is_timed(pytestconfig, device, device_model, pixel_values,
                                                 reference_outputs, run_config, results):
    if run_config.compile == "off":
        pytest.skip("--compile off (default): torch.compile takes minutes for ViT-B/16 on a CPU; "
                    "pass --compile on to run graph mode")
    backend, reason = compile_backend(device.kind)
    if backend is None:
        results.compile = CompileSection(skipped=reason)
        pytest.skip(f"graph mode unavailable: {reason}")
    fail_under_xdist(pytestconfig)
    inputs = pixel_values.to(device.torch_device, getattr(torch, run_config.dtype))
    compiled = torch.compile(device_model, backend=backend)
    start = time.perf_counter()
    with torch.no_grad():
        output = compiled(pixel_values=inputs).last_hidden_state
    device.synchronize()
    compile_s = time.perf_counter() - start
    comparison = compare("last_hidden_state", reference_outputs["last_hidden_state"], output.float().cpu())
    runs, warmup = min(run_config.num_runs, COMPILE_RUNS_CAP), 1  # each is paid on top of the suite's own
    with torch.no_grad():
        eager = measure(device_model, inputs, device, num_runs=runs, warmup=warmup)
        graph = measure(compiled, inputs, device, num_runs=runs, warmup=warmup)
    results.compile = CompileSection(backend=backend, compile_seconds=compile_s, accuracy=comparison, eager=eager,
                                     compiled=graph, speedup_vs_eager=speedup(eager, graph))
    limit = run_config.thresholds.accuracy_for(run_config.dtype)
    assert limit.accepts(comparison), (
        f"torch.compile ({backend}) last_hidden_state vs the CPU float32 reference: relative error "
        f"{comparison.relative_error:.3e} (allowed < {limit.max_relative_error}), cosine {comparison.cosine:.6f} "
        f"(allowed >= {limit.min_cosine})")
