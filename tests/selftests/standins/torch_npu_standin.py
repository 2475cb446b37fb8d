"""A stand-in for the torch_npu package: registers ``torch.npu`` as the real one does.

It follows torch_npu's documented API (is_available, device_count,
get_device_name, synchronize, memory statistics, Event, conv/matmul
allow_hf32) and records calls so tests can check what the backend did.
Tests install it as a real importable package ``torch_npu`` on sys.path.
"""

from __future__ import annotations

import types

import torch

CALLS: list[tuple] = []


class _Flags:
    def __init__(self, allow_hf32: bool):
        self.allow_hf32 = allow_hf32


class _Event:
    def __init__(self, enable_timing: bool = False):
        self.enable_timing = enable_timing

    def record(self, stream=None):
        CALLS.append(("event.record",))

    def synchronize(self):
        CALLS.append(("event.synchronize",))

    def elapsed_time(self, other) -> float:
        return 1.0


def build(device_count: int = 2, name: str = "Ascend910B2") -> types.ModuleType:
    npu = types.ModuleType("torch.npu")
    npu.is_available = lambda: device_count > 0
    npu.device_count = lambda: device_count
    npu.get_device_name = lambda index=0: f"{name}"
    npu.synchronize = lambda index=None: CALLS.append(("synchronize", index))
    npu.memory_allocated = lambda index=None: 1024
    npu.max_memory_allocated = lambda index=None: 4096
    npu.reset_peak_memory_stats = lambda index=None: CALLS.append(("reset_peak_memory_stats", index))
    npu.Event = _Event
    npu.conv = _Flags(True)  # torch_npu's defaults: HF32 on for conv, off for matmul
    npu.matmul = _Flags(False)
    return npu


def install(device_count: int = 2, name: str = "Ascend910B2") -> None:
    """What `import torch_npu` does, as far as this suite can see."""
    torch.utils.rename_privateuse1_backend("npu")
    torch.npu = build(device_count, name)


def npu_fusion_attention(*args, **kwargs):
    """Imported by transformers (integrations/npu_flash_attention.py) whenever torch_npu is present;
    the stand-in runs no kernels."""
    raise RuntimeError("the torch_npu stand-in has no NPU kernels")
