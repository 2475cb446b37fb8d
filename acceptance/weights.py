"""Tensor names and shapes from weight files, read without loading the weights.

A safetensors file is an 8-byte little-endian header length, a JSON header
(name -> dtype, shape, data offsets) and the tensor bytes. Reading only the
header is cheap even for a 343 MB checkpoint, and checking it against the file
size finds truncated copies and corrupt files at session start instead of deep
inside transformers. Pickle files (``pytorch_model.bin``, only with
--allow-pickle) are opened with ``torch.load(weights_only=True)`` on the meta
device, so no tensor data is read and no code in the file can run.
"""

from __future__ import annotations

import json
import math
import pickle
import re
import struct
from pathlib import Path

import torch

from .errors import CheckpointError

#: bytes per element of each safetensors dtype (sub-byte formats are not size-checked)
SAFETENSORS_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}
#: the safetensors library refuses headers larger than this
MAX_HEADER_BYTES = 100_000_000

Shapes = dict[str, tuple[int, ...]]


def _corrupt(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{path} is not a valid safetensors file: {what}",
                           f"copy or download {path.name} again (compare its size and sha256 with the model "
                           "repository's; `git lfs pull` re-fetches it in a git clone)")


def safetensors_shapes(path: Path) -> Shapes:
    """Tensor name -> shape from a safetensors header, after checking the header against the file.

    Raises CheckpointError when the file is too short, the header is not JSON,
    an entry is malformed, or the tensors' byte ranges do not exactly cover the
    rest of the file (a truncated copy, or trailing garbage).
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            length = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else None
            header_bytes = handle.read(length) if length is not None and 8 + length <= size else b""
    except OSError as error:
        raise CheckpointError(f"{path} cannot be read ({error.strerror or error})",
                              f"check that {path} is a readable file (permissions, disk)") from None
    if length is None:
        raise _corrupt(path, f"it is only {size} bytes long (an empty or interrupted copy)")
    if length > MAX_HEADER_BYTES or 8 + length > size:
        raise _corrupt(path, f"its first 8 bytes give a header of {length} bytes but the file has {size} bytes "
                             "(truncated, or not a safetensors file at all)")
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _corrupt(path, f"its header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "its header is not a JSON object")

    shapes: Shapes = {}
    ranges = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            shape = tuple(int(dim) for dim in shape)
            begin, end = int(begin), int(end)
        except (TypeError, KeyError, ValueError):
            raise _corrupt(path, f"header entry {name!r} is malformed ({entry!r:.200})") from None
        if min(shape, default=0) < 0 or not 0 <= begin <= end:
            raise _corrupt(path, f"header entry {name!r} has shape {list(shape)} and offsets [{begin}, {end}]")
        itemsize = SAFETENSORS_DTYPE_BYTES.get(dtype)
        if itemsize is not None and math.prod(shape) * itemsize != end - begin:
            raise _corrupt(path, f"tensor {name!r} ({dtype} {list(shape)}) needs {math.prod(shape) * itemsize} "
                                 f"bytes but its offsets span {end - begin}")
        shapes[name] = shape
        ranges.append((begin, end, name))

    data_size = size - 8 - length
    covered = 0
    for begin, end, name in sorted(ranges):
        if begin != covered:
            raise _corrupt(path, f"tensor {name!r} starts at byte {begin} of the data, expected {covered} "
                                 "(overlapping or missing ranges)")
        covered = end
    if covered > data_size:
        raise _corrupt(path, f"it is truncated: {size} bytes on disk, but its header needs {8 + length + covered} "
                             f"({size / (8 + length + covered):.1%} present; an interrupted copy or download)")
    if covered < data_size:
        raise _corrupt(path, f"it has {data_size - covered} bytes after the last tensor ({size} bytes on disk, "
                             f"the header accounts for {8 + length + covered})")
    return shapes


def pickle_shapes(path: Path) -> Shapes:
    """Tensor name -> shape from a pytorch_model.bin, loaded weights-only onto the meta device.

    ``weights_only=True`` refuses any object that is not a tensor or plain
    container, so a file that would run code when unpickled is rejected here.
    """
    try:
        state = torch.load(path, map_location="meta", weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = re.search(r"GLOBAL ([\w.]+)", str(error))
        raise CheckpointError(
            f"{path} holds more than tensors: unpickling it would call "
            f"{unsafe.group(1) if unsafe else 'code outside torch'} - refused even with --allow-pickle",
            "use the model.safetensors published with the model; do not load this file anywhere") from None
    except (RuntimeError, OSError, EOFError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path} cannot be read as a weights-only PyTorch file ({first_line})",
            f"copy or download {path.name} again; a file that needs more than tensors to unpickle is refused "
            "even with --allow-pickle") from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise CheckpointError(f"{path} does not hold a plain state dict (name -> tensor)",
                              "use the model.safetensors published with the model")
    return {str(name): tuple(tensor.shape) for name, tensor in state.items()}
