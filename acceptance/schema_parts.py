"""The JSON Schema (draft 2020-12) building blocks a section type spells its fragment with.

Every section type (acceptance/sections.py, or a feature's own in fixtures/features/) keeps the JSON Schema of
what its ``to_dict()`` writes beside it, built from these. ``METRIC`` and ``ref`` point into the published
schema's shared ``$defs`` (benchmark_report.frame.json, and ``DEFS`` in acceptance/sections.py).
"""

from __future__ import annotations

from typing import Any, Mapping

METRIC = {"$ref": "#/$defs/metric"}  # a number, "NaN"/"Infinity"/"-Infinity", or null
STRING = {"type": "string"}
BOOL = {"type": "boolean"}
NUMBER = {"type": "number"}
COUNT = {"type": "integer", "minimum": 0}
POSITIVE = {"type": "integer", "minimum": 1}
OPTIONAL_STRING = {"type": ["string", "null"]}
OPTIONAL_COUNT = {"type": ["integer", "null"], "minimum": 0}
OPTIONAL_INT = {"type": ["integer", "null"]}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def optional(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"anyOf": [dict(schema), {"type": "null"}]}


def array(items: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": dict(items)}


def mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": dict(values)}


def closed(properties: Mapping[str, Any], required: Any = None, optional: tuple[str, ...] = (),
           **extra: Any) -> dict[str, Any]:
    """An object with exactly these properties (all required unless ``required`` names fewer, or ``optional``
    names those that may be absent: keys a report of an earlier release lacks)."""
    required = [name for name in properties if name not in optional] if required is None else required
    return {"type": "object", "required": list(required),
            "properties": dict(properties), "additionalProperties": False, **extra}
