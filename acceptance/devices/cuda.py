"""NVIDIA (and ROCm, which PyTorch exposes as cuda) GPUs."""

from __future__ import annotations

import torch

from .accelerator import TorchModuleBackend


class CudaBackend(TorchModuleBackend):
    kind = "cuda"
    install_hint = "install a CUDA (or ROCm) build of torch and check nvidia-smi / CUDA_VISIBLE_DEVICES"

    def versions(self) -> dict[str, str]:
        return {"cuda": str(torch.version.cuda or ""), "hip": str(getattr(torch.version, "hip", "") or ""),
                "cudnn": str(torch.backends.cudnn.version() or "")}

    def precision_settings(self) -> dict[str, object]:
        return {"matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                "float32_matmul_precision": torch.get_float32_matmul_precision()}

    def visible_devices_variable(self) -> str | None:
        return "CUDA_VISIBLE_DEVICES"
