"""Card lists (--device npu:all, npu:0,2,5): the parser, the cards they name, and the merge of worker results."""

from __future__ import annotations

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
from acceptance.errors import DeviceUnavailable
from acceptance.merge import merge_results
from acceptance.results import CheckRecord, RunResults
from acceptance.sections import CardCheck, ServerSection


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
