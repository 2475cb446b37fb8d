"""The run configuration: read once from defaults, environment and command line, then frozen."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from .device_kinds import DeviceSpec
from .errors import ConfigError
from .options import OPTIONS, resolve
from .peak_table import PeakTable, load_peak_table
from .thresholds import LATENCY_LIMITS, Thresholds, load_thresholds

#: option fields kept under another name here (``thresholds`` holds the parsed file, not its path)
_STORED_AS = {"thresholds": "thresholds_path", "peak_flops": "peak_flops_path"}


def _json_ready(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, DeviceSpec):
        return str(value)
    return value


@dataclass(frozen=True)
class RunConfig:
    """Every option, resolved. The defaults are the option table's (acceptance/options.py), written there only:
    ``load`` is the one way to build a RunConfig."""

    model_path: Path | None
    device: DeviceSpec
    dtype: str
    dtypes: tuple[str, ...] | None
    precision: str
    image: Path | None
    thresholds_path: Path
    report_dir: Path
    batch_size: int
    num_runs: int
    warmup: int
    thresholds: Thresholds
    #: --peak-flops, read and checked with the thresholds at startup
    peak_flops_path: Path
    peak_table: PeakTable
    #: what a latency limit passed by far more than its stale_fraction does: off, warn, fail
    stale_thresholds: str
    #: --allow-pickle: a pytorch_model.bin may be loaded when there is no model.safetensors
    allow_pickle: bool
    #: nightly (docs/nightly.md): required device kind, baselines and the run history
    require_device: str | None
    baseline: str | None
    save_baseline: str | None
    baselines_dir: Path
    history_size: int
    #: scale (issue 6): sweep profile and overrides, determinism runs, soak seconds, graph mode
    sweep: str
    sweep_batches: tuple[int, ...] | None
    sweep_resolutions: tuple[int, ...] | None
    determinism_runs: int
    soak_seconds: int
    compile: str
    #: the CPU reference cache (acceptance/reference_cache.py): mode and folder (None: under the cache root)
    reference_cache: str
    reference_cache_dir: Path | None
    #: timed runs of the CPU reference latency (None: --num-runs)
    cpu_runs: int | None
    #: one profiled forward per side (acceptance/profiling.py)
    profile: str
    #: operator-level drift (acceptance/operator_drift.py): auto, on, off; and the msprobe dump folder
    ops: str
    dump: Path | None
    #: how a whole-server run under -n times its cards: auto, parallel, sequential (fixtures/features/server.py)
    timing: str
    #: the option fields the user set (command line or environment): the others may follow from the limits
    given: frozenset[str] = frozenset()

    def option_values(self) -> dict[str, Any]:
        """Every option of the OPTIONS table by field name, as resolved, JSON-ready (paths as strings,
        tuples as lists, None where not given): what the report records under run.options."""
        return {option.field: _json_ready(getattr(self, _STORED_AS.get(option.field, option.field)))
                for option in OPTIONS}

    @property
    def matrix_dtypes(self) -> tuple[str, ...]:
        """The dtypes of the dtype matrix: --dtypes, or just --dtype."""
        return self.dtypes or (self.dtype,)

    @property
    def cpu_num_runs(self) -> int:
        """Timed runs of the CPU reference latency: --cpu-runs, else --num-runs."""
        return self.cpu_runs or self.num_runs

    @property
    def reference_cache_folder(self) -> Path:
        if self.reference_cache_dir is not None:
            return self.reference_cache_dir
        # acceptance.builtin.cache_root's folder, computed here because that module imports torch
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "dinov3-acceptance" / "references"

    @property
    def uses_builtin_model(self) -> bool:
        return self.model_path is None

    @classmethod
    def load(cls, cli: Mapping[str, str | None], env: Mapping[str, str], root: Path) -> "RunConfig":
        """Build the frozen config. Relative default paths are taken from ``root``
        (the suite's folder), relative paths the user gave from the working directory."""
        values = resolve(cli, env)
        given = frozenset(option.field for option in OPTIONS
                          if cli.get(option.name) is not None or env.get(option.env) not in (None, ""))
        for name in ("thresholds", "peak_flops", "report_dir", "baselines_dir"):
            if not values[name].is_absolute() and cli.get(name.replace("_", "-")) is None \
                    and not env.get("DINOV3_" + name.upper()):
                values[name] = root / values[name]
        thresholds_path = values.pop("thresholds").resolve()
        thresholds = load_thresholds(thresholds_path)
        if values["sweep"] != "off" and values["sweep"] not in thresholds.sweep_profiles:
            raise ConfigError(f"thresholds file {thresholds_path}: missing table [sweep.{values['sweep']}] "
                              f"(--sweep {values['sweep']})",
                              f"add [sweep.{values['sweep']}] with batches, resolutions, num_runs and warmup to "
                              f"{thresholds_path}, or pass --sweep off")
        peak_flops_path = values.pop("peak_flops").resolve()
        return cls(thresholds_path=thresholds_path, thresholds=thresholds, peak_flops_path=peak_flops_path,
                   peak_table=load_peak_table(peak_flops_path), given=given, **values)

    def timed_runs_for(self, device_name: str, samples_for: Callable[[str], int]) -> tuple["RunConfig", str | None]:
        """This config with --num-runs raised to what the latency limits in force for ``device_name`` need
        (``samples_for("p99_ms")`` = 100: a p99 limit is judged only on 100 samples), and a note saying so.
        A --num-runs the user gave that is too few is a ConfigError naming the limit and the fix."""
        limits = self.thresholds.latency_for(device_name, self.dtype, self.batch_size)
        if limits is None:
            return self, None
        needs = {name: samples_for(LATENCY_LIMITS[name][0]) for name in limits.limits}
        limit, needed = max(needs.items(), key=lambda item: item[1], default=("", 0))
        if needed <= self.num_runs:
            return self, None
        where = f"{limits.label} in {self.thresholds_path} sets {limit}, which is judged on >= {needed} timed runs"
        if "num_runs" in self.given:
            raise ConfigError(f"--num-runs {self.num_runs}: {where}; with fewer the limit would be skipped",
                              f"pass --num-runs {needed} (or leave --num-runs out: the suite then times {needed})")
        # the CPU reference keeps its runs: only the device's limits need the samples
        return (replace(self, num_runs=needed, cpu_runs=self.cpu_num_runs),
                f"--num-runs {needed} (default {self.num_runs} raised: {where}; the CPU reference keeps "
                f"{self.cpu_num_runs})")
