"""The checks a whole-server run makes across its cards, once every card has run.

A card is judged by its own tests (accuracy, latency limits, ...) and, here, against its
siblings and against what the vendor's tool says of it:

- **latency outlier**: its p50 is more than ``[server] outlier_p50_ratio`` times the median p50
  of the other cards (the median, so one slow card cannot hide behind another);
- **card state**: the vendor tool (``npu-smi``, ``nvidia-smi``; acceptance/devices/card_state.py)
  reports a health other than OK before or after the run, or an uncorrectable ECC count that rose
  during it.

Each returns card label -> the reason, in words a reviewer reads in the verdict.
"""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:  # annotations only: the report side reads this module without torch
    from .devices.card_state import CardState


def latency_outliers(p50_ms: Mapping[str, float | None], ratio: float) -> dict[str, str]:
    """Cards whose p50 is above ``ratio`` x the median p50 of the other cards (those that have one).
    A card whose p50 is NaN or Inf is an outlier too: a NaN never passes. Needs two timed cards."""
    timed = {card: value for card, value in p50_ms.items() if value is not None}
    if len(timed) < 2:
        return {}
    found: dict[str, str] = {}
    for card, value in timed.items():
        if not math.isfinite(value):
            found[card] = f"p50 latency is {value} (NaN/Inf): never within the server's spread"
            continue
        others = [other for name, other in timed.items() if name != card and math.isfinite(other)]
        if not others:
            continue
        median = statistics.median(others)
        if median > 0 and value > ratio * median:
            found[card] = (f"latency outlier: p50 {value:.3f} ms is {value / median:.2f}x the median p50 of the "
                           f"other {len(others)} card(s) ({median:.3f} ms); allowed <= {ratio}x "
                           f"([server] outlier_p50_ratio)")
    return found


def spread(p50_ms: Mapping[str, float | None]) -> float | None:
    """(slowest p50 / fastest p50) - 1 over the cards that have a finite one; None with fewer than two."""
    values = [value for value in p50_ms.values() if value is not None and math.isfinite(value) and value > 0]
    return max(values) / min(values) - 1 if len(values) >= 2 else None


def state_failures(before: Mapping[str, CardState], after: Mapping[str, CardState],
                   after_note: str | None = None) -> dict[str, str]:
    """Cards the vendor tool reports unhealthy (before or after the run), whose uncorrectable ECC count rose, or
    that it no longer reports after the run (a card that fell off the bus is not a healthy one)."""
    found: dict[str, str] = {}
    for card in sorted(set(before) | set(after)):
        reasons = []
        if card in before and card not in after:
            reasons.append(f"{before[card].tool} no longer reports the card after the run"
                           + (f" ({after_note})" if after_note else ""))
        elif before.get(card) is not None and before[card].ecc_uncorrectable is not None \
                and after[card].ecc_uncorrectable is None:
            reasons.append(f"its uncorrectable ECC count was {before[card].ecc_uncorrectable} before the run and "
                           f"is not reported after it ({after[card].tool})")
        for when, states in (("before", before), ("after", after)):
            state = states.get(card)
            if state is not None and state.health is not None and state.health.upper() != "OK":
                reasons.append(f"health {state.health!r} {when} the run ({state.tool})")
        first, last = before.get(card), after.get(card)
        if first is not None and last is not None and first.ecc_uncorrectable is not None \
                and last.ecc_uncorrectable is not None and last.ecc_uncorrectable > first.ecc_uncorrectable:
            reasons.append(f"uncorrectable ECC errors rose from {first.ecc_uncorrectable} to "
                           f"{last.ecc_uncorrectable} during the run ({last.tool})")
        if reasons:
            found[card] = "card state: " + "; ".join(reasons)
    return found
