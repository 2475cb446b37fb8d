"""The seed's inference command (inference.py), over the same library as the pytest suite.

It prints the seed's log layout: the setup lines, one block per side (output
keys, shapes, dtypes, mean/std, average latency with min/max), the per-tensor
comparison, PASS/FAIL and the speedup.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable

import torch

from .builtin import ARCHITECTURE_ONLY_LABEL, builtin_checkpoint
from .config import RunConfig
from .devices import Device, select_device
from .images import default_image, open_image
from .loading import TORCH_DTYPES, inspect_checkpoint, load_model
from .metrics import TensorComparison, compare
from .outputs import forward
from .preprocessing import load_preprocessor
from .timing import LatencyStats, measure, speedup

ROOT = Path(__file__).resolve().parents[1]
RULE = "=" * 60


def _config(args: argparse.Namespace) -> RunConfig:
    cli = {"model-path": args.model_path, "device": args.device, "dtype": args.dtype, "image": args.image,
           "num-runs": args.num_runs, "warmup": args.warmup, "thresholds": args.thresholds}
    return RunConfig.load(cli, os.environ, ROOT)


def _side(label: str, model: torch.nn.Module, inputs: torch.Tensor, device: Device, config: RunConfig,
          say: Callable[[str], None]) -> tuple[dict[str, torch.Tensor], LatencyStats]:
    """One block of the log: outputs and their statistics, then the timed runs."""
    outputs = forward(model, inputs)
    device.synchronize()
    outputs = {name: tensor.to("cpu") for name, tensor in outputs.items()}
    say(f"[{label}] Output keys: {list(outputs)}")
    for name, tensor in outputs.items():
        values = tensor.to(torch.float64)
        say(f"[{label}] {name} shape: {tensor.shape}, dtype: {tensor.dtype}")
        say(f"[{label}] {name} mean: {values.mean().item():.6f}, std: {values.std().item():.6f}")
    stats = measure(model, inputs, device, num_runs=config.num_runs, warmup=config.warmup)
    say(f"[{label}] Average latency: {stats.mean_ms:.3f} ms (min={stats.min_ms:.3f}, max={stats.max_ms:.3f})")
    return outputs, stats


def _passes(comparison: TensorComparison, config: RunConfig) -> bool:
    return config.thresholds.accuracy_for(config.dtype).accepts(comparison)


def run_inference(args: argparse.Namespace, say: Callable[[str], None] = print) -> int:
    """Run the seed's inference (and with --compare its CPU-vs-device check); returns the exit status."""
    config = _config(args)
    device = select_device(config.device)
    device.apply_precision(config.precision)
    checkpoint = inspect_checkpoint(config.model_path or builtin_checkpoint(), allow_pickle=config.allow_pickle)
    image = open_image(config.image) if config.image else default_image()
    preprocessor = load_preprocessor(checkpoint.path)
    pixel_values = preprocessor(image.image).expand(config.batch_size, -1, -1, -1).contiguous()
    label = device.kind.upper()

    say(f"Model path: {checkpoint.path}" + (f" ({ARCHITECTURE_ONLY_LABEL})" if checkpoint.architecture_only else ""))
    say(f"Input image: {image.source} ({preprocessor.description})")
    say(f"PyTorch version: {torch.__version__}")
    for name, version in device.backend.versions().items():
        say(f"{name}: {version}")
    say(f"Device: {device.label} ({device.name}), dtype {config.dtype}")
    say("Loading model...")
    device_model = load_model(checkpoint, config.dtype, device.torch_device)
    reference_model = load_model(checkpoint, "float32", "cpu") if args.compare else None
    say("Model loaded")

    if reference_model is not None:
        say(RULE)
        say("[CPU baseline inference]")
        say(RULE)
        reference, cpu_stats = _side("CPU", reference_model, pixel_values, select_device("cpu"), config, say)
    say(RULE)
    say(f"[{label} inference] (device under test)")
    say(RULE)
    inputs = pixel_values.to(device.torch_device, TORCH_DTYPES[config.dtype])
    outputs, device_stats = _side(label, device_model, inputs, device, config, say)

    finite = all(bool(torch.isfinite(tensor).all()) for tensor in outputs.values())
    if reference_model is None:
        if not finite:
            say(f"[{label}] FAIL: NaN/Inf in the outputs")
        return 0 if finite else 1

    say(RULE)
    say(f"Precision comparison (CPU vs {label})")
    say(RULE)
    comparisons = [compare(name, reference[name], outputs[name]) for name in outputs]
    for c in comparisons:
        say(f"{c.name}: max_diff={c.max_abs_diff:.6e}, mean_diff={c.mean_abs_diff:.6e}, "
            f"rel_err={c.relative_error:.6e}, cosine={c.cosine:.6f}")
    say("-" * 60)
    passed = all(_passes(c, config) for c in comparisons)
    limits = config.thresholds.accuracy_for(config.dtype)
    say(f"Precision check: {'PASS' if passed else 'FAIL'} (relative_error < {limits.max_relative_error:.0%}, "
        f"cosine >= {limits.min_cosine}; {config.dtype} on {device.label} vs CPU float32)")
    say(RULE)
    ratio = speedup(cpu_stats, device_stats)
    say(f"{label} speedup (vs CPU): {ratio:.2f}x")
    if checkpoint.architecture_only:
        say(f"NOTE: built-in seeded random weights: {ARCHITECTURE_ONLY_LABEL}")
    return 0 if passed else 1
