"""Tolerances and limits, read once from a TOML data file.

Tests take every limit from here, never from literals, so a hardware team can
tighten or loosen a rule in review without touching code.
"""

from __future__ import annotations

import fnmatch
import math
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


#: latency limit name -> (the LatencyStats field or "speedup" it bounds, "max" or "min")
LATENCY_LIMITS: dict[str, tuple[str, str]] = {
    "max_p50_ms": ("p50_ms", "max"),
    "max_p99_ms": ("p99_ms", "max"),
    "min_throughput_img_per_s": ("throughput_img_per_s", "min"),
    "min_speedup": ("speedup", "min"),
}
LATENCY_KEYS = ("device", "dtype", "batch_size", "stale_fraction", *LATENCY_LIMITS)


class StaleThresholdWarning(UserWarning):
    """A latency limit passed by far more than its stale_fraction: the limit should be tightened."""


@dataclass(frozen=True)
class LimitVerdict:
    """One latency limit applied to one measured value."""

    limit: str
    statistic: str
    measured: float | None
    allowed: float
    #: False for NaN/Inf; None when ``measured`` is None (not supported by the samples)
    passed: bool | None
    #: how many times better than the limit (allowed/measured for max limits, measured/allowed for min)
    ratio: float | None
    #: passed with a ratio above 1 + stale_fraction: the limit no longer says anything
    stale: bool

    @property
    def comparison(self) -> str:
        return "<=" if LATENCY_LIMITS[self.limit][1] == "max" else ">="


@dataclass(frozen=True)
class LatencyLimits:
    """Latency limits for devices whose name matches ``device`` (a glob), at one dtype and batch size."""

    device: str
    dtype: str
    batch_size: int
    limits: dict[str, float]
    stale_fraction: float | None = None

    def matches(self, device_name: str, dtype: str, batch_size: int) -> bool:
        """Glob match on the device name (case-insensitive), exact dtype and batch size."""
        return (fnmatch.fnmatchcase(device_name.lower(), self.device.lower())
                and dtype == self.dtype and batch_size == self.batch_size)

    @property
    def label(self) -> str:
        return f"[[latency]] device={self.device!r} dtype={self.dtype} batch_size={self.batch_size}"

    def check(self, limit: str, measured: float | None) -> LimitVerdict:
        """Apply one limit; NaN/Inf never passes, None is reported as not checked."""
        statistic, kind = LATENCY_LIMITS[limit]
        allowed = self.limits[limit]
        if measured is None:
            return LimitVerdict(limit, statistic, None, allowed, None, None, False)
        finite = math.isfinite(measured)
        passed = finite and (measured <= allowed if kind == "max" else measured >= allowed)
        ratio = None
        if finite and measured > 0 and allowed > 0:
            ratio = allowed / measured if kind == "max" else measured / allowed
        stale = bool(passed and ratio is not None and self.stale_fraction is not None
                     and ratio > 1 + self.stale_fraction)
        return LimitVerdict(limit, statistic, measured, allowed, passed, ratio, stale)

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "dtype": self.dtype, "batch_size": self.batch_size,
                "stale_fraction": self.stale_fraction, **self.limits}


@dataclass(frozen=True)
class Thresholds:
    path: Path
    accuracy: dict[str, AccuracyLimits]
    max_pooler_cls_abs_diff: float
    max_smoke_abs_diff: float
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    latency: tuple[LatencyLimits, ...] = ()

    def accuracy_for(self, dtype: str) -> AccuracyLimits:
        return self.accuracy[dtype]

    def latency_for(self, device_name: str, dtype: str, batch_size: int) -> LatencyLimits | None:
        """The first [[latency]] entry matching the device name, dtype and batch size, or None."""
        return next((entry for entry in self.latency if entry.matches(device_name, dtype, batch_size)), None)

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


def latency_limits(raw: dict[str, Any], path: Path) -> tuple[LatencyLimits, ...]:
    """The [[latency]] entries, checked: known keys only, a device glob, a dtype, at least one limit."""
    entries = raw.get("latency", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ConfigError(f"thresholds file {path}: latency must be an array of tables ([[latency]] entries)",
                          f"write each latency limit set as a [[latency]] table in {path}")
    parsed = []
    for position, entry in enumerate(entries, start=1):
        where = f"latency entry {position}"
        unknown = sorted(set(entry) - set(LATENCY_KEYS))
        if unknown:
            raise ConfigError(f"thresholds file {path}: {where} has unknown key(s) {', '.join(unknown)}",
                              f"use only {', '.join(LATENCY_KEYS)} in [[latency]] entries of {path}")
        device = entry.get("device")
        if not isinstance(device, str) or not device.strip():
            raise ConfigError(f"thresholds file {path}: {where}.device must be a device-name glob, got {device!r}",
                              f"set device = \"Ascend910*\" (matched against the device name) in {path}")
        dtype = entry.get("dtype")
        if dtype not in DTYPES:
            raise ConfigError(f"thresholds file {path}: {where}.dtype must be one of {', '.join(DTYPES)}, "
                              f"got {dtype!r}", f"set {where}.dtype in {path}")
        batch_size = entry.get("batch_size", 1)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"thresholds file {path}: {where}.batch_size must be a positive integer, "
                              f"got {batch_size!r}", f"set {where}.batch_size in {path} (default 1)")
        limits = {}
        for key in LATENCY_LIMITS:
            if key in entry:
                value = number(entry, key, where, path)
                if value < 0:
                    raise ConfigError(f"thresholds file {path}: {where}.{key} must not be negative, got {value}",
                                      f"set {where}.{key} to a non-negative number in {path}")
                limits[key] = value
        if not limits:
            raise ConfigError(f"thresholds file {path}: {where} ({device!r}, {dtype}) sets no limit",
                              f"add at least one of {', '.join(LATENCY_LIMITS)} to it in {path}")
        stale = number(entry, "stale_fraction", where, path) if "stale_fraction" in entry else None
        if stale is not None and stale < 0:
            raise ConfigError(f"thresholds file {path}: {where}.stale_fraction must not be negative, got {stale}",
                              f"set {where}.stale_fraction to e.g. 0.5 in {path}, or remove it")
        parsed.append(LatencyLimits(device=device, dtype=dtype, batch_size=batch_size, limits=limits,
                                    stale_fraction=stale))
    return tuple(parsed)


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
        latency=latency_limits(raw, path),
    )


def _int_list(table: dict[str, Any], key: str, where: str, path: Path, multiple_of: int = 1) -> tuple[int, ...]:
    value = table.get(key)
    if not isinstance(value, list) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 and v % multiple_of == 0 for v in value):
        what = "positive integers" + (f" (multiples of {multiple_of})" if multiple_of > 1 else "")
        raise ConfigError(f"thresholds file {path}: {where}.{key} must be a non-empty list of {what}, got {value!r}",
                          f"set {where}.{key} = [..] in {path}")
    return tuple(value)


def sweep_profile(thresholds: Thresholds, name: str) -> dict[str, Any]:
    """[sweep.<name>]: batches, resolutions (multiples of 16), num_runs, warmup, grid (optional bool)."""
    where, path = f"sweep.{name}", thresholds.path
    table = thresholds.section("sweep").get(name)
    if not isinstance(table, dict):
        raise ConfigError(f"thresholds file {path}: missing table [{where}]",
                          f"add [{where}] with batches, resolutions, num_runs and warmup to {path}")
    grid = table.get("grid", False)
    if not isinstance(grid, bool):
        raise ConfigError(f"thresholds file {path}: {where}.grid must be true or false, got {grid!r}",
                          f"set {where}.grid = true or false in {path}")
    runs, warmup = number(table, "num_runs", where, path), number(table, "warmup", where, path)
    if runs < 1 or warmup < 0 or runs != int(runs) or warmup != int(warmup):
        raise ConfigError(f"thresholds file {path}: {where}.num_runs must be >= 1 and warmup >= 0 (integers)",
                          f"fix {where} in {path}")
    return {"batches": _int_list(table, "batches", where, path),
            "resolutions": _int_list(table, "resolutions", where, path, 16),
            "num_runs": int(runs), "warmup": int(warmup), "grid": grid}


def positive_number(thresholds: Thresholds, section: str, key: str) -> float:
    """A required non-negative number from [section] (determinism, soak limits)."""
    value = number(thresholds.section(section), key, section, thresholds.path)
    if value < 0:
        raise ConfigError(f"thresholds file {thresholds.path}: {section}.{key} must be >= 0, got {value}",
                          f"set {section}.{key} to a non-negative number in {thresholds.path}")
    return value
