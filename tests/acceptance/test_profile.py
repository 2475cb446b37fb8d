"""Where the forward's time goes: the device's operator profile and the CPU reference's (--profile on).

One untimed warm-up and one profiled forward per side, outside the timed runs.
The profile explains the latency figures; it is not a limit of its own, and a
profiler that cannot run says why in the report and fails nothing.
"""

import pytest

pytestmark = pytest.mark.profile


def test_operator_profile_recorded(operator_profile, record_property):
    for side in (operator_profile.cpu, operator_profile.device):
        if side.error and not side.rows:
            continue  # recorded in the report with the reason
        assert side.rows and side.operators_ms > 0, (
            f"{side.side} profile on {side.device}: {side.operator_count} operators with "
            f"{side.operators_ms:.3f} ms of {side.time_basis}; expected at least one operator with time > 0")
        record_property(f"profile_{side.side}_top", side.top(3))
        record_property(f"profile_{side.side}_coverage", side.coverage)
    problems = [f"{side.side}: {side.error}" for side in (operator_profile.cpu, operator_profile.device)
                if side.error]
    if problems:
        pytest.skip("operator profile incomplete: " + "; ".join(problems))
