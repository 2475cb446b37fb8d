"""torch.npu and the torch_npu package as the simulated cards offer them, and the one-time install.

torch.npu offers torch_npu's functions that the suite uses (acceptance.devices.npu.TORCH_NPU_SURFACE,
checked against the real wheels) plus what torch itself calls on a PrivateUse1 backend module
(is_initialized, current_device, _is_in_bad_fork, manual_seed_all, ...). The torch_npu package
offers ``__version__``, ``_C._npu_getOption``, ``profiler`` and ``npu_fusion_attention`` (transformers
imports it when torch_npu is present) - and ``__simulation__``, which says that this is no hardware.
"""

from __future__ import annotations

import importlib.machinery
import sys
import time
import types
from typing import Any

import torch

from . import profiler as profiler_module
from .precision import HF32_SWITCHES
from .runtime import NpuTensor, dispatch, runtime

DEVICE_TYPE = "npu"
VERSION = f"{torch.__version__.split('+')[0]}.post0+simulated"
SIMULATION = "simulated NPU (not hardware): Ascend cards simulated in Python on the host CPU (simulated_npu)"


class Event:
    """torch.npu.Event: the operators run when called, so a record is the time the work before it ended."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False):
        self.enable_timing = enable_timing
        self._time: float | None = None

    def record(self, stream: Any = None) -> None:
        runtime().card(None).check_alive()
        self._time = time.perf_counter()

    def synchronize(self) -> None:
        runtime().card(None).check_alive()

    def query(self) -> bool:
        return True

    def elapsed_time(self, end_event: "Event") -> float:
        if not self.enable_timing or not end_event.enable_timing:
            raise RuntimeError("Both events must be created with argument 'enable_timing=True'.")
        if self._time is None or end_event._time is None:
            raise RuntimeError("Both events must be recorded before calculating elapsed time.")
        return (end_event._time - self._time) * 1000.0


class _Switch:
    """torch.npu.conv / torch.npu.matmul: allow_hf32 lives in the option registry, as in the wheels."""

    def __init__(self, group: str):
        object.__setattr__(self, "_group", group)

    def __getattr__(self, name: str) -> bool:
        if name != "allow_hf32":
            raise AttributeError(f"torch.npu.{self._group} has no attribute {name!r}")
        return runtime().registry.hf32(self._group)

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "allow_hf32":
            raise AttributeError(f"torch.npu.{self._group} has no attribute {name!r}")
        runtime().registry.set_hf32(self._group, value)


class device:
    """``with torch.npu.device(1):`` makes card 1 the current one."""

    def __init__(self, index: Any):
        self.index = runtime().card_of(index).local
        self.previous = 0

    def __enter__(self) -> None:
        self.previous, runtime().current = runtime().current, self.index

    def __exit__(self, *exc: Any) -> None:
        runtime().current = self.previous


def _build_npu_module() -> types.ModuleType:
    npu = types.ModuleType("torch.npu")
    npu.__doc__ = "torch.npu of the simulated Ascend cards (simulated_npu; not hardware)"

    def card(device: Any = None):
        return runtime().card_of(device)

    def synchronize(device: Any = None) -> None:
        card(device).check_alive()  # operators run when called: nothing is queued

    def memory_allocated(device: Any = None) -> int:
        return card(device).allocated

    def max_memory_allocated(device: Any = None) -> int:
        return card(device).peak

    def reset_peak_memory_stats(device: Any = None) -> None:
        chosen = card(device)
        chosen.peak = chosen.allocated

    def set_device(index: Any) -> None:
        runtime().current = card(index).local

    functions = {
        # torch_npu's surface the suite uses
        "is_available": lambda: len(runtime().cards) > 0,
        "device_count": lambda: len(runtime().cards),
        "get_device_name": lambda device=None: f"{card(device).chip} (simulated)",
        "synchronize": synchronize,
        "memory_allocated": memory_allocated,
        "max_memory_allocated": max_memory_allocated,
        "reset_peak_memory_stats": reset_peak_memory_stats,
        "empty_cache": lambda: None,  # no caching allocator: freed storages are gone at once
        "set_option": lambda option: runtime().registry.set_option(option),
        # what torch calls on a PrivateUse1 backend module
        "is_initialized": lambda: True,
        "_lazy_init": lambda: runtime() and None,
        "current_device": lambda: runtime().current,
        "set_device": set_device,
        "_is_in_bad_fork": lambda: False,
        "manual_seed": lambda seed: None,
        "manual_seed_all": lambda seed: None,
        "get_amp_supported_dtype": lambda: [torch.float16, torch.bfloat16],
    }
    for name, function in functions.items():
        setattr(npu, name, function)
    npu.Event = Event
    npu.device = device
    for group in HF32_SWITCHES:
        setattr(npu, group, _Switch(group))
    return npu


def _build_package() -> types.ModuleType:
    package = types.ModuleType("torch_npu")
    package.__doc__ = SIMULATION
    package.__version__ = VERSION
    package.__simulation__ = SIMULATION
    package.__spec__ = importlib.machinery.ModuleSpec("torch_npu", None)
    package._C = types.SimpleNamespace(_npu_getOption=lambda key: runtime().registry.get_option(key))
    profiler = types.ModuleType("torch_npu.profiler")
    for name in ("profile", "ProfilerActivity", "tensorboard_trace_handler"):
        setattr(profiler, name, getattr(profiler_module, name))
    package.profiler = profiler

    def npu_fusion_attention(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("npu_fusion_attention is not simulated; the suite runs torch's attention on the card")

    package.npu_fusion_attention = npu_fusion_attention
    return package


_INSTALLED = False


def install() -> types.ModuleType:
    """Register the simulated cards as torch's ``npu`` device and put the simulated torch_npu in sys.modules.
    Once per process (torch cannot rename its PrivateUse1 backend twice); later calls return the package."""
    global _INSTALLED
    if _INSTALLED:
        return sys.modules["torch_npu"]
    if "torch_npu" in sys.modules or torch._C._get_privateuse1_backend_name() != "privateuseone":
        raise RuntimeError("simulated_npu cannot be installed: torch_npu (or another PrivateUse1 backend) is "
                           "already loaded in this process; the simulation is for hosts without Ascend cards")
    from torch.utils.backend_registration import _setup_privateuseone_for_python_backend

    npu = _build_npu_module()
    _setup_privateuseone_for_python_backend(DEVICE_TYPE, backend_module=npu)
    # factory operators (torch.empty(..., device="npu")) have no tensor to dispatch on: they reach PrivateUse1
    library = torch.library.Library("_", "IMPL")
    library.fallback(lambda op, *args, **kwargs: dispatch(op, args, kwargs), "PrivateUse1")
    # torch.autocast("npu"): operators autocast does not list fall through (torch_npu registers this in C++)
    library.fallback(torch.library.fallthrough_kernel, "AutocastPrivateUse1")
    package = _build_package()
    package._library = library  # kept alive with the package: dropping it unregisters the fallbacks
    sys.modules["torch_npu"] = package
    sys.modules["torch_npu.profiler"] = package.profiler
    _INSTALLED = True
    return package


__all__ = ["Event", "NpuTensor", "SIMULATION", "VERSION", "install"]
