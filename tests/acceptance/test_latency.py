"""Synchronized latency and throughput: the CPU float32 reference and the device, then their limits.

The two measurements run through pytest-benchmark (pedantic, one call per
round, warm-up untimed, the cold first call timed apart); in a whole-server run
under -n each worker times its own cards with the suite's harness, which hands
them to pytest-benchmark (fixtures/features/benchmarking.py). Limits come from the
[[latency]] entries of the thresholds file, matched on the device name, dtype
and batch size; with no matching entry latency is reported, not judged.
Under pytest-xdist with one device shared by the workers they fail rather than
measure nothing.
"""

import math
import warnings

import pytest

from acceptance.loading import TORCH_DTYPES
from acceptance.thresholds import LATENCY_LIMITS, StaleThresholdWarning
from acceptance.timing import PERCENTILES, min_samples_for
from fixtures.features.benchmarking import record_verdict, require_timing
from fixtures.features.profile import top_operators_hint

pytestmark = pytest.mark.performance


@pytest.mark.parametrize("side", [pytest.param("cpu", id="cpu-float32"), pytest.param("device", id="device")])
def test_latency(side, latency, request, pixel_values, device, cpu_device, run_config, regression, results):
    if side == "cpu":
        stats = latency.measure("cpu", request.getfixturevalue("reference_model"), pixel_values, "float32",
                                cpu_device)
    else:
        model = request.getfixturevalue("device_model")
        inputs = pixel_values.to(device.torch_device, TORCH_DTYPES[run_config.dtype])
        device.synchronize()  # the copy is finished before timing starts
        stats = latency.measure("device", model, inputs, run_config.dtype, device)
        results.record_card(device.label, latency=stats)  # a whole-server run: this card's row
    expected, option = ((run_config.cpu_num_runs, "--cpu-runs") if side == "cpu"
                        else (run_config.num_runs, "--num-runs"))
    assert stats.samples == expected, f"{side}: {stats.samples} timed samples, expected {option} {expected}"
    assert stats.nonfinite_samples == 0, (
        f"{side}: {stats.nonfinite_samples} of {stats.samples} latency samples are NaN/Inf; allowed 0")
    where = cpu_device if side == "cpu" else device
    check = regression.latency(side, stats.to_dict(), f"{side} latency on {where.label} ({where.name})")
    if check is not None and not check.passed:  # --baseline: no regression beyond [regression]
        pytest.fail(check.message + top_operators_hint(request, side), pytrace=False)


def _unit(statistic: str) -> str:
    return {"throughput_img_per_s": " img/s", "speedup": "x"}.get(statistic, " ms")


@pytest.mark.parametrize("limit", tuple(LATENCY_LIMITS))
def test_latency_threshold(limit, latency_record, run_config, device, results, pytestconfig, request):
    require_timing(pytestconfig)
    source = run_config.thresholds_path
    limits = run_config.thresholds.latency_for(device.name, run_config.dtype, run_config.batch_size)
    if limits is None:
        pytest.skip(f"no [[latency]] entry in {source} matches device {device.name!r} ({device.label}), "
                    f"dtype {run_config.dtype}, batch_size {run_config.batch_size}: latency is reported, not judged")
    if limit not in limits.limits:
        pytest.skip(f"{limits.label} in {source} sets no {limit}")
    statistic, _ = LATENCY_LIMITS[limit]
    stats = latency_record.stats()["device"]
    if stats is None:
        pytest.skip("no device latency was measured in this session (test_latency[device] did not run or finish)")
    what = f"{statistic} on {device.label} ({device.name}, {run_config.dtype}, batch {run_config.batch_size})"
    unit = _unit(statistic)
    if statistic == "speedup":
        cpu = latency_record.stats()["cpu"]
        if cpu is None:
            pytest.skip("no CPU latency was measured in this session (test_latency[cpu-float32] did not run or finish)")
        measured = latency_record.speedup
        basis = (f"CPU float32 mean {cpu.mean_ms:.3f} ms / device mean {stats.mean_ms:.3f} ms, "
                 f"{stats.samples} and {cpu.samples} samples")
    else:
        measured = getattr(stats, statistic)
        if measured is None:
            needed = min_samples_for(PERCENTILES[statistic])
            pytest.skip(f"{limit} not checked: {statistic} {stats.unavailable[statistic]} "
                        f"(run with --num-runs {needed} or more)")
        basis = f"{stats.samples} samples"
    verdict = limits.check(limit, measured)
    record_verdict(results, verdict)
    shown = f"{measured:.3f}{unit}"
    assert verdict.passed, (
        f"{what}: measured {shown} ({basis}), allowed {verdict.comparison} {verdict.allowed}{unit} "
        f"({limit} of {limits.label} in {source})" + ("" if math.isfinite(measured) else "; NaN/Inf never passes")
        + top_operators_hint(request))  # evaluated only when the limit fails: then the profile runs if it has not
    if verdict.stale and run_config.stale_thresholds != "off":
        message = (f"stale latency limit: {what} measured {shown} is {verdict.ratio:.2f}x better than "
                   f"{limit} = {verdict.allowed}{unit}; stale_fraction {limits.stale_fraction} flags more than "
                   f"{1 + limits.stale_fraction:.2f}x. Tighten {limit} of {limits.label} in {source}")
        if run_config.stale_thresholds == "fail":
            pytest.fail(message, pytrace=False)
        warnings.warn(StaleThresholdWarning(message), stacklevel=1)
