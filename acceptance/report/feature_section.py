"""A feature's own section of the report: what a feature plugin declares so the report carries it whole.

A feature (a plugin module in fixtures/) keeps its results in a section object
of its own type in ``RunResults.feature_sections`` (anything with ``recorded``
and ``to_dict()``), and declares it with a ``FeatureSection``: its key under the
report's "sections", the JSON Schema of what ``to_dict()`` writes, and how the
HTML summary draws it from the report dict (so an old report file draws the
same). The JSON report, the published schema (fixtures/schema.py) and the HTML
summary are assembled from these declarations; none of them names a feature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol


class SectionResults(Protocol):
    """A feature's results, as ``RunResults.feature_sections`` holds them (a mutable dataclass merges across xdist
    workers field by field: acceptance/merge.py)."""

    @property
    def recorded(self) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FeatureSection:
    #: the key under the report's "sections" (and in ``RunResults.feature_sections``)
    name: str
    #: the JSON Schema of the section's ``to_dict()`` (draft 2020-12; may use the schema's shared ``$defs``)
    schema: Mapping[str, Any]
    #: the HTML summary's part for it, drawn from the whole report dict ("" when there is nothing to show)
    html: Callable[[Mapping[str, Any]], str] | None = None
    #: the part of the summary it follows (a renderer's name in acceptance/report/html.py ``SECTIONS``)
    html_after: str = "scale_html"
