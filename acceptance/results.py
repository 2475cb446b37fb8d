"""The run's results: filled by the tests, read by the terminal summary and the reports.

One object per session (kept on the pytest config, not in a global). Other
parts of the suite fill their own typed sections (acceptance/sections.py):
latency, diagnosis, sweep, soak and determinism (per card), compile, nightly
and utilisation; a feature plugin keeps a section of its own type in
``feature_sections`` (acceptance/report/feature_section.py). ``sections()``
gives their JSON.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from .sections import (
    CompileSection,
    DeterminismResult,
    DiagnosisSection,
    LatencySection,
    NightlySection,
    ProfileSection,
    ReferenceSection,
    ServerSection,
    SoakResult,
    SweepSection,
    UtilisationSection,
)

if TYPE_CHECKING:  # annotations only: the reports are built and read on hosts without torch
    from .metrics import TensorComparison
    from .report.feature_section import SectionResults

SectionType = TypeVar("SectionType")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


SEVERITY = {"passed": 0, "skipped": 1, "xfailed": 1, "xpassed": 1, "failed": 2, "error": 3}


@dataclass
class CheckRecord:
    """The outcome of one test, as the reports show it."""

    nodeid: str
    outcome: str  # passed, failed, skipped, error
    duration_s: float
    message: str = ""
    markers: tuple[str, ...] = ()


@dataclass
class RunResults:
    config: dict[str, Any]
    started_at: str = field(default_factory=now_iso)
    finished_at: str | None = None
    device: dict[str, Any] = field(default_factory=dict)
    checkpoint: dict[str, Any] = field(default_factory=dict)
    image: dict[str, Any] = field(default_factory=dict)
    preprocessor: str = ""
    versions: dict[str, Any] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    #: side ("reference" or "device") -> output name -> summary (shape, dtype, mean, std)
    outputs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    comparisons: dict[str, TensorComparison] = field(default_factory=dict)
    checks: dict[str, CheckRecord] = field(default_factory=dict)
    latency: LatencySection = field(default_factory=LatencySection)
    diagnosis: DiagnosisSection = field(default_factory=DiagnosisSection)
    sweep: SweepSection | None = None
    #: card label -> that card's soak / determinism result
    soak: dict[str, SoakResult] = field(default_factory=dict)
    determinism: dict[str, DeterminismResult] = field(default_factory=dict)
    compile: CompileSection | None = None
    nightly: NightlySection | None = None
    utilisation: UtilisationSection = field(default_factory=UtilisationSection)
    #: where the CPU reference results came from (acceptance/reference_cache.py)
    reference: ReferenceSection = field(default_factory=ReferenceSection)
    #: one profiled forward per side (acceptance/profiling.py, --profile)
    profile: ProfileSection = field(default_factory=ProfileSection)
    #: the sections of the feature plugins (fixtures/), by their key in the report's "sections"
    feature_sections: dict[str, SectionResults] = field(default_factory=dict)
    #: a whole-server run (--device npu:all): each card's row and the server verdict
    server: ServerSection | None = None

    @property
    def architecture_only(self) -> bool:
        return bool(self.checkpoint.get("architecture_only", False))

    def section(self, name: str, kind: Callable[[], SectionType]) -> SectionType:
        """The feature section ``name``, created empty (``kind()``) the first time it is asked for."""
        if name not in self.feature_sections:
            self.feature_sections[name] = kind()  # type: ignore[assignment]
        return self.feature_sections[name]  # type: ignore[return-value]

    def record_card(self, label: str, **figures: Any) -> None:
        """In a whole-server run, card ``label``'s figures into its row (CardRecord fields); nothing outside one."""
        if self.server is not None:
            self.server.record(label, **figures)

    def leads(self, label: str) -> bool:
        """Whether device ``label``'s figures are the report's session-level ones: always outside a whole-server
        run; in one, those of the session's own device (the accuracy table shows the first card)."""
        return self.server is None or label == self.device.get("device")

    def record_comparison(self, label: str, comparison: TensorComparison) -> None:
        """An output of device ``label`` against the reference: in its card's row, and the report's own if it leads."""
        if self.server is not None:
            self.server.card(label).comparisons[comparison.name] = comparison
        if self.leads(label):
            self.comparisons[comparison.name] = comparison

    def record_check(self, record: CheckRecord) -> None:
        """Keep the worst outcome of a test's phases (setup, call, teardown)."""
        previous = self.checks.get(record.nodeid)
        if previous is None or SEVERITY[record.outcome] > SEVERITY[previous.outcome]:
            self.checks[record.nodeid] = record

    def sections(self) -> dict[str, Any]:
        """Every section that recorded something, as plain data (absent ones are left out)."""
        found: dict[str, Any] = {}
        if self.latency.recorded:
            found["latency"] = self.latency.to_dict()
        if self.diagnosis.recorded:
            found["diagnosis"] = self.diagnosis.to_dict()
        if self.nightly is not None:
            found["nightly"] = self.nightly.to_dict()
        if self.utilisation.recorded:
            found["utilisation"] = self.utilisation.to_dict()
        if self.sweep is not None:
            found["sweep"] = self.sweep.to_dict()
        if self.compile is not None:
            found["compile"] = self.compile.to_dict()
        if self.reference.recorded:
            found["reference"] = self.reference.to_dict()
        if self.profile.recorded:
            found["profile"] = self.profile.to_dict()
        if self.server is not None:
            found["server"] = self.server.to_dict(self.determinism, self.soak)
        for name, per_card in (("determinism", self.determinism), ("soak", self.soak)):
            if per_card:
                found[name] = {card: result.to_dict() for card, result in per_card.items()}
        for name, section in self.feature_sections.items():
            if section.recorded:
                found[name] = section.to_dict()
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "device": self.device,
            "checkpoint": self.checkpoint,
            "image": self.image,
            "preprocessor": self.preprocessor,
            "versions": self.versions,
            "host": self.host,
            "outputs": self.outputs,
            "comparisons": {name: comparison.to_dict() for name, comparison in self.comparisons.items()},
            "checks": {nodeid: vars(check) | {"markers": list(check.markers)} for nodeid, check in self.checks.items()},
            "sections": self.sections(),
        }
