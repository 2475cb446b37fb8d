"""Self-tests for the scale library: OOM limits, FLOP counts, MFU, determinism, soak, per-card ids."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from acceptance.devices import backend_for, card_indices, select_device
from acceptance.errors import ConfigError
from acceptance.faults import is_out_of_memory
from acceptance.flops import count_flops, mfu, peak_for, tflops_per_s
from acceptance.loading import inspect_checkpoint, load_model
from acceptance.peak_table import load_peak_table, table_peak_tflops
from acceptance.sections import SweepPoint
from acceptance.soak import repeat_spread, soak
from acceptance.sweep import limits, run_point, run_sweep, sweep_points
from tests.selftests.test_devices import clean_npu, standin_npu  # noqa: F401 - fixtures

from .conftest import TINY_CONFIG


@pytest.fixture(scope="module")
def tiny_model(tiny_checkpoint):
    return load_model(inspect_checkpoint(tiny_checkpoint), "float32", "cpu")


def test_oom_at_one_point_is_recorded_as_the_limit_and_the_sweep_goes_on(tiny_model):
    cpu = select_device("cpu")
    pixels = torch.randn(1, 3, 224, 224)
    freed = []

    def point(batch, resolution):
        if batch >= 4 and resolution == 224:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return run_point(tiny_model, tiny_model, cpu, pixels, batch, resolution, num_runs=2, warmup=0,
                         dtype=torch.float32, peak_tflops=1.0, stride=16)

    points = run_sweep(point, sweep_points([1, 2, 4, 8], [224, 32], grid=True), on_oom=lambda: freed.append(1))
    status = {(p.batch, p.resolution): p.status for p in points}
    assert status == {(1, 32): "ok", (2, 32): "ok", (4, 32): "ok", (8, 32): "ok", (1, 224): "ok",
                      (2, 224): "ok", (4, 224): "out_of_memory", (8, 224): "skipped"}, status
    assert freed == [1]
    assert limits(points)["224"] == {"max_batch_ok": 2, "first_oom_batch": 4}
    ok = next(p for p in points if p.ok).to_dict()
    assert ok["peak_memory_bytes"] is None and ok["peak_memory_note"] == "not measurable on this backend"
    assert ok["accuracy"]["relative_error"] == 0.0  # the same model on both sides


@pytest.mark.parametrize("error", [RuntimeError("EL0004: Failed to allocate memory."), MemoryError(),
                                   RuntimeError("NPU out of memory. Tried to allocate 1 GiB")],
                         ids=["cann-el0004", "memory-error", "npu-words"])
def test_every_out_of_memory_form_is_a_sweep_limit(error):
    """CANN's code and Python's MemoryError stop a resolution as torch's OutOfMemoryError does."""
    def point(batch, resolution):
        if batch >= 2:
            raise error
        return SweepPoint(batch, resolution, "ok")

    points = run_sweep(point, [(1, 224), (2, 224), (4, 224)])
    assert [p.status for p in points] == ["ok", "out_of_memory", "skipped"], points
    assert points[1].error == (str(error).splitlines()[0] if str(error) else "MemoryError")


def test_out_of_memory_recognised_by_type_and_text_only():
    assert is_out_of_memory(torch.OutOfMemoryError("x"))
    assert is_out_of_memory(RuntimeError("NPU out of memory. Tried to allocate 1 GiB"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape"):
        run_sweep(lambda b, r: (_ for _ in ()).throw(RuntimeError("shape mismatch")), [(1, 224)])


def test_axes_and_grid():
    assert sweep_points([1, 2], [224, 448], grid=False) == [(1, 224), (2, 224), (1, 448)]
    assert len(sweep_points([1, 2], [224, 448], grid=True)) == 4


def test_flop_count_matches_the_hand_formula(tiny_model):
    d, inner, layers = TINY_CONFIG["hidden_size"], TINY_CONFIG["intermediate_size"], TINY_CONFIG["num_hidden_layers"]
    patches = (224 // 16) ** 2
    tokens = 1 + 4 + patches  # CLS, 4 registers, patches
    per_layer = 2 * tokens * d * (3 * d) + 2 * tokens * d * d + 2 * 2 * tokens * d * inner \
        + 2 * 2 * tokens * tokens * d  # qkv, output projection, MLP up+down, QK^T and AV
    embedding = 2 * patches * (3 * 16 * 16) * d
    expected = embedding + layers * per_layer
    assert count_flops(tiny_model, torch.randn(1, 3, 224, 224)) == expected
    assert count_flops(tiny_model, torch.randn(2, 3, 224, 224)) == 2 * expected


def test_mfu_arithmetic_and_peak_table(tmp_path):
    assert tflops_per_s(2 * 10 ** 12, 1000.0) == pytest.approx(2.0)
    assert mfu(2.0, 8.0) == pytest.approx(0.25)
    assert mfu(2.0, None) is None
    table = load_peak_table()
    assert table_peak_tflops("Ascend910B2", "float16", table) == 376.0
    assert table_peak_tflops("NVIDIA H100 80GB HBM3", "float32", table) == 67.0
    assert table_peak_tflops("Ascend910B2", "float64", table) is None
    assert peak_for("Unknown GPU", "float32", is_cpu=False, table=table)["tflops"] is None
    assert peak_for("Ascend910B2", "float16", is_cpu=False, table=table)["source"] == \
        "peak_flops.toml (Ascend910B2, float16)"
    assert peak_for("Ascend910B2", "float16", is_cpu=False, table=table)["measured"] is False  # a spec sheet: MFU <= 1
    cpu_peak = peak_for("AMD EPYC", "float32", is_cpu=True, table=table)
    assert cpu_peak["tflops"] > 0 and cpu_peak["source"].startswith("measured") and cpu_peak["measured"] is True
    bad = tmp_path / "peak.toml"
    bad.write_text('[[peak]]\ndevice = "X*"\nfloat32 = -1\n')
    with pytest.raises(ConfigError, match=r"peak entry 1\.float32 must be a positive number, got -1"):
        load_peak_table(bad)


def test_determinism_spread():
    same = torch.ones(3)
    assert repeat_spread(lambda: same, 3) == {"runs": 3, "bitwise_identical": True, "max_abs_spread": 0.0}
    values = iter([torch.zeros(3), torch.tensor([0.0, 1e-3, 0.0]), torch.tensor([0.0, 0.0, -2e-3])])
    spread = repeat_spread(lambda: next(values), 3)
    assert not spread["bitwise_identical"] and spread["max_abs_spread"] == pytest.approx(2e-3)
    nan = repeat_spread(lambda: torch.tensor([math.nan]), 2)
    assert not nan["bitwise_identical"] and math.isnan(nan["max_abs_spread"])


def test_soak_detects_injected_nan_and_memory_growth():
    ticks = itertools.count()
    calls = itertools.count()
    memory = iter([1000, 5000])

    def forward():
        n = next(calls)
        return torch.tensor([math.nan]) if n == 4 else torch.ones(1)

    report = soak(forward, 60, memory=lambda: next(memory), synchronize=lambda: None,
                  clock=lambda: float(next(ticks)))
    assert report["iterations"] > 0
    assert report["first_nonfinite_iteration"] == 4
    assert math.isnan(report["max_drift"]) and report["first_drift_iteration"] == 4
    assert report["memory_growth_bytes"] == 4000
    clean = soak(lambda: torch.ones(1), 5, memory=lambda: None, synchronize=lambda: None,
                 clock=lambda: float(next(ticks)))
    assert clean["first_nonfinite_iteration"] is None and clean["max_drift"] == 0.0
    assert clean["memory_growth_bytes"] is None


@pytest.mark.usefixtures("standin_npu")
def test_per_card_ids_with_two_standin_cards():
    backend = backend_for("npu")
    assert card_indices("npu", backend) == [0, 1]
    assert card_indices("npu:1", backend) == [1]
    assert card_indices("cpu", backend_for("cpu")) == [None]


class _TwoCards:
    """A stand-in backend: all card_indices asks of one is how many cards are visible."""

    def device_count(self):
        return 2


def test_auto_runs_per_card_like_the_kind_it_resolved_to():
    assert card_indices("auto", _TwoCards(), resolved_kind="npu") == [0, 1]
    assert card_indices("auto", _TwoCards(), resolved_kind="cpu") == [None]
    assert card_indices("auto", _TwoCards()) == [None]  # not resolved: the session's device only


def test_session_card_list_for_auto_on_a_two_card_host():
    """The list the ``card`` parametrization uses, from the session's config and device (auto -> npu here)."""
    from types import SimpleNamespace

    from fixtures.features.scale import card_params

    session = SimpleNamespace(run=SimpleNamespace(device="auto"),
                              device=SimpleNamespace(kind="npu", backend=_TwoCards()))
    assert card_params(session) == ([0, 1], ["card0", "card1"])
    session.run = SimpleNamespace(device="npu:1")
    assert card_params(session) == ([1], ["card1"])
