"""NVIDIA (and ROCm, which PyTorch exposes as cuda) GPUs."""

from __future__ import annotations

import torch

from .accelerator import TorchModuleBackend


class CudaBackend(TorchModuleBackend):
    kind = "cuda"
    install_hint = "install a CUDA (or ROCm) build of torch and check nvidia-smi / CUDA_VISIBLE_DEVICES"

    profile_time = "device"

    def profiler_activities(self) -> list[object]:
        from torch.profiler import ProfilerActivity

        return [ProfilerActivity.CPU, ProfilerActivity.CUDA]

    def versions(self) -> dict[str, str]:
        return {"cuda": str(torch.version.cuda or ""), "hip": str(getattr(torch.version, "hip", "") or ""),
                "cudnn": str(torch.backends.cudnn.version() or "")}

    def bus_id(self, index: int) -> str | None:
        properties = torch.cuda.get_device_properties(index)
        parts = [getattr(properties, name, None) for name in ("pci_domain_id", "pci_bus_id", "pci_device_id")]
        if any(part is None for part in parts):  # older torch: the properties carry no PCI address
            return None
        domain, bus, device = (int(part or 0) for part in parts)
        return f"{domain:04x}:{bus:02x}:{device:02x}.0"

    def apply_precision(self, mode: str) -> None:
        super().apply_precision(mode)
        if mode == "strict":  # TF32 off for cuBLAS matmuls and cuDNN convolutions (the latter is on by default)
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

    def strict_settings(self) -> dict[str, object]:
        return {**super().strict_settings(), "matmul_allow_tf32": False, "cudnn_allow_tf32": False}

    def precision_settings(self) -> dict[str, object]:
        settings: dict[str, object] = super().precision_settings()
        for key, read in (("matmul_allow_tf32", lambda: torch.backends.cuda.matmul.allow_tf32),
                          ("cudnn_allow_tf32", lambda: torch.backends.cudnn.allow_tf32)):
            try:
                settings[key] = bool(read())
            except RuntimeError as error:  # torch >= 2.9 refuses a mix of the legacy and fp32_precision APIs
                settings[key] = f"unreadable: {error}"
        return settings

#: the backend of this kind (acceptance/devices/__init__.py finds it by the kind's name)
BACKEND = CudaBackend
