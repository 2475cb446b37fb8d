"""NaN-safe comparisons of a measured value with a limit: None, NaN and Inf never pass.

Kept apart from acceptance.metrics (which needs torch) so the limits and the
report schema can use them without importing torch.
"""

from __future__ import annotations

import math


def less_than(value: float | None, limit: float) -> bool:
    """value < limit, and False for None, NaN or Inf values."""
    return value is not None and math.isfinite(value) and value < limit


def at_most(value: float | None, limit: float) -> bool:
    """value <= limit, and False for None, NaN or Inf values."""
    return value is not None and math.isfinite(value) and value <= limit


def at_least(value: float | None, limit: float) -> bool:
    """value >= limit, and False for None, NaN or Inf values."""
    return value is not None and math.isfinite(value) and value >= limit
