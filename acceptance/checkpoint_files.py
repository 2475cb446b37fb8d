"""The checkpoint's own JSON files checked whole at session start, like the thresholds files.

``inspect_checkpoint`` (acceptance/loading.py) calls these before any model is
built: config.json's fields through the model family (``ModelFamily.check_config``,
with the value kinds defined here), and every field of preprocessor_config.json
the suite uses through ``check_preprocessor_config``. A value that makes no sense
ends the run at once (exit 4) with one line naming the file, the key, what was
found and what is expected, and the fix - not with tracebacks in the tests.

A field a file leaves out keeps its default (transformers' config defaults; the
documented DINOv3 preprocessing, ``acceptance.builtin.PREPROCESSOR_CONFIG``).
Importing this module imports no torch (the model families import it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

from .errors import CheckpointError
from .tables import BOOL, Kind

PREPROCESSOR_FILE = "preprocessor_config.json"
#: image processors whose steps the suite knows (and reproduces without torchvision: rescale, resize, normalize)
KNOWN_PROCESSORS = ("DINOv3ViTImageProcessorFast", "DINOv3ViTImageProcessor")
#: PIL's resampling filters (transformers' PILImageResampling), as preprocessor_config.json numbers them
RESAMPLE_FILTERS = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
_REFETCH = "re-download preprocessor_config.json, or delete it to use the documented DINOv3 defaults"


def _is_number(value: Any) -> bool:
    """An int or float that is finite: a bool is no number here, and NaN or Infinity (which JSON parsers
    accept) make every output NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)  # an int is finite (and may be too large for a float)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_activation(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    from transformers.activations import (
        ACT2FN,  # torch: only when a config.json is checked
    )

    return value in ACT2FN


FINITE = Kind("a finite number", "1.0", _is_number)
POSITIVE = Kind("a positive finite number", "1e-05", lambda v: _is_number(v) and v > 0)
BOOLEAN = BOOL
ACTIVATION = Kind("an activation transformers knows (e.g. gelu, silu)", '"gelu"', _is_activation)
RGB_CHANNELS = Kind("3 (the suite feeds RGB images)", "3", lambda v: _is_int(v) and v == 3)
PROCESSOR_TYPE = Kind(f"one of {', '.join(KNOWN_PROCESSORS)}", KNOWN_PROCESSORS[0], lambda v: v in KNOWN_PROCESSORS)
RESAMPLE = Kind("one of PIL's filters " + ", ".join(f"{n} ({name})" for n, name in RESAMPLE_FILTERS.items()), "2",
                lambda v: _is_int(v) and v in RESAMPLE_FILTERS)
MEAN = Kind("a list of 3 finite numbers (R, G, B)", "[0.485, 0.456, 0.406]",
            lambda v: isinstance(v, list) and len(v) == 3 and all(map(_is_number, v)))
STD = Kind("a list of 3 positive finite numbers (R, G, B)", "[0.229, 0.224, 0.225]",
           lambda v: isinstance(v, list) and len(v) == 3 and all(_is_number(s) and s > 0 for s in v))

#: preprocessor_config.json's keys the suite uses (the DINOv3 processor's and the built-in pipeline's)
PREPROCESSOR_KEYS: dict[str, Kind] = {
    "image_processor_type": PROCESSOR_TYPE,
    "do_resize": BOOLEAN,
    "resample": RESAMPLE,
    "do_rescale": BOOLEAN,
    "rescale_factor": POSITIVE,
    "do_normalize": BOOLEAN,
    "image_mean": MEAN,
    "image_std": STD,
}


def read_preprocessor_config(checkpoint_path: Path) -> dict[str, Any] | None:
    """preprocessor_config.json as a dict, or None where the checkpoint has none (the defaults apply)."""
    config_file = checkpoint_path / PREPROCESSOR_FILE
    if not config_file.is_file():
        return None
    try:
        settings = json.loads(config_file.read_text(encoding="utf-8"))
    except OSError as error:
        raise CheckpointError(f"{config_file} cannot be read ({error.strerror or error})",
                              "check the checkpoint folder's permissions") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        if isinstance(error, json.JSONDecodeError) and error.doc.startswith("version https://git-lfs"):
            raise CheckpointError(f"{config_file} is a Git LFS pointer, not the file",
                                  f"run `git lfs install && git lfs pull` inside {checkpoint_path}") from None
        raise CheckpointError(f"{config_file} is not valid JSON ({error})", _REFETCH) from None
    if not isinstance(settings, dict):
        raise CheckpointError(f"{config_file} does not hold a JSON object", _REFETCH)
    return settings


def _bad(config_file: Path | str, key: str, expected: str, value: Any) -> CheckpointError:
    return CheckpointError(f"{config_file}: {key} must be {expected}, got {value!r}",
                           f"set {key} to {expected}, or re-download {PREPROCESSOR_FILE} from the model repository "
                           "(or delete it to use the documented DINOv3 defaults)")


def check_normalisation(settings: Mapping[str, Any], config_file: Path | str = PREPROCESSOR_FILE) -> None:
    """image_mean is three finite numbers and image_std three positive ones (R, G, B), whichever processor
    runs (a key left out keeps the documented default)."""
    for key in ("image_mean", "image_std"):
        if key in settings and not PREPROCESSOR_KEYS[key].accepts(settings[key]):
            raise _bad(config_file, key, PREPROCESSOR_KEYS[key].expected, settings[key])


def check_preprocessor_config(config_file: Path, settings: Mapping[str, Any], stride: int) -> None:
    """Every field of preprocessor_config.json the suite uses; ``stride`` is the model's input stride
    (a ViT's patch size, ConvNeXt's 32), which the output size must be a multiple of."""
    for key, kind in PREPROCESSOR_KEYS.items():
        if key in settings and not kind.accepts(settings[key]):
            raise _bad(config_file, key, kind.expected, settings[key])
    if "size" in settings:
        size = settings["size"]
        if not (isinstance(size, dict) and {"height", "width"} <= set(size)):
            raise _bad(config_file, "size", '{"height": H, "width": W} (the DINOv3 processor resizes to both)',
                       size)
        for side in ("height", "width"):
            value = size[side]
            if not (_is_int(value) and value > 0 and value % stride == 0):
                raise _bad(config_file, f"size.{side}",
                           f"a positive multiple of {stride} (the model's input stride)", value)
