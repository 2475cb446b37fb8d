"""The built-in model: DINOv3 ViT-B/16's architecture with seeded random weights.

No weights can be downloaded here, and a sign-off must never silently use fake
ones, so the built-in checkpoint is marked architecture-only wherever results
are shown. It is written with ``save_pretrained`` and read back through the
same ``from_pretrained`` path as a real checkpoint.

The weights are drawn from our own seeded generators (one per tensor name), not
from transformers' initialisers, so they - and their sha256 - are the same on
every host and transformers version: fleet reports compare like with like.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .errors import CheckpointError

#: DINOv3 ViT-B/16 (facebook/dinov3-vitb16-pretrain-lvd1689m); other fields at DINOv3ViTConfig defaults
VITB16_CONFIG: dict[str, Any] = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "patch_size": 16,
    "num_register_tokens": 4,
    "hidden_act": "gelu",
    "use_gated_mlp": False,
    "rope_theta": 100.0,
    "layer_norm_eps": 1e-5,
    "key_bias": False,
    "image_size": 224,
}

#: the image processor settings the real checkpoint ships (DINOv3ViTImageProcessorFast)
PREPROCESSOR_CONFIG: dict[str, Any] = {
    "image_processor_type": "DINOv3ViTImageProcessorFast",
    "do_resize": True,
    "size": {"height": 224, "width": 224},
    "resample": 2,  # bilinear
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
}

DEFAULT_SEED = 0
#: bump when the seeded values change, so no cache serves stale weights
WEIGHTS_FORMAT = "w2"
#: a file in the folder that marks a checkpoint as built here, with random weights
MARKER_FILE = "dinov3_acceptance_builtin.json"
ARCHITECTURE_ONLY_LABEL = "architecture-only: not valid for sign-off"


def _module_name(name: str) -> str:
    parts = name.split(".")
    return parts[-2] if len(parts) > 1 else ""


def seeded_tensor(name: str, like: torch.Tensor, seed: int, std: float, layerscale: float = 1.0) -> torch.Tensor:
    """A tensor shaped like ``like`` whose values depend only on (seed, name, shape).

    Norm weights are 1 and norm biases 0, layer scales the config's value (as
    initialised for training); every other tensor is N(0, std) - the config's
    initializer_range - so activations keep a realistic scale through the depth
    of the network and reduced-precision error accumulates as in the real model.
    """
    if "norm" in _module_name(name):
        return torch.full_like(like, 1.0 if name.endswith("weight") else 0.0)
    if name.endswith("lambda1"):
        return torch.full_like(like, layerscale)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    return (torch.randn(like.shape, generator=generator, dtype=torch.float32) * std).to(like.dtype)


def reseed_weights(weights_file: Path, seed: int, std: float, layerscale: float) -> None:
    """Rewrite a safetensors file with seeded values, keyed by the names stored in the file.

    The on-disk names are the checkpoint format (the hub's), stable across
    transformers versions, unlike in-memory module paths, which v5 renamed.
    """
    tensors = load_file(weights_file)
    seeded = {name: seeded_tensor(name, tensor, seed, std, layerscale) if tensor.is_floating_point() else tensor
              for name, tensor in sorted(tensors.items())}
    save_file(seeded, weights_file, metadata={"format": "pt"})


def write_checkpoint(folder: Path, config_overrides: dict[str, Any] | None = None, seed: int = DEFAULT_SEED,
                     preprocessor: dict[str, Any] | None = PREPROCESSOR_CONFIG) -> Path:
    """Build a dinov3_vit model from a config, save it as a checkpoint folder and seed its weights.

    Used for the built-in ViT-B/16 and for the small checkpoints in the suite's own tests.
    """
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    config = DINOv3ViTConfig(**{**VITB16_CONFIG, **(config_overrides or {})})
    folder.mkdir(parents=True, exist_ok=True)
    DINOv3ViTModel(config).save_pretrained(folder, safe_serialization=True)
    reseed_weights(folder / "model.safetensors", seed, config.initializer_range, config.layerscale_value)
    if preprocessor is not None:
        (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2) + "\n")
    (folder / MARKER_FILE).write_text(json.dumps({"seed": seed, "label": ARCHITECTURE_ONLY_LABEL,
                                                  "config_overrides": config_overrides or {}}, indent=2) + "\n")
    return folder


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dinov3-acceptance"


def builtin_checkpoint(root: Path | None = None, seed: int = DEFAULT_SEED) -> Path:
    """The built-in ViT-B/16 checkpoint folder, written once and reused (atomically, so
    parallel workers never see half a checkpoint)."""
    root = root or cache_root()
    folder = root / f"dinov3-vitb16-seed{seed}-{WEIGHTS_FORMAT}"
    if (folder / MARKER_FILE).is_file():
        return folder
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    except OSError as error:
        raise CheckpointError(f"the built-in model cannot be written to {root} ({error.strerror or error})",
                              "set XDG_CACHE_HOME to a writable folder (the model needs ~350 MB), "
                              "or pass --model-path") from None
    staging.chmod(0o755)  # mkdtemp makes it private; the cache may be shared by a team
    try:
        write_checkpoint(staging, seed=seed)
        try:
            staging.rename(folder)
        except OSError:
            if not (folder / MARKER_FILE).is_file():  # lost a race to a half-written folder: not ours to fix
                raise
    except OSError as error:  # e.g. the disk filled up while writing ~350 MB
        raise CheckpointError(f"the built-in model could not be written to {root} ({error.strerror or error})",
                              "free disk space there, set XDG_CACHE_HOME to another folder, or pass --model-path"
                              ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
