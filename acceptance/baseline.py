"""Baselines: one run's figures stored under a name, and the regression limits a later run is held to.

A baseline NAME is one JSON file, ``<baselines dir>/<NAME>.json``, holding one
entry per target - device name + dtype + batch size - so a fleet can keep one
``nightly`` baseline for several cards. An entry holds the figures that matter
(latency p50/mean per side and throughput, relative error and cosine per
output) and when and from which run they came. ``--save-baseline NAME`` writes
this run's entry (other targets' entries are kept); ``--baseline NAME`` loads
it and the latency and accuracy tests compare against it, with the limits of
the ``[regression]`` table of the thresholds file.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .errors import ConfigError
from .metrics import at_most

if TYPE_CHECKING:
    from .timing import LatencyStats

BASELINE_FORMAT = 1
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: the latency figures stored per side, compared in this order of preference
LATENCY_FIGURES = ("p50_ms", "mean_ms")


def check_name(name: str) -> str:
    """A baseline name is a file name: letters, digits, ``.``, ``_``, ``-``."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"bad baseline name {name!r}: use letters, digits, '.', '_' and '-' (e.g. nightly)")
    return name


def target_key(device_name: str, dtype: str, batch_size: int) -> str:
    """The entry a run reads and writes: device name + dtype + batch size."""
    return f"{device_name} | {dtype} | batch {batch_size}"


def baseline_path(folder: Path, name: str) -> Path:
    return folder / f"{name}.json"


@dataclass(frozen=True)
class RegressionLimits:
    """The ``[regression]`` table: how far a run may move from its baseline."""

    #: a latency (p50, else mean) more than this many percent above the baseline's fails
    max_latency_regression_percent: float
    #: a relative error more than this much (absolute, e.g. 0.001 = 0.1 points) above the baseline's fails
    max_relative_error_increase: float


def regression_limits(values: Mapping[str, float], source: Path) -> RegressionLimits:
    """The ``[regression]`` limits once ``--baseline`` is used: then every key is required. ``values`` are
    the thresholds file's (``Thresholds.regression``), whose types were checked when the file was read."""
    keys = [field.name for field in fields(RegressionLimits)]
    for key in keys:
        if key not in values:
            raise ConfigError(f"thresholds file {source}: missing key regression.{key} (a non-negative number, "
                              f"required with --baseline)", f"add e.g. `{key} = 10` under [regression] in {source}")
    return RegressionLimits(**{key: values[key] for key in keys})


@dataclass(frozen=True)
class BaselineEntry:
    """One target's stored figures."""

    name: str
    key: str
    saved_at: str
    run_id: str
    #: side ("cpu", "device") -> {"p50_ms", "mean_ms", "throughput_img_per_s"} (values may be None)
    latency: Mapping[str, Mapping[str, float | None]]
    #: output name -> {"relative_error", "cosine"}
    accuracy: Mapping[str, Mapping[str, float | None]]

    @property
    def label(self) -> str:
        return f"baseline '{self.name}' ({self.key}, saved {self.saved_at}, run {self.run_id})"


def load_entry(folder: Path, name: str, key: str) -> BaselineEntry:
    """This target's entry of baseline NAME; ConfigError naming the file and the fix when absent."""
    path = baseline_path(folder, name)
    fix = (f"save one first with --save-baseline {name} on this target, or pass --baselines-dir=DIR "
           f"naming the folder that holds {path.name}")
    if not path.is_file():
        raise ConfigError(f"--baseline {name}: no baseline file {path}", fix)
    try:
        data = json.loads(path.read_text())
        entry = data["targets"][key]
        return BaselineEntry(name=name, key=key, saved_at=entry["saved_at"], run_id=entry["run_id"],
                             latency=entry["latency"], accuracy=entry["accuracy"])
    except (json.JSONDecodeError, TypeError) as error:
        raise ConfigError(f"--baseline {name}: {path} is not a baseline file ({error})", fix) from None
    except KeyError as error:
        known = ", ".join(sorted((data.get("targets") or {}) if isinstance(data, dict) else {})) or "none"
        raise ConfigError(f"--baseline {name}: {path} has no entry {error} (targets in it: {known})", fix) from None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def figures_from_results(latency: Mapping[str, LatencyStats | None], comparisons: Mapping[str, Any]) -> dict[str, Any]:
    """The figures a baseline stores: per side ("cpu", "device") its LatencyStats (None where not measured,
    results.latency.stats()), and results.comparisons."""
    sides = {}
    for side in ("cpu", "device"):
        stats = latency.get(side)
        if stats is not None:
            sides[side] = {figure: _number(getattr(stats, figure))
                           for figure in (*LATENCY_FIGURES, "throughput_img_per_s")}
    outputs = {name: {"relative_error": _number(c.relative_error), "cosine": _number(c.cosine)}
               for name, c in comparisons.items()}
    return {"latency": sides, "accuracy": outputs}


def save_entry(folder: Path, name: str, key: str, figures: Mapping[str, Any], *, saved_at: str,
               run_id: str) -> Path:
    """Write (or replace) this target's entry of baseline NAME, keeping the other targets'."""
    path = baseline_path(folder, name)
    data: dict[str, Any] = {"format": BASELINE_FORMAT, "name": name, "targets": {}}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ConfigError(f"--save-baseline {name}: {path} exists but is not JSON ({error})",
                              f"move {path} away or pick another name") from None
    data.setdefault("targets", {})[key] = {"saved_at": saved_at, "run_id": run_id, **figures}
    folder.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")
    temporary.replace(path)
    return path


@dataclass(frozen=True)
class RegressionCheck:
    """One figure against its baseline value."""

    figure: str
    measured: float
    baseline: float
    allowed: float
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"figure": self.figure, "measured": self.measured, "baseline": self.baseline,
                "allowed": self.allowed, "passed": self.passed, "message": self.message}


def check_latency(entry: BaselineEntry, side: str, stats: Mapping[str, Any],
                  limits: RegressionLimits, what: str) -> RegressionCheck | None:
    """p50 (else mean) latency of ``side`` against the baseline: at most baseline x (1 + percent/100).
    None when the baseline holds no figure for this side that this run also has."""
    stored = entry.latency.get(side) or {}
    for figure in LATENCY_FIGURES:
        measured, baseline = _number(stats.get(figure)), _number(stored.get(figure))
        if measured is None or baseline is None:
            continue
        allowed = baseline * (1 + limits.max_latency_regression_percent / 100)
        change = (measured / baseline - 1) * 100 if baseline > 0 else math.inf
        passed = at_most(measured, allowed)
        message = (f"{what}: {figure} {measured:.4g} ms vs {baseline:.4g} ms in {entry.label}: "
                   f"{change:+.1f} %, allowed <= {allowed:.4g} ms "
                   f"(+{limits.max_latency_regression_percent:g} %, [regression] max_latency_regression_percent)")
        return RegressionCheck(f"{side}.{figure}", measured, baseline, allowed, passed, message)
    return None


def check_accuracy(entry: BaselineEntry, output: str, relative_error: float,
                   limits: RegressionLimits, what: str) -> RegressionCheck | None:
    """Relative error of ``output`` against the baseline: at most baseline + the allowed increase
    (NaN never passes). None when the baseline has no figure for this output."""
    baseline = _number((entry.accuracy.get(output) or {}).get("relative_error"))
    if baseline is None:
        return None
    allowed = baseline + limits.max_relative_error_increase
    passed = at_most(relative_error, allowed)
    message = (f"{what}: relative error {relative_error:.4%} vs {baseline:.4%} in {entry.label}: "
               f"drift {relative_error - baseline:+.4%}, allowed <= {allowed:.4%} "
               f"(+{limits.max_relative_error_increase:g}, [regression] max_relative_error_increase)")
    return RegressionCheck(f"{output}.relative_error", float(relative_error), baseline, allowed, passed, message)
