"""Shared logic for runtimes that follow the torch.cuda API shape (cuda, npu, xpu)."""

from __future__ import annotations

from typing import Any

import torch

from .base import Backend


class TorchModuleBackend(Backend):
    """A backend whose runtime is ``torch.<kind>`` with the torch.cuda-style API."""

    def module(self) -> Any:
        """The runtime module; subclasses import vendor extensions first."""
        return getattr(torch, self.kind)

    def unavailable_reason(self) -> str | None:
        module = getattr(torch, self.kind, None)
        if module is None or not module.is_available():
            return f"torch.{self.kind}.is_available() is False"
        return None

    def device_count(self) -> int:
        return int(self.module().device_count())

    def device_name(self, index: int) -> str:
        return str(self.module().get_device_name(index))

    def synchronize(self, index: int) -> None:
        self.module().synchronize(index)

    def memory_allocated(self, index: int) -> int | None:
        return int(self.module().memory_allocated(index))

    def max_memory_allocated(self, index: int) -> int | None:
        return int(self.module().max_memory_allocated(index))

    def reset_peak_memory(self, index: int) -> None:
        self.module().reset_peak_memory_stats(index)

    def empty_cache(self) -> None:
        self.module().empty_cache()

    def event_class(self) -> Any | None:
        return getattr(self.module(), "Event", None)
