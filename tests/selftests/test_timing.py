"""acceptance.timing: hand-computed statistics, the sample-count rules, NaN handling and the timed step."""

import math
from types import SimpleNamespace

import pytest
import torch

from acceptance.timing import (
    LatencyStats,
    TimedStep,
    measure,
    min_samples_for,
    percentile,
    speedup,
    summarize,
    time_call,
)


@pytest.mark.parametrize(("p", "needed"), [(50, 2), (90, 10), (99, 100), (99.9, 1000), (95, 20)])
def test_min_samples_for(p, needed):
    assert min_samples_for(p) == needed


def test_percentile_interpolates_between_ranks():
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == 25.0  # the ordinary median of an even count
    assert percentile(values, 0) == 10.0 and percentile(values, 100) == 40.0
    assert percentile(values, 90) == pytest.approx(37.0)  # position 2.7: 30 + 0.7 * 10


def test_ten_samples_hand_computed():
    stats = summarize([float(v) for v in range(10, 0, -1)], batch_size=2)  # 10..1, unsorted on purpose
    assert stats.samples == 10
    assert stats.mean_ms == 5.5
    assert (stats.min_ms, stats.max_ms) == (1.0, 10.0)
    assert stats.std_ms == pytest.approx(math.sqrt(82.5 / 9))  # sample std, n - 1
    assert stats.p50_ms == 5.5
    assert stats.p90_ms == pytest.approx(9.1)  # position 8.1 between 9 and 10
    assert stats.p99_ms is None
    assert stats.unavailable == {"p99_ms": "needs >= 100 samples, have 10"}
    assert stats.throughput_img_per_s == pytest.approx(2 / 0.0055)


def test_hundred_samples_support_p99():
    stats = summarize([float(v) for v in range(1, 101)], batch_size=1)
    assert stats.p50_ms == 50.5
    assert stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01)  # not the maximum (100)
    assert stats.unavailable == {}


def test_twenty_samples_like_the_seed_report_no_p99():
    samples = [8.5 + 0.05 * i for i in range(19)] + [9.4]
    stats = summarize(samples, batch_size=1)
    assert stats.p99_ms is None and stats.max_ms == 9.4
    assert "needs >= 100 samples, have 20" == stats.unavailable["p99_ms"]
    assert stats.p90_ms is not None


def test_nine_samples_have_no_p90():
    stats = summarize([1.0] * 9, batch_size=1)
    assert stats.p90_ms is None and stats.unavailable["p90_ms"] == "needs >= 10 samples, have 9"
    assert stats.std_ms == 0.0


def test_one_sample_has_mean_but_no_spread_or_percentiles():
    stats = summarize([4.0], batch_size=1, cold_ms=40.0)
    assert (stats.mean_ms, stats.min_ms, stats.max_ms, stats.cold_ms) == (4.0, 4.0, 4.0, 40.0)
    assert stats.std_ms is None and stats.p50_ms is None
    assert set(stats.unavailable) == {"std_ms", "p50_ms", "p90_ms", "p99_ms"}
    assert stats.throughput_img_per_s == 250.0


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nonfinite_sample_makes_every_figure_nan(bad):
    stats = summarize([1.0, bad, 3.0] + [2.0] * 7, batch_size=1)
    assert stats.nonfinite_samples == 1
    for name in ("mean_ms", "min_ms", "max_ms", "std_ms", "p50_ms", "p90_ms", "throughput_img_per_s"):
        assert math.isnan(getattr(stats, name)), name
    assert stats.p99_ms is None  # too few samples is still reported as such


def test_summarize_rejects_no_samples():
    with pytest.raises(ValueError, match="at least one"):
        summarize([], batch_size=1)


def test_device_event_figures():
    stats = summarize([2.0, 2.2, 2.4], batch_size=1, event_samples_ms=[1.5, 1.7, 1.6])
    assert stats.event_samples == 3
    assert stats.event_mean_ms == pytest.approx(1.6)
    assert (stats.event_min_ms, stats.event_max_ms, stats.event_p50_ms) == (1.5, 1.7, 1.6)
    assert summarize([2.0], batch_size=1).event_mean_ms is None


def test_speedup_is_reference_mean_over_candidate_mean():
    cpu = summarize([653.718] * 2, batch_size=1)
    npu = summarize([8.756] * 2, batch_size=1)
    assert speedup(cpu, npu) == pytest.approx(74.66, abs=0.01)  # the seed's figure
    assert speedup(cpu, None) is None
    assert math.isnan(speedup(cpu, summarize([math.nan], batch_size=1)))


def test_to_dict_is_plain_data():
    data = summarize([1.0, 2.0], batch_size=1).to_dict()
    assert data["samples"] == 2 and data["p99_ms"] is None and isinstance(data["unavailable"], dict)
    assert set(data) == {f.name for f in LatencyStats.__dataclass_fields__.values()}


class Log:
    """A shared log of clock readings, forward passes and synchronizes, in order."""

    def __init__(self):
        self.entries = []
        self.now = 0.0

    def clock(self):
        self.entries.append("clock")
        self.now += 0.001
        return self.now


def fake_device(log, event_class=None):
    return SimpleNamespace(torch_device=torch.device("cpu"),
                           backend=SimpleNamespace(event_class=lambda: event_class),
                           synchronize=lambda: log.entries.append("sync"))


def fake_model(log):
    def model(pixel_values):
        log.entries.append("forward")
        return pixel_values * 2

    return model


def test_synchronize_is_inside_the_timed_region():
    log = Log()
    step = TimedStep(fake_model(log), torch.ones(1, 3, 4, 4), fake_device(log))
    time_call(step, clock=log.clock)
    assert log.entries == ["clock", "forward", "sync", "clock"]


def test_measure_times_cold_call_apart_and_warmup_untimed():
    log = Log()
    stats = measure(fake_model(log), torch.ones(2, 3, 4, 4), fake_device(log), num_runs=3, warmup=2,
                    clock=log.clock)
    timed = ["clock", "forward", "sync", "clock"]
    assert log.entries == timed + ["forward", "sync"] * 2 + timed * 3
    assert stats.samples == 3 and stats.batch_size == 2
    assert stats.cold_ms == pytest.approx(1.0) and stats.mean_ms == pytest.approx(1.0)
    assert stats.event_samples == 0 and "synchronize" in stats.timing_method


class FakeEvent:
    """Records when it was recorded, like torch.cuda.Event(enable_timing=True)."""

    created = 0

    def __init__(self, enable_timing):
        assert enable_timing
        FakeEvent.created += 1

    def record(self):
        FAKE_EVENT_LOG.append(self)

    def elapsed_time(self, end):
        return (FAKE_EVENT_LOG.index(end) + 1) / 2  # the k-th call (from 1) "took" k ms


FAKE_EVENT_LOG = []


def test_device_events_are_made_before_timing_and_reported():
    FAKE_EVENT_LOG.clear()
    FakeEvent.created = 0
    log = Log()
    stats = measure(fake_model(log), torch.ones(1, 3, 4, 4), fake_device(log, FakeEvent), num_runs=4, warmup=1,
                    clock=log.clock)
    assert FakeEvent.created == 2 * (1 + 1 + 4)  # cold + warm-up + timed, all made up front
    # call 1 is the cold call, call 2 the warm-up: the timed calls are 3..6
    assert stats.event_samples == 4 and (stats.event_min_ms, stats.event_max_ms) == (3.0, 6.0)
    assert stats.event_mean_ms == 4.5
    assert "device events" in stats.timing_method


def test_inputs_must_already_be_on_the_device():
    log = Log()
    device = fake_device(log)
    device.torch_device = torch.device("meta")
    with pytest.raises(ValueError, match="move them to the device before timing"):
        TimedStep(fake_model(log), torch.ones(1), device)


def test_measure_on_a_real_module_returns_finite_figures():
    from acceptance.devices import select_device

    class Tiny(torch.nn.Module):
        def forward(self, pixel_values):
            return pixel_values.sum()

    stats = measure(Tiny(), torch.ones(1, 3, 8, 8), select_device("cpu"), num_runs=12, warmup=1)
    assert stats.samples == 12 and stats.nonfinite_samples == 0 and stats.p90_ms is not None
    assert 0 < stats.min_ms <= stats.p50_ms <= stats.max_ms
