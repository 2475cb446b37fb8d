"""No torch.compile backend for the device: graph mode skips and records why (the compile section's "skipped")."""

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    import acceptance.graph

    # before the test modules are imported, so test_compile's `from acceptance.graph import compile_backend` gets it
    acceptance.graph.compile_backend = lambda kind: (None, f"no torch.compile backend for {kind} in this self-test")
