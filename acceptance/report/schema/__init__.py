"""The JSON Schema of benchmark_report.json, shipped with the suite, and a validator for it.

One source of truth per part: benchmark_report.frame.json is the frame (the
run, model, device, accuracy ... blocks and the shared ``$defs``); the
"performance" block and every entry of "sections" are the schema fragments of
the section types in acceptance/sections.py, beside the ``to_dict()`` that
writes them, and of each feature plugin's own section (its FeatureSection),
composed into the frame here (``compose``).

benchmark_report.schema.json is that whole schema written out (``python -m
fixtures.schema`` regenerates it, since only the suite knows its features; CI
and a self-test fail when it is not current), so a dashboard or a CI step
validates a report with any JSON Schema validator and no code of the suite.
Every run folder gets a copy beside its report, which names it in ``$schema``.
``load_schema()`` reads that file: the schema a report is checked against is
the one it names.

jsonschema is imported only when a report is validated (the suite's own tests,
the fleet merge), so writing a report never depends on it.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from ...sections import DEFS, SECTION_SCHEMAS, LatencySection
from ..feature_section import FeatureSection

FRAME_FILE = Path(__file__).with_name("benchmark_report.frame.json")
#: the whole schema, generated from the frame and the section types (the file a report's "$schema" names)
SCHEMA_FILE = Path(__file__).with_name("benchmark_report.schema.json")


def compose(frame: Mapping[str, Any], features: Iterable[FeatureSection] = ()) -> dict[str, Any]:
    """The frame with the section types' fragments, and the features' sections, in place of its "performance" and
    "sections" placeholders."""
    schema = copy.deepcopy(dict(frame))
    properties = schema["properties"]
    properties["performance"] = copy.deepcopy(LatencySection.REPORT_SCHEMA)
    sections = copy.deepcopy(SECTION_SCHEMAS)
    for feature in features:
        if feature.name in sections:
            raise ValueError(f"feature section {feature.name!r} is already a section of the report")
        sections[feature.name] = copy.deepcopy(dict(feature.schema))
    properties["sections"] = {"type": "object", "properties": sections, "additionalProperties": False}
    clashes = sorted(set(DEFS) & set(schema["$defs"]))
    if clashes:
        raise ValueError(f"acceptance/sections.py DEFS redefine {clashes} of {FRAME_FILE.name}")
    schema["$defs"].update(copy.deepcopy(DEFS))
    return schema


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The whole schema, as published (benchmark_report.schema.json)."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def schema_text(features: Iterable[FeatureSection] = ()) -> str:
    """The whole schema, composed from its sources and ``features``, as benchmark_report.schema.json holds it."""
    frame = json.loads(FRAME_FILE.read_text(encoding="utf-8"))
    return json.dumps(compose(frame, features), indent=1, ensure_ascii=False) + "\n"


def _errors(schema: Mapping[str, Any], value: Any) -> list[str]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(value), key=lambda error: list(error.absolute_path))
    return [f"at /{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors]


def schema_errors(report: Any) -> list[str]:
    """Every way ``report`` breaks the schema, as "at <path>: <message>" lines (empty when valid)."""
    return _errors(load_schema(), report)


def fragment_errors(fragment: Mapping[str, Any], value: Any) -> list[str]:
    """Every way ``value`` breaks one section's fragment (resolved against the whole schema's $defs)."""
    return _errors({**fragment, "$defs": load_schema()["$defs"]}, value)
