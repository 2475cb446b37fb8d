"""Latency measurement: a synchronized timed step, the cold call, and honest statistics.

What is timed is execution, not queueing: every timed call ends with the
device's synchronize (chosen once, when the step is built), the inputs are
already on the device, and nothing else - no preprocessing, no copy back to
the host - happens between the two clock readings. Where the device runtime
has timing events (CUDA, NPU, XPU, MPS) each call also records a start/end
event pair, reported as a second figure.

Statistics come from the raw samples. A percentile is reported only when the
samples support it (see ``min_samples_for``); otherwise it is ``None`` and
``LatencyStats.unavailable`` says why - never the maximum under another name.
A NaN or infinite sample makes every figure NaN, so it can never pass a limit.

``measure`` runs the whole procedure without pytest; the pytest suite drives
the same ``TimedStep`` through pytest-benchmark instead.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, Callable, Protocol, Sequence

import torch

#: the clock both measurement paths use (pytest-benchmark's default timer too)
CLOCK: Callable[[], float] = time.perf_counter

#: the percentiles reported, by the name of their LatencyStats field
PERCENTILES = {"p50_ms": 50, "p90_ms": 90, "p99_ms": 99}


class SynchronizedDevice(Protocol):
    """What timing needs from acceptance.devices.Device."""

    # read-only: the frozen Device satisfies it
    @property
    def torch_device(self) -> torch.device: ...

    @property
    def backend(self) -> Any: ...

    def synchronize(self) -> None: ...


def min_samples_for(percentile: float) -> int:
    """Fewest samples that support a percentile: 100 / (100 - p), rounded up.

    With fewer, no sample lies above the percentile's rank and any estimate is
    just the maximum: p50 needs 2 samples, p90 10, p99 100, p99.9 1000.
    """
    exact = Fraction(100) / (Fraction(100) - Fraction(str(percentile)))
    return math.ceil(exact)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, Hyndman-Fan type 7).

    ``sorted_values`` must be sorted and non-empty; p50 is the ordinary median.
    """
    position = (len(sorted_values) - 1) * p / 100
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


@dataclass(frozen=True)
class LatencyStats:
    """Figures for one latency measurement, from its raw samples (milliseconds).

    ``None`` means not supported by the samples (reason in ``unavailable``);
    NaN means a sample was NaN/Inf. Throughput is images per second at
    ``batch_size`` images per call, from the mean.
    """

    samples: int
    batch_size: int
    mean_ms: float
    min_ms: float
    max_ms: float
    std_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    throughput_img_per_s: float
    cold_ms: float | None = None
    #: device-event timings of the same calls (None where the runtime has no events)
    event_samples: int = 0
    event_mean_ms: float | None = None
    event_min_ms: float | None = None
    event_max_ms: float | None = None
    event_p50_ms: float | None = None
    #: statistic name -> why it is not reported
    unavailable: dict[str, str] = field(default_factory=dict)
    nonfinite_samples: int = 0
    timing_method: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready data (NaN stays NaN; reports decide how to show it)."""
        return asdict(self)


def _summarize_events(event_samples_ms: Sequence[float]) -> dict[str, Any]:
    if not event_samples_ms:
        return {}
    values = [float(v) for v in event_samples_ms]
    if not all(math.isfinite(v) for v in values):
        nan = math.nan
        return {"event_samples": len(values), "event_mean_ms": nan, "event_min_ms": nan, "event_max_ms": nan,
                "event_p50_ms": nan}
    ordered = sorted(values)
    return {"event_samples": len(values), "event_mean_ms": statistics.fmean(values), "event_min_ms": ordered[0],
            "event_max_ms": ordered[-1],
            "event_p50_ms": percentile(ordered, 50) if len(values) >= min_samples_for(50) else None}


def summarize(samples_ms: Sequence[float], batch_size: int, cold_ms: float | None = None,
              event_samples_ms: Sequence[float] = (), timing_method: str = "") -> LatencyStats:
    """Statistics of per-call latencies in milliseconds.

    - mean, min, max: from every sample; std is the sample standard deviation
      (n - 1) and needs 2 samples.
    - p50/p90/p99: type-7 percentiles, each only with ``min_samples_for(p)``
      samples (2, 10, 100); otherwise None with the reason in ``unavailable``.
    - throughput_img_per_s = batch_size / mean (the seed's definition).
    - any NaN/Inf sample: every figure is NaN (not dropped), so no limit passes.
    """
    if not samples_ms:
        raise ValueError("summarize() needs at least one latency sample")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    values = [float(v) for v in samples_ms]
    count = len(values)
    unavailable: dict[str, str] = {}
    percentiles: dict[str, Any] = {}  # field name -> float or None (typed by LatencyStats)
    for name, p in PERCENTILES.items():
        needed = min_samples_for(p)
        if count < needed:
            percentiles[name] = None
            unavailable[name] = f"needs >= {needed} samples, have {count}"
    std: float | None = None
    if count < 2:
        unavailable["std_ms"] = f"needs >= 2 samples, have {count}"
    common: dict[str, Any] = {"samples": count, "batch_size": batch_size, "cold_ms": cold_ms,
                              "timing_method": timing_method,
              **_summarize_events(event_samples_ms)}

    nonfinite = sum(not math.isfinite(v) for v in values)
    if nonfinite:
        nan = math.nan
        for name in PERCENTILES:
            percentiles.setdefault(name, nan)
        return LatencyStats(mean_ms=nan, min_ms=nan, max_ms=nan, std_ms=None if count < 2 else nan,
                            throughput_img_per_s=nan, unavailable=unavailable, nonfinite_samples=nonfinite,
                            **percentiles, **common)

    ordered = sorted(values)
    for name, p in PERCENTILES.items():
        percentiles.setdefault(name, percentile(ordered, p))
    if count >= 2:
        std = statistics.stdev(values)
    mean = statistics.fmean(values)
    throughput = batch_size / (mean / 1000) if mean > 0 else math.inf
    return LatencyStats(mean_ms=mean, min_ms=ordered[0], max_ms=ordered[-1], std_ms=std,
                        throughput_img_per_s=throughput, unavailable=unavailable, **percentiles, **common)


def speedup(reference: LatencyStats | None, candidate: LatencyStats | None) -> float | None:
    """reference mean / candidate mean (the seed's CPU/NPU speedup); None if either is missing."""
    if reference is None or candidate is None:
        return None
    if not (math.isfinite(reference.mean_ms) and math.isfinite(candidate.mean_ms)) or candidate.mean_ms <= 0:
        return math.nan
    return reference.mean_ms / candidate.mean_ms


class _EventPairs:
    """Start/end timing events, made before timing so no event is created inside a timed call."""

    def __init__(self, event_class: Any, capacity: int):
        self._event_class = event_class
        self._pairs = [self._pair() for _ in range(capacity)]
        self._used = 0

    def _pair(self) -> tuple[Any, Any]:
        return self._event_class(enable_timing=True), self._event_class(enable_timing=True)

    def next(self) -> tuple[Any, Any]:
        if self._used == len(self._pairs):  # more calls than planned: grow (rare, costs one allocation)
            self._pairs.append(self._pair())
        pair = self._pairs[self._used]
        self._used += 1
        return pair

    def elapsed_ms(self) -> list[float]:
        """Device time of every recorded pair, in call order (call only after a synchronize)."""
        return [float(start.elapsed_time(end)) for start, end in self._pairs[:self._used]]


class TimedStep:
    """One forward pass that returns only when the device has finished it.

    Built once per measurement: the inputs must already be on the device, and
    the synchronize function and the event class are looked up here, not per
    call. Calling the step runs ``model(pixel_values=inputs)`` under
    inference_mode, records a device-event pair around it where the runtime
    has events, then synchronizes. It returns the output (left on the device)
    so freeing it happens outside the timed region.
    """

    def __init__(self, model: Callable[..., Any], inputs: torch.Tensor, device: SynchronizedDevice,
                 expected_calls: int = 0, use_events: bool = True):
        if not _same_device(inputs.device, device.torch_device):
            raise ValueError(f"inputs are on {inputs.device}, the step times {device.torch_device}: "
                             "move them to the device before timing (a host copy must not be timed)")
        self._model = model
        self._inputs = inputs
        self._synchronize = device.synchronize
        event_class = device.backend.event_class() if use_events else None
        self._events = _EventPairs(event_class, expected_calls) if event_class is not None else None
        self.calls = 0

    @property
    def has_events(self) -> bool:
        return self._events is not None

    def timing_method(self, clock_name: str = "time.perf_counter") -> str:
        """How the calls are timed, for reports."""
        method = f"{clock_name} around forward + device synchronize"
        return method + "; device events as a second figure" if self.has_events else method

    def __call__(self) -> Any:
        self.calls += 1
        with torch.inference_mode():
            if self._events is None:
                output = self._model(pixel_values=self._inputs)
            else:
                start, end = self._events.next()
                start.record()
                output = self._model(pixel_values=self._inputs)
                end.record()
            self._synchronize()
        return output

    def event_times_ms(self) -> list[float]:
        """Device-event time of every call so far, in call order ([] without events)."""
        if self._events is None:
            return []
        self._synchronize()
        return self._events.elapsed_ms()

    def timed_event_times_ms(self, warmup: int, num_runs: int) -> list[float]:
        """Event times of the timed calls of a cold call + ``warmup`` + ``num_runs`` sequence.

        Calls made after them (a profiler's extra runs, say) are left out.
        """
        return self.event_times_ms()[1 + warmup:1 + warmup + num_runs]


def _same_device(a: torch.device, b: torch.device) -> bool:
    # torch.device("mps") != torch.device("mps:0"), but they are the same device
    return a.type == b.type and (a.index or 0) == (b.index or 0)


def time_call(step: Callable[[], Any], clock: Callable[[], float] = CLOCK) -> float:
    """Milliseconds for one call; the result is released after the clock stops."""
    start = clock()
    output = step()
    elapsed = clock() - start
    del output
    return elapsed * 1000


def clock_name(clock: Callable[[], float]) -> str:
    """``time.perf_counter``: how a clock is named in the reports."""
    return f"{getattr(clock, '__module__', None) or ''}.{getattr(clock, '__name__', repr(clock))}".lstrip(".")


def run_timed(step: Callable[[], Any], *, num_runs: int, warmup: int,
              clock: Callable[[], float] = CLOCK) -> tuple[float, list[float]]:
    """The cold first call (timed), ``warmup`` untimed calls, then ``num_runs`` timed calls.

    Returns (cold_ms, samples_ms). The pytest suite does the same through
    pytest-benchmark's pedantic mode.
    """
    if num_runs < 1 or warmup < 0:
        raise ValueError(f"need num_runs >= 1 and warmup >= 0, got {num_runs} and {warmup}")
    cold_ms = time_call(step, clock)
    for _ in range(warmup):
        step()
    return cold_ms, [time_call(step, clock) for _ in range(num_runs)]


def measure(model: Callable[..., Any], inputs: torch.Tensor, device: SynchronizedDevice, *, num_runs: int,
            warmup: int, batch_size: int | None = None, clock: Callable[[], float] = CLOCK) -> LatencyStats:
    """Time ``model(pixel_values=inputs)`` without pytest and summarize it.

    ``inputs`` must already be on the device. Used by the command lines and
    the harness check; the pytest suite runs the same TimedStep through
    pytest-benchmark.
    """
    step = TimedStep(model, inputs, device, expected_calls=1 + warmup + num_runs)
    cold_ms, samples = run_timed(step, num_runs=num_runs, warmup=warmup, clock=clock)
    return summarize(samples, batch_size or int(inputs.shape[0]), cold_ms=cold_ms,
                     event_samples_ms=step.timed_event_times_ms(warmup, num_runs),
                     timing_method=step.timing_method(clock_name(clock)))
