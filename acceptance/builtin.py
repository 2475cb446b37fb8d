"""The built-in model (DINOv3 ViT-B/16's architecture with seeded random weights) and the seeded test checkpoints.

No weights can be downloaded here, and a sign-off must never silently use fake
ones, so the built-in checkpoint is marked architecture-only wherever results
are shown. It is written with ``save_pretrained`` and read back through the
same ``from_pretrained`` path as a real checkpoint.

The weights are drawn from our own seeded generators (one per tensor name), not
from transformers' initialisers, so they - and their sha256 - are the same on
every host and transformers version: fleet reports compare like with like.
Any family's model is built the same way (``write_checkpoint(..., model_type=...)``),
so the suite's own tests get tiny checkpoints of every family from configs.
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
from .models import ModelFamily, known_family, model_types

#: the built-in model's family; its size is the family's builtin_config (ViT-B/16)
BUILTIN_MODEL_TYPE = "dinov3_vit"

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


def seeded_tensor(name: str, like: torch.Tensor, seed: int, std: float, *, is_norm: bool = False,
                  layer_scale: float | None = None) -> torch.Tensor:
    """A tensor shaped like ``like`` whose values depend only on (seed, name, shape).

    Norm weights are 1 and norm biases 0, layer scales the config's value (as
    initialised for training); every other tensor is N(0, std) - the config's
    initializer_range - so activations keep a realistic scale through the depth
    of the network and reduced-precision error accumulates as in the real model.
    """
    if is_norm:
        return torch.full_like(like, 1.0 if name.endswith("weight") else 0.0)
    if layer_scale is not None:
        return torch.full_like(like, layer_scale)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    return (torch.randn(like.shape, generator=generator, dtype=torch.float32) * std).to(like.dtype)


def _canonical(name: str) -> str:
    """An in-memory parameter name as the checkpoint file names it: transformers 5 nests blocks and stages
    under ``model.`` in memory and removes the prefix again when it saves."""
    return name[len("model."):] if name.startswith("model.") else name


def norm_parameters(model: torch.nn.Module) -> set[str]:
    """On-disk names of every LayerNorm's parameters, found by module type: ConvNeXt's downsampling
    norms are named ``downsample_layers.N``, with no "norm" in the name."""
    return {_canonical(f"{path}.{name}" if path else name)
            for path, module in model.named_modules() if isinstance(module, torch.nn.LayerNorm)
            for name, _ in module.named_parameters(recurse=False)}


def reseed_weights(weights_file: Path, seed: int, std: float, norms: set[str], layer_scale_suffix: str,
                   layer_scale: float) -> None:
    """Rewrite a safetensors file with seeded values, keyed by the names stored in the file.

    The on-disk names are the checkpoint format (the hub's), stable across
    transformers versions, unlike in-memory module paths, which v5 renamed.
    """
    tensors = load_file(weights_file)
    missing = sorted(norms - set(tensors))
    if missing:  # a norm we could not place would silently get random weights
        raise RuntimeError(f"norm parameters {missing[:3]} are not in {weights_file}: the in-memory names no "
                           "longer map to the saved ones")
    seeded = {}
    for name, tensor in sorted(tensors.items()):
        if not tensor.is_floating_point():
            seeded[name] = tensor
            continue
        scale = layer_scale if layer_scale_suffix and name.endswith(layer_scale_suffix) else None
        seeded[name] = seeded_tensor(name, tensor, seed, std, is_norm=name in norms, layer_scale=scale)
    save_file(seeded, weights_file, metadata={"format": "pt"})


def _family(model_type: str) -> ModelFamily:
    family = known_family(model_type)
    if family is None:
        raise ValueError(f"no model family for model_type {model_type!r} (known: {', '.join(model_types())})")
    return family


def write_checkpoint(folder: Path, config_overrides: dict[str, Any] | None = None, seed: int = DEFAULT_SEED,
                     preprocessor: dict[str, Any] | None = PREPROCESSOR_CONFIG,
                     model_type: str = BUILTIN_MODEL_TYPE) -> Path:
    """Build a model of ``model_type`` from its family's config, save it as a checkpoint folder and seed its weights.

    Used for the built-in ViT-B/16 and for the small checkpoints of every family in the suite's own tests.
    """
    family = _family(model_type)
    model = family.build_model(config_overrides)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    reseed_weights(folder / "model.safetensors", seed, getattr(model, "config").initializer_range,
                   norm_parameters(model),
                   family.layer_scale_suffix, family.layer_scale_value(model.config))
    if preprocessor is not None:
        (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2) + "\n")
    marker = {"seed": seed, "label": ARCHITECTURE_ONLY_LABEL, "config_overrides": config_overrides or {}}
    if model_type != BUILTIN_MODEL_TYPE:
        marker["model_type"] = model_type
    (folder / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
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
