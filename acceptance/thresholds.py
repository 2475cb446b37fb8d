"""Tolerances and limits, read once from a TOML data file.

Tests take every limit from here, never from literals, so a hardware team can
tighten or loosen a rule in review without touching code.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Ascend hosts with torch 2.9 may run Python 3.10
    import tomli as tomllib

from .errors import ConfigError
from .options import DTYPES


@dataclass(frozen=True)
class AccuracyLimits:
    """Device output vs the CPU float32 reference, for one device dtype."""

    max_relative_error: float
    min_cosine: float


@dataclass(frozen=True)
class Thresholds:
    path: Path
    accuracy: dict[str, AccuracyLimits]
    max_pooler_cls_abs_diff: float
    max_smoke_abs_diff: float
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def accuracy_for(self, dtype: str) -> AccuracyLimits:
        return self.accuracy[dtype]

    def section(self, name: str) -> dict[str, Any]:
        """A table other parts of the suite own (latency, sweeps, ...), empty if absent."""
        value = self.raw.get(name, {})
        if not isinstance(value, (dict, list)):
            raise ConfigError(f"thresholds file {self.path}: [{name}] must be a table, got {type(value).__name__}",
                              f"edit {self.path} so that [{name}] is a TOML table")
        return value


def number(table: dict[str, Any], key: str, where: str, path: Path) -> float:
    """A required finite number from a TOML table, or a ConfigError naming the key."""
    if key not in table:
        raise ConfigError(f"thresholds file {path}: missing key {where}.{key} (a number)",
                          f"add `{key} = <number>` under [{where}] in {path}")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigError(f"thresholds file {path}: {where}.{key} must be a number, got {value!r}",
                          f"set {where}.{key} to a number in {path}")
    return float(value)


def load_thresholds(path: Path) -> Thresholds:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"thresholds file {path} does not exist",
                          "pass --thresholds PATH to an existing file, or restore thresholds.toml") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"thresholds file {path} cannot be read: {error}",
                          "check the file's permissions and encoding (UTF-8 TOML)") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"thresholds file {path} is not valid TOML: {error}",
                          "fix the TOML syntax at the line named") from None

    accuracy_table = raw.get("accuracy")
    if not isinstance(accuracy_table, dict):
        raise ConfigError(f"thresholds file {path}: missing table [accuracy.<dtype>]",
                          f"add [accuracy.float32] etc. with max_relative_error and min_cosine to {path}")
    accuracy = {}
    for dtype in DTYPES:
        table = accuracy_table.get(dtype)
        if not isinstance(table, dict):
            raise ConfigError(f"thresholds file {path}: missing table [accuracy.{dtype}]",
                              f"add [accuracy.{dtype}] with max_relative_error and min_cosine to {path}")
        where = f"accuracy.{dtype}"
        accuracy[dtype] = AccuracyLimits(
            max_relative_error=number(table, "max_relative_error", where, path),
            min_cosine=number(table, "min_cosine", where, path),
        )
    consistency = raw.get("consistency", {})
    smoke = raw.get("environment", {})
    return Thresholds(
        path=path,
        accuracy=accuracy,
        max_pooler_cls_abs_diff=number(consistency, "max_pooler_cls_abs_diff", "consistency", path),
        max_smoke_abs_diff=number(smoke, "max_smoke_abs_diff", "environment", path),
        raw=raw,
    )
