"""A simulated Ascend host: torch's ``npu`` device in pure Python, for hosts without Ascend cards.

Importing this package does what ``import torch_npu`` does on an Ascend host: ``npu:0`` ...
``npu:N-1`` become real torch devices (tensors on them are device tensors: mixing cards, or a
card and the CPU, raises), ``torch.npu`` and a ``torch_npu`` package appear with the functions
the suite uses, and the cards' memory, precision options, profiler and faults behave as
described in docs/simulated-npu.md. Operators run on the host CPU, so nothing about speed is
real: it is a test device, never auto-selected, and every report of a run on it is
NOT VALID FOR SIGN-OFF.

    pytest -p simulated_npu --device npu                      # the suite on one simulated card
    SIMULATED_NPU_CARDS=8 pytest -p simulated_npu --device npu:all -n 8

Needs torch >= 2.10 (torch.utils.backend_registration._setup_privateuseone_for_python_backend).
"""

from __future__ import annotations

from typing import Any

from . import modules  # noqa: F401 - its hooks join the runtime when it starts
from .api import SIMULATION, install
from .settings import read as read_settings

install()


def pytest_configure(config: Any) -> None:
    """Under pytest (-p simulated_npu): a bad SIMULATED_NPU_* value is a usage error, said in one line."""
    import pytest

    try:
        read_settings()
    except ValueError as error:
        raise pytest.UsageError(f"{error} (simulated NPU, docs/simulated-npu.md)") from None


def pytest_report_header(config: Any) -> str:
    settings = read_settings()
    faults = "; ".join(f"{card}: {fault.describe()}" for card, fault in sorted(settings.faults.items()))
    return (f"{SIMULATION}: {settings.physical_cards} card(s) of {settings.chip}, visible {list(settings.visible)}"
            + (f"; faults {faults}" if faults else ""))


__all__ = ["SIMULATION", "install"]
