"""A host with several NPU cards (SELFTEST_NPU_CARDS: 1, 2 or 8; default 8) that compute on the CPU.

Each card is its own Device (npu:0 ... npu:7) with its own model and outputs, so a whole-server run
(--device npu:all) runs every device test once per card for real. Faults, by card index:
SELFTEST_NAN_CARD=5 makes card 5's model return NaN in last_hidden_state (a bad card among good ones);
SELFTEST_LOST_CARD=3 makes card 3 raise the runtime's device error on its forward pass (a card lost
mid-run: it was there when the session started).
"""

from __future__ import annotations

import os

import pytest
import torch

from acceptance.devices import BACKENDS
from acceptance.devices.cpu import CpuBackend

CARDS = int(os.environ.get("SELFTEST_NPU_CARDS", "8"))
#: as the runtime does: ASCEND_RT_VISIBLE_DEVICES=3 leaves one card visible, called 0 (an xdist worker bound to card 3)
VISIBLE = [entry for entry in os.environ.get("ASCEND_RT_VISIBLE_DEVICES", "").split(",") if entry.strip()]
NAN_CARD = os.environ.get("SELFTEST_NAN_CARD")
LOST_CARD = os.environ.get("SELFTEST_LOST_CARD")


class StandInNpuCards(CpuBackend):
    kind = "npu"

    def device_count(self) -> int:
        return len(VISIBLE) if VISIBLE else CARDS

    def device_name(self, index: int) -> str:
        return "Ascend910B2 stand-in"

    def torch_device(self, index):
        return torch.device("cpu")

    def versions(self) -> dict[str, str]:
        return {**super().versions(), "torch_npu": "stand-in (not installed: the cards compute on the CPU)"}


BACKENDS["npu"] = StandInNpuCards


def _poison(module, inputs, output):
    output.last_hidden_state[0, 0, 0] = float("nan")
    return output


def _lost(module, inputs):
    raise RuntimeError(f"ACL stream synchronize failed, error code is 507033: device npu:{LOST_CARD} lost "
                       "(the stand-in's card lost mid-run)")


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    result = yield
    if fixturedef.argname in ("device_model", "card_model"):
        label = request.getfixturevalue("device").label
        if NAN_CARD is not None and label == f"npu:{NAN_CARD}":
            result.register_forward_hook(_poison)
        if LOST_CARD is not None and label == f"npu:{LOST_CARD}":
            result.register_forward_pre_hook(_lost)
    return result
