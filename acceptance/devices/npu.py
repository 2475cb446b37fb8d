"""Huawei Ascend NPUs through torch_npu (imported only here, only when asked for).

torch_npu must match the installed torch exactly and needs the CANN toolkit's
libraries on the loader path (``source .../ascend-toolkit/set_env.sh``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import torch

from .accelerator import TorchModuleBackend

SET_ENV = "/usr/local/Ascend/ascend-toolkit/set_env.sh"


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


class NpuBackend(TorchModuleBackend):
    kind = "npu"
    install_hint = (f"on an Ascend host: pip install the torch-npu release that matches torch {torch.__version__} "
                    f"(never let it change torch), then `source {SET_ENV}`")

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
        return torch.npu

    def versions(self) -> dict[str, str]:
        torch_npu = sys.modules.get("torch_npu")
        return {"torch_npu": str(getattr(torch_npu, "__version__", "unknown")),
                "cann": cann_version() or "unknown"}

    def precision_settings(self) -> dict[str, object]:
        npu = self.module()
        settings: dict[str, object] = {}
        for group in ("conv", "matmul"):
            holder = getattr(npu, group, None)
            if holder is not None and hasattr(holder, "allow_hf32"):
                settings[f"{group}_allow_hf32"] = bool(holder.allow_hf32)
        return settings

    def visible_devices_variable(self) -> str | None:
        return "ASCEND_RT_VISIBLE_DEVICES"
