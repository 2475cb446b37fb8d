"""The JSON Schema of benchmark_report.json, shipped with the suite, and a validator for it.

jsonschema is imported only when a report is validated (the suite's own tests,
the fleet merge), so writing a report never depends on it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("benchmark_report.schema.json")


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def schema_errors(report: Any) -> list[str]:
    """Every way ``report`` breaks the schema, as "at <path>: <message>" lines (empty when valid)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(report), key=lambda error: list(error.absolute_path))
    return [f"at /{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors]
