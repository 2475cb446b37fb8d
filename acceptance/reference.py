"""Published reference values: is the CPU float32 reference itself right?

Every accuracy check holds the device to the CPU float32 reference. If that
reference is wrong - another transformers version, a different preprocessing -
a device that agrees with it passes for nothing. For checkpoints whose
publishers report output values (acceptance/models/<family>.py: ``references``),
the reference outputs are checked against them, when the run's checkpoint and
image are the ones the values are for. Nothing is fetched: values, sources and
the image's pixel hash are recorded in the family files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from .loading import Checkpoint
from .models import PublishedReference
from .weights import Shapes, pickle_shapes, safetensors_shapes


@dataclass(frozen=True)
class ReferencePlan:
    """The published values this run can be checked against, or why none."""

    reference: PublishedReference | None
    reason: str


def _disk_name(name: str) -> str:
    return name[len("model."):] if name.startswith("model.") else name


def weight_shapes(checkpoint: Checkpoint) -> Shapes:
    """Tensor name -> shape from the weight files' headers (no weights are read for safetensors)."""
    shapes: Shapes = {}
    for path in checkpoint.weight_files:
        found = safetensors_shapes(path) if checkpoint.weights_format == "safetensors" else pickle_shapes(path)
        shapes.update({_disk_name(name): tuple(shape) for name, shape in found.items()})
    return shapes


def full_config(checkpoint: Checkpoint) -> dict[str, Any]:
    """config.json with transformers' defaults filled in (a file may leave out fields at their defaults)."""
    from transformers import AutoConfig

    loaded = AutoConfig.from_pretrained(checkpoint.path, local_files_only=True, trust_remote_code=False)
    return {**loaded.to_dict(), **checkpoint.config}


def recognise(config: Mapping[str, Any], shapes: Shapes,
              references: Sequence[PublishedReference]) -> list[PublishedReference]:
    """The references whose config fields and tensor shapes all match."""
    return [reference for reference in references
            if all(config.get(key) == value for key, value in reference.config.items())
            and all(tuple(shapes.get(name, ())) == tuple(shape) for name, shape in reference.tensor_shapes.items())]


def plan_reference_check(checkpoint: Checkpoint, pixel_sha256: str,
                         references: Sequence[PublishedReference]) -> ReferencePlan:
    """The reference to check, when both the checkpoint and the image are recognised; else why not."""
    family = checkpoint.family
    if checkpoint.architecture_only:
        return ReferencePlan(None, f"the checkpoint is built here with seeded random weights ({checkpoint.label}): "
                                   "no published outputs exist for it; pass --model-path to a published checkpoint")
    if not references:
        return ReferencePlan(None, f"no published outputs are recorded for any {family.title} checkpoint")
    matches = recognise(full_config(checkpoint), weight_shapes(checkpoint), references)
    known = sorted({reference.checkpoint for reference in references})
    if not matches:
        return ReferencePlan(None, f"checkpoint not recognised: its config.json and tensor shapes "
                                   f"({family.display_name(checkpoint.config)}) match none of the {family.title} "
                                   f"checkpoints with published outputs ({', '.join(known)})")
    names = sorted({reference.checkpoint for reference in matches})
    recognised = names[0] if len(names) == 1 else " or ".join(names) + " (same config and shapes)"
    for_image = [reference for reference in matches if reference.image_pixel_sha256 == pixel_sha256]
    if not for_image:
        images = sorted({reference.image for reference in matches})
        known_pixels = sorted({reference.image_pixel_sha256 for reference in matches if reference.image_pixel_sha256})
        hint = (f"pass --image with that image (decoded RGB pixels sha256 {known_pixels[0]})" if known_pixels else
                "its published values are for an image whose pixel hash is not known here, so they cannot be "
                "matched")
        return ReferencePlan(None, f"image not recognised: checkpoint recognised as {recognised}, whose published "
                                   f"outputs are for {'; '.join(images)}; this run's image has pixel sha256 "
                                   f"{pixel_sha256}: {hint}")
    if len({reference.checkpoint for reference in for_image}) > 1:
        return ReferencePlan(None, f"checkpoint recognised as {recognised}, which publish different outputs for "
                                   "this image and cannot be told apart by config and tensor shapes")
    reference = for_image[0]
    return ReferencePlan(reference, f"{reference.checkpoint} on {reference.image} ({reference.source})")


def compare_with_published(outputs: Mapping[str, torch.Tensor], input_shape: Sequence[int],
                           reference: PublishedReference) -> list[str]:
    """One message per slice entry outside |got - expected| <= atol + rtol * |expected| (NaN never passes),
    naming checkpoint, tensor, index, expected, got, tolerance and source; empty when all agree."""
    height, width = int(input_shape[-2]), int(input_shape[-1])
    if (height, width) != tuple(reference.input_size):
        return [f"{reference.checkpoint}: the published outputs are for a {reference.input_size[0]}x"
                f"{reference.input_size[1]} input, the preprocessor made {height}x{width} (check "
                f"preprocessor_config.json against the published one; source {reference.source})"]
    problems = []
    for published in reference.slices:
        tensor = outputs[published.output]
        got = tensor[published.index][: len(published.values)].to("cpu", torch.float64).tolist()
        for offset, (expected, value) in enumerate(zip(published.values, got)):
            allowed = reference.atol + reference.rtol * abs(expected)
            if not (math.isfinite(value) and abs(value - expected) <= allowed):
                index = ", ".join(map(str, (*published.index, offset)))
                problems.append(
                    f"{reference.checkpoint}: CPU float32 {published.output}[{index}] is {value:.6g}, published "
                    f"{expected:.6g} (|diff| {abs(value - expected):.3g}, allowed {reference.atol:g} + "
                    f"{reference.rtol:g}*|expected| = {allowed:.3g}; source {reference.source})")
    return problems


def max_deviation(outputs: Mapping[str, torch.Tensor], reference: PublishedReference) -> float:
    """The largest |got - expected| over the published slices (NaN when any value is not finite)."""
    worst = 0.0
    for published in reference.slices:
        got = outputs[published.output][published.index][: len(published.values)].to("cpu", torch.float64)
        diff = (got - torch.tensor(published.values, dtype=torch.float64)).abs()
        worst = max(worst, float(diff.max())) if bool(torch.isfinite(diff).all()) else math.nan
        if math.isnan(worst):
            return worst
    return worst
