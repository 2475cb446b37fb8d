"""Model invariants that hold on every device: pooler_output is the final CLS token."""

import pytest

from acceptance.metrics import at_most

pytestmark = pytest.mark.consistency


@pytest.mark.parametrize("side", ("reference", "device"))
def test_pooler_output_is_cls_token(side, request, run_config, record_property):
    outputs = request.getfixturevalue(f"{side}_outputs")
    pooled, cls = outputs["pooler_output"], outputs["last_hidden_state"][:, 0]
    diff = (pooled.float() - cls.float()).abs().max().item()
    limit = run_config.thresholds.max_pooler_cls_abs_diff
    record_property("max_abs_diff", diff)
    record_property("allowed_max_abs_diff", limit)
    assert at_most(diff, limit), (
        f"{side}: pooler_output differs from last_hidden_state[:, 0] by max |diff| {diff:.3e}; "
        f"allowed {limit:.1e} (consistency.max_pooler_cls_abs_diff in {run_config.thresholds_path})")
