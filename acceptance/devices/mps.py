"""Apple silicon GPUs through torch.mps (one device, no index)."""

from __future__ import annotations

import platform

import torch

from .base import Backend


class MpsBackend(Backend):
    kind = "mps"
    install_hint = "run on macOS 12.3+ on Apple silicon with an MPS-enabled torch"

    def unavailable_reason(self) -> str | None:
        if not torch.backends.mps.is_available():
            return "torch.backends.mps.is_available() is False"
        return None

    def torch_device(self, index: int | None) -> torch.device:
        return torch.device("mps")

    def device_name(self, index: int) -> str:
        return f"Apple MPS ({platform.machine()})"

    def synchronize(self, index: int) -> None:
        torch.mps.synchronize()

    def memory_allocated(self, index: int) -> int | None:
        return int(torch.mps.current_allocated_memory())

    def empty_cache(self) -> None:
        torch.mps.empty_cache()

    def event_class(self):
        return getattr(torch.mps, "Event", None)

#: the backend of this kind (acceptance/devices/__init__.py finds it by the kind's name)
BACKEND = MpsBackend
