"""The device model returns one NaN and one +Inf in last_hidden_state, as a faulty kernel would.

The CPU reference is untouched, so the tests must name the device side and the exact indices.
"""

import pytest

NAN_AT = (0, 7, 3)
INF_AT = (0, 150, 60)


def _poison(module, inputs, output):
    output.last_hidden_state[NAN_AT] = float("nan")
    output.last_hidden_state[INF_AT] = float("inf")
    return output


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    result = yield
    if fixturedef.argname == "device_model":
        result.register_forward_hook(_poison)
    return result
