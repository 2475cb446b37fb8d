"""Huawei Ascend NPUs through torch_npu (imported only here, only when asked for).

torch_npu must match the installed torch exactly and needs the CANN toolkit's
libraries on the loader path (``source .../ascend-toolkit/set_env.sh``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from .accelerator import TorchModuleBackend

SET_ENV = "/usr/local/Ascend/ascend-toolkit/set_env.sh"


@dataclass(frozen=True)
class TorchNpuSurface:
    """The names of torch_npu this suite uses, and how it calls them."""

    #: torch.npu functions -> how many positional arguments the suite passes
    functions: Mapping[str, int]
    #: torch.npu.Event: the keyword arguments it is built with, its methods -> positional arguments
    event_keywords: tuple[str, ...]
    event_methods: Mapping[str, int]
    #: torch.npu.<group>.allow_hf32 -> (the option its getter reads, what the getter says when it is unset)
    hf32_switches: Mapping[str, tuple[str, bool]]
    #: set_option's options -> every value it accepts (default_acl_precision_mode reports these)
    options: Mapping[str, tuple[str, ...]]
    #: names read from the torch_npu package itself, and from its extension module torch_npu._C
    package_attributes: tuple[str, ...]
    c_functions: tuple[str, ...]
    #: the torch device type (and torch.<name> module) that `import torch_npu` registers
    device_type: str
    #: the torch.compile (dynamo) backend graph mode uses on NPU
    compile_backend: str
    #: names of torch_npu.profiler the operator profile uses (ProfilerActivity's CPU and NPU members live in
    #: the binary torch_npu._C._profiler, documented but not checkable from the sources)
    profiler_names: tuple[str, ...] = ("profile", "ProfilerActivity", "tensorboard_trace_handler")


#: Everything of torch_npu the suite touches - the backend below, accelerator.TorchModuleBackend through
#: torch.npu, and graph.py - and nothing else may be used. It exists because torch_npu cannot run without
#: CANN: the self-tests run the backend on a stand-in built from exactly this surface
#: (tests/selftests/standins/torch_npu_standin.py), and check the surface itself against the sources of
#: the real torch-npu wheels (tests/selftests/test_torch_npu_contract.py), so neither can drift.
TORCH_NPU_SURFACE = TorchNpuSurface(
    functions={"is_available": 0, "device_count": 0, "get_device_name": 1, "synchronize": 1,
               "memory_allocated": 1, "max_memory_allocated": 1, "reset_peak_memory_stats": 1,
               "empty_cache": 0, "set_option": 1},
    event_keywords=("enable_timing",),
    event_methods={"record": 0, "elapsed_time": 1},
    hf32_switches={"conv": ("ALLOW_CONV_HF32", True), "matmul": ("ALLOW_MATMUL_HF32", False)},
    options={"ACL_PRECISION_MODE": ("allow_fp32_to_fp16", "must_keep_origin_dtype")},
    package_attributes=("__version__", "_C", "profiler"),
    c_functions=("_npu_getOption",),
    device_type="npu",
    compile_backend="npu",
)
ACL_PRECISION_MODE = "ACL_PRECISION_MODE"
STRICT_ACL_PRECISION_MODE = "must_keep_origin_dtype"


def torch_npu_installed() -> bool:
    if "torch_npu" in sys.modules:
        return True
    return importlib.util.find_spec("torch_npu") is not None


def cann_version(environ: dict[str, str] | None = None) -> str | None:
    """The CANN toolkit version from the files under $ASCEND_TOOLKIT_HOME, if any."""
    environ = dict(os.environ if environ is None else environ)
    home = environ.get("ASCEND_TOOLKIT_HOME")
    if not home or not Path(home).is_dir():
        return None
    for candidate in sorted(Path(home).glob("*/ascend_toolkit_install.info")) + [Path(home) / "version.cfg"]:
        if not candidate.is_file():
            continue
        for line in candidate.read_text(errors="replace").splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() in ("version", "Version", "toolkit_running_version"):
                return value.strip().strip('"').strip("[]").split(":")[-1]
    return None


def default_acl_precision_mode(chip: str) -> str | None:
    """CANN's ACL_PRECISION_MODE when none is set: must_keep_origin_dtype on Atlas A2/A3 (Ascend910B,
    Ascend910_93), allow_fp32_to_fp16 - float16 matrix units for float32 models - on older chips."""
    name = chip.replace(" ", "")
    if re.match(r"Ascend910(B|_9)", name, re.IGNORECASE):
        return "must_keep_origin_dtype"
    if re.match(r"Ascend(910|310)", name, re.IGNORECASE):
        return "allow_fp32_to_fp16"
    return None


class NpuBackend(TorchModuleBackend):
    kind = "npu"
    install_hint = (f"on an Ascend host: pip install the torch-npu release that matches torch {torch.__version__} "
                    f"(never let it change torch), then `source {SET_ENV}`")

    def __init__(self) -> None:
        #: what apply_precision set, for when torch_npu cannot read the option back
        self._acl_precision_mode_set: str | None = None

    def _import(self) -> Any:
        """Import torch_npu; the error text explains a missing toolkit environment."""
        return importlib.import_module("torch_npu")

    def unavailable_reason(self) -> str | None:
        if not torch_npu_installed():
            return "torch_npu is not installed"
        try:
            self._import()
        except (ImportError, OSError, RuntimeError) as error:
            return (f"torch_npu is installed but failed to import ({error}); its CANN libraries are "
                    f"probably not on the loader path: run `source {SET_ENV}` in this shell first")
        return super().unavailable_reason()

    def module(self) -> Any:
        self._import()
        return getattr(torch, "npu")  # registered by torch_npu at import

    def simulation(self) -> str | None:
        # the simulated card (simulated_npu) says so in its package; a real torch_npu has no such attribute
        text = getattr(sys.modules.get("torch_npu"), "__simulation__", None)
        return str(text) if text else None

    profile_time = "device"

    def profiler(self, trace_dir: Path) -> Any:
        """torch_npu's profiler (CPU and NPU activities), which writes its output folder into ``trace_dir``
        when it stops (tensorboard_trace_handler)."""
        profiler = self._import().profiler
        trace_dir.mkdir(parents=True, exist_ok=True)
        return profiler.profile(activities=[profiler.ProfilerActivity.CPU, profiler.ProfilerActivity.NPU],
                                on_trace_ready=profiler.tensorboard_trace_handler(str(trace_dir)))

    def export_trace(self, profiler: Any, trace_dir: Path, stem: str) -> Path:
        # the trace handler has written the Ascend profiler's folder (*_ascend_pt) when the profile stopped
        return trace_dir

    def operator_events(self, profiler: Any, trace_dir: Path, basis: str) -> list[Any]:
        """The device's operators from the Ascend profiler's op_statistic.csv (its profile object has no
        key_averages): OP Type, Count, Total Time(us), summed over core types."""
        import csv

        from ..profiling import RawEvent

        found = sorted(trace_dir.glob("**/ASCEND_PROFILER_OUTPUT/op_statistic.csv"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise RuntimeError(f"the Ascend profiler wrote no ASCEND_PROFILER_OUTPUT/op_statistic.csv under "
                               f"{trace_dir}")
        totals: dict[str, list[float]] = {}  # name -> [calls, total microseconds]
        with found[-1].open(newline="") as handle:
            for row in csv.DictReader(handle):
                name = (row.get("OP Type") or "").strip()
                if not name:
                    continue
                entry = totals.setdefault(name, [0, 0.0])
                entry[0] += int(float(row.get("Count") or 0))
                entry[1] += float(row.get("Total Time(us)") or 0.0)
        return [RawEvent(name, int(calls), total) for name, (calls, total) in totals.items() if total > 0]

    def versions(self) -> dict[str, str]:
        torch_npu = sys.modules.get("torch_npu")
        return {"torch_npu": str(getattr(torch_npu, "__version__", "unknown")),
                "cann": cann_version() or "unknown"}

    def apply_precision(self, mode: str) -> None:
        super().apply_precision(mode)
        if mode != "strict":
            return
        npu = self.module()
        # HF32 (10-bit mantissa) off for convolutions - on by default, and DINOv3's patch embedding is a
        # Conv2d - and for matmuls; operators keep their dtype instead of falling back to float16.
        npu.conv.allow_hf32 = False
        npu.matmul.allow_hf32 = False
        npu.set_option({ACL_PRECISION_MODE: STRICT_ACL_PRECISION_MODE})
        self._acl_precision_mode_set = STRICT_ACL_PRECISION_MODE

    def strict_settings(self) -> dict[str, object]:
        return {**super().strict_settings(), "conv_allow_hf32": False, "matmul_allow_hf32": False,
                "acl_precision_mode": STRICT_ACL_PRECISION_MODE}

    def precision_settings(self) -> dict[str, object]:
        npu = self.module()
        settings: dict[str, object] = super().precision_settings()
        for group in ("conv", "matmul"):
            holder = getattr(npu, group, None)
            if holder is not None and hasattr(holder, "allow_hf32"):
                settings[f"{group}_allow_hf32"] = bool(holder.allow_hf32)
        settings["acl_precision_mode"], settings["acl_precision_mode_source"] = self._acl_precision_mode()
        return settings

    def _acl_precision_mode(self) -> tuple[str, str]:
        """(ACL_PRECISION_MODE in force, where that value came from).

        torch_npu has no public getter: its option registry is read with the same
        call torch_npu's own allow_hf32 getters use. An unset option means CANN's
        default, which depends on the chip generation.
        """
        torch_npu = self._import()
        getter = getattr(getattr(torch_npu, "_C", None), "_npu_getOption", None)
        value = getter(ACL_PRECISION_MODE) if getter is not None else None
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        if value:
            return str(value), "read back from torch_npu's option registry"
        if self._acl_precision_mode_set is not None:
            return self._acl_precision_mode_set, "set by this run with set_option (torch_npu gave no read-back)"
        chip = self.device_name(0)
        return default_acl_precision_mode(chip) or "unknown", f"not set: CANN's default for {chip}"

#: the backend of this kind (acceptance/devices/__init__.py finds it by the kind's name)
BACKEND = NpuBackend
