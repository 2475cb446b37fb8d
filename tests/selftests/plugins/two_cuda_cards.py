"""A host with CUDA cards (SELFTEST_CUDA_CARDS: 1, 2 or 8; default 2), for the device-index checks
(selection fails before any card is used)."""

import os

from acceptance.devices import BACKENDS
from acceptance.devices.cuda import CudaBackend

CARDS = int(os.environ.get("SELFTEST_CUDA_CARDS", "2"))


class TwoCudaCards(CudaBackend):
    def unavailable_reason(self):
        return None

    def device_count(self) -> int:
        return CARDS

    def bus_id(self, index: int) -> str:
        return f"0000:{0x18 + index:02x}:00.0"

    def device_name(self, index: int) -> str:
        return "two-card stand-in" if CARDS == 2 else f"{CARDS}-card stand-in"


BACKENDS["cuda"] = TwoCudaCards
