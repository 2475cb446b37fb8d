"""Published reference values: the CPU float32 reference itself against the outputs the publishers report.

Runs when the checkpoint is recognised (config.json and tensor shapes) as one
whose outputs are recorded in its family file (acceptance/models/) and --image
is the image those values are for; otherwise it skips, saying which is missing.
A device that agrees with a wrong reference (another transformers version,
other preprocessing) is then not signed off.
"""

from __future__ import annotations

import pytest

from acceptance.reference import (
    compare_with_published,
    max_deviation,
    plan_reference_check,
)

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def published_references(checkpoint):
    """The family's published values (acceptance/models/<family>.py), as a list the suite's own tests can
    replace with a test-only entry."""
    return list(checkpoint.family.references)


def test_cpu_reference_matches_published_values(checkpoint, image, published_references, pixel_values,
                                                reference_outputs, record_property):
    plan = plan_reference_check(checkpoint, image.pixel_sha256, published_references)
    if plan.reference is None:
        pytest.skip(f"published reference values not checked: {plan.reason}")
    reference = plan.reference
    record_property("published_checkpoint", reference.checkpoint)
    record_property("published_source", reference.source)
    record_property("published_max_abs_diff", max_deviation(reference_outputs, reference))
    problems = compare_with_published(reference_outputs, pixel_values.shape, reference)
    assert not problems, (f"the CPU float32 reference disagrees with the published outputs ({plan.reason}), so no "
                          "device can be signed off against it: " + "; ".join(problems))
