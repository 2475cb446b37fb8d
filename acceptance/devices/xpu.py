"""Intel GPUs through torch.xpu."""

from __future__ import annotations

from .accelerator import TorchModuleBackend


class XpuBackend(TorchModuleBackend):
    kind = "xpu"
    install_hint = "install an XPU build of torch with the Intel GPU driver; check ZE_AFFINITY_MASK"

#: the backend of this kind (acceptance/devices/__init__.py finds it by the kind's name)
BACKEND = XpuBackend
