"""Merging the results of several processes of one run into one RunResults.

Under pytest-xdist the tests run in worker processes: each fills its own
RunResults (checks, comparisons, outputs, sections, latency) and the
controller, which writes the one JSON, HTML and JUnit of the run, merges what
every worker sends (fixtures/workers.py carries it). The rule is the same for
every field, so a section added to RunResults later merges without code here:

- the run's own facts (options, start time, host, versions, device, checkpoint)
  are the controller's: it resolved them itself at session start;
- checks: the worst outcome of a node id wins (as between a test's phases); at
  equal severity the worker's record wins over the controller's provisional one
  (only the worker knows the test's markers);
- dicts merge key by key (a card's, a side's or an output's entry), lists gain
  the entries they lack, a mutable section (a non-frozen dataclass) merges field
  by field; an empty value (None, "", {}, []) never replaces a recorded one;
  between two recorded leaf values the later part wins.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

from .results import SEVERITY, RunResults

#: fields the controller resolved itself at session start (the same in every worker of one card)
CONTROLLER_FIELDS = ("config", "started_at", "finished_at", "device", "checkpoint", "versions", "host", "checks")


def _empty(value: Any) -> bool:
    # explicit types only: a tensor or an array must never be compared with ==
    return value is None or (isinstance(value, (str, dict, list, tuple)) and len(value) == 0)


def _mutable_section(value: Any) -> bool:
    return is_dataclass(value) and not isinstance(value, type) and not getattr(value, "__dataclass_params__").frozen


def merged(into: Any, part: Any) -> Any:
    """``part`` merged into ``into`` by the module's rule (``into`` may be changed in place)."""
    if _empty(part):
        return into
    if _empty(into):
        return part
    if isinstance(into, dict) and isinstance(part, dict):
        for key, value in part.items():
            into[key] = merged(into[key], value) if key in into else value
        return into
    if isinstance(into, list) and isinstance(part, list):
        return into + [entry for entry in part if entry not in into]
    if _mutable_section(into) and type(into) is type(part):
        for item in fields(into):
            setattr(into, item.name, merged(getattr(into, item.name), getattr(part, item.name)))
        return into
    return part


def merge_results(into: RunResults, part: RunResults) -> RunResults:
    """``part`` (one worker's results) merged into ``into`` (the controller's), in place."""
    for nodeid, record in part.checks.items():
        previous = into.checks.get(nodeid)
        if previous is None or SEVERITY[record.outcome] >= SEVERITY[previous.outcome]:
            into.checks[nodeid] = record
    for item in fields(RunResults):
        if item.name not in CONTROLLER_FIELDS:
            setattr(into, item.name, merged(getattr(into, item.name), getattr(part, item.name)))
    return into
