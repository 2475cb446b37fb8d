"""Registers a test-only published reference (a JSON file named by SELFTEST_PUBLISHED_REFERENCE) as the
checkpoint family's only one, so the reference check runs on a tiny checkpoint with values computed from it."""

from __future__ import annotations

import json
import os

import pytest

from acceptance.models import PublishedReference, PublishedSlice


def load_reference(path: str) -> PublishedReference:
    data = json.loads(open(path, encoding="utf-8").read())
    slices = tuple(PublishedSlice(item["output"], tuple(item["index"]), tuple(item["values"]))
                   for item in data.pop("slices"))
    return PublishedReference(slices=slices, tensor_shapes={k: tuple(v) for k, v in data.pop("tensor_shapes").items()},
                              input_size=tuple(data.pop("input_size")), **data)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    result = yield
    if fixturedef.argname == "published_references":  # in place: pytest caches the object the fixture returned
        result[:] = [load_reference(os.environ["SELFTEST_PUBLISHED_REFERENCE"])]
    return result
