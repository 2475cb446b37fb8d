"""Checkpoint checks and model loading through transformers' real from_pretrained path.

Offline, never remote code, safetensors unless the user passes --allow-pickle.
Everything that can be checked without loading the weights is checked by
``inspect_checkpoint`` at session start - the folder, config.json and
preprocessor_config.json whole (every field the suite uses: acceptance/checkpoint_files.py
and the model family), Git LFS pointers, the safetensors headers against the file
sizes, and every tensor name and shape against the model config.json builds - so a
bad checkpoint ends the run at once with CheckpointError naming the problem and the fix.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .builtin import ARCHITECTURE_ONLY_LABEL, MARKER_FILE
from .checkpoint_files import (
    PREPROCESSOR_FILE,
    check_preprocessor_config,
    read_preprocessor_config,
)
from .errors import CheckpointError
from .hashing import file_sha256
from .models import ModelFamily, family_for
from .weights import Shapes, pickle_shapes, safetensors_shapes

WEIGHTS_FILE = "model.safetensors"
SHARDED_INDEX = "model.safetensors.index.json"
PICKLE_FILE = "pytorch_model.bin"
PICKLE_INDEX = "pytorch_model.bin.index.json"
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: why pickle weights are refused by default (said wherever they are refused or allowed)
PICKLE_RISK = "a pickle can run arbitrary code when it is loaded"
#: errors transformers raises for config values it cannot build a model from
_CONFIG_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, KeyError, AttributeError,
                                                  ZeroDivisionError, RuntimeError)
try:  # transformers 5 validates config fields with huggingface_hub's strict dataclasses
    from huggingface_hub.errors import StrictDataclassError

    _CONFIG_ERRORS += (StrictDataclassError,)
except ImportError:  # older huggingface_hub: transformers 4 raises the builtin errors above
    pass


@dataclass(frozen=True)
class Checkpoint:
    """A checked checkpoint folder and what reports need to know about it."""

    path: Path
    config: dict[str, Any]
    weight_files: tuple[Path, ...]
    architecture_only: bool
    #: "safetensors", or "pickle" (pytorch_model.bin, loaded only with --allow-pickle)
    weights_format: str = "safetensors"

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type"))

    @property
    def label(self) -> str:
        if self.architecture_only:
            return f"built-in DINOv3 {self.model_type} (seeded random weights; {ARCHITECTURE_ONLY_LABEL})"
        if self.weights_format == "pickle":
            return f"{self.path} (pickle weights, allowed by --allow-pickle)"
        return str(self.path)

    @property
    def family(self) -> ModelFamily:
        """What the suite knows about this model type (shapes, probe points, names): acceptance/models/."""
        return family_for(self.config, str(self.path / "config.json"))

    def output_shapes(self, batch: int, height: int, width: int) -> dict[str, list[int]]:
        """{output name: expected shape} for a [batch, 3, height, width] input, from config.json."""
        return self.family.output_shapes(self.config, batch, height, width)

    def token_count(self, height: int, width: int) -> int:
        """Tokens of last_hidden_state for one height x width input."""
        return self.family.token_count(self.config, height, width)

    @property
    def input_stride(self) -> int:
        """Input sides must be multiples of this (the ViT's patch size, ConvNeXt's total downsampling)."""
        return self.family.input_stride(self.config)

    def provenance(self) -> dict[str, Any]:
        """Hashes and flags for the reports (hashing ~350 MB takes about a second)."""
        return {
            "path": str(self.path),
            "model_type": self.model_type,
            "architecture_only": self.architecture_only,
            "weights_format": self.weights_format,
            "config_sha256": file_sha256(self.path / "config.json"),
            "weights_sha256": {p.name: file_sha256(p) for p in self.weight_files},
            "config": self.config,
        }


def _is_lfs_pointer(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(LFS_POINTER_PREFIX)) == LFS_POINTER_PREFIX
    except OSError as error:
        raise CheckpointError(f"{path} cannot be read ({error.strerror or error})",
                              f"check that {path} is a readable file (permissions, disk)") from None


def _nested_checkpoints(path: Path) -> list[Path]:
    """Folders below ``path`` that hold a config.json (the user pointed one level too high)."""
    found = sorted(path.glob("*/config.json")) + sorted(path.glob("snapshots/*/config.json"))
    return [candidate.parent for candidate in found][:3]


def inspect_checkpoint(path: Path, allow_pickle: bool = False) -> Checkpoint:
    """Check a checkpoint folder before anything heavy is loaded.

    Raises CheckpointError for: a missing folder (or a file given instead),
    a missing or invalid config.json, another model type, config values no
    model can be built from, a preprocessor_config.json that is not JSON or
    holds values that make no sense, Git LFS pointers instead of weights, truncated or
    corrupt safetensors files, pickle-only weights without ``allow_pickle``,
    and weights whose tensor names or shapes do not match the config.
    """
    path = Path(path).expanduser().resolve()
    if path.is_file():
        raise CheckpointError(f"--model-path {path} is a file; the suite needs the checkpoint folder",
                              f"pass the folder that holds it: --model-path {path.parent}")
    if not path.is_dir():
        raise CheckpointError(f"model folder {path} does not exist (or is not a folder)",
                              "pass --model-path to a local clone of the Hugging Face checkpoint")
    config_file = path / "config.json"
    if not config_file.is_file():
        nested = _nested_checkpoints(path)
        hint = f" (found one in {', '.join(map(str, nested))})" if nested else ""
        raise CheckpointError(f"{config_file} is missing: {path} is not a Hugging Face checkpoint folder{hint}",
                              "point --model-path at the folder that holds config.json and model.safetensors")
    if _is_lfs_pointer(config_file):
        raise CheckpointError(f"{config_file} is a Git LFS pointer, not the file",
                              f"run `git lfs install && git lfs pull` inside {path}")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except OSError as error:
        raise CheckpointError(f"{config_file} cannot be read ({error.strerror or error})",
                              "check the checkpoint folder's permissions") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{config_file} is not valid JSON ({error})",
                              "re-download config.json from the model repository") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_file} does not hold a JSON object",
                              "re-download config.json from the model repository")
    family = family_for(config, str(config_file))
    family.check_config(config_file, config)
    preprocessor = read_preprocessor_config(path)
    if preprocessor is not None:
        check_preprocessor_config(path / PREPROCESSOR_FILE, preprocessor, family.input_stride(config))
    weight_files, weights_format = _weight_files(path, allow_pickle)
    for weights in weight_files:
        if _is_lfs_pointer(weights):
            raise CheckpointError(
                f"{weights} is a Git LFS pointer, not the weights (the clone skipped the LFS download)",
                f"run `git lfs install && git lfs pull` inside {path}")
    shapes: Shapes = {}
    for weights in weight_files:
        shapes.update(safetensors_shapes(weights) if weights_format == "safetensors" else pickle_shapes(weights))
    check_weights_match_config(path, family, shapes)
    return Checkpoint(path=path, config=config, weight_files=weight_files,
                      architecture_only=(path / MARKER_FILE).is_file(), weights_format=weights_format)


def _shards(path: Path, index: Path) -> tuple[Path, ...]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        raise CheckpointError(f"{index} is not a valid shard index ({error})",
                              f"re-download {index.name} from the model repository") from None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{index} has no weight_map", f"re-download {index.name} from the model repository")
    shards = sorted(set(map(str, weight_map.values())))
    missing = [name for name in shards if not (path / name).is_file()]
    if missing:
        raise CheckpointError(f"{index} lists shards that are missing: {', '.join(missing)}",
                              "download every shard listed in the index (git lfs pull)")
    return tuple(path / name for name in shards)


def _weight_files(path: Path, allow_pickle: bool) -> tuple[tuple[Path, ...], str]:
    """The weight files to load and their format; safetensors always wins over pickle."""
    if (path / WEIGHTS_FILE).is_file():
        return (path / WEIGHTS_FILE,), "safetensors"
    if (path / SHARDED_INDEX).is_file():
        return _shards(path, path / SHARDED_INDEX), "safetensors"
    pickles = [name for name in (PICKLE_FILE, PICKLE_INDEX) if (path / name).is_file()]
    if pickles and not allow_pickle:
        raise CheckpointError(
            f"{path} holds only {pickles[0]}, a pickle ({PICKLE_RISK}); this suite loads safetensors only "
            "unless told otherwise",
            "get model.safetensors from the model repository, or pass --allow-pickle (or DINOV3_ALLOW_PICKLE=1) "
            "if you trust where this file came from")
    if (path / PICKLE_FILE).is_file():
        return (path / PICKLE_FILE,), "pickle"
    if (path / PICKLE_INDEX).is_file():
        return _shards(path, path / PICKLE_INDEX), "pickle"
    raise CheckpointError(f"no {WEIGHTS_FILE} in {path}",
                          "download model.safetensors (git lfs pull) into the checkpoint folder")


def _canonical(name: str, prefixes: tuple[str, ...]) -> str:
    """A tensor name without the wrappers transformers adds or strips on load (``model.``,
    the base model prefix): checkpoints saved by any transformers version compare alike."""
    for _ in range(2):
        for prefix in prefixes:
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
    return name


def _listing(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_weights_match_config(path: Path, family: ModelFamily, shapes: Shapes) -> None:
    """Compare the weight files' tensor names and shapes with the model config.json builds.

    The model is built on the meta device (no memory, milliseconds). transformers
    only warns about missing or unexpected keys and fills missing ones with random
    values; for a sign-off every difference is an error.
    """
    from transformers import AutoConfig, AutoModel

    try:
        model_config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        with torch.device("meta"):
            model = AutoModel.from_config(model_config, trust_remote_code=False)
    except _CONFIG_ERRORS as error:
        reason = " ".join(str(error).split())  # one line, however transformers formats it
        raise CheckpointError(f"{path / 'config.json'} cannot build a {family.model_type} model: {reason}",
                              "re-download config.json from the model repository, or compare the values you edited "
                              "with the published file") from None
    prefixes = tuple(dict.fromkeys(["model.", f"{model.base_model_prefix}."]))
    ignored = [re.compile(pattern) for pattern in (getattr(model, "_keys_to_ignore_on_load_unexpected", None) or [])]
    expected = {_canonical(name, prefixes): tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    found = {_canonical(name, prefixes): shape for name, shape in shapes.items()
             if not any(pattern.search(name) for pattern in ignored)}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [f"{name} is {list(found[name])}, config gives {list(expected[name])}"
             for name in sorted(set(found) & set(expected)) if found[name] != expected[name]]
    if missing or unexpected or wrong:
        problems = []
        if wrong:
            problems.append(f"{len(wrong)} with the wrong shape ({_listing(wrong, 3)})")
        if missing:
            problems.append(f"{len(missing)} missing ({_listing(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected ({_listing(unexpected)})")
        raise CheckpointError(
            f"the weights in {path} do not match its config.json: {'; '.join(problems)} "
            f"of {len(expected)} tensors the config describes",
            f"use the config.json published with these weights (a checkpoint of another size, e.g. "
            f"{family.size_mismatch_example}, cannot load), or re-download both")


def load_model(checkpoint: Checkpoint, dtype: str = "float32", device: torch.device | str = "cpu") -> torch.nn.Module:
    """Load the checkpoint with from_pretrained (offline, no remote code), in eval mode.

    Safetensors only, unless inspect_checkpoint found pickle weights under --allow-pickle.
    """
    from transformers import AutoModel

    try:
        model, info = AutoModel.from_pretrained(
            checkpoint.path, dtype=TORCH_DTYPES[dtype], local_files_only=True,
            use_safetensors=checkpoint.weights_format == "safetensors",
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
