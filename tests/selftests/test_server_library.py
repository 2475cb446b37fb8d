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
    chip_devices,
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
    assert sorted(latency_outliers({"npu:0": math.nan, "npu:1": math.inf}, 1.5)) == ["npu:0", "npu:1"]  # nor two
    assert spread(p50) == pytest.approx(19.5 / 6.4 - 1) and spread({"npu:0": 1.0}) is None


def test_unhealthy_vanished_and_rising_ecc_cards_fail_naming_why():
    def state(health="OK", ecc=0):
        return CardState(tool="npu-smi 24.1.rc1", index=0, health=health, ecc_uncorrectable=ecc)

    before = {"npu:0": state(), "npu:1": state("Alarm"), "npu:2": state(), "npu:3": state(ecc=None),
              "npu:4": state(), "npu:5": state(ecc=1)}
    after = {"npu:0": state(ecc=0), "npu:1": state("Alarm"), "npu:2": state(ecc=2), "npu:3": state(ecc=None),
             "npu:5": state(ecc=None)}
    found = state_failures(before, after, "npu-smi could not be read: dcmi module initialize failed")
    assert sorted(found) == ["npu:1", "npu:2", "npu:4", "npu:5"]
    assert "health 'Alarm' before the run" in found["npu:1"] and "after the run" in found["npu:1"]
    assert "uncorrectable ECC errors rose from 0 to 2 during the run" in found["npu:2"]
    assert found["npu:4"] == ("card state: npu-smi 24.1.rc1 no longer reports the card after the run (npu-smi could "
                              "not be read: dcmi module initialize failed)")
    assert "was 1 before the run and is not reported after it" in found["npu:5"]


@pytest.mark.parametrize("name, devices, first", [
    ("npu-smi-info-910b3-8-noproc.txt", list(range(8)),
     {"npu": 0, "chip": 0, "device": None, "name": "910B3", "health": "OK", "power_w": 101.8, "temperature_c": 43.0,
      "bus_id": "0000:C1:00.0", "memory_used_mib": 3318.0, "memory_total_mib": 65536.0}),
    ("npu-smi-info-910b3-8.txt", list(range(8)), {"memory_used_mib": 59718.0}),  # "59718/ 65536": no space
    ("npu-smi-info-910b1-2.txt", [0, 1], {"npu": 5, "name": "910B1", "bus_id": "0000:41:00.0"}),  # NPU 5 and 7 seen
    ("npu-smi-info-910probe-8.txt", list(range(8)), {"name": "910ProB", "memory_total_mib": 32768.0}),
    ("npu-smi-info-a3-16die.txt", list(range(16)),  # two dies per NPU, each a device (Phy-ID) with its bus id
     {"npu": 0, "chip": 0, "device": 0, "name": "Ascend910", "power_w": 166.9, "bus_id": "0000:9D:00.0"}),
    ("npu-smi-info-310p3-duo.txt", list(range(8)), {"npu": 0, "chip": 0, "name": "310P3", "power_w": None}),
])
def test_npu_smi_tables_as_the_tool_prints_them(name, devices, first):
    version, chips = parse_npu_smi_info((SMI / name).read_text())
    by_device = chip_devices(chips)
    assert sorted(by_device) == devices and version
    assert {key: by_device[0][key] for key in first} == first
    assert all(chip["health"] == "OK" for chip in chips)


def test_each_die_of_a_two_die_npu_is_its_own_card():
    _, chips = parse_npu_smi_info((SMI / "npu-smi-info-a3-16die.txt").read_text())
    by_device = chip_devices(chips)
    assert (by_device[1]["npu"], by_device[1]["chip"], by_device[1]["bus_id"], by_device[1]["power_w"]) == \
        (0, 1, "0000:9F:00.0", None)  # the second die: NPU 0, its own bus, power "-"
    assert (by_device[2]["npu"], by_device[2]["bus_id"]) == (1, "0000:99:00.0")
    _, chips = parse_npu_smi_info((SMI / "npu-smi-info-310p3-duo.txt").read_text())
    assert [(chip["npu"], chip["chip"]) for chip in chips[:4]] == [(0, 0), (0, 1), (32, 0), (32, 1)]


def test_npu_smi_board_and_ecc_and_nvidia_smi_csv():
    assert parse_npu_smi_board((SMI / "npu-smi-board-910b.txt").read_text()) == {"driver": "25.5.1",
                                                                                   "firmware": "7.8.0.6.201"}
    assert parse_npu_smi_ecc((SMI / "npu-smi-ecc-910a.txt").read_text()) == {0: 0}  # DDR and HBM double-bit
    ecc = (SMI / "npu-smi-ecc-950.txt").read_text()
    assert parse_npu_smi_ecc(ecc.replace("HBM Double Bit Error Count               : 0",
                                         "HBM Double Bit Error Count               : 3")) == {0: 3}
    two_chips = (SMI / "npu-smi-ecc-910a.txt").read_text()  # a block per chip, each closed by its Chip ID
    two_chips = two_chips + two_chips.replace("HBM Double Bit Error Count               : 0",
                                              "HBM Double Bit Error Count               : 5").replace(
        "Chip ID                                  : 0", "Chip ID                                  : 1")
    assert parse_npu_smi_ecc(two_chips) == {0: 0, 1: 5}
    assert parse_npu_smi_ecc("Health Status : OK") == {}
    listed = parse_nvidia_smi_csv((SMI / "nvidia-smi-query-ecc-rtxpro6000.csv").read_text())
    assert listed[1]["power_w"] == 28.54 and listed[1]["ecc_uncorrectable"] == 0 and "health" not in listed[1]
    vbios = parse_nvidia_smi_csv((SMI / "nvidia-smi-query-uuid-vbios-rtx2080s.csv").read_text())
    assert vbios[0]["firmware"] == "90.04.7a.40.73" and vbios[0]["driver"] == "466.63"
    assert vbios[0]["memory_used_mib"] == 575.0 and vbios[0]["temperature_c"] is None  # not asked: None


def test_card_states_are_read_or_say_why_not():
    outputs = {("npu-smi", "info"): (SMI / "npu-smi-info-910b1-2.txt").read_text(),
               ("npu-smi", "info", "-t", "board", "-i", "5"): (SMI / "npu-smi-board-910b.txt").read_text(),
               ("npu-smi", "info", "-t", "ecc", "-i", "5"): (SMI / "npu-smi-ecc-950.txt").read_text()}
    # a container that sees NPU 5 and 7: the runtime's card 0 is NPU 5
    states, note = read_card_states("npu", {0: None, 2: None}, run=lambda command: outputs[tuple(command)])
    assert list(states) == [0] and note == "npu-smi lists no card matching 2"
    assert (states[0].tool, states[0].index, states[0].driver, states[0].firmware, states[0].ecc_uncorrectable) == \
        ("npu-smi 24.1.0.3", 5, "25.5.1", "7.8.0.6.201", 0)

    def failing(command):
        raise RuntimeError("`npu-smi info` exited 255: dcmi module initialize failed")

    assert read_card_states("npu", {0: None}, run=failing) == (
        {}, "npu-smi could not be read: `npu-smi info` exited 255: dcmi module initialize failed")
    assert read_card_states("xpu", {0: None})[1] == "no vendor tool reads a xpu card's state"
    # CUDA numbers its cards its own way: matched on the bus id (torch 0000:..., nvidia-smi 00000000:...); the
    # query's output in the format of the real samples (units in the header and the values; H100 vbios as recorded)
    csv = ("index, name, pci.bus_id, driver_version, vbios_version, temperature.gpu, power.draw [W], "
           "memory.used [MiB], memory.total [MiB], ecc.errors.uncorrected.volatile.total\n"
           "0, NVIDIA H100 80GB HBM3, 00000000:04:00.0, 550.54.15, 96.00.89.00.01, 31, 71.62 W, 4 MiB, 81559 MiB, 0\n"
           "1, NVIDIA H100 80GB HBM3, 00000000:8B:00.0, 550.54.15, 96.00.89.00.01, 30, 69.80 W, 4 MiB, 81559 MiB, 0\n")
    states, note = read_card_states("cuda", {0: "0000:8b:00.0", 1: "0000:04:00.0"}, run=lambda command: csv)
    assert (states[0].index, states[1].index, note) == (1, 0, None)
