"""torch_npu.profiler on the simulated cards: it records the operators the cards ran and writes the
Ascend profiler's ``<host>_<pid>_<time>_ascend_pt/ASCEND_PROFILER_OUTPUT/op_statistic.csv``.

Operators are named as CANN names its kernels (MatMulV2, LayerNormV3, FlashAttentionScore, ...)
with the core that runs them; views launch no kernel and are not listed.
"""

from __future__ import annotations

import csv
import os
import re
import socket
import time
import types
from pathlib import Path
from typing import Any, Callable

from . import runtime as runtime_module

#: aten operator -> (CANN operator type, core type)
OP_TYPES = {
    "addmm": ("MatMulV2", "AI_CORE"), "mm": ("MatMulV2", "AI_CORE"), "linear": ("MatMulV2", "AI_CORE"),
    "bmm": ("BatchMatMulV2", "AI_CORE"), "baddbmm": ("BatchMatMulV2", "AI_CORE"),
    "convolution": ("Conv2D", "AI_CORE"), "conv2d": ("Conv2D", "AI_CORE"), "_convolution": ("Conv2D", "AI_CORE"),
    "_scaled_dot_product_flash_attention_for_cpu": ("FlashAttentionScore", "AI_CORE"),
    "_scaled_dot_product_attention_math": ("FlashAttentionScore", "AI_CORE"),
    "scaled_dot_product_attention": ("FlashAttentionScore", "AI_CORE"),
    "native_layer_norm": ("LayerNormV3", "AI_VECTOR_CORE"), "layer_norm": ("LayerNormV3", "AI_VECTOR_CORE"),
    "_softmax": ("SoftmaxV2", "AI_VECTOR_CORE"), "softmax": ("SoftmaxV2", "AI_VECTOR_CORE"),
    "gelu": ("GeluV2", "AI_VECTOR_CORE"), "add": ("Add", "AI_VECTOR_CORE"), "mul": ("Mul", "AI_VECTOR_CORE"),
    "sub": ("Sub", "AI_VECTOR_CORE"), "div": ("RealDiv", "AI_VECTOR_CORE"), "neg": ("Neg", "AI_VECTOR_CORE"),
    "cat": ("ConcatD", "AI_VECTOR_CORE"), "_to_copy": ("Cast", "AI_VECTOR_CORE"),
    "copy_": ("ViewCopy", "AI_VECTOR_CORE"), "clone": ("TensorMove", "AI_VECTOR_CORE"),
}
HEADER = ("Device_id", "OP Type", "Core Type", "Count", "Total Time(us)", "Min Time(us)", "Avg Time(us)",
          "Max Time(us)", "Ratio(%)")


def op_type(aten_name: str) -> tuple[str, str]:
    """CANN's name for an aten operator (CamelCase of the aten name when it has none listed)."""
    if aten_name in OP_TYPES:
        return OP_TYPES[aten_name]
    return "".join(part.capitalize() for part in re.split(r"_+", aten_name) if part) or aten_name, "AI_VECTOR_CORE"


class profile:
    """torch_npu.profiler.profile: records while entered; on exit hands itself to ``on_trace_ready``."""

    def __init__(self, activities: Any = None, on_trace_ready: Callable | None = None, **options: Any):
        self.activities, self.on_trace_ready = activities, on_trace_ready
        self.recorder: runtime_module.Recorder | None = None

    def start(self) -> None:
        self.recorder = runtime_module.Recorder()
        runtime_module.runtime().recorder = self.recorder

    def stop(self) -> None:
        rt = runtime_module.runtime()
        if rt.recorder is self.recorder:
            rt.recorder = None
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def step(self) -> None:
        """Nothing to schedule: every operator between start and stop is recorded."""

    def __enter__(self) -> "profile":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


ProfilerActivity = types.SimpleNamespace(CPU="ProfilerActivity.CPU", NPU="ProfilerActivity.NPU")


def tensorboard_trace_handler(dir_name: str, worker_name: str | None = None, analyse_flag: bool = True) -> Callable:
    """The handler that writes the profile's folder into ``dir_name`` (as torch_npu's, with the parsed
    ASCEND_PROFILER_OUTPUT already in it)."""

    def handler(prof: profile) -> None:
        worker = worker_name or f"{socket.gethostname()}_{os.getpid()}"
        folder = Path(dir_name) / (f"{worker}_{time.strftime('%Y%m%d%H%M%S')}"
                                   f"{int(time.time() * 1000) % 1000:03d}_ascend_pt")
        write_op_statistic(prof.recorder or runtime_module.Recorder(), folder / "ASCEND_PROFILER_OUTPUT")

    return handler


def write_op_statistic(recorder: runtime_module.Recorder, folder: Path) -> Path:
    rows: dict[tuple[int, str, str], list[float]] = {}
    for (card, aten_name), (calls, total, low, high) in recorder.operators.items():
        name, core = op_type(aten_name)
        entry = rows.setdefault((card, name, core), [0, 0.0, low, high])
        entry[0] += calls
        entry[1] += total
        entry[2], entry[3] = min(entry[2], low), max(entry[3], high)
    grand = sum(entry[1] for entry in rows.values()) or 1.0
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "op_statistic.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for (card, name, core), (calls, total, low, high) in sorted(rows.items(), key=lambda item: -item[1][1]):
            writer.writerow([card, name, core, int(calls), f"{total * 1e6:.3f}", f"{low * 1e6:.3f}",
                             f"{total * 1e6 / calls:.3f}", f"{high * 1e6:.3f}", f"{100 * total / grand:.2f}"])
    return path
