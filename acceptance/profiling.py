"""Where the forward's time goes: one profiled forward, its operators by self time, grouped by kind.

The device backend supplies the profiler (``Backend.profiler``: torch.profiler with
the device's activity, or the vendor's profiler) and writes the trace
(``Backend.export_trace``); nothing here names a vendor. The table ranks operators
by self time - each operator's own time without its children's - so the rows add
up to the whole profiled forward: on the CPU by CPU self time, on an accelerator
by device self time of the kernels. Operators that only the device side runs and
that move or convert data (format conversions such as TransData, host-device
copies, synchronisations) are listed apart: they are what a vendor fixes.

Profiling costs one untimed warm-up forward and one profiled forward per side,
outside the timed latency runs.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from .sections import OPERATOR_KINDS, OperatorRow, ProfileSide

#: rows kept in a side's table (the kinds and the sums cover every operator)
TOP_ROWS = 15

#: (kind, pattern on the lower-cased operator or kernel name), first match wins: attention before matmul
#: (flash/efficient attention kernels contain "gemm"), format casts before elementwise ("cast")
_KIND_PATTERNS: tuple[tuple[str, str], ...] = (
    ("attention", r"attention|attn|flash|softmax|fmha|sdpa|scaled_dot_product"),
    ("convolution", r"conv|cudnn_convolution|winograd|im2col"),
    ("normalisation", r"norm\b|_norm|layernorm|layer_norm|batchnorm|groupnorm|rmsnorm|layernormv"),
    ("matmul/linear", r"linear|addmm|\bmm\b|::mm$|bmm|matmul|gemm|gemv|baddbmm|dot\b|cublas|cutlass"),
    ("copies/format casts", r"copy|_to_copy|::to$|contiguous|clone|transdata|cast|memcpy|memset|h2d|d2h|"
                            r"format|transpose_copy|::cat$|concat|synchron|stream_wait|aclrt"),
    ("elementwise", r"(^|::|_)(add|mul|div|sub|gelu|silu|relu|tanh|sigmoid|exp|pow|sqrt|rsqrt|neg|sin|cos|where|"
                    r"fill|zero|masked_fill|dropout|clamp|mean|sum|erf|abs|max|min|maximum|minimum)(_|$)|"
                    r"elementwise|vectorized|reduce|^(add|mul|gelu|muls|adds|realdiv|sub)"),
)
_COMPILED = tuple((kind, re.compile(pattern)) for kind, pattern in _KIND_PATTERNS)

#: device operators a vendor fixes when they appear only on the device side
_TRANSFER = re.compile(r"transdata|format|memcpy|h2d|d2h|synchron|stream_wait|aclrt|_to_copy|copy_|cast")


def operator_kind(name: str) -> str:
    """The kind (acceptance.sections.OPERATOR_KINDS) of an operator or kernel name."""
    lowered = name.lower()
    for kind, pattern in _COMPILED:
        if pattern.search(lowered):
            return kind
    return "other"


class RawEvent:
    """One operator of a profile: its name, calls and self time (microseconds)."""

    __slots__ = ("name", "calls", "self_us")

    def __init__(self, name: str, calls: int, self_us: float):
        self.name, self.calls, self.self_us = name, int(calls), float(self_us)


def _is_cpu_event(event: Any) -> bool:
    device_type = getattr(event, "device_type", None)
    return device_type is None or str(device_type).rsplit(".", 1)[-1] == "CPU"


def _device_self_us(event: Any) -> float:
    for attribute in ("self_device_time_total", "self_cuda_time_total", "self_npu_time_total"):
        value = getattr(event, attribute, None)
        if value is not None:
            return float(value)
    return 0.0


def raw_events(averages: Iterable[Any], time_basis: str) -> list[RawEvent]:
    """Operators of ``profiler.key_averages()`` with their self time on the ``time_basis`` side.

    "cpu": the CPU-side operators by CPU self time. "device": the kernels (device-side events) by
    device self time; where the profiler reports none as device events, the operators that carry
    device self time (older profilers attribute kernel time to the launching operator).
    """
    averages = list(averages)
    if time_basis == "cpu":
        return [RawEvent(e.key, e.count, e.self_cpu_time_total) for e in averages
                if _is_cpu_event(e) and e.self_cpu_time_total > 0]
    kernels = [RawEvent(e.key, e.count, _device_self_us(e)) for e in averages
               if not _is_cpu_event(e) and _device_self_us(e) > 0]
    if kernels:
        return kernels
    return [RawEvent(e.key, e.count, _device_self_us(e)) for e in averages if _device_self_us(e) > 0]


def build_side(side: str, device: str, time_basis: str, events: Sequence[RawEvent], forward_ms: float | None,
               trace: str | None, top: int = TOP_ROWS, other_names: Iterable[str] = ()) -> ProfileSide:
    """The side's table from its operators: top rows by self time, kinds, and the device-only transfers
    (operators that move or convert data and whose name is not among ``other_names``, the other side's)."""
    total_us = sum(event.self_us for event in events)
    rows = sorted((OperatorRow(name=e.name, kind=operator_kind(e.name), calls=e.calls, total_ms=e.self_us / 1000,
                               share=e.self_us / total_us if total_us else 0.0) for e in events),
                  key=lambda row: (-row.total_ms, row.name))
    kinds: dict[str, tuple[float, float]] = {}
    for kind in OPERATOR_KINDS:
        ms = sum(row.total_ms for row in rows if row.kind == kind)
        if ms > 0:
            kinds[kind] = (ms, ms * 1000 / total_us if total_us else 0.0)
    elsewhere = {name.lower() for name in other_names}
    device_only = tuple(row for row in rows if side == "device" and _TRANSFER.search(row.name.lower())
                        and row.name.lower() not in elsewhere)
    return ProfileSide(side=side, device=device, time_basis=f"{time_basis} self time", forward_ms=forward_ms,
                       operators_ms=total_us / 1000, operator_count=len(rows), rows=tuple(rows[:top]),
                       kinds=kinds, device_only=device_only, trace=trace)


def _relative(path: Path, run_dir: Path | None) -> str:
    if run_dir is not None:
        try:
            return str(path.resolve().relative_to(run_dir.resolve()))
        except ValueError:
            pass
    return str(path)


def profile_forward(backend: Any, device_label: str, side: str, forward: Callable[[], Any],
                    synchronize: Callable[[], None], trace_dir: Path, run_dir: Path | None,
                    other_names: Iterable[str] = ()) -> tuple[ProfileSide, list[RawEvent]]:
    """Warm up once, then profile one synchronized ``forward()`` with ``backend``'s profiler.

    A profiler that cannot start, run or be read gives a ProfileSide with ``error`` set (and no
    operators): a profile explains a measurement, it is never a check of its own.
    """
    basis = backend.profile_time if side == "device" else "cpu"
    with torch.inference_mode():
        forward()  # warm-up: first-call costs (operator compilation, allocator growth) stay out of the profile
        synchronize()
        try:
            profiler = backend.profiler(trace_dir)
            with profiler:
                started = time.perf_counter()
                forward()
                synchronize()
                forward_ms = (time.perf_counter() - started) * 1000
        except (ImportError, RuntimeError, AttributeError, OSError, TypeError) as error:
            return ProfileSide(side=side, device=device_label, time_basis=f"{basis} self time",
                               error=f"the profiler could not run: {type(error).__name__}: {error}"), []
    try:
        trace: str | None = _relative(backend.export_trace(profiler, trace_dir, side), run_dir)
    except (RuntimeError, OSError, AttributeError) as error:
        trace = None
        trace_error: str | None = f"trace not written ({type(error).__name__}: {error})"
    else:
        trace_error = None
    try:
        events = backend.operator_events(profiler, trace_dir, basis)
    except (RuntimeError, AttributeError, AssertionError, OSError, ValueError) as error:  # no table to be had
        return ProfileSide(side=side, device=device_label, time_basis=f"{basis} self time", forward_ms=forward_ms,
                           trace=trace, error=f"no operator table from this profiler ({type(error).__name__}: "
                                              f"{error}); the trace holds the profile"), []
    built = build_side(side, device_label, basis, events, forward_ms, trace, other_names=other_names)
    if trace_error is not None:
        from dataclasses import replace

        built = replace(built, error=trace_error)
    return built, events
