"""pytest plugin for benchmarks/reference_cache.py: counts the CPU reference model's forwards in one run.

Loaded with ``-p benchmarks.forward_counter``; writes ``{"forwards", "seconds"}`` to the file named by
FORWARD_COUNT_FILE when the session ends. The hooks sit on the ``reference_model`` fixture's module
(deep copies of it, such as the fingerprint's float64 copy, carry them too): every CPU forward of the
reference checkpoint is counted, whichever test or fixture runs it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

COUNTS = {"forwards": 0, "seconds": 0.0}


def _attach(model) -> None:
    started: list[float] = []

    def before(module, args, kwargs=None):
        started.append(time.perf_counter())

    def after(module, args, output):
        COUNTS["forwards"] += 1
        COUNTS["seconds"] += time.perf_counter() - started.pop()

    model.register_forward_pre_hook(before)
    model.register_forward_hook(after)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    result = yield
    if fixturedef.argname == "reference_model":
        _attach(result)
    return result


def pytest_sessionfinish(session):
    target = os.environ.get("FORWARD_COUNT_FILE")
    if target:
        Path(target).write_text(json.dumps(COUNTS))
