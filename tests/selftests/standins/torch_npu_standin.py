"""A stand-in for the torch_npu package, built from the backend's declared surface and nothing more.

It offers exactly the names in ``acceptance.devices.npu.TORCH_NPU_SURFACE`` -
the ones test_torch_npu_contract.py checks in the real torch-npu wheels - so a
backend that reaches for any other name fails here with AttributeError instead
of passing against a stand-in and failing on an Ascend host. The behaviour
follows the wheels' own code: the allow_hf32 switches and set_option write an
option registry that ``_C._npu_getOption`` reads back (bytes, None when unset);
set_option rejects values outside the surface's allowed set. Calls are recorded
in CALLS so tests can check what the backend did.

Tests install it as a real importable package ``torch_npu`` on sys.path (a
package whose ``__init__`` calls install()), or put build()'s module into
sys.modules themselves.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import torch

from acceptance.devices.npu import TORCH_NPU_SURFACE

CALLS: list[tuple] = []
SURFACE = TORCH_NPU_SURFACE


class _Event:
    """torch.npu.Event: built with the surface's keywords, offering the surface's methods only."""

    def __init__(self, **keywords: Any):
        unknown = set(keywords) - set(SURFACE.event_keywords)
        if unknown:
            raise TypeError(f"the torch_npu stand-in's Event takes only {SURFACE.event_keywords}, "
                            f"got {sorted(unknown)}")

    def record(self) -> None:
        CALLS.append(("event.record",))

    def elapsed_time(self, end_event: _Event) -> float:
        return 1.0


def _switch_class(option: str, unset: bool, registry: dict[str, str]) -> type:
    """A torch.npu.conv / torch.npu.matmul holder: allow_hf32 lives in the option registry, as in the wheels."""

    class Switch:
        def __getattr__(self, name: str) -> bool:
            if name != "allow_hf32":
                raise AttributeError(f"the torch_npu stand-in's switch has no {name!r}")
            value = registry.get(option)
            return unset if not value else value == "enable"

        def __setattr__(self, name: str, value: bool) -> None:
            if name != "allow_hf32":
                raise AttributeError(f"the torch_npu stand-in's switch has no {name!r}")
            if not isinstance(value, bool):  # the newer wheels refuse anything else
                raise TypeError(f"allow_hf32 must be a bool, but got {type(value).__name__}")
            registry[option] = "enable" if value else "disable"

    return Switch


def _profiler() -> types.ModuleType:
    """torch_npu.profiler with the surface's names; it has no NPU to profile, so profile() refuses to start
    (the suite records that the profiler could not run, and fails nothing)."""
    module = types.ModuleType("torch_npu.profiler")

    def profile(*args: Any, **kwargs: Any) -> Any:
        CALLS.append(("profiler.profile", sorted(kwargs)))
        raise RuntimeError("the torch_npu stand-in has no NPU profiler")

    module.profile = profile
    module.ProfilerActivity = types.SimpleNamespace(CPU="CPU", NPU="NPU")
    module.tensorboard_trace_handler = lambda folder, *args, **kwargs: (lambda profiler: None)
    names = {name for name in vars(module) if not name.startswith("__")}
    if names != set(SURFACE.profiler_names):
        raise AssertionError(f"the stand-in's torch_npu.profiler {sorted(names)} differs from the declared surface "
                             f"{sorted(SURFACE.profiler_names)}")
    return module


class StandIn:
    """One stand-in torch_npu: ``module`` is the package, ``npu`` is torch.npu, ``options`` the option registry."""

    def __init__(self, device_count: int = 2, name: str = "Ascend910B2", read_back_acl: bool = True,
                 version: str = "2.9.0.post1+standin"):
        self.options: dict[str, str] = {}
        options = self.options

        def set_option(option: dict) -> None:
            for key, value in option.items():
                allowed = SURFACE.options.get(key)
                if allowed is not None and str(value) not in allowed:
                    raise ValueError(f"value of {key} should be in {list(allowed)} but got {value}")
            options.update({key: str(value) for key, value in option.items()})
            CALLS.append(("set_option", dict(option)))

        def get_option(key: str) -> bytes | None:
            if key == "ACL_PRECISION_MODE" and not read_back_acl:
                return None  # a torch_npu whose registry does not hold what set_option passed on
            value = options.get(key)
            return value.encode() if value is not None else None

        functions = {
            "is_available": lambda: device_count > 0,
            "device_count": lambda: device_count,
            "get_device_name": lambda device_name=None: name,
            "synchronize": lambda device=None: CALLS.append(("synchronize", device)),
            "memory_allocated": lambda device=None: 1024,
            "max_memory_allocated": lambda device=None: 4096,
            "reset_peak_memory_stats": lambda device=None: CALLS.append(("reset_peak_memory_stats", device)),
            "empty_cache": lambda: CALLS.append(("empty_cache",)),
            "set_option": set_option,
        }
        c_functions = {"_npu_getOption": get_option}
        package = {"__version__": version, "_C": types.SimpleNamespace(**c_functions), "profiler": _profiler()}
        for kind, offered, declared in (("torch.npu functions", functions, SURFACE.functions),
                                        ("torch_npu._C functions", c_functions, SURFACE.c_functions),
                                        ("torch_npu attributes", package, SURFACE.package_attributes)):
            if set(offered) != set(declared):  # the stand-in is the surface: update both together
                raise AssertionError(f"the stand-in's {kind} {sorted(offered)} differ from the declared "
                                     f"surface {sorted(declared)}")

        self.npu = types.ModuleType(f"torch.{SURFACE.device_type}")
        for function_name, function in functions.items():
            setattr(self.npu, function_name, function)
        self.npu.Event = _Event
        for group, (option, unset) in SURFACE.hf32_switches.items():
            setattr(self.npu, group, _switch_class(option, unset, options)())

        self.module = types.ModuleType("torch_npu")
        for attribute, value in package.items():
            setattr(self.module, attribute, value)


def build(device_count: int = 2, name: str = "Ascend910B2", **kwargs: Any) -> StandIn:
    return StandIn(device_count, name, **kwargs)


def install(device_count: int = 2, name: str = "Ascend910B2", package: str = "torch_npu") -> StandIn:
    """What `import torch_npu` does, as far as this suite can see: torch.npu appears, and the importing
    package (``sys.modules[package]``, the stand-in package's ``__init__``) gets the surface's attributes."""
    stand_in = build(device_count, name)
    torch.utils.rename_privateuse1_backend(SURFACE.device_type)
    setattr(torch, SURFACE.device_type, stand_in.npu)
    importing = sys.modules.get(package)
    if importing is not None:
        for attribute in SURFACE.package_attributes:
            if not hasattr(importing, attribute):  # a test's package may carry its own __version__
                setattr(importing, attribute, getattr(stand_in.module, attribute))
    return stand_in


def npu_fusion_attention(*args, **kwargs):
    """Not used by the suite: transformers imports it (integrations/npu_flash_attention.py) whenever torch_npu
    is present, so the stand-in package must offer it; it runs no kernels."""
    raise RuntimeError("the torch_npu stand-in has no NPU kernels")
