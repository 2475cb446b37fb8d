"""The host CPU: always available; the reference device and a valid (if slow) target."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from .base import Backend


def cpu_model_name() -> str:
    """The CPU's marketing name from /proc/cpuinfo, else what platform reports."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    for line in lines:
        if line.lower().startswith(("model name", "hardware")) and ":" in line:
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


class CpuBackend(Backend):
    """The CPU computes float32 as float32: strict has nothing to turn off beyond the base's matmul precision."""

    kind = "cpu"

    def unavailable_reason(self) -> str | None:
        return None

    def torch_device(self, index: int | None) -> torch.device:
        return torch.device("cpu")

    def device_name(self, index: int) -> str:
        return cpu_model_name()

    def versions(self) -> dict[str, str]:
        return {"torch_threads": str(torch.get_num_threads())}

#: the backend of this kind (acceptance/devices/__init__.py finds it by the kind's name)
BACKEND = CpuBackend
