"""Checkpoint checks and model loading through transformers' real from_pretrained path.

Offline, safetensors only, never remote code. A folder that cannot be loaded
raises CheckpointError naming the problem and the fix.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .builtin import ARCHITECTURE_ONLY_LABEL, MARKER_FILE
from .errors import CheckpointError

SUPPORTED_MODEL_TYPES = ("dinov3_vit",)
WEIGHTS_FILE = "model.safetensors"
SHARDED_INDEX = "model.safetensors.index.json"
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """A checked checkpoint folder and what reports need to know about it."""

    path: Path
    config: dict[str, Any]
    weight_files: tuple[Path, ...]
    architecture_only: bool

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type"))

    @property
    def label(self) -> str:
        if self.architecture_only:
            return f"built-in DINOv3 {self.model_type} (seeded random weights; {ARCHITECTURE_ONLY_LABEL})"
        return str(self.path)

    def token_count(self, height: int, width: int) -> int:
        """1 CLS + register tokens + one token per patch."""
        patch = int(self.config.get("patch_size", 16))
        return 1 + int(self.config.get("num_register_tokens", 0)) + (height // patch) * (width // patch)

    @property
    def hidden_size(self) -> int:
        return int(self.config["hidden_size"])

    def provenance(self) -> dict[str, Any]:
        """Hashes and flags for the reports (hashing ~350 MB takes about a second)."""
        return {
            "path": str(self.path),
            "model_type": self.model_type,
            "architecture_only": self.architecture_only,
            "config_sha256": sha256_file(self.path / "config.json"),
            "weights_sha256": {p.name: sha256_file(p) for p in self.weight_files},
            "config": self.config,
        }


def _is_lfs_pointer(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(LFS_POINTER_PREFIX)) == LFS_POINTER_PREFIX


def inspect_checkpoint(path: Path) -> Checkpoint:
    """Check a checkpoint folder before anything heavy is loaded."""
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise CheckpointError(f"model folder {path} does not exist (or is not a folder)",
                              "pass --model-path to a local clone of the Hugging Face checkpoint")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{config_file} is missing: {path} is not a Hugging Face checkpoint folder",
                              "point --model-path at the folder that holds config.json and model.safetensors")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{config_file} is not valid JSON ({error})",
                              "re-download config.json from the model repository") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_file} does not hold a JSON object",
                              "re-download config.json from the model repository")
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise CheckpointError(
            f"{config_file} has model_type {model_type!r}; this suite validates {', '.join(SUPPORTED_MODEL_TYPES)}",
            "point --model-path at a DINOv3 ViT checkpoint (e.g. facebook/dinov3-vitb16-pretrain-lvd1689m)")

    weight_files = _weight_files(path)
    for weights in weight_files:
        if _is_lfs_pointer(weights):
            raise CheckpointError(
                f"{weights} is a Git LFS pointer, not the weights (the clone skipped the LFS download)",
                f"run `git lfs install && git lfs pull` inside {path}")
    return Checkpoint(path=path, config=config, weight_files=weight_files,
                      architecture_only=(path / MARKER_FILE).is_file())


def _weight_files(path: Path) -> tuple[Path, ...]:
    single = path / WEIGHTS_FILE
    if single.is_file():
        return (single,)
    index = path / SHARDED_INDEX
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text()).get("weight_map", {}).values()))
        missing = [name for name in shards if not (path / name).is_file()]
        if missing:
            raise CheckpointError(f"{index} lists shards that are missing: {', '.join(missing)}",
                                  "download every shard listed in the index (git lfs pull)")
        return tuple(path / name for name in shards)
    if (path / "pytorch_model.bin").is_file():
        raise CheckpointError(
            f"{path} holds only pytorch_model.bin (a pickle, which can run code when loaded); "
            "this suite loads safetensors only",
            "download model.safetensors from the model repository")
    raise CheckpointError(f"no {WEIGHTS_FILE} in {path}",
                          "download model.safetensors (git lfs pull) into the checkpoint folder")


def load_model(checkpoint: Checkpoint, dtype: str = "float32", device: torch.device | str = "cpu") -> torch.nn.Module:
    """Load the checkpoint with from_pretrained (offline, safetensors, no remote code), in eval mode."""
    from transformers import AutoModel

    try:
        model, info = AutoModel.from_pretrained(
            checkpoint.path, dtype=TORCH_DTYPES[dtype], local_files_only=True, use_safetensors=True,
            trust_remote_code=False, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"transformers could not load {checkpoint.path}: {error}",
                              "check that the weights are complete and match config.json "
                              "(re-download model.safetensors)") from None
    # transformers only warns about missing or unexpected keys: for a sign-off they are errors
    problems = {key: list(values) for key, values in info.items() if values}
    if problems:
        details = "; ".join(f"{key}: {', '.join(map(str, values[:5]))}{' ...' if len(values) > 5 else ''}"
                            for key, values in problems.items())
        raise CheckpointError(f"the weights in {checkpoint.path} do not match its config.json ({details})",
                              "use the config.json that was published with these weights")
    return model.to(device).eval()
