"""Card lists (--device npu:all, npu:0,2,5): the parser, the cards they name, and the merge of worker results."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from acceptance.device_kinds import (
    ALL_CARDS,
    DeviceSpec,
    card_in_test_id,
    card_label,
    card_number,
    parse_device_spec,
)
from acceptance.devices import server_cards
from acceptance.devices.base import Backend
from acceptance.devices.card_state import (
    CardState,
    parse_npu_smi_board,
    parse_npu_smi_ecc,
    parse_npu_smi_info,
    parse_nvidia_smi_csv,
    read_card_states,
)
from acceptance.errors import DeviceUnavailable
from acceptance.merge import merge_results
from acceptance.results import CheckRecord, RunResults
from acceptance.sections import CardCheck, ServerSection
from acceptance.server_checks import latency_outliers, spread, state_failures


@pytest.mark.parametrize("text, parsed, cards", [
    ("npu:all", "npu:all", ALL_CARDS), ("CUDA:ALL", "cuda:all", ALL_CARDS), ("npu:0, 2,5", "npu:0,2,5", (0, 2, 5)),
    ("npu:3", "npu:3", None), ("npu", "npu", None), ("cpu", "cpu", None), ("auto", "auto", None),
])
def test_card_lists_parse(text, parsed, cards):
    spec = parse_device_spec(text)
    assert str(spec) == parsed and DeviceSpec.parse(parsed) == spec  # parsed once, spelled back the same
    assert (ALL_CARDS if spec.all_cards else spec.cards) == cards
    assert spec.server == (cards is not None)


def test_card_labels_are_built_and_read_in_one_place():
    assert card_label("npu", 3) == "npu:3" and card_number("npu:3") == 3
    assert DeviceSpec.parse("npu:all").card(5) == DeviceSpec("npu", index=5)
    assert card_in_test_id("tests/acceptance/test_x.py::test_y[npu:3-last_hidden_state]") == "npu:3"
    assert card_in_test_id("tests/acceptance/test_x.py::test_y[last_hidden_state]") == ""


@pytest.mark.parametrize("text, message", [
    ("npu:0,0", "card listed twice"), ("npu:0,x", "bad device index"), ("cpu:all", "bad device index"),
    ("mps:0,1", "bad device index"), ("npu:", None),
])
def test_bad_card_lists_are_refused(text, message):
    if message is None:
        assert parse_device_spec(text) == DeviceSpec("npu")  # "kind:" is the bare kind, as before
        return
    with pytest.raises(ValueError, match=message):
        parse_device_spec(text)


class _Cards(Backend):
    kind = "npu"

    def __init__(self, count: int) -> None:
        self.count = count

    def device_count(self) -> int:
        return self.count

    def device_name(self, index: int) -> str:
        return "stand-in"


def test_server_cards():
    assert server_cards("npu:all", _Cards(8)) == list(range(8))
    assert server_cards("npu:5,2", _Cards(8)) == [5, 2]
    with pytest.raises(DeviceUnavailable, match="npu:8 was requested but only 8"):
        server_cards("npu:0,8", _Cards(8))
    with pytest.raises(DeviceUnavailable, match="no npu card is visible"):
        server_cards("npu:all", _Cards(0))


def test_worker_results_merge_card_by_card():
    controller, first, second = (RunResults(config={}) for _ in range(3))
    controller.checks["a"] = CheckRecord("a", "passed", 0.1)  # provisional, from the report stream
    first.checks["a"] = CheckRecord("a", "passed", 0.1, markers=("accuracy",))
    second.checks["b"] = CheckRecord("b", "failed", 0.2, "boom")
    for part, card in ((first, "npu:0"), (second, "npu:1")):
        part.server = ServerSection(spec="npu:all", listed=["npu:0", "npu:1"])
        part.server.card(card, "stand-in").checks[card] = CardCheck("passed" if card == "npu:0" else "failed", "x")
        part.outputs["reference"] = {"last_hidden_state": {"shape": [1]}}
    merge_results(controller, first)
    merge_results(controller, second)
    assert controller.checks["a"].markers == ("accuracy",) and controller.checks["b"].outcome == "failed"
    assert controller.server.failing_cards == ["npu:1"]
    assert set(controller.server.cards) == {"npu:0", "npu:1"}
    assert controller.outputs == {"reference": {"last_hidden_state": {"shape": [1]}}}


def test_cuda_bus_id_from_the_device_properties(monkeypatch):
    import types

    import torch

    from acceptance.devices.cuda import CudaBackend

    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: types.SimpleNamespace(pci_domain_id=0, pci_bus_id=0x3B + index, pci_device_id=0))
    assert CudaBackend().bus_id(1) == "0000:3c:00.0"
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: types.SimpleNamespace())
    assert CudaBackend().bus_id(0) is None  # an older torch: not given


# ---- the checks across the cards (acceptance/server_checks.py) and the vendor tools' view (card_state.py) ----

SMI = Path(__file__).parent / "data" / "smi"


def test_a_card_far_above_its_siblings_median_is_the_outlier():
    p50 = {"npu:0": 6.5, "npu:1": 6.6, "npu:2": 6.4, "npu:3": 19.5}
    outliers = latency_outliers(p50, 1.5)
    assert list(outliers) == ["npu:3"]
    assert "3.00x the median p50 of the other 3 card(s) (6.500 ms); allowed <= 1.5x" in outliers["npu:3"]
    assert latency_outliers({"npu:0": 6.5, "npu:1": 9.0}, 1.5) == {}  # within the ratio
    assert latency_outliers({"npu:0": 6.5}, 1.5) == {}  # no siblings, no outlier
    assert list(latency_outliers({"npu:0": 6.5, "npu:1": math.nan, "npu:2": 6.6}, 1.5)) == ["npu:1"]  # NaN never passes
    assert spread(p50) == pytest.approx(19.5 / 6.4 - 1) and spread({"npu:0": 1.0}) is None


def test_unhealthy_cards_and_rising_ecc_counts_fail_naming_why():
    def state(health="OK", ecc=0):
        return CardState(tool="npu-smi 24.1.rc1", index=0, health=health, ecc_uncorrectable=ecc)

    before = {"npu:0": state(), "npu:1": state("Alarm"), "npu:2": state(), "npu:3": state(ecc=None)}
    after = {"npu:0": state(ecc=0), "npu:1": state("Alarm"), "npu:2": state(ecc=2), "npu:3": state(ecc=None)}
    found = state_failures(before, after)
    assert sorted(found) == ["npu:1", "npu:2"]
    assert "health 'Alarm' before the run" in found["npu:1"] and "after the run" in found["npu:1"]
    assert "uncorrectable ECC errors rose from 0 to 2 during the run" in found["npu:2"]


@pytest.mark.parametrize("name, cards, first", [
    ("npu-smi-info-910b3-8-noproc.txt", list(range(8)),
     {"name": "910B3", "health": "OK", "power_w": 101.8, "temperature_c": 43.0, "bus_id": "0000:C1:00.0",
      "memory_used_mib": 3318.0, "memory_total_mib": 65536.0}),
    ("npu-smi-info-910b3-8.txt", list(range(8)), {"memory_used_mib": 59718.0}),  # "59718/ 65536": no space
    ("npu-smi-info-910b1-2.txt", [5, 7], {"name": "910B1", "bus_id": "0000:41:00.0"}),  # a container's two cards
    ("npu-smi-info-910probe-8.txt", list(range(8)), {"name": "910ProB", "memory_total_mib": 32768.0}),
    ("npu-smi-info-a3-16die.txt", list(range(8)),  # two dies per NPU: memory summed, the second's power "-"
     {"name": "Ascend910", "power_w": 166.9, "memory_used_mib": 46536.0 + 46084.0, "memory_total_mib": 131072.0}),
    ("npu-smi-info-310p3-duo.txt", [0, 32, 32768, 32800], {"name": "310P3", "power_w": None, "temperature_c": 51.0}),
])
def test_npu_smi_tables_as_the_tool_prints_them(name, cards, first):
    version, parsed = parse_npu_smi_info((SMI / name).read_text())
    assert sorted(parsed) == cards and version
    assert {key: parsed[cards[0]][key] for key in first} == first
    assert all(card["health"] == "OK" for card in parsed.values())


def test_npu_smi_board_and_ecc_and_nvidia_smi_csv():
    assert parse_npu_smi_board((SMI / "npu-smi-board-910b.txt").read_text()) == {"driver": "25.5.1",
                                                                                   "firmware": "7.8.0.6.201"}
    assert parse_npu_smi_ecc((SMI / "npu-smi-ecc-910a.txt").read_text()) == 0  # DDR and HBM double-bit
    assert parse_npu_smi_ecc((SMI / "npu-smi-ecc-950.txt").read_text().replace(
        "HBM Double Bit Error Count               : 0", "HBM Double Bit Error Count               : 3")) == 3
    assert parse_npu_smi_ecc("Health Status : OK") is None
    ecc = parse_nvidia_smi_csv((SMI / "nvidia-smi-query-ecc-rtxpro6000.csv").read_text())
    assert ecc[1]["power_w"] == 28.54 and ecc[1]["ecc_uncorrectable"] == 0 and "health" not in ecc[1]
    vbios = parse_nvidia_smi_csv((SMI / "nvidia-smi-query-uuid-vbios-rtx2080s.csv").read_text())
    assert vbios[0]["firmware"] == "90.04.7a.40.73" and vbios[0]["driver"] == "466.63"
    assert vbios[0]["memory_used_mib"] == 575.0 and vbios[0]["temperature_c"] is None  # not asked: None


def test_card_states_are_read_or_say_why_not():
    outputs = {("npu-smi", "info"): (SMI / "npu-smi-info-910b1-2.txt").read_text(),
               ("npu-smi", "info", "-t", "board", "-i", "5"): (SMI / "npu-smi-board-910b.txt").read_text(),
               ("npu-smi", "info", "-t", "ecc", "-i", "5"): (SMI / "npu-smi-ecc-950.txt").read_text()}
    states, note = read_card_states("npu", [5, 6], run=lambda command: outputs[tuple(command)])
    assert list(states) == [5] and note == "npu-smi does not list card(s) 6"
    assert (states[5].tool, states[5].driver, states[5].firmware, states[5].ecc_uncorrectable) == \
        ("npu-smi 24.1.0.3", "25.5.1", "7.8.0.6.201", 0)

    def failing(command):
        raise RuntimeError("`npu-smi info` exited 255: dcmi module initialize failed")

    assert read_card_states("npu", [0], run=failing) == ({}, "npu-smi could not be read: `npu-smi info` exited 255: "
                                                            "dcmi module initialize failed")
    assert read_card_states("xpu", [0])[1] == "no vendor tool reads a xpu card's state"
