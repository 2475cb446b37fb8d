"""Layer-wise capture: forward hooks on the probe points the model's family names.

The family (acceptance/models/) finds the probe points in the model itself -
for a ViT the embeddings, every transformer block and the final norm - and
names each as the checkpoint file names its module (``layer.7``), so a message
can say where drift begins and reports compare across transformers versions.

Hooks only read: they return None, so the model's outputs are bit-for-bit the
same with and without them (the suite's own tests check this). Captured
tensors are copied to the CPU in the dtype the model produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

from .models import ProbePoint, family_for
from .outputs import OUTPUT_NAMES

__all__ = ["CapturedRun", "LayerCapture", "ProbePoint", "probe_points", "run_with_capture"]


def probe_points(model: nn.Module) -> list[ProbePoint]:
    """The model family's probe points (acceptance/models/), in the order the forward pass visits them."""
    family = family_for({"model_type": getattr(model.config, "model_type", None)}, type(model).__name__)
    return family.probe_points(model)


def _first_tensor(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"cannot capture a module output of type {type(output).__name__}")


class LayerCapture:
    """Context manager: while active, every probe point's output is copied into ``outputs`` (name -> CPU tensor).

    >>> with LayerCapture(model) as capture:
    ...     model(pixel_values=x)
    >>> capture.outputs["layer.7"].shape
    """

    def __init__(self, model: nn.Module):
        self.points = probe_points(model)
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list[Any] = []

    def _hook(self, name: str):
        def record(module: nn.Module, args: Any, output: Any) -> None:
            # A copy on the CPU: later in-place ops on the device cannot change what was captured.
            # Contiguous: ConvNeXt stages return permuted (non-contiguous) [B, C, H, W] views.
            self.outputs[name] = _first_tensor(output).detach().to("cpu", copy=True).contiguous()

        return record

    def __enter__(self) -> "LayerCapture":
        self.outputs = {}
        self._handles = [point.module.register_forward_hook(self._hook(point.name)) for point in self.points]
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def ordered(self) -> Iterator[tuple[ProbePoint, torch.Tensor]]:
        """(point, captured tensor) in forward order; raises if a probe point did not run."""
        for point in self.points:
            if point.name not in self.outputs:
                raise RuntimeError(f"probe point {point.name} was not reached by the forward pass")
            yield point, self.outputs[point.name]


@dataclass(frozen=True)
class CapturedRun:
    """One forward pass: the model outputs and every probe point's output, all on the CPU."""

    outputs: dict[str, torch.Tensor]
    layers: dict[str, torch.Tensor]
    depths: dict[str, int]
    #: probe point -> True when it is [batch, tokens, channels] (a single token can be compared)
    tokens: dict[str, bool] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.layers)


@torch.inference_mode()
def run_with_capture(model: nn.Module, pixel_values: torch.Tensor) -> CapturedRun:
    """Forward ``pixel_values`` (already on the model's device and dtype) with the probe hooks on."""
    with LayerCapture(model) as capture:
        output = model(pixel_values=pixel_values)
    outputs = {name: output[name].detach().to("cpu", copy=True) for name in OUTPUT_NAMES}
    ordered = list(capture.ordered())
    return CapturedRun(outputs=outputs, layers={point.name: tensor for point, tensor in ordered},
                       depths={point.name: point.depth for point, _ in ordered},
                       tokens={point.name: point.tokens for point, _ in ordered})
