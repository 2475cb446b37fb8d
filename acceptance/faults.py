"""Faults during a run turned into messages a user can act on.

Out-of-memory errors differ by runtime: torch raises ``torch.OutOfMemoryError``
for CUDA and XPU (and recent torch_npu for Ascend), older torch_npu a plain
RuntimeError ("NPU out of memory"), CANN its own code (EL0004 "Failed to
allocate memory"), and the CPU allocator "can't allocate memory". All of them
become DeviceOutOfMemory naming what was being done and how to make room.
"""

from __future__ import annotations

import traceback
from contextlib import contextmanager
from typing import Iterator

import torch

from .errors import DeviceOutOfMemory

#: lower-case fragments of runtime errors that mean "the device has no memory left"
OUT_OF_MEMORY_TEXT = ("out of memory", "failed to allocate memory", "can't allocate memory", "el0004")


def is_out_of_memory(error: BaseException) -> bool:
    """True for torch's OutOfMemoryError, Python's MemoryError (a failed host allocation, often without
    text) and the runtime errors that say the same in words."""
    if isinstance(error, MemoryError):
        return True
    oom_class = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_class is not None and isinstance(error, oom_class):
        return True
    return isinstance(error, RuntimeError) and any(
        text in str(error).lower() for text in OUT_OF_MEMORY_TEXT)


@contextmanager
def device_memory_guard(action: str, device: str, batch_size: int) -> Iterator[None]:
    """Turn an out-of-memory error raised inside into DeviceOutOfMemory.

    ``action`` says what was being done ("loading the model", "running the
    forward pass"). The failed call's frames are cleared first: they hold the
    tensors it had allocated, and the tests that run next need that memory back.
    """
    try:
        yield
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        traceback.clear_frames(error.__traceback__)
        lines = str(error).strip().splitlines()
        detail = lines[0] if lines else type(error).__name__
        hint = "try --batch-size 1, " if batch_size > 1 else ""
        raise DeviceOutOfMemory(
            f"device out of memory while {action} on {device} (batch size {batch_size}): {detail}",
            f"{hint}try a smaller --dtype (bfloat16), or free the card: another process may hold its memory "
            "(npu-smi info / nvidia-smi shows which)") from None
