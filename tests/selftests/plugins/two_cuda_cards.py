"""A host with two CUDA cards, for the device-index checks (selection fails before any card is used)."""

from acceptance.devices import BACKENDS
from acceptance.devices.cuda import CudaBackend


class TwoCudaCards(CudaBackend):
    def unavailable_reason(self):
        return None

    def device_count(self) -> int:
        return 2

    def device_name(self, index: int) -> str:
        return "two-card stand-in"


BACKENDS["cuda"] = TwoCudaCards
