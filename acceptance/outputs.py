"""The model outputs the suite compares, one forward pass, and their summary lines."""

from __future__ import annotations

import torch

#: what DINOv3ViTModel returns that a sign-off compares (pooler_output is the final CLS token)
OUTPUT_NAMES = ("last_hidden_state", "pooler_output")


@torch.inference_mode()
def forward(model: torch.nn.Module, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
    """One forward pass; ``pixel_values`` already on the model's device and dtype."""
    output = model(pixel_values=pixel_values)
    return {name: output[name] for name in OUTPUT_NAMES}


def describe_outputs(outputs: dict[str, torch.Tensor]) -> dict[str, dict[str, object]]:
    """Shape, dtype, mean and std of each output (the seed's log lines), for the reports."""
    summary: dict[str, dict[str, object]] = {}
    for name, tensor in outputs.items():
        values = tensor.detach().to("cpu", torch.float64)
        summary[name] = {"shape": list(tensor.shape), "dtype": str(tensor.dtype).replace("torch.", ""),
                         "mean": values.mean().item(), "std": values.std().item() if values.numel() > 1 else 0.0}
    return summary
