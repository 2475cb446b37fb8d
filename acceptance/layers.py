"""Layer-wise capture: forward hooks on the embeddings, every transformer block and the final norm.

The probe points are found from the model itself (its ``embeddings`` module,
the block list with ``config.num_hidden_layers`` entries, its final ``norm``),
so ViT-S to ViT-7B all work; each is named by its module path (``embeddings``,
``layer.0`` ... ``layer.N-1``, ``norm``) so a message can say where drift begins.

Hooks only read: they return None, so the model's outputs are bit-for-bit the
same with and without them (the suite's own tests check this). Captured
tensors are copied to the CPU in the dtype the model produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn

from .errors import CheckpointError
from .outputs import OUTPUT_NAMES


@dataclass(frozen=True)
class ProbePoint:
    """One place in the network whose output is captured."""

    name: str  # module path, e.g. "layer.7"
    depth: int  # 0 = embeddings, i + 1 = block i, num_layers + 1 = final norm
    module: nn.Module


def transformer_blocks(model: nn.Module) -> nn.ModuleList:
    """The list of transformer blocks: the ModuleList with one entry per config.num_hidden_layers
    (``model.layer`` in transformers 4.x, ``model.model.layer`` in 5.x)."""
    expected = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0 and (expected is None or len(module) == expected):
            return module
    raise CheckpointError(
        f"cannot find the transformer blocks in {type(model).__name__} "
        f"(no ModuleList with config.num_hidden_layers={expected} entries)",
        "layer-wise diagnosis supports dinov3_vit models; check the checkpoint's config.json")


def probe_points(model: nn.Module) -> list[ProbePoint]:
    """Embeddings output, each block's output and the final norm, in the order the forward pass visits them."""
    modules = dict(model.named_modules())
    missing = [name for name in ("embeddings", "norm") if name not in modules]
    if missing:
        raise CheckpointError(f"{type(model).__name__} has no module named {' or '.join(missing)}",
                              "layer-wise diagnosis supports dinov3_vit models; check the checkpoint's config.json")
    blocks = transformer_blocks(model)
    points = [ProbePoint("embeddings", 0, modules["embeddings"])]
    # Named as in the checkpoint file (layer.N): transformers 5 nests the blocks under
    # model.layer in memory, and reports must compare across versions.
    points += [ProbePoint(f"layer.{index}", index + 1, block) for index, block in enumerate(blocks)]
    points.append(ProbePoint("norm", len(blocks) + 1, modules["norm"]))
    return points


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
            self.outputs[name] = _first_tensor(output).detach().to("cpu", copy=True)

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
                       depths={point.name: point.depth for point, _ in ordered})
