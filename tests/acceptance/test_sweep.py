"""Batch x resolution sweep: latency, throughput, peak memory, FLOPs/MFU and accuracy at every point."""

from __future__ import annotations

import math

import pytest
import torch

from acceptance.flops import count_flops
from acceptance.sections import SweepSection
from acceptance.sweep import free_device_memory, run_point, run_sweep, sweep_points
from fixtures.features.benchmarking import fail_under_xdist

pytestmark = pytest.mark.sweep


def test_sweep_points_accurate_and_recorded(pytestconfig, sweep_settings, device, device_model, reference_cache,
                                            pixel_values, run_config, results, peak_tflops, checkpoint):
    """Every point is timed and held to [accuracy.<dtype>]; an out-of-memory point is recorded as the limit."""
    fail_under_xdist(pytestconfig)
    profile = sweep_settings
    dtype = getattr(torch, run_config.dtype)

    def reference_of(inputs):  # the CPU float32 reference of this point's input, cached across runs
        return reference_cache.outputs(inputs)["last_hidden_state"]

    points = run_sweep(
        lambda batch, resolution: run_point(device_model, None, device, pixel_values, batch, resolution,
                                            num_runs=profile.num_runs, warmup=profile.warmup, dtype=dtype,
                                            peak_tflops=peak_tflops["tflops"], stride=checkpoint.input_stride,
                                            reference_of=reference_of),
        sweep_points(profile.batches, profile.resolutions, profile.grid), on_oom=lambda: free_device_memory(device))
    results.sweep = SweepSection(profile=run_config.sweep, batches=tuple(profile.batches),
                                 resolutions=tuple(profile.resolutions), grid=profile.grid,
                                 num_runs=profile.num_runs, warmup=profile.warmup, device=device.label,
                                 dtype=run_config.dtype, points=tuple(points))
    results.record_card(device.label, sweep=results.sweep)  # a whole-server run: every card's sweep in its own row
    limit = run_config.thresholds.accuracy_for(run_config.dtype)
    bad = [f"batch {p.batch} at {p.resolution}: relative error {p.accuracy.relative_error:.3e} "
           f"(allowed < {limit.max_relative_error}), cosine {p.accuracy.cosine:.6f} "
           f"(allowed >= {limit.min_cosine})"
           for p in points if p.ok and not limit.accepts(p.accuracy)]
    assert any(p.ok for p in points), f"no sweep point ran: {[p.to_dict() for p in points]}"
    assert not bad, ("device last_hidden_state vs the CPU float32 reference of the same input, per sweep point: "
                     + "; ".join(bad))
    # a spec-sheet peak cannot be passed: MFU above 1 means a wrong peak_flops.toml entry, a wrong FLOP count or
    # a timing that did not wait for the device; a peak measured on the CPU is practical, so only finite there
    most = 1.0 if not peak_tflops["measured"] else math.inf
    impossible = [f"batch {p.batch} at {p.resolution}: {p.achieved_tflops:.4g} TFLOP/s achieved, "
                  f"MFU {p.mfu:.4g}" for p in points if p.ok and p.mfu is not None
                  and not (0 < p.mfu <= most and math.isfinite(p.mfu))]
    assert not impossible, (f"MFU = achieved / peak ({peak_tflops['tflops']} TFLOP/s, {peak_tflops['source']}) "
                            f"must be finite and in (0, {most}] per sweep point: " + "; ".join(impossible))


def test_flops_and_utilisation_recorded(device_model, pixel_values, device, run_config, results, peak_tflops):
    """FLOPs per forward (torch.utils.flop_counter) at the run's input, and the peak used for MFU."""
    inputs = pixel_values.to(device.torch_device, getattr(torch, run_config.dtype))
    flops = count_flops(device_model, inputs)
    section = results.utilisation
    section.flops_per_forward, section.batch_size, section.resolution = \
        flops, int(inputs.shape[0]), int(inputs.shape[-1])
    assert flops > 0, f"flop counter counted {flops} FLOPs for a forward of {list(inputs.shape)}; expected > 0"
