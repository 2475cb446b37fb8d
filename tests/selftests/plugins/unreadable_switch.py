"""The device has a precision switch the framework cannot read back (as an older runtime without its getter):
strict mode names it, the settings read back lack it."""

import pytest

from acceptance.devices.cpu import CpuBackend


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    strict = CpuBackend.strict_settings
    CpuBackend.strict_settings = lambda self: {**strict(self), "matmul_allow_hf32": False}
