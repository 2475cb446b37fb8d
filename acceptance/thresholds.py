"""Tolerances and limits, read once from a TOML data file.

Tests take every limit from here, never from literals, so a hardware team can
tighten or loosen a rule in review without touching code. Every table and key
is checked when the file is read (at session start), so a bad limit ends the
run in seconds instead of failing one test after minutes, or being ignored.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol

from .bounds import at_least, less_than
from .options import DTYPES, SWEEP_PROFILES
from .tables import (
    BOOL,
    GLOB,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    NUMBER,
    POSITIVE_INT,
    STRING_LIST,
    Key,
    Source,
    choice,
    entries,
    int_list,
    known_tables,
    named_tables,
    read_toml,
    table,
)


class Compared(Protocol):
    """What the accuracy rule reads: a TensorComparison, a LayerRow."""

    # read-only: frozen dataclasses (TensorComparison, LayerRow) satisfy it
    @property
    def relative_error(self) -> float: ...

    @property
    def cosine(self) -> float: ...


@dataclass(frozen=True)
class AccuracyLimits:
    """Device output vs the CPU float32 reference, for one device dtype."""

    max_relative_error: float
    min_cosine: float

    def accepts(self, comparison: Compared) -> bool:
        """The one accuracy pass rule: relative error < max_relative_error and cosine >= min_cosine, all finite.

        NaN/Inf never passes (less_than/at_least refuse them); a comparison that counts non-finite tensor
        elements (TensorComparison.finite) fails even where a metric happened to be finite.
        """
        return (bool(getattr(comparison, "finite", True))
                and less_than(comparison.relative_error, self.max_relative_error)
                and at_least(comparison.cosine, self.min_cosine))

    def to_dict(self) -> dict[str, float]:
        return {"max_relative_error": self.max_relative_error, "min_cosine": self.min_cosine}


#: latency limit name -> (the LatencyStats field or "speedup" it bounds, "max" or "min")
LATENCY_LIMITS: dict[str, tuple[str, str]] = {
    "max_p50_ms": ("p50_ms", "max"),
    "max_p99_ms": ("p99_ms", "max"),
    "min_throughput_img_per_s": ("throughput_img_per_s", "min"),
    "min_speedup": ("speedup", "min"),
}


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

    def to_dict(self) -> dict[str, Any]:
        """The latency section's verdict entry (keyed by ``limit`` there, so without it)."""
        return {"statistic": self.statistic, "measured": self.measured, "allowed": self.allowed,
                "comparison": self.comparison, "passed": self.passed, "ratio": self.ratio, "stale": self.stale}


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
class SweepProfile:
    """One ``[sweep.<profile>]`` table: the points and how long each is timed."""

    batches: tuple[int, ...]
    resolutions: tuple[int, ...]
    num_runs: int
    warmup: int
    #: every batch at every resolution, not just the two axes
    grid: bool = False


#: the keys of [regression]; each is required once --baseline is used (acceptance/baseline.py)
REGRESSION_KEYS = ("max_latency_regression_percent", "max_relative_error_increase")

ACCURACY_KEYS = {"max_relative_error": Key(NUMBER), "min_cosine": Key(NUMBER)}
LATENCY_ENTRY_KEYS = {
    "device": Key(GLOB), "dtype": Key(choice(DTYPES)), "batch_size": Key(POSITIVE_INT, required=False, default=1),
    "stale_fraction": Key(NON_NEGATIVE, required=False),
    **{limit: Key(NON_NEGATIVE, required=False) for limit in LATENCY_LIMITS},
}
SWEEP_KEYS = {"batches": Key(int_list()), "resolutions": Key(int_list()), "num_runs": Key(POSITIVE_INT),
              "warmup": Key(NON_NEGATIVE_INT), "grid": Key(BOOL, required=False, default=False)}
#: single tables: name -> (keys, required); an optional table that is absent reads as its keys' defaults
TABLES: dict[str, tuple[dict[str, Key], bool]] = {
    "consistency": ({"max_pooler_cls_abs_diff": Key(NUMBER)}, True),
    "environment": ({"max_smoke_abs_diff": Key(NUMBER)}, True),
    "fingerprint": ({"max_distance_decades": Key(NON_NEGATIVE)}, True),
    "signoff": ({"required_markers": Key(STRING_LIST, required=False, default=())}, False),
    "regression": ({key: Key(NON_NEGATIVE, required=False) for key in REGRESSION_KEYS}, False),
    "determinism": ({"max_abs_spread": Key(NON_NEGATIVE)}, True),
    "soak": ({"max_drift": Key(NON_NEGATIVE), "max_memory_growth_bytes": Key(NON_NEGATIVE)}, True),
    # a whole-server run: a card whose p50 is above this many times the median p50 of its siblings is an outlier
    "server": ({"outlier_p50_ratio": Key(NON_NEGATIVE, required=False, default=1.5)}, False),
}
#: [<name>.<dtype>] tables, one per dtype, all required
DTYPE_TABLES = ("accuracy", "layers")
SWEEP_NAMES = tuple(profile for profile in SWEEP_PROFILES if profile != "off")
KNOWN_TABLES = (*DTYPE_TABLES, *TABLES, "latency", "sweep")


@dataclass(frozen=True)
class Thresholds:
    """Every limit of the thresholds file, checked and typed."""

    path: Path
    accuracy: dict[str, AccuracyLimits]
    max_pooler_cls_abs_diff: float
    max_smoke_abs_diff: float
    #: [layers.<dtype>]: every probe point of the layer-wise drift (acceptance/drift.py)
    layers: dict[str, AccuracyLimits]
    #: [fingerprint] max_distance_decades (acceptance/fingerprint.py)
    fingerprint_max_distance: float
    #: [signoff] required_markers: a marker each needing a passed check for PASS (empty without the table)
    signoff_markers: tuple[str, ...]
    #: [regression]: the limits given (possibly none); all are required only with --baseline
    regression: Mapping[str, float]
    #: [sweep.<profile>] for every profile in the file
    sweep_profiles: Mapping[str, SweepProfile]
    determinism_max_abs_spread: float
    soak_max_drift: float
    soak_max_memory_growth_bytes: float
    #: [server] outlier_p50_ratio (acceptance/server_checks.py)
    server_outlier_p50_ratio: float = 1.5
    latency: tuple[LatencyLimits, ...] = ()
    #: the file as read, for the JSON report
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def accuracy_for(self, dtype: str) -> AccuracyLimits:
        return self.accuracy[dtype]

    def latency_for(self, device_name: str, dtype: str, batch_size: int) -> LatencyLimits | None:
        """The first [[latency]] entry matching the device name, dtype and batch size, or None."""
        return next((entry for entry in self.latency if entry.matches(device_name, dtype, batch_size)), None)


def _latency(raw: dict[str, Any], source: Source) -> tuple[LatencyLimits, ...]:
    parsed = []
    for number, entry in enumerate(entries(raw.get("latency", []), "latency", LATENCY_ENTRY_KEYS, source), start=1):
        limits = {key: entry[key] for key in LATENCY_LIMITS if entry[key] is not None}
        if not limits:
            raise source.error(f"latency entry {number} ({entry['device']!r}, {entry['dtype']}) sets no limit",
                               f"add at least one of {', '.join(LATENCY_LIMITS)} to [[latency]] entry {number}")
        parsed.append(LatencyLimits(device=entry["device"], dtype=entry["dtype"], batch_size=entry["batch_size"],
                                    limits=limits, stale_fraction=entry["stale_fraction"]))
    return tuple(parsed)


def _accuracy_limits(tables: Mapping[str, dict[str, float]]) -> dict[str, AccuracyLimits]:
    return {dtype: AccuracyLimits(**values) for dtype, values in tables.items()}


def load_thresholds(path: Path) -> Thresholds:
    """Read and check the whole file; ConfigError naming the file, the key and what is expected."""
    raw = read_toml(path, "thresholds file", "pass --thresholds PATH to an existing file, or restore thresholds.toml")
    source = Source("thresholds file", path)
    known_tables(raw, KNOWN_TABLES, source)
    if "accuracy" not in raw:  # the first table a user writes: say what it looks like
        raise source.error("missing table [accuracy.<dtype>]",
                           "add [accuracy.float32] etc. with max_relative_error and min_cosine")
    by_dtype = {name: _accuracy_limits(named_tables(raw.get(name, {}), name, DTYPES, True, ACCURACY_KEYS, source))
                for name in DTYPE_TABLES}
    single = {name: table(raw.get(name, {}), name, f"[{name}]", keys, source)
              for name, (keys, required) in TABLES.items()
              if required or name in raw or all(not key.required for key in keys.values())}
    profiles = named_tables(raw.get("sweep", {}), "sweep", SWEEP_NAMES, False, SWEEP_KEYS, source)
    signoff = single.get("signoff", {}).get("required_markers", ())
    regression = {key: value for key, value in single.get("regression", {}).items() if value is not None}
    return Thresholds(
        path=path,
        accuracy=by_dtype["accuracy"],
        max_pooler_cls_abs_diff=single["consistency"]["max_pooler_cls_abs_diff"],
        max_smoke_abs_diff=single["environment"]["max_smoke_abs_diff"],
        layers=by_dtype["layers"],
        fingerprint_max_distance=single["fingerprint"]["max_distance_decades"],
        signoff_markers=signoff,
        regression=regression,
        sweep_profiles={name: SweepProfile(**values) for name, values in profiles.items()},
        determinism_max_abs_spread=single["determinism"]["max_abs_spread"],
        soak_max_drift=single["soak"]["max_drift"],
        soak_max_memory_growth_bytes=single["soak"]["max_memory_growth_bytes"],
        server_outlier_p50_ratio=single["server"]["outlier_p50_ratio"],
        latency=_latency(raw, source),
        raw=raw,
    )
