"""The run's result sections as types: what each part of the suite records, its JSON, and its JSON Schema.

One dataclass per section of ``RunResults`` (latency, diagnosis, sweep, soak,
determinism, compile, nightly, utilisation). Writers (fixtures, tests) set
typed values, reusing the library's own types (LatencyStats, LayerDrift,
Fingerprint, TensorComparison, LimitVerdict, RegressionCheck); ``to_dict()``
gives the plain data of benchmark_report.json, with the field names the
reports have always had. Each class's ``SCHEMA`` is the JSON Schema of what
its ``to_dict()`` writes into the report (for latency: of the report's
"performance" block, ``LatencySection.REPORT_SCHEMA``). These fragments are
the one source of truth for the sections: acceptance/report/schema composes
them into benchmark_report.schema.json's frame when it is loaded. They refer to
the frame's shared ``$defs`` (metric, shape, latencyStats) and to ``DEFS`` here.

Renderers (HTML, fleet, history) work from the report dict, since they also
re-render old JSON files; the shapes they read are the ones ``to_dict()`` writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Mapping

from .schema_parts import (
    BOOL,
    COUNT,
    METRIC,
    NUMBER,
    OPTIONAL_COUNT,
    OPTIONAL_INT,
    OPTIONAL_STRING,
    POSITIVE,
    STRING,
    array,
    closed,
    mapping,
    optional,
    ref,
)
from .thresholds import LATENCY_LIMITS

if TYPE_CHECKING:  # annotations only: the schema (read by the fleet merge) must not import torch
    from .baseline import RegressionCheck, RegressionLimits
    from .devices.card_state import CardState
    from .drift import LayerDrift
    from .fingerprint import Fingerprint
    from .metrics import TensorComparison
    from .thresholds import AccuracyLimits, LatencyLimits, LimitVerdict
    from .timing import LatencyStats

NOT_MEASURABLE = "not measurable on this backend"

#: LatencyStats.to_dict(), field by field (the dataclass is checked against it in the self-tests)
LATENCY_STATS_PROPERTIES = {
    "samples": COUNT, "batch_size": POSITIVE, "mean_ms": METRIC, "min_ms": METRIC, "max_ms": METRIC,
    "std_ms": METRIC, "p50_ms": METRIC, "p90_ms": METRIC, "p99_ms": METRIC, "throughput_img_per_s": METRIC,
    "cold_ms": METRIC, "event_samples": COUNT, "event_mean_ms": METRIC, "event_min_ms": METRIC,
    "event_max_ms": METRIC, "event_p50_ms": METRIC, "unavailable": mapping(STRING), "nonfinite_samples": COUNT,
    "timing_method": STRING,
}
LATENCY_SIDE_PROPERTIES = {
    **LATENCY_STATS_PROPERTIES, "side": {"enum": ["cpu", "device"]}, "device": STRING, "name": STRING,
    "dtype": STRING, "num_runs": POSITIVE, "warmup": COUNT, "torch_threads": POSITIVE, "samples_ms": array(METRIC),
}

#: the shared definitions of the fragments, composed into the schema's $defs
DEFS: dict[str, Any] = {
    "latencyStatsRaw": closed(LATENCY_STATS_PROPERTIES),
    "tensorComparison": closed({
        "name": STRING, "shape": ref("shape"), "reference_dtype": STRING, "candidate_dtype": STRING,
        "max_abs_diff": METRIC, "mean_abs_diff": METRIC, "relative_error": METRIC, "cosine": METRIC,
        "nonfinite_reference": COUNT, "nonfinite_candidate": COUNT,
        "first_nonfinite_candidate": optional(array(COUNT)),
    }),
    "accuracyLimits": closed({"max_relative_error": NUMBER, "min_cosine": NUMBER}),
    "latencyLimits": closed({"device": STRING, "dtype": STRING, "batch_size": POSITIVE,
                             "stale_fraction": {"type": ["number", "null"], "minimum": 0},
                             **{limit: {"type": "number", "minimum": 0} for limit in LATENCY_LIMITS}},
                            required=["device", "dtype", "batch_size", "stale_fraction"]),
    "regressionCheck": closed({"figure": STRING, "measured": METRIC, "baseline": METRIC, "allowed": METRIC,
                               "passed": BOOL, "message": STRING}),
}


# -- latency -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LatencySide:
    """One side's latency measurement (the CPU reference or the device) and how it was taken."""

    stats: LatencyStats
    side: str
    #: the device label ("cpu", "npu:0")
    device: str
    name: str
    dtype: str
    num_runs: int
    warmup: int
    torch_threads: int
    samples_ms: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self.stats.to_dict(), "side": self.side, "device": self.device, "name": self.name,
                "dtype": self.dtype, "num_runs": self.num_runs, "warmup": self.warmup,
                "torch_threads": self.torch_threads, "samples_ms": list(self.samples_ms)}

    def seed_dict(self) -> dict[str, Any]:
        """The report's performance entry: the seed's ``throughput_img_per_sec`` name for the throughput."""
        data = {key: value for key, value in self.to_dict().items() if key != "throughput_img_per_s"}
        data["throughput_img_per_sec"] = self.stats.throughput_img_per_s
        return data


@dataclass
class LatencySection:
    """The latency tests' measurements and the limits applied to them (filled test by test)."""

    cpu: LatencySide | None = None
    device: LatencySide | None = None
    #: CPU mean / device mean, once both sides are measured
    speedup: float | None = None
    #: the [[latency]] entry matching the device, dtype and batch size (None: reported, not judged)
    thresholds: LatencyLimits | None = None
    #: limit name -> its verdict
    verdicts: dict[str, LimitVerdict] = field(default_factory=dict)

    SCHEMA = closed({"cpu": optional(closed(LATENCY_SIDE_PROPERTIES)),
                     "device": optional(closed(LATENCY_SIDE_PROPERTIES)),
                     "speedup": METRIC, "thresholds": optional(ref("latencyLimits")),
                     "verdicts": mapping(closed({"statistic": STRING, "measured": METRIC, "allowed": NUMBER,
                                                 "comparison": {"enum": ["<=", ">="]},
                                                 "passed": {"type": ["boolean", "null"]}, "ratio": METRIC,
                                                 "stale": BOOL}))})
    #: the report's "performance" block (the seed's latency layout)
    REPORT_SCHEMA = {
        "type": "object",
        "required": ["measured", "cpu", "device", "speedup"],
        "properties": {
            "measured": BOOL,
            "reason": STRING,
            "cpu": {"oneOf": [ref("latencyStats"), {"type": "null"}]},
            "device": {"oneOf": [ref("latencyStats"), {"type": "null"}]},
            "speedup": METRIC,
            "thresholds": optional(ref("latencyLimits")),
        },
    }

    @property
    def recorded(self) -> bool:
        return bool(self.cpu or self.device or self.verdicts or self.thresholds)

    def sides(self) -> dict[str, LatencySide | None]:
        return {"cpu": self.cpu, "device": self.device}

    def stats(self) -> dict[str, LatencyStats | None]:
        return {name: side.stats if side else None for name, side in self.sides().items()}

    def record(self, side: LatencySide) -> None:
        if side.side not in ("cpu", "device"):
            raise ValueError(f"latency side must be 'cpu' or 'device', got {side.side!r}")
        setattr(self, side.side, side)

    def to_dict(self) -> dict[str, Any]:
        return {"cpu": self.cpu.to_dict() if self.cpu else None,
                "device": self.device.to_dict() if self.device else None, "speedup": self.speedup,
                "thresholds": self.thresholds.to_dict() if self.thresholds else None,
                "verdicts": {limit: verdict.to_dict() for limit, verdict in self.verdicts.items()}}

    def performance(self) -> dict[str, Any]:
        """The report's "performance" block (None entries where not measured)."""
        if self.cpu is None and self.device is None:
            return {"measured": False, "reason": "no latency test ran in this session",
                    "cpu": None, "device": None, "speedup": None, "thresholds": None}
        return {"measured": True, "cpu": self.cpu.seed_dict() if self.cpu else None,
                "device": self.device.seed_dict() if self.device else None,
                "speedup": self.speedup, "thresholds": self.thresholds.to_dict() if self.thresholds else None}


# -- diagnosis -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PrecisionRecord:
    """The --precision mode and the settings read back at session start."""

    mode: str
    settings: dict[str, Any]
    strict_settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "settings": dict(self.settings), "strict_settings": dict(self.strict_settings)}


@dataclass(frozen=True)
class DtypeMatrixRow:
    """One dtype's output against the reference under that dtype's [accuracy.<dtype>] limits."""

    dtype: str
    comparison: TensorComparison
    limits: AccuracyLimits
    first_drifting_layer: str | None

    @property
    def passed(self) -> bool:
        return self.limits.accepts(self.comparison)

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "tensor": self.comparison.name,
                "relative_error": self.comparison.relative_error, "cosine": self.comparison.cosine,
                "max_abs_diff": self.comparison.max_abs_diff,
                "max_relative_error": self.limits.max_relative_error, "min_cosine": self.limits.min_cosine,
                "passed": self.passed, "first_drifting_layer": self.first_drifting_layer}


LAYER_ROW = closed({"name": STRING, "depth": COUNT, "relative_error": METRIC, "cosine": METRIC,
                    "max_abs_diff": METRIC, "frac_rel_err_below_0.1pct": METRIC,
                    "frac_rel_err_below_0.5pct": METRIC, "within_limits": BOOL})


@dataclass
class DiagnosisSection:
    """The numerical diagnosis: each part is set when its fixture ran (None / empty otherwise)."""

    precision: PrecisionRecord | None = None
    #: the layer-wise drift of the device model at --dtype
    drift: LayerDrift | None = None
    fingerprint: Fingerprint | None = None
    #: emulated profile -> output name -> relative error (EmulatedProfiles.final)
    emulated_final: dict[str, dict[str, float]] = field(default_factory=dict)
    dtype_matrix: list[DtypeMatrixRow] = field(default_factory=list)

    SCHEMA = closed({
        "precision": closed({"mode": STRING, "settings": {"type": "object"}, "strict_settings": {"type": "object"}}),
        "layers": array(LAYER_ROW),
        "layer_dtype": STRING,
        "layer_limits": ref("accuracyLimits"),
        "first_drifting_layer": OPTIONAL_STRING,
        "fingerprint": closed({
            "closest": OPTIONAL_STRING, "verdict": STRING, "distances": mapping(METRIC), "runner_up": OPTIONAL_STRING,
            "measured": array(METRIC), "profiles": mapping(array(METRIC)), "probe_points": array(STRING),
            "floors": array(METRIC), "distance": STRING, "emulated_final": mapping(mapping(METRIC)),
        }),
        "dtype_matrix": array(closed({
            "dtype": STRING, "tensor": STRING, "relative_error": METRIC, "cosine": METRIC, "max_abs_diff": METRIC,
            "max_relative_error": NUMBER, "min_cosine": NUMBER, "passed": BOOL,
            "first_drifting_layer": OPTIONAL_STRING})),
    }, required=[], dependentRequired={"layers": ["layer_dtype", "layer_limits", "first_drifting_layer"]})

    @property
    def recorded(self) -> bool:
        return bool(self.precision or self.drift or self.fingerprint or self.dtype_matrix)

    @property
    def first_drifting_layer(self) -> str | None:
        first = self.drift.first_drifting if self.drift is not None else None
        return first.name if first is not None else None

    def to_dict(self) -> dict[str, Any]:
        """Only the parts that ran, as the diagnosis has always written them."""
        data: dict[str, Any] = {}
        if self.precision is not None:
            data["precision"] = self.precision.to_dict()
        if self.drift is not None:
            data.update({"layers": [row.to_dict() for row in self.drift.rows], "layer_dtype": self.drift.dtype,
                         "layer_limits": self.drift.limits.to_dict(),
                         "first_drifting_layer": self.first_drifting_layer})
        if self.fingerprint is not None:
            data["fingerprint"] = {**self.fingerprint.to_dict(), "emulated_final": self.emulated_final}
        if self.dtype_matrix:
            data["dtype_matrix"] = [row.to_dict() for row in self.dtype_matrix]
        return data


# -- sweep ---------------------------------------------------------------------------------------------------

SWEEP_STATUSES = ("ok", "skipped", "out_of_memory")


@dataclass(frozen=True)
class SweepPoint:
    """One (batch, resolution) point: measured (status "ok"), or why not ("skipped", "out_of_memory")."""

    batch: int
    resolution: int
    status: str
    #: why a point did not run (not "ok" only)
    error: str | None = None
    latency: LatencyStats | None = None
    peak_memory_bytes: int | None = None
    flops_per_forward: int | None = None
    achieved_tflops: float | None = None
    mfu: float | None = None
    accuracy: TensorComparison | None = None

    SCHEMA = {
        "type": "object",
        "required": ["batch", "resolution", "status"],
        "properties": {"batch": POSITIVE, "resolution": POSITIVE, "status": {"enum": list(SWEEP_STATUSES)}},
        "if": {"properties": {"status": {"const": "ok"}}},
        "then": closed({"batch": POSITIVE, "resolution": POSITIVE, "status": {"const": "ok"},
                        "latency": ref("latencyStatsRaw"), "throughput_img_per_s": METRIC,
                        "peak_memory_bytes": OPTIONAL_COUNT, "peak_memory_note": OPTIONAL_STRING,
                        "flops_per_forward": COUNT, "achieved_tflops": METRIC, "mfu": METRIC,
                        "accuracy": ref("tensorComparison")}),
        "else": closed({"batch": POSITIVE, "resolution": POSITIVE, "status": {"enum": ["skipped", "out_of_memory"]},
                        "error": STRING}),
    }

    def __post_init__(self) -> None:
        if self.status not in SWEEP_STATUSES:
            raise ValueError(f"sweep point status must be one of {SWEEP_STATUSES}, got {self.status!r}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def throughput_img_per_s(self) -> float | None:
        return self.latency.throughput_img_per_s if self.latency is not None else None

    def to_dict(self) -> dict[str, Any]:
        if not self.ok:
            return {"batch": self.batch, "resolution": self.resolution, "status": self.status, "error": self.error}
        if self.latency is None or self.accuracy is None:
            raise ValueError(f"sweep point batch {self.batch} at {self.resolution} is 'ok' without a latency "
                             "and an accuracy")
        return {"batch": self.batch, "resolution": self.resolution, "status": "ok",
                "latency": self.latency.to_dict(), "throughput_img_per_s": self.throughput_img_per_s,
                "peak_memory_bytes": self.peak_memory_bytes,
                "peak_memory_note": None if self.peak_memory_bytes is not None else NOT_MEASURABLE,
                "flops_per_forward": self.flops_per_forward, "achieved_tflops": self.achieved_tflops,
                "mfu": self.mfu, "accuracy": self.accuracy.to_dict()}


def sweep_limits(points: Any) -> dict[str, dict[str, int | None]]:
    """Per resolution: the largest batch that ran and the first that ran out of memory (or None)."""
    result: dict[str, dict[str, int | None]] = {}
    for p in points:
        entry = result.setdefault(str(p.resolution), {"max_batch_ok": None, "first_oom_batch": None})
        if p.status == "ok":
            entry["max_batch_ok"] = max(entry["max_batch_ok"] or 0, p.batch)
        elif p.status == "out_of_memory" and entry["first_oom_batch"] is None:
            entry["first_oom_batch"] = p.batch
    return result


@dataclass(frozen=True)
class SweepSection:
    """The batch x resolution sweep: its profile and every point."""

    profile: str
    batches: tuple[int, ...]
    resolutions: tuple[int, ...]
    grid: bool
    num_runs: int
    warmup: int
    device: str
    dtype: str
    points: tuple[SweepPoint, ...]

    SCHEMA = closed({"profile": STRING, "batches": array(POSITIVE), "resolutions": array(POSITIVE), "grid": BOOL,
                     "num_runs": POSITIVE, "warmup": COUNT, "device": STRING, "dtype": STRING,
                     "points": array(SweepPoint.SCHEMA),
                     "limits": mapping(closed({"max_batch_ok": OPTIONAL_INT, "first_oom_batch": OPTIONAL_INT}))})

    @property
    def limits(self) -> dict[str, dict[str, int | None]]:
        return sweep_limits(self.points)

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "batches": list(self.batches), "resolutions": list(self.resolutions),
                "grid": self.grid, "num_runs": self.num_runs, "warmup": self.warmup, "device": self.device,
                "dtype": self.dtype, "points": [point.to_dict() for point in self.points], "limits": self.limits}


# -- soak and determinism (one per card) ---------------------------------------------------------------------

@dataclass(frozen=True)
class SoakResult:
    """One card's soak run (acceptance.soak.soak's figures)."""

    seconds: float
    iterations: int
    first_nonfinite_iteration: int | None
    max_drift: float
    first_drift_iteration: int | None
    memory_start_bytes: int | None
    memory_end_bytes: int | None
    memory_growth_bytes: int | None
    latency_first_tenth_ms: float | None
    latency_last_tenth_ms: float | None
    latency_trend: float | None

    SCHEMA = closed({"seconds": NUMBER, "iterations": COUNT, "first_nonfinite_iteration": OPTIONAL_COUNT,
                     "max_drift": METRIC, "first_drift_iteration": OPTIONAL_COUNT,
                     "memory_start_bytes": OPTIONAL_INT, "memory_end_bytes": OPTIONAL_INT,
                     "memory_growth_bytes": OPTIONAL_INT, "latency_first_tenth_ms": METRIC,
                     "latency_last_tenth_ms": METRIC, "latency_trend": METRIC, "memory_note": STRING},
                    required=["seconds", "iterations", "first_nonfinite_iteration", "max_drift",
                              "first_drift_iteration", "memory_start_bytes", "memory_end_bytes",
                              "memory_growth_bytes", "latency_first_tenth_ms", "latency_last_tenth_ms",
                              "latency_trend"])

    def to_dict(self) -> dict[str, Any]:
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        if self.memory_growth_bytes is None:  # said in words, so a reader does not take null for "no growth"
            data["memory_note"] = NOT_MEASURABLE
        return data


@dataclass(frozen=True)
class DeterminismResult:
    """One card's repeated forwards (acceptance.soak.repeat_spread) and the spread allowed."""

    runs: int
    bitwise_identical: bool
    max_abs_spread: float
    allowed_max_abs_spread: float

    SCHEMA = closed({"runs": {"type": "integer", "minimum": 2}, "bitwise_identical": BOOL, "max_abs_spread": METRIC,
                     "allowed_max_abs_spread": NUMBER})

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "bitwise_identical": self.bitwise_identical,
                "max_abs_spread": self.max_abs_spread, "allowed_max_abs_spread": self.allowed_max_abs_spread}


#: the per-card sections: card label -> result
PER_CARD_SCHEMA = {"soak": mapping(SoakResult.SCHEMA), "determinism": mapping(DeterminismResult.SCHEMA)}


# -- server (every card of the host) -------------------------------------------------------------------------

CARD_PASS, CARD_FAIL, CARD_NOT_RUN = "PASS", "FAIL", "NOT RUN"

#: acceptance.devices.card_state.CardState.to_dict(): a card as its vendor's tool reports it
CARD_STATE_SCHEMA = closed({
    "tool": STRING, "index": COUNT,
    **{name: OPTIONAL_STRING for name in ("name", "bus_id", "health", "driver", "firmware")},
    **{name: {"type": ["number", "null"]} for name in ("temperature_c", "power_w", "memory_used_mib",
                                                        "memory_total_mib")},
    "ecc_uncorrectable": OPTIONAL_COUNT})


@dataclass(frozen=True)
class CardCheck:
    """One test's outcome on one card."""

    outcome: str
    message: str = ""
    #: the test's markers (the verdict asks each card for a passed check of every required marker)
    markers: tuple[str, ...] = ()


@dataclass
class CardRecord:
    """One card of a whole-server run (--device npu:all): what its tests measured and how they ended."""

    card: str
    name: str = ""
    #: the PCI bus id where the runtime gives it (None: not offered)
    bus_id: str | None = None
    #: output name -> this card's output against the one CPU float32 reference
    comparisons: dict[str, TensorComparison] = field(default_factory=dict)
    latency: LatencyStats | None = None
    #: "sequential" (one card timed at a time) or "parallel" (cards timed at once: host contention)
    latency_mode: str | None = None
    peak_memory_bytes: int | None = None
    peak_memory_note: str | None = None
    #: node id -> outcome on this card
    checks: dict[str, CardCheck] = field(default_factory=dict)
    #: where its tests ran: the xdist worker (None: the one process) and the visible-devices variable there
    worker: str | None = None
    visible_devices: str | None = None
    #: this card's batch x resolution sweep (its MFU, throughput and memory per point)
    sweep: SweepSection | None = None
    #: the three operators taking most of this card's time in its profiled forward
    profile_top: str | None = None
    #: the card as its vendor's tool saw it before and after the run (acceptance/devices/card_state.py)
    state_before: CardState | None = None
    state_after: CardState | None = None

    SCHEMA = closed({
        "card": STRING, "name": STRING, "bus_id": OPTIONAL_STRING,
        "verdict": {"enum": [CARD_PASS, CARD_FAIL, CARD_NOT_RUN]},
        "reasons": array(STRING), "counts": mapping(COUNT),
        "accuracy": mapping(closed({"relative_error": METRIC, "cosine": METRIC, "max_abs_diff": METRIC,
                                    "finite": BOOL})),
        "p50_ms": METRIC, "p90_ms": METRIC, "throughput_img_per_s": METRIC, "latency_mode": OPTIONAL_STRING,
        "peak_memory_bytes": OPTIONAL_COUNT, "peak_memory_note": OPTIONAL_STRING,
        "determinism": optional(DeterminismResult.SCHEMA), "worker": OPTIONAL_STRING,
        "visible_devices": OPTIONAL_STRING,
        "sweep": optional(SweepSection.SCHEMA), "best_mfu": METRIC, "soak": optional(SoakResult.SCHEMA),
        "profile_top": OPTIONAL_STRING, "state_before": optional(CARD_STATE_SCHEMA),
        "state_after": optional(CARD_STATE_SCHEMA),
    }, optional=("sweep", "best_mfu", "soak", "profile_top", "state_before", "state_after"))  # since issue 22

    @property
    def failures(self) -> list[str]:
        return [f"{nodeid}" + (f": {check.message}" if check.message else "")
                for nodeid, check in self.checks.items() if check.outcome in ("failed", "error")]

    @property
    def verdict(self) -> str:
        if self.failures:
            return CARD_FAIL
        return CARD_PASS if any(check.outcome == "passed" for check in self.checks.values()) else CARD_NOT_RUN

    @property
    def best_mfu(self) -> float | None:
        """The highest MFU among this card's sweep points (None: no sweep, or no peak for its device)."""
        values = [point.mfu for point in (self.sweep.points if self.sweep else ()) if point.mfu is not None]
        return max(values) if values else None

    def to_dict(self, determinism: DeterminismResult | None = None, soak: SoakResult | None = None) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for check in self.checks.values():
            counts[check.outcome] = counts.get(check.outcome, 0) + 1
        stats = self.latency
        return {
            "card": self.card, "name": self.name, "bus_id": self.bus_id, "verdict": self.verdict,
            "reasons": self.failures, "counts": dict(sorted(counts.items())),
            "accuracy": {name: {"relative_error": comparison.relative_error, "cosine": comparison.cosine,
                                "max_abs_diff": comparison.max_abs_diff, "finite": comparison.finite}
                         for name, comparison in self.comparisons.items()},
            "p50_ms": stats.p50_ms if stats else None, "p90_ms": stats.p90_ms if stats else None,
            "throughput_img_per_s": stats.throughput_img_per_s if stats else None, "latency_mode": self.latency_mode,
            "peak_memory_bytes": self.peak_memory_bytes, "peak_memory_note": self.peak_memory_note,
            "determinism": determinism.to_dict() if determinism is not None else None,
            "worker": self.worker, "visible_devices": self.visible_devices,
            "sweep": self.sweep.to_dict() if self.sweep is not None else None, "best_mfu": self.best_mfu,
            "soak": soak.to_dict() if soak is not None else None, "profile_top": self.profile_top,
            "state_before": self.state_before.to_dict() if self.state_before is not None else None,
            "state_after": self.state_after.to_dict() if self.state_after is not None else None,
        }


@dataclass
class ServerSection:
    """A whole-server run: every listed card against the one CPU reference, and the server's verdict."""

    #: the --device spec (npu:all, npu:0,2,5)
    spec: str
    #: card labels in the order listed
    listed: list[str] = field(default_factory=list)
    cards: dict[str, CardRecord] = field(default_factory=dict)
    #: "parallel" (every card timed at once, one xdist worker each) or "sequential" (one card at a time)
    timing_mode: str = "sequential"
    #: why the cards' own state (vendor tool) is missing, where it is (None: read)
    state_note: str | None = None
    #: how many cards were timed at the same time (parallel: one per xdist worker; sequential: 1)
    timed_at_once: int | None = None

    SCHEMA = closed({"spec": STRING, "listed": array(STRING), "verdict": {"enum": [CARD_PASS, CARD_FAIL]},
                     "failing_cards": array(STRING), "cards": array(CardRecord.SCHEMA),
                     "timing_mode": {"enum": ["parallel", "sequential"]}, "p50_spread": METRIC,
                     "state_note": OPTIONAL_STRING, "timed_at_once": OPTIONAL_COUNT},
                    optional=("timing_mode", "p50_spread", "state_note", "timed_at_once"))  # since issue 22

    def card(self, label: str, name: str = "") -> CardRecord:
        record = self.cards.setdefault(label, CardRecord(card=label))
        record.name = record.name or name
        return record

    def record(self, label: str, **figures: Any) -> CardRecord:
        """Figures of card ``label`` into its row (CardRecord fields; a latency with how the cards were timed)."""
        row = self.card(label)
        for name, value in figures.items():
            setattr(row, name, value)
        if "latency" in figures:
            row.latency_mode = self.timing_mode
        return row

    def rows(self) -> list[CardRecord]:
        return [self.cards.get(label) or CardRecord(card=label) for label in self.listed]

    @property
    def failing_cards(self) -> list[str]:
        """The listed cards that are not PASS: failed, or never tested (a card that ran nothing is not signed off)."""
        return [row.card for row in self.rows() if row.verdict != CARD_PASS]

    @property
    def p50_ms(self) -> dict[str, float | None]:
        """Each listed card's p50 latency (None where it was not timed)."""
        return {row.card: row.latency.p50_ms if row.latency is not None else None for row in self.rows()}

    @property
    def p50_spread(self) -> float | None:
        """(slowest card's p50 / fastest card's p50) - 1; None with fewer than two timed cards."""
        from .server_checks import spread

        return spread(self.p50_ms)

    def to_dict(self, determinism: Mapping[str, DeterminismResult] | None = None,
                soak: Mapping[str, SoakResult] | None = None) -> dict[str, Any]:
        determinism, soak = determinism or {}, soak or {}
        return {"spec": self.spec, "listed": list(self.listed),
                "verdict": CARD_FAIL if self.failing_cards else CARD_PASS, "failing_cards": self.failing_cards,
                "cards": [row.to_dict(determinism.get(row.card), soak.get(row.card)) for row in self.rows()],
                "timing_mode": self.timing_mode, "p50_spread": self.p50_spread, "state_note": self.state_note,
                "timed_at_once": self.timed_at_once}


# -- compile -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CompileSection:
    """Graph mode: torch.compile against the reference and eager, or why it could not run."""

    skipped: str | None = None
    backend: str | None = None
    compile_seconds: float | None = None
    accuracy: TensorComparison | None = None
    eager: LatencyStats | None = None
    compiled: LatencyStats | None = None
    speedup_vs_eager: float | None = None

    SCHEMA = {"oneOf": [
        closed({"skipped": STRING}),
        closed({"backend": STRING, "compile_seconds": NUMBER, "accuracy": ref("tensorComparison"),
                "eager": ref("latencyStatsRaw"), "compiled": ref("latencyStatsRaw"), "speedup_vs_eager": METRIC}),
    ]}

    def to_dict(self) -> dict[str, Any]:
        if self.skipped is not None:
            return {"skipped": self.skipped}
        if self.accuracy is None or self.eager is None or self.compiled is None:
            raise ValueError("a compile section that ran needs its accuracy, eager and compiled figures")
        return {"backend": self.backend, "compile_seconds": self.compile_seconds,
                "accuracy": self.accuracy.to_dict(), "eager": self.eager.to_dict(),
                "compiled": self.compiled.to_dict(), "speedup_vs_eager": self.speedup_vs_eager}


# -- nightly -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BaselineUsed:
    """The --baseline entry this run is compared with, and the [regression] limits."""

    name: str
    key: str
    saved_at: str
    run_id: str
    limits: RegressionLimits

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "saved_at": self.saved_at, "run_id": self.run_id,
                "limits": vars(self.limits)}


@dataclass(frozen=True)
class SavedBaseline:
    """What --save-baseline did: saved to ``path`` under ``key``, or not, and why."""

    name: str
    saved: bool
    reason: str | None = None
    path: str | None = None
    key: str | None = None
    #: the figures this run measured and saved (``latency.device``, ``accuracy.pooler_output``), and those the
    #: entry keeps from earlier runs because this one did not measure them
    figures: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        if self.saved:
            return {"name": self.name, "saved": True, "path": self.path, "key": self.key,
                    "figures": list(self.figures), "kept": list(self.kept)}
        return {"name": self.name, "saved": False, "reason": self.reason}


@dataclass
class NightlySection:
    """The nightly options' outcome: the required device, its failures, the baseline and its checks."""

    required_device: str | None = None
    failures: list[str] = field(default_factory=list)
    baseline: BaselineUsed | None = None
    #: node id -> that test's regression checks
    regression: dict[str, list[RegressionCheck]] = field(default_factory=dict)
    saved_baseline: SavedBaseline | None = None

    SCHEMA = closed({
        "required_device": OPTIONAL_STRING,
        "failures": array(STRING),
        "baseline": optional(closed({"name": STRING, "key": STRING, "saved_at": STRING, "run_id": STRING,
                                     "limits": closed({"max_latency_regression_percent": NUMBER,
                                                       "max_relative_error_increase": NUMBER})})),
        "regression": mapping(array(ref("regressionCheck"))),
        "saved_baseline": {"oneOf": [
            {"type": "null"},
            closed({"name": STRING, "saved": {"const": False}, "reason": STRING}),
            closed({"name": STRING, "saved": {"const": True}, "path": STRING, "key": STRING,
                    "figures": array(STRING), "kept": array(STRING)},
                   required=["name", "saved", "path", "key"]),  # figures/kept: since baseline format 2
        ]},
    })

    def to_dict(self) -> dict[str, Any]:
        return {"required_device": self.required_device, "failures": list(self.failures),
                "baseline": self.baseline.to_dict() if self.baseline else None,
                "regression": {nodeid: [check.to_dict() for check in checks]
                               for nodeid, checks in self.regression.items()},
                "saved_baseline": self.saved_baseline.to_dict() if self.saved_baseline else None}


# -- utilisation ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PeakRecord:
    """The peak TFLOP/s MFU is measured against (acceptance.flops.peak_for) and for which device and dtype."""

    tflops: float | None
    source: str
    measured: bool
    device: str
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        return {"tflops": self.tflops, "source": self.source, "measured": self.measured, "device": self.device,
                "dtype": self.dtype}


@dataclass
class UtilisationSection:
    """FLOPs per forward at the run's input and the peak used for MFU (each set by its own fixture or test)."""

    peak: PeakRecord | None = None
    flops_per_forward: int | None = None
    batch_size: int | None = None
    resolution: int | None = None

    SCHEMA = closed({"peak": closed({"tflops": METRIC, "source": STRING, "measured": BOOL, "device": STRING,
                                     "dtype": STRING}),
                     "flops_per_forward": COUNT, "batch_size": POSITIVE, "resolution": POSITIVE},
                    required=[], dependentRequired={"flops_per_forward": ["batch_size", "resolution"]})

    @property
    def recorded(self) -> bool:
        return self.peak is not None or self.flops_per_forward is not None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.peak is not None:
            data["peak"] = self.peak.to_dict()
        if self.flops_per_forward is not None:
            data.update({"flops_per_forward": self.flops_per_forward, "batch_size": self.batch_size,
                         "resolution": self.resolution})
        return data


# -- reference (the CPU float32 reference, cached or computed) ----------------------------------------------

CACHE_USE_SCHEMA = closed({
    "kind": STRING, "source": {"enum": ["cached", "computed"]}, "reason": STRING, "from_run": OPTIONAL_STRING,
    "created_at": OPTIONAL_STRING, "seconds": NUMBER, "stored": BOOL, "digest": STRING,
    "key": {"type": "object"},
})


@dataclass
class ReferenceSection:
    """Where each CPU reference result of the run came from (acceptance.reference_cache.CacheUse)."""

    mode: str = "on"
    cache_dir: str | None = None
    uses: list[Any] = field(default_factory=list)
    #: this run's id: a part it stored and read again is reused, not cached from an earlier run
    run_id: str | None = None

    SCHEMA = closed({"mode": {"enum": ["off", "on", "refresh"]}, "cache_dir": OPTIONAL_STRING,
                     "entries": array(CACHE_USE_SCHEMA), "cached": COUNT, "computed": COUNT,
                     "summary": STRING})

    @property
    def recorded(self) -> bool:
        return bool(self.uses)

    def summary(self) -> str:
        """One line: "reference: cached from run X (key ...)", or how many parts were computed and why.
        A part stored earlier in this same run and read again (the sweep's first point is the run's own
        input) is "reused in this run", not "cached from" it."""
        reused = [use for use in self.uses if use.source == "cached" and self.run_id and use.from_run == self.run_id]
        cached = [use for use in self.uses if use.source == "cached" and use not in reused]
        computed = [use for use in self.uses if use.source != "cached"]
        runs = sorted({str(use.from_run) for use in cached})
        keys = ", ".join(f"{use.kind} {use.key.short}" for use in self.uses)
        again = f", {len(reused)} reused in this run" if reused else ""
        if cached and not computed:
            return f"reference: cached from run {', '.join(runs)}{again} (keys: {keys})"
        if cached:
            return (f"reference: {len(cached)} part(s) cached from run {', '.join(runs)}, {len(computed)} computed "
                    f"({', '.join(sorted({use.reason for use in computed}))}){again} (keys: {keys})")
        if self.mode == "off":
            return f"reference: computed in this run (--reference-cache off: neither read nor stored){again}"
        reasons = ", ".join(sorted({use.reason for use in computed}))
        return f"reference: computed in this run ({reasons}; cache {self.mode}){again} (keys: {keys})"

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "cache_dir": self.cache_dir, "entries": [use.to_dict() for use in self.uses],
                "cached": sum(use.source == "cached" for use in self.uses),
                "computed": sum(use.source != "cached" for use in self.uses), "summary": self.summary()}


# -- profile (one profiled forward per side, acceptance/profiling.py) ----------------------------------------

#: the kinds operators are grouped by, in the order the reports list them
OPERATOR_KINDS = ("matmul/linear", "attention", "convolution", "normalisation", "elementwise",
                  "copies/format casts", "other")

OPERATOR_ROW_SCHEMA = closed({"name": STRING, "kind": {"enum": list(OPERATOR_KINDS)}, "calls": COUNT,
                              "total_ms": NUMBER, "mean_ms": NUMBER, "share": NUMBER})


@dataclass(frozen=True)
class OperatorRow:
    """One operator's self time in the profiled forward (summed over its calls)."""

    name: str
    kind: str
    calls: int
    total_ms: float
    #: total_ms / operators_ms of its side (the operators' self times add up to the whole)
    share: float

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "calls": self.calls, "total_ms": self.total_ms,
                "mean_ms": self.mean_ms, "share": self.share}


@dataclass(frozen=True)
class ProfileSide:
    """One side's profiled forward: its top operators, the kinds, and the trace file (or why there is none)."""

    side: str  # "device" or "cpu"
    device: str
    #: "cpu self time" or "device self time": what the table ranks by
    time_basis: str
    #: wall time of the profiled forward (synchronized), under the profiler
    forward_ms: float | None = None
    #: the sum of every operator's self time
    operators_ms: float = 0.0
    operator_count: int = 0
    rows: tuple[OperatorRow, ...] = ()
    #: kind -> (total_ms, share)
    kinds: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: operators only the device runs that a vendor fixes: format conversions, host-device copies, syncs
    device_only: tuple[OperatorRow, ...] = ()
    #: the trace file or folder, relative to the run folder (absolute when outside it)
    trace: str | None = None
    #: why the profiler could not run (then nothing else is set)
    error: str | None = None

    SCHEMA = closed({"side": {"enum": ["device", "cpu"]}, "device": STRING, "time_basis": STRING,
                     "forward_ms": {"type": ["number", "null"]}, "operators_ms": NUMBER, "coverage": METRIC,
                     "operator_count": COUNT, "operators": array(OPERATOR_ROW_SCHEMA),
                     "kinds": mapping(closed({"total_ms": NUMBER, "share": NUMBER})),
                     "device_only": array(OPERATOR_ROW_SCHEMA), "trace": OPTIONAL_STRING,
                     "error": OPTIONAL_STRING})

    @property
    def coverage(self) -> float | None:
        """operators_ms / forward_ms: how much of the profiled forward the table accounts for."""
        return self.operators_ms / self.forward_ms if self.forward_ms else None

    def top(self, count: int = 3) -> str:
        """"aten::addmm 41.2%, ..." of the ``count`` operators that take most of the time ('' without a table)."""
        return ", ".join(f"{row.name} {row.share:.1%}" for row in self.rows[:count])

    def to_dict(self) -> dict[str, Any]:
        return {"side": self.side, "device": self.device, "time_basis": self.time_basis,
                "forward_ms": self.forward_ms, "operators_ms": self.operators_ms, "coverage": self.coverage,
                "operator_count": self.operator_count, "operators": [row.to_dict() for row in self.rows],
                "kinds": {kind: {"total_ms": total, "share": share} for kind, (total, share) in self.kinds.items()},
                "device_only": [row.to_dict() for row in self.device_only], "trace": self.trace,
                "error": self.error}


@dataclass
class ProfileSection:
    """The device's profiled forward and the CPU reference's, for comparison (--profile on)."""

    device: ProfileSide | None = None
    cpu: ProfileSide | None = None
    batch_size: int = 1
    dtype: str = "float32"

    SCHEMA = closed({"device": optional(ProfileSide.SCHEMA), "cpu": optional(ProfileSide.SCHEMA),
                     "batch_size": POSITIVE, "dtype": STRING})

    @property
    def recorded(self) -> bool:
        return self.device is not None or self.cpu is not None

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device.to_dict() if self.device else None,
                "cpu": self.cpu.to_dict() if self.cpu else None, "batch_size": self.batch_size,
                "dtype": self.dtype}


#: the report's "sections": name -> schema fragment (latency is the report's "performance" instead)
SECTION_SCHEMAS: dict[str, Any] = {
    "diagnosis": DiagnosisSection.SCHEMA,
    "nightly": NightlySection.SCHEMA,
    "utilisation": UtilisationSection.SCHEMA,
    "sweep": SweepSection.SCHEMA,
    "compile": CompileSection.SCHEMA,
    "reference": ReferenceSection.SCHEMA,
    "profile": ProfileSection.SCHEMA,
    **PER_CARD_SCHEMA,
    "server": ServerSection.SCHEMA,
}
