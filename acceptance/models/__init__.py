"""The model families the suite validates, one module each, found by their ``FAMILY``.

Every module in this package except ``base`` defines ``FAMILY``, a
``ModelFamily`` for one transformers ``model_type``; adding a family is adding
its module (see docs/models.md). ``family_for(config)`` is the one question the
rest of the suite asks. No torch is imported here.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from typing import Any, Mapping

from ..errors import CheckpointError
from .base import ModelFamily, ProbePoint, PublishedReference, PublishedSlice

__all__ = ["ModelFamily", "ProbePoint", "PublishedReference", "PublishedSlice", "families", "family_for",
           "known_family", "model_types"]


@lru_cache(maxsize=None)
def _registry() -> dict[str, ModelFamily]:
    found: dict[str, ModelFamily] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda module: module.name):
        if info.name == "base" or info.name.startswith("_"):
            continue
        family = getattr(importlib.import_module(f"{__name__}.{info.name}"), "FAMILY", None)
        if not isinstance(family, ModelFamily):
            raise TypeError(f"{__name__}.{info.name} defines no FAMILY (a ModelFamily)")
        if family.model_type in found:
            raise TypeError(f"model_type {family.model_type!r} is claimed by two family modules")
        found[family.model_type] = family
    return found


def families() -> tuple[ModelFamily, ...]:
    return tuple(_registry().values())


def model_types() -> tuple[str, ...]:
    return tuple(_registry())


def known_family(model_type: Any) -> ModelFamily | None:
    """The family of ``model_type``, or None (reports name unknown architectures instead of failing)."""
    return _registry().get(model_type) if isinstance(model_type, str) else None


def family_for(config: Mapping[str, Any], source: str = "config.json") -> ModelFamily:
    """The family of a config.json's ``model_type``; CheckpointError naming the supported ones otherwise."""
    model_type = config.get("model_type")
    family = known_family(model_type)
    if family is None:
        examples = " or ".join(f"a {f.title} checkpoint (e.g. {f.example_checkpoint})" for f in families())
        raise CheckpointError(f"{source} has model_type {model_type!r}; this suite validates "
                              f"{', '.join(model_types())}",
                              f"point --model-path at {examples}")
    return family
