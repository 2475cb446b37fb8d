"""Determinism (repeated forwards bitwise or within a tolerance) and the timed soak run."""

from __future__ import annotations

import time
from typing import Any, Callable

import torch


def _max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def repeat_spread(forward: Callable[[], torch.Tensor], runs: int) -> dict[str, Any]:
    """Run ``forward`` ``runs`` times; bitwise identity with the first output and the largest spread.

    NaN anywhere makes the spread NaN, so no tolerance passes it.
    """
    if runs < 2:
        raise ValueError(f"determinism needs at least 2 runs, got {runs}")
    first = forward().detach().float().cpu()
    spreads, identical = [], True
    for _ in range(runs - 1):
        out = forward().detach().float().cpu()
        identical = identical and torch.equal(out, first)
        spreads.append(_max_abs_diff(first, out))
    spread = max(spreads)
    if not torch.isfinite(first).all():
        spread = float("nan")
    return {"runs": runs, "bitwise_identical": bool(identical and torch.isfinite(first).all()),
            "max_abs_spread": spread}


def soak(forward: Callable[[], torch.Tensor], seconds: float, *, memory: Callable[[], int | None],
         synchronize: Callable[[], None], clock: Callable[[], float] = time.perf_counter,
         max_drift: float = 0.0) -> dict[str, Any]:
    """Run ``forward`` for ``seconds``: NaN/Inf, drift from the first output, allocated-memory growth,
    iterations and the latency trend (mean of the first vs the last tenth of the iterations)."""
    first = forward().detach().float().cpu()
    synchronize()
    memory_start = memory()
    latencies, nonfinite_at, drift_max, drift_at = [], None, 0.0, None
    start = clock()
    while clock() - start < seconds:
        began = clock()
        out = forward()
        synchronize()
        latencies.append((clock() - began) * 1000)
        out = out.detach().float().cpu()
        if nonfinite_at is None and not torch.isfinite(out).all():
            nonfinite_at = len(latencies)
        drift = _max_abs_diff(first, out)
        if drift != drift or drift > drift_max:
            drift_max = drift if drift == drift else float("nan")
            if drift_at is None and (drift != drift or drift > max_drift):
                drift_at = len(latencies)
    memory_end = memory()
    tenth = max(1, len(latencies) // 10)
    head = sum(latencies[:tenth]) / tenth if latencies else None
    tail = sum(latencies[-tenth:]) / tenth if latencies else None
    return {"seconds": seconds, "iterations": len(latencies),
            "first_nonfinite_iteration": nonfinite_at, "max_drift": drift_max, "first_drift_iteration": drift_at,
            "memory_start_bytes": memory_start, "memory_end_bytes": memory_end,
            "memory_growth_bytes": None if memory_start is None or memory_end is None else memory_end - memory_start,
            "latency_first_tenth_ms": head, "latency_last_tenth_ms": tail,
            "latency_trend": None if not head or tail is None else tail / head}
