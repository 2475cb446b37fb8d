"""Model invariants that hold on every device: pooler_output is a token of last_hidden_state (the family says
which, and why: a ViT's final CLS token)."""

import pytest

from acceptance.metrics import at_most

pytestmark = pytest.mark.consistency


@pytest.mark.parametrize("side", ("reference", "device"))
def test_pooler_output_is_cls_token(side, request, device, run_config, checkpoint, record_property):
    family = checkpoint.family
    token = family.pooler_token
    if token is None:
        pytest.skip(f"{family.title}: no invariant between pooler_output and last_hidden_state "
                    f"({family.consistency_reason()})")
    outputs = request.getfixturevalue(f"{side}_outputs")
    pooled, cls = outputs["pooler_output"], outputs["last_hidden_state"][:, token]
    diff = (pooled.float() - cls.float()).abs().max().item()
    limit = run_config.thresholds.max_pooler_cls_abs_diff
    record_property("max_abs_diff", diff)
    record_property("allowed_max_abs_diff", limit)
    assert at_most(diff, limit), (
        f"{side}: pooler_output differs from last_hidden_state[:, {token}] ({family.token_zero} token) by max "
        f"|diff| {diff:.3e}; allowed {limit:.1e} (consistency.max_pooler_cls_abs_diff in "
        f"{run_config.thresholds_path}); expected because {family.consistency_reason()}")
