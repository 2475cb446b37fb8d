"""The CPU float32 reference, computed once: a keyed store of its outputs under the cache folder.

On an accelerator host most of a run's time goes to the CPU reference (a ViT-B/16
forward takes ~650 ms on a server CPU against ~9 ms on the NPU), and a nightly job
repeats the same forwards on the same checkpoint and image every night. Here each
reference result (final outputs, the probe points' captures, a sweep point's
output) is stored once, keyed by everything it depends on:

- the checkpoint's config.json and weight files (sha256),
- the input (sha256 of the pixel values, with their shape and dtype),
- the torch and transformers versions and the reference dtype,
- what was computed (``kind``: outputs, capture, sweep point) and a format version.

An entry is a folder named by the key's digest holding ``tensors.safetensors``
and ``manifest.json`` (the key in full, the tensor file's sha256, the run that
wrote it, any small metadata). Entries are written into a staging folder and
renamed into place, so a reader never sees half an entry. On read the manifest's
key must equal the asked-for key and the tensor file its recorded sha256; an entry
that fails any check is reported (``ReferenceCacheWarning``), recomputed and
rewritten, never trusted.

Modes (``--reference-cache``): ``on`` reads and writes, ``refresh`` recomputes and
overwrites, ``off`` neither reads nor writes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .hashing import file_sha256

#: bump when what an entry holds changes, so no old entry is read as a new one
ENTRY_FORMAT = 1
CACHE_MODES = ("off", "on", "refresh")
MANIFEST = "manifest.json"
TENSORS = "tensors.safetensors"


class ReferenceCacheWarning(UserWarning):
    """A cache entry could not be trusted (unreadable, corrupt, another key) and was recomputed,
    or the cache folder could not be written."""


def sha256_tensor(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's bytes (contiguous, on the CPU), its shape and dtype."""
    data = tensor.detach().to("cpu").contiguous()
    digest = hashlib.sha256(f"{list(data.shape)}|{data.dtype}|".encode())
    digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()



@dataclass(frozen=True)
class ReferenceKey:
    """Everything a CPU reference result depends on; ``digest`` names its entry."""

    kind: str
    config_sha256: str
    weights_sha256: tuple[tuple[str, str], ...]
    pixel_sha256: str
    pixel_shape: tuple[int, ...]
    torch_version: str
    transformers_version: str
    dtype: str = "float32"
    entry_format: int = ENTRY_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "config_sha256": self.config_sha256,
                "weights_sha256": {name: sha for name, sha in self.weights_sha256},
                "pixel_sha256": self.pixel_sha256, "pixel_shape": list(self.pixel_shape),
                "torch": self.torch_version, "transformers": self.transformers_version,
                "dtype": self.dtype, "entry_format": self.entry_format}

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    @property
    def short(self) -> str:
        return self.digest[:12]


@dataclass(frozen=True)
class ModelIdentity:
    """The checkpoint and software half of a key (the input half is added per use)."""

    config_sha256: str
    weights_sha256: tuple[tuple[str, str], ...]
    torch_version: str
    transformers_version: str

    @classmethod
    def from_provenance(cls, provenance: Mapping[str, Any], versions: Mapping[str, Any]) -> "ModelIdentity":
        """From the report's checkpoint provenance (hashed once at session start) and versions."""
        return cls(config_sha256=str(provenance["config_sha256"]),
                   weights_sha256=tuple(sorted((str(k), str(v)) for k, v in provenance["weights_sha256"].items())),
                   torch_version=str(versions.get("torch") or torch.__version__),
                   transformers_version=str(versions.get("transformers")))

    def key(self, kind: str, pixel_values: torch.Tensor, dtype: str = "float32") -> ReferenceKey:
        return ReferenceKey(kind=kind, config_sha256=self.config_sha256, weights_sha256=self.weights_sha256,
                            pixel_sha256=sha256_tensor(pixel_values), pixel_shape=tuple(pixel_values.shape),
                            torch_version=self.torch_version, transformers_version=self.transformers_version,
                            dtype=dtype)


@dataclass(frozen=True)
class CacheUse:
    """One reference result of this run: where it came from, and why when it was recomputed."""

    kind: str
    key: ReferenceKey
    #: "cached" (read from an entry), "computed" (miss, refresh, corrupt entry, or cache off)
    source: str
    #: why it was computed: "miss", "refresh", "off", "corrupt: ..."
    reason: str = ""
    #: the run that wrote the entry that was read (cached) or written (computed, cache on)
    from_run: str | None = None
    created_at: str | None = None
    #: seconds the CPU forward(s) took (computed) or reading the entry took (cached)
    seconds: float = 0.0
    stored: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "reason": self.reason, "from_run": self.from_run,
                "created_at": self.created_at, "seconds": self.seconds, "stored": self.stored,
                "digest": self.key.digest, "key": self.key.to_dict()}


class CorruptEntry(Exception):
    """An entry that exists but cannot be trusted; the message says why."""


@dataclass
class Entry:
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, Any]
    run_id: str | None
    created_at: str | None


class ReferenceStore:
    """The entries under ``root``: read (checked) and written (atomically)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def folder(self, key: ReferenceKey) -> Path:
        return self.root / key.digest

    def read(self, key: ReferenceKey) -> Entry | None:
        """The entry for ``key``; None when there is none; CorruptEntry when one is there but fails a check."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = self.folder(key)
        if not folder.exists():
            return None
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CorruptEntry(f"manifest unreadable ({error})") from None
        if not isinstance(manifest, dict) or manifest.get("key") != key.to_dict():
            raise CorruptEntry("manifest key differs from the entry's name")
        tensors_file = folder / TENSORS
        try:
            found = file_sha256(tensors_file)
        except OSError as error:
            raise CorruptEntry(f"tensor file unreadable ({error.strerror or error})") from None
        if found != manifest.get("tensors_sha256"):
            raise CorruptEntry(f"tensor file sha256 {found[:12]} differs from the manifest's "
                               f"{str(manifest.get('tensors_sha256'))[:12]}")
        try:
            tensors = load_file(tensors_file)
        except (SafetensorError, OSError, ValueError) as error:
            raise CorruptEntry(f"tensor file unreadable ({error})") from None
        if sorted(tensors) != sorted(manifest.get("names", [])):
            raise CorruptEntry("tensor names differ from the manifest's")
        return Entry(tensors=tensors, metadata=dict(manifest.get("metadata") or {}),
                     run_id=manifest.get("run_id"), created_at=manifest.get("created_at"))

    def write(self, key: ReferenceKey, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any],
              run_id: str | None) -> None:
        """Write the entry into a staging folder, then rename it into place (replacing an old one)."""
        from safetensors.torch import save_file

        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".writing-", dir=self.root))
        try:
            staging.chmod(0o755)  # mkdtemp makes it private; the cache may be shared by a team
            # own, contiguous copies: safetensors refuses views that share storage (pooler_output is a slice)
            save_file({name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in tensors.items()},
                      staging / TENSORS)
            manifest = {"key": key.to_dict(), "digest": key.digest, "names": sorted(tensors),
                        "tensors_sha256": file_sha256(staging / TENSORS), "metadata": dict(metadata),
                        "run_id": run_id, "created_at": _now()}
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            target = self.folder(key)
            if target.exists():  # refresh or a corrupt entry: move the old one aside, then swap
                old = Path(tempfile.mkdtemp(prefix=".old-", dir=self.root))
                target.rename(old / "entry")
                shutil.rmtree(old, ignore_errors=True)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


Computed = Callable[[], "tuple[dict[str, torch.Tensor], dict[str, Any]]"]


@dataclass
class ReferenceCache:
    """The run's use of the store: ``fetch`` returns a reference result, cached or computed, and records how."""

    root: Path
    mode: str = "on"
    run_id: str | None = None
    uses: list[CacheUse] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in CACHE_MODES:
            raise ValueError(f"reference cache mode must be one of {', '.join(CACHE_MODES)}, got {self.mode!r}")
        self.store = ReferenceStore(self.root)

    def fetch(self, key: ReferenceKey, compute: Computed) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, metadata) for ``key``: from its entry when the mode allows and it checks out,
        else from ``compute()`` (stored when the mode is on or refresh)."""
        reason = {"off": "off", "refresh": "refresh"}.get(self.mode, "miss")
        if self.mode == "on":
            started = time.perf_counter()
            try:
                entry = self.store.read(key)
            except CorruptEntry as error:
                reason = f"corrupt: {error}"
                warnings.warn(ReferenceCacheWarning(
                    f"reference cache entry {self.store.folder(key)} ({key.kind}) is not trusted: {error}; "
                    "recomputing it on the CPU and rewriting the entry"), stacklevel=2)
            else:
                if entry is not None:
                    self.uses.append(CacheUse(kind=key.kind, key=key, source="cached", from_run=entry.run_id,
                                              created_at=entry.created_at,
                                              seconds=time.perf_counter() - started))
                    return entry.tensors, entry.metadata
        started = time.perf_counter()
        tensors, metadata = compute()
        seconds = time.perf_counter() - started
        stored = False
        if self.mode != "off":
            try:
                self.store.write(key, tensors, metadata, self.run_id)
                stored = True
            except OSError as error:  # a full or read-only cache folder costs time, not correctness
                warnings.warn(ReferenceCacheWarning(
                    f"reference cache entry for {key.kind} could not be written under {self.root} "
                    f"({error.strerror or error}); the next run computes it again"), stacklevel=2)
        self.uses.append(CacheUse(kind=key.kind, key=key, source="computed", reason=reason,
                                  from_run=self.run_id if stored else None, seconds=seconds, stored=stored))
        return tensors, metadata
