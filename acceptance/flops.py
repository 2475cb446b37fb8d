"""FLOPs per forward (torch.utils.flop_counter), achieved TFLOP/s and MFU against a peak table.

The peak table is a data file (peak_flops.toml, read by acceptance/peak_table.py
at session start) users extend; for the CPU, where no datasheet figure fits the host,
the peak is measured on the spot by a float32 GEMM.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from .peak_table import PeakTable, table_peak_tflops


def _count_cpu_attention() -> None:
    """torch's flop counter has formulas for the CUDA fused attention kernels but not for the CPU
    one that SDPA dispatches to here, so attention would count as 0 FLOPs on the CPU (about a
    third of a tiny model's work). Register the same formula for it, once."""
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is None or op in flop_counter.flop_registry or op.default in flop_counter.flop_registry:
        return

    @flop_counter.register_flop_formula(op)
    def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def count_flops(model: torch.nn.Module, pixel_values: torch.Tensor) -> int:
    """FLOPs of one ``model(pixel_values=...)`` call as torch's flop counter counts them
    (convolution, matmuls and attention: 2 per multiply-add; elementwise work is not counted)."""
    _count_cpu_attention()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(pixel_values=pixel_values)
    return int(counter.get_total_flops())


def measure_cpu_gemm_tflops(size: int = 1024, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """Best-of-``repeats`` TFLOP/s of a size x size GEMM on the CPU: the host's practical peak."""
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)  # warm-up: thread pool, caches
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e12


def tflops_per_s(flops: int, mean_ms: float) -> float:
    """Achieved TFLOP/s of one call that does ``flops`` in ``mean_ms`` milliseconds."""
    return flops / (mean_ms / 1000) / 1e12 if mean_ms > 0 else float("nan")


def mfu(achieved_tflops: float, peak_tflops: float | None) -> float | None:
    """Model FLOP utilisation: achieved / peak (None without a peak)."""
    if peak_tflops is None or not peak_tflops > 0:
        return None
    return achieved_tflops / peak_tflops


def peak_for(device_name: str, dtype: str, is_cpu: bool, table: PeakTable) -> dict[str, Any]:
    """{"tflops", "source", "measured"}: the table's figure (a spec-sheet peak no run can pass), or for the
    CPU a GEMM measured now (a practical peak a model's own GEMMs may pass); None with the reason."""
    peak = table_peak_tflops(device_name, dtype, table)
    if peak is not None:
        return {"tflops": peak, "source": f"{table.path.name} ({device_name}, {dtype})", "measured": False}
    if is_cpu:
        gemm_dtype = getattr(torch, dtype)
        return {"tflops": measure_cpu_gemm_tflops(dtype=gemm_dtype),
                "source": f"measured: 1024x1024 {dtype} GEMM on this CPU, best of 5", "measured": True}
    return {"tflops": None, "source": f"no entry for {device_name!r} / {dtype} in {table.path}: add one to get MFU",
            "measured": False}
