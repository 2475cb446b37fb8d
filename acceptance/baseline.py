"""Baselines: one run's figures stored under a name, and the regression limits a later run is held to.

A baseline NAME is one JSON file, ``<baselines dir>/<NAME>.json``, holding one
entry per target - device name + dtype + batch size + the model's identity
(config and weights sha256, the input image's pixels, the preprocessor) - so a
fleet can keep one ``nightly`` baseline for several cards and models, and a run
is never compared with another model's figures. An entry holds the figures that
matter (latency p50/mean per side and throughput, relative error and cosine per
output), and for each figure the run it came from. ``--save-baseline NAME``
merges this run's figures into its target's entry: a figure this run did not
measure keeps its stored value, and a run that measured nothing saves nothing.
``--baseline NAME`` loads the entry and the latency and accuracy tests compare
against it, with the limits of the ``[regression]`` table of the thresholds
file; a run that compared no figure with it fails (nightly.py).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .bounds import at_most
from .errors import ConfigError

if TYPE_CHECKING:
    from .timing import LatencyStats

#: 2: targets keyed by the model's identity too, figures merged, each with the run it came from
BASELINE_FORMAT = 2
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: the latency figures stored per side, compared in this order of preference
LATENCY_FIGURES = ("p50_ms", "mean_ms")


def check_name(name: str) -> str:
    """A baseline name is a file name: letters, digits, ``.``, ``_``, ``-``."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"bad baseline name {name!r}: use letters, digits, '.', '_' and '-' (e.g. nightly)")
    return name


def model_identity(checkpoint: Mapping[str, Any], pixel_sha256: str, preprocessor: Mapping[str, Any]) -> dict[str, str]:
    """What makes two runs' figures comparable besides the device: the model (``checkpoint`` is
    Checkpoint.provenance()), the input image's pixels and the preprocessing that makes it a tensor."""
    weights = hashlib.sha256("".join(f"{name}:{digest}\n" for name, digest in
                                     sorted(checkpoint["weights_sha256"].items())).encode()).hexdigest()
    settings = hashlib.sha256(json.dumps(preprocessor, sort_keys=True, default=str).encode()).hexdigest()
    return {"model_type": str(checkpoint["model_type"]), "config_sha256": checkpoint["config_sha256"],
            "weights_sha256": weights, "image_pixel_sha256": pixel_sha256, "preprocessor_sha256": settings}


def describe_identity(identity: Mapping[str, str] | None) -> str:
    if not identity:
        return "no recorded model (saved before baselines were keyed by the model)"
    return (f"{identity.get('model_type')} config {str(identity.get('config_sha256'))[:12]}, weights "
            f"{str(identity.get('weights_sha256'))[:12]}, image {str(identity.get('image_pixel_sha256'))[:12]}, "
            f"preprocessor {str(identity.get('preprocessor_sha256'))[:12]}")


def target_key(device_name: str, dtype: str, batch_size: int, identity: Mapping[str, str]) -> str:
    """The entry a run reads and writes: device name + dtype + batch size + the model's identity."""
    digest = hashlib.sha256(json.dumps(dict(identity), sort_keys=True).encode()).hexdigest()[:12]
    return f"{_device_part(device_name, dtype, batch_size)} | model {digest}"


def _device_part(device_name: str, dtype: str, batch_size: int) -> str:
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


def load_entry(folder: Path, name: str, key: str, identity: Mapping[str, str] | None = None) -> BaselineEntry:
    """This target's entry of baseline NAME; ConfigError naming the file and the fix when absent, and naming
    both models when the file holds this device, dtype and batch only for another model."""
    path = baseline_path(folder, name)
    fix = (f"save one first with --save-baseline {name} on this target, or pass --baselines-dir=DIR "
           f"naming the folder that holds {path.name}")
    if not path.is_file():
        raise ConfigError(f"--baseline {name}: no baseline file {path}", fix)
    try:
        data = json.loads(path.read_text())
        targets = data["targets"]
        entry = targets.get(key)
        if entry is None:
            device_part = key.rsplit(" | model ", 1)[0]
            others = [stored for stored in targets if stored == device_part or stored.startswith(device_part + " | ")]
            if others:
                theirs = "; ".join(describe_identity(targets[other].get("model")) for other in others)
                raise ConfigError(
                    f"--baseline {name}: {path} holds {device_part} only for another model ({theirs}); this run's "
                    f"model is {describe_identity(identity)}: its figures would be compared with another model's",
                    f"save a baseline for this model first (--save-baseline {name}, or another name to keep both), "
                    "or run the model and image the baseline was saved with")
            raise KeyError(key)
        return BaselineEntry(name=name, key=key, saved_at=entry["saved_at"], run_id=entry["run_id"],
                             latency=entry["latency"], accuracy=entry["accuracy"])
    except (json.JSONDecodeError, TypeError, AttributeError) as error:
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


def measured_figures(figures: Mapping[str, Any]) -> list[str]:
    """The figures of ``figures_from_results`` a baseline can hold, named ``latency.device``,
    ``accuracy.pooler_output``: a latency side or an output this run measured."""
    return [f"{group}.{name}" for group in ("latency", "accuracy") for name in figures.get(group, {})]


@dataclass(frozen=True)
class SaveOutcome:
    """Where an entry was saved, which of its figures this run measured and which it kept from earlier runs."""

    path: Path
    saved: tuple[str, ...]
    kept: tuple[str, ...]


def save_entry(folder: Path, name: str, key: str, figures: Mapping[str, Any], *, saved_at: str,
               run_id: str, identity: Mapping[str, str] | None = None) -> SaveOutcome:
    """Merge this run's figures into this target's entry of baseline NAME, keeping the other targets' and
    every figure of this target that this run did not measure. ConfigError when it measured none."""
    path = baseline_path(folder, name)
    saved = measured_figures(figures)
    if not saved:
        raise ConfigError(f"--save-baseline {name}: this run measured no figure a baseline holds (no 'performance' "
                          "or 'accuracy' test ran); nothing was saved and the stored entry is unchanged",
                          "run the latency and accuracy tests (e.g. without -m) to save a baseline")
    data: dict[str, Any] = {"format": BASELINE_FORMAT, "name": name, "targets": {}}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ConfigError(f"--save-baseline {name}: {path} exists but is not JSON ({error})",
                              f"move {path} away or pick another name") from None
    previous = data.setdefault("targets", {}).get(key) or {}
    entry: dict[str, Any] = {"saved_at": saved_at, "run_id": run_id, "model": dict(identity or {}),
                             "sources": dict(previous.get("sources") or {})}
    for group in ("latency", "accuracy"):
        entry[group] = {**(previous.get(group) or {}), **figures.get(group, {})}
    entry["sources"].update({figure: run_id for figure in saved})
    kept = tuple(figure for figure in measured_figures(entry) if figure not in saved)
    data["targets"][key] = entry
    data["format"] = BASELINE_FORMAT
    folder.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")
    temporary.replace(path)
    return SaveOutcome(path, tuple(saved), kept)


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
