"""The run's overall verdict: PASS, FAIL or NOT VALID FOR SIGN-OFF, with every reason listed.

FAIL wins over NOT VALID FOR SIGN-OFF: a check that failed is the most useful
thing to show, even on a run that could not have signed anything off. A run is
only PASS when every check that ran passed, the checks the sign-off needs
(``[signoff] required_markers`` in the thresholds file) ran and passed, the
session finished, the weights are real and the target is an accelerator.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..sections import CARD_FAIL, CARD_NOT_RUN, CARD_PASS

if TYPE_CHECKING:  # keeps the fleet merge free of torch: only annotations need these
    from ..results import CheckRecord
    from ..sections import ServerSection
    from ..thresholds import Thresholds

PASS = "PASS"
FAIL = "FAIL"
NOT_VALID = "NOT VALID FOR SIGN-OFF"
STATUSES = (PASS, FAIL, NOT_VALID)

#: pytest exit statuses (ExitCode names) after which every check that was asked for has run
COMPLETE_EXIT_STATUSES = ("OK", "TESTS_FAILED")


@dataclass(frozen=True)
class SignoffRules:
    """What a run needs before it can sign off (the ``[signoff]`` table of the thresholds file)."""

    required_markers: tuple[str, ...]


def signoff_rules(thresholds: Thresholds) -> SignoffRules:
    """The rules of ``[signoff]`` (checked when the file was read); no table means no marker is required."""
    return SignoffRules(required_markers=thresholds.signoff_markers)


@dataclass(frozen=True)
class Verdict:
    status: str
    #: why the run is not PASS, worst first (empty for PASS)
    reasons: tuple[str, ...]
    #: outcome -> number of checks
    counts: Mapping[str, int]

    @property
    def valid_for_signoff(self) -> bool:
        """True only for PASS: FAIL and NOT VALID both leave the hardware unsigned."""
        return self.status == PASS

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "valid_for_signoff": self.valid_for_signoff,
                "reasons": list(self.reasons), "counts": dict(self.counts)}


def _describe(checks: Iterable[CheckRecord], limit: int = 5) -> str:
    checks = list(checks)
    parts = [f"{check.nodeid}" + (f" ({check.message})" if check.message else "") for check in checks[:limit]]
    if len(checks) > limit:
        parts.append(f"... and {len(checks) - limit} more")
    return "; ".join(parts)


def decide(checks: Mapping[str, CheckRecord], *, architecture_only: bool, device_kind: str | None,
           exit_status: str, rules: SignoffRules, requirement_failures: Iterable[str] = (),
           server: ServerSection | None = None, simulation: str | None = None) -> Verdict:
    """The overall verdict from the recorded checks and the facts that decide whether they can sign off.

    ``device_kind`` is None when the session ended before a device was resolved;
    ``exit_status`` is the name of pytest's ExitCode (OK, TESTS_FAILED, INTERRUPTED, ...);
    ``requirement_failures`` are reasons a run fails although no check did (nightly --require-device);
    ``simulation``: what simulates the device under test (None on hardware): its figures prove nothing
    about a card;
    ``server``, in a whole-server run (--device npu:all), names each card that is not PASS first:
    the server passes only if every listed card does.
    """
    records = list(checks.values())
    counts = Counter(check.outcome for check in records)
    failures: list[str] = []
    invalid: list[str] = []

    untested: list[str] = []
    for row in server.rows() if server is not None else ():
        if row.verdict == CARD_FAIL:
            more = f" (and {len(row.failures) - 1} more)" if len(row.failures) > 1 else ""
            failures.append(f"card {row.card} ({row.name or 'unknown'}) FAILS: {row.failures[0]}{more}")
        elif row.verdict == CARD_NOT_RUN:
            untested.append(f"card {row.card} ({row.name or 'unknown'}): no test passed on it")
    failed = [check for check in records if check.outcome == "failed"]
    errors = [check for check in records if check.outcome == "error"]
    if failed:
        failures.append(f"{len(failed)} check(s) failed: {_describe(failed)}")
    if errors:
        failures.append(f"{len(errors)} check(s) raised an error outside the test body: {_describe(errors)}")
    failures.extend(requirement_failures)

    if exit_status not in COMPLETE_EXIT_STATUSES:
        if exit_status == "INTERRUPTED":
            invalid.append("the session was interrupted: checks after that point did not run")
        elif exit_status == "RUNNING":
            invalid.append("the session had not finished when this report was written (still running, or killed)")
        elif exit_status == "NO_TESTS_COLLECTED":
            invalid.append("no tests were collected")
        else:
            invalid.append(f"the session ended early (pytest exit status {exit_status}; see the terminal output)")
    if device_kind is None:
        invalid.append("no device under test was resolved: nothing ran")
    elif device_kind == "cpu":
        invalid.append("the device under test is the CPU: no accelerator was tested")
    if simulation:
        invalid.append(f"the device under test is a {simulation.split(':')[0]}: no hardware was tested")
    if architecture_only:
        invalid.append("the weights are the built-in seeded random ones (architecture-only), "
                       "not the published checkpoint: pass --model-path")
    if not records:
        invalid.append("no checks ran")
    invalid.extend(untested)
    per_card: list[str] = []
    for marker in rules.required_markers:
        outcomes = {check.outcome for check in records if marker in check.markers}
        if "passed" in outcomes and server is not None:  # passed somewhere: on every passing card too?
            lacking = [row.card for row in server.rows() if row.verdict == CARD_PASS and not any(
                marker in check.markers and check.outcome == "passed" for check in row.checks.values())]
            if lacking:
                per_card.append(f"no '{marker}' check passed on card(s) {', '.join(lacking)}: the sign-off needs "
                                "one on every listed card")
        if outcomes & {"failed", "error"} or "passed" in outcomes:
            continue  # a failure is already a reason; a pass is what is needed
        how = "was skipped" if outcomes else "did not run (deselected?)"
        invalid.append(f"no '{marker}' check passed: the sign-off needs one, and it {how}")
    invalid.extend(per_card)

    status = FAIL if failures else NOT_VALID if invalid else PASS
    return Verdict(status=status, reasons=tuple(failures + invalid), counts=dict(sorted(counts.items())))
