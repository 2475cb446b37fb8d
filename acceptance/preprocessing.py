"""Image -> pixel_values, with the checkpoint's own image processor where it can load.

transformers' DINOv3ViTImageProcessorFast needs torchvision. Where torchvision is
absent the same documented pipeline runs here - rescale 1/255, bilinear resize
with antialias, ImageNet normalisation, no crop, in that order - driven by the
same preprocessor_config.json; reports name which one ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .builtin import PREPROCESSOR_CONFIG
from .checkpoint_files import (
    PREPROCESSOR_FILE,
    check_normalisation,
    read_preprocessor_config,
)
from .errors import CheckpointError

__all__ = ["PREPROCESSOR_FILE", "Preprocessor", "check_normalisation", "dinov3_pipeline", "load_preprocessor"]


@dataclass(frozen=True)
class Preprocessor:
    """Turns one PIL image into a [1, 3, H, W] float32 tensor."""

    description: str
    settings: dict[str, Any]
    transform: Callable[[Image.Image], torch.Tensor]

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.transform(image)


def dinov3_pipeline(settings: dict[str, Any]) -> Callable[[Image.Image], torch.Tensor]:
    """The DINOv3 image processor's steps (rescale -> resize -> normalize), without torchvision."""
    size = settings.get("size") or {}
    if settings.get("do_resize", True) and not {"height", "width"} <= set(size):
        raise CheckpointError(f"preprocessor size {size!r} is not {{height, width}}; only the checkpoint's own "
                              "processor handles it, and that needs torchvision",
                              "pip install the torchvision release that matches your torch")
    check_normalisation(settings)
    mean = torch.tensor(settings.get("image_mean", PREPROCESSOR_CONFIG["image_mean"])).view(1, 3, 1, 1)
    std = torch.tensor(settings.get("image_std", PREPROCESSOR_CONFIG["image_std"])).view(1, 3, 1, 1)

    def transform(image: Image.Image) -> torch.Tensor:
        pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy())
        x = pixels.permute(2, 0, 1).unsqueeze(0).to(torch.float32)
        if settings.get("do_rescale", True):
            x = x * float(settings.get("rescale_factor", 1 / 255))
        if settings.get("do_resize", True):
            x = F.interpolate(x, size=(int(size["height"]), int(size["width"])), mode="bilinear",
                              align_corners=False, antialias=True)
        if settings.get("do_normalize", True):
            x = (x - mean) / std
        return x.contiguous()

    return transform


def load_preprocessor(checkpoint_path: Path) -> Preprocessor:
    """The checkpoint's AutoImageProcessor, or the same pipeline built here (reason recorded)."""
    config_file = checkpoint_path / PREPROCESSOR_FILE
    settings = read_preprocessor_config(checkpoint_path)  # its values are checked by inspect_checkpoint
    if settings is None:
        settings = dict(PREPROCESSOR_CONFIG)
        return Preprocessor(f"the documented DINOv3 defaults ({PREPROCESSOR_FILE} missing from the checkpoint: "
                            "rescale 1/255, resize 224x224 bilinear, ImageNet mean/std)",
                            settings, dinov3_pipeline(settings))
    check_normalisation(settings, config_file)
    refetch = "re-download preprocessor_config.json, or delete it to use the documented DINOv3 defaults"

    from transformers import AutoImageProcessor
    from transformers.utils import is_torchvision_available

    if not is_torchvision_available():
        return Preprocessor(f"built-in DINOv3 pipeline from {PREPROCESSOR_FILE} (torchvision not installed)",
                            settings, dinov3_pipeline(settings))
    try:
        processor = AutoImageProcessor.from_pretrained(checkpoint_path, local_files_only=True,
                                                       trust_remote_code=False)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise CheckpointError(f"transformers could not build the image processor from {config_file}: "
                              f"{' '.join(str(error).split())}", refetch) from None

    def transform(image: Image.Image) -> torch.Tensor:
        return processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"].to(torch.float32)

    return Preprocessor(f"{type(processor).__name__} from {PREPROCESSOR_FILE}", settings, transform)
