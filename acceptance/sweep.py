"""Batch x resolution sweeps: latency, throughput, peak memory, FLOPs and accuracy per point.

Each point runs the device model on a batch of the input image resized to the
point's resolution and compares it with the CPU float32 reference of the same
input. Out-of-memory at a point is recorded as that configuration's limit and
the sweep goes on (larger batches at the same resolution are not tried).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import torch
import torch.nn.functional as F

from .devices import Device
from .errors import ConfigError
from .faults import is_out_of_memory
from .flops import count_flops, mfu, tflops_per_s
from .metrics import compare
from .sections import SweepPoint, sweep_limits
from .timing import measure

#: per resolution: the largest batch that ran and the first that ran out of memory (or None)
limits = sweep_limits

if TYPE_CHECKING:
    from .config import RunConfig


def free_device_memory(device: Device) -> None:
    """Return cached blocks to the runtime after an OOM so the next point starts clean."""
    device.backend.empty_cache()


def check_resolutions(resolutions: Sequence[int], stride: int, where: str, fix: str) -> None:
    """Every sweep resolution a multiple of the model's input stride (its family's: a ViT's patch size,
    ConvNeXt's 32), so token counts are exact and no edge pixels are silently dropped; ConfigError otherwise."""
    wrong = [resolution for resolution in resolutions if resolution % stride]
    if wrong:
        verb = "is not a multiple" if len(wrong) == 1 else "are not multiples"
        raise ConfigError(f"{where}: {', '.join(map(str, wrong))} {verb} of the model's input stride {stride}",
                          f"{fix} to multiples of {stride} (e.g. {7 * stride}, {14 * stride})")


def check_sweep_resolutions(run: "RunConfig", stride: int) -> None:
    """At session start: the resolutions the sweep will run (--sweep-resolutions, else the profile's)
    are multiples of the checkpoint's input stride, which only its family knows."""
    if run.sweep == "off":
        return
    if run.sweep_resolutions:
        check_resolutions(run.sweep_resolutions, stride, "--sweep-resolutions", "set --sweep-resolutions")
    else:
        check_resolutions(run.thresholds.sweep_profiles[run.sweep].resolutions, stride,
                          f"thresholds file {run.thresholds_path}: [sweep.{run.sweep}] resolutions",
                          f"set [sweep.{run.sweep}] resolutions (or pass --sweep-resolutions)")


def resize(pixel_values: torch.Tensor, resolution: int, batch: int, *, stride: int) -> torch.Tensor:
    """The [1, 3, H, W] input at ``resolution`` (bicubic, as the processor resizes), repeated ``batch`` times."""
    if resolution % stride:
        raise ValueError(f"resolution must be a multiple of the model's input stride {stride}, got {resolution}")
    single = pixel_values[:1]
    if single.shape[-1] != resolution or single.shape[-2] != resolution:
        single = F.interpolate(single, size=(resolution, resolution), mode="bicubic", align_corners=False)
    return single.expand(batch, -1, -1, -1).contiguous()


def run_point(device_model: torch.nn.Module, reference_model: torch.nn.Module, device: Device,
              pixel_values: torch.Tensor, batch: int, resolution: int, *, num_runs: int, warmup: int,
              dtype: torch.dtype, peak_tflops: float | None, stride: int,
              reference_of: Callable[[torch.Tensor], torch.Tensor] | None = None) -> SweepPoint:
    """One measured sweep point; raises what the forward raises (OOM included).

    ``reference_of(inputs)``, when given, supplies the CPU reference's last_hidden_state (e.g. from the
    reference cache) instead of a forward of ``reference_model``."""
    inputs = resize(pixel_values, resolution, batch, stride=stride)
    if reference_of is not None:
        reference = reference_of(inputs)
    else:
        with torch.no_grad():
            reference = reference_model(pixel_values=inputs).last_hidden_state
    on_device = inputs.to(device.torch_device, dtype)
    device.backend.reset_peak_memory(device.index or 0)
    with torch.no_grad():
        stats = measure(device_model, on_device, device, num_runs=num_runs, warmup=warmup, batch_size=batch)
        output = device_model(pixel_values=on_device).last_hidden_state
        device.synchronize()
    peak = device.backend.max_memory_allocated(device.index or 0)
    comparison = compare("last_hidden_state", reference, output.float().cpu())
    with torch.no_grad():
        flops = count_flops(device_model, on_device)
    achieved = tflops_per_s(flops, stats.mean_ms)
    return SweepPoint(batch=batch, resolution=resolution, status="ok", latency=stats, peak_memory_bytes=peak,
                      flops_per_forward=flops, achieved_tflops=achieved, mfu=mfu(achieved, peak_tflops),
                      accuracy=comparison)


def sweep_points(batches: Sequence[int], resolutions: Sequence[int], grid: bool) -> list[tuple[int, int]]:
    """(batch, resolution) points: every batch at the first resolution and every resolution at batch 1
    (the throughput-vs-batch and latency-vs-resolution axes), or the whole grid."""
    base = resolutions[0]
    if grid:
        chosen = {(b, r) for b in batches for r in resolutions}
    else:
        chosen = {(b, base) for b in batches} | {(min(batches), r) for r in resolutions}
    return sorted(chosen, key=lambda point: (point[1], point[0]))


def run_sweep(point: Callable[[int, int], SweepPoint], points: Sequence[tuple[int, int]],
              on_oom: Callable[[], None] = lambda: None) -> list[SweepPoint]:
    """Every (batch, resolution) point via ``point(batch, resolution)``. Out of memory at a point is
    recorded as the limit for that resolution (larger batches there are skipped) and the sweep goes on."""
    results: list[SweepPoint] = []
    oom_at: dict[int, int] = {}  # resolution -> the batch that ran out of memory
    for batch, resolution in points:
        if resolution in oom_at and batch > oom_at[resolution]:
            results.append(SweepPoint(batch, resolution, "skipped",
                                      error=f"batch {oom_at[resolution]} already ran out of memory at "
                                            f"{resolution}x{resolution}"))
            continue
        try:
            results.append(point(batch, resolution))
        except (RuntimeError, MemoryError) as error:  # torch.OutOfMemoryError is a RuntimeError
            if not is_out_of_memory(error):
                raise
            on_oom()
            oom_at[resolution] = batch
            text = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
            results.append(SweepPoint(batch, resolution, "out_of_memory", error=text))
    return results

