"""benchmarks/harness_check.py's verdict: the median of paired per-cycle ratios, with a distribution-free
95 % interval, judged against the tolerance (hand-computed cases; the benchmark itself runs by hand)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def harness_check():
    spec = importlib.util.spec_from_file_location("harness_check", ROOT / "benchmarks" / "harness_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("n, low, high", [(6, 0, 5), (10, 1, 8), (25, 7, 17), (50, 17, 32)])
def test_median_interval_uses_the_binomial_order_statistics(harness_check, n, low, high):
    # the textbook 95 % intervals of the median: ranks (1, 6), (2, 9), (8, 18), (18, 33), counted from 1
    assert harness_check.median_interval([float(i) for i in range(n)]) == (low, high)
    with pytest.raises(ValueError, match="at least 6 cycles"):
        harness_check.median_interval([1.0] * 5)


def test_the_interval_decides_pass_fail_or_cannot_tell(harness_check):
    judge = harness_check.judge
    assert judge(-0.02, 0.03, 0.05) == "PASS"
    assert judge(0.06, 0.09, 0.05) == "FAIL" and judge(-0.2, -0.07, 0.05) == "FAIL"
    assert judge(0.01, 0.08, 0.05) == "INCONCLUSIVE"  # drift this large: run more cycles
