"""Operator captures written in the layout of Ascend msprobe's PyTorch dump, so ``msprobe compare`` reads them.

``<root>/step0/rank0/`` holds, as msprobe (mindstudio-probe 26.2, task "tensor", level "mix") writes it:

- ``dump.json``: ``{"task", "level", "framework": "pytorch", "dump_data_dir", "data"}``, ``data`` mapping each
  call (``Functional.gelu.7.forward``, ``Module.layer.7.mlp.DINOv3ViTMLP.forward.0``) to its ``input_args``,
  ``input_kwargs`` and ``output``; a tensor is ``{type, dtype, shape, Max, Min, Mean, Norm, requires_grad,
  data_name}``, any other argument ``{type, value}``, a list argument a JSON list;
- ``dump_tensor_data/<call>.<input|output>.<position>.pt``: each tensor, ``torch.save``d;
- ``construct.json``: each call -> the module entry it ran in (null at the top level);
- ``stack.json``: msprobe's stack groups; the suite records no Python stacks, so one group names every call.

Module entries are named by their checkpoint paths (``layer.7``, not transformers 5's in-memory
``model.layer.7``), the same on both sides and on every transformers release. Every captured tensor is
written, parameters included, as msprobe does: a ViT-B/16 forward writes about 1 GB (docs/diagnosis.md).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import torch

from .operators import CapturedTensor, ModuleCall, OperatorCall

RANK_FOLDER = Path("step0") / "rank0"


def _number(value: float) -> float | str:
    # JSON has no NaN/Infinity: msprobe writes the words, and reads them back as such
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _statistics(tensor: torch.Tensor) -> dict[str, Any]:
    values = tensor.detach().to(torch.float64)
    if values.numel() == 0:
        return {"Max": None, "Min": None, "Mean": None, "Norm": None}
    return {"Max": _number(values.max().item()), "Min": _number(values.min().item()),
            "Mean": _number(values.mean().item()), "Norm": _number(values.norm().item())}


def _plain_entry(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):  # an integer tensor's description (operators._plain)
        return value
    if isinstance(value, torch.dtype):
        return {"type": "torch.dtype", "value": str(value)}
    return {"type": type(value).__name__, "value": value}


def _place(tree: Any, path: tuple[Any, ...], leaf: Any) -> Any:
    """``tree`` (a list, dict or None) with ``leaf`` put at ``path`` (list indices or a dict key first)."""
    if not path:
        return leaf
    key, rest = path[0], path[1:]
    if isinstance(key, str):
        tree = tree if isinstance(tree, dict) else {}
        tree[key] = _place(tree.get(key), rest, leaf)
        return tree
    tree = tree if isinstance(tree, list) else []
    while len(tree) <= key:
        tree.append(None)
    tree[key] = _place(tree[key], rest, leaf)
    return tree


class DumpWriter:
    """Sink (acceptance.operators.OperatorSink) that writes one side's captured forward as an msprobe dump."""

    def __init__(self, root: Path, level: str = "mix"):
        self.folder = Path(root) / RANK_FOLDER
        self.data_dir = self.folder / "dump_tensor_data"
        if self.folder.exists():  # a dump of an earlier run in the same folder would mix with this one
            shutil.rmtree(self.folder)
        self.data_dir.mkdir(parents=True)
        self.level = level
        self.data: dict[str, dict[str, Any]] = {}
        self.construct: dict[str, str | None] = {}
        self.bytes_written = 0

    def _entry(self, name: str, tensors: list[CapturedTensor], scalars: tuple = ()) -> dict[str, Any]:
        args: Any = []
        kwargs: dict[str, Any] = {}
        output: Any = []
        leaves = [(item.role, item) for item in tensors] + list(scalars)
        for role, leaf in leaves:
            if isinstance(leaf, CapturedTensor):
                position = ".".join(str(part) for part in role)
                data_name = f"{name}.{position}.pt"
                torch.save(leaf.tensor, self.data_dir / data_name)
                self.bytes_written += leaf.tensor.numel() * leaf.tensor.element_size()
                value = {"type": "torch.Tensor", "dtype": str(leaf.tensor.dtype), "shape": list(leaf.tensor.shape),
                         **_statistics(leaf.tensor), "requires_grad": leaf.parameter is not None,
                         "data_name": data_name}
            else:
                value = _plain_entry(leaf)
            side, key, rest = role[0], role[1], role[2:]
            if side == "output":
                output = _place(output, (key, *rest), value)
            elif isinstance(key, str):
                kwargs = _place(kwargs, (key, *rest), value)
            else:
                args = _place(args, (key, *rest), value)
        return {"input_args": args, "input_kwargs": kwargs, "output": output}

    def operator(self, call: OperatorCall, tensors: list[CapturedTensor]) -> None:
        if self.level in ("mix", "L1"):
            self.data[call.name] = self._entry(call.name, tensors, call.scalars)
            self.construct[call.name] = call.parent

    def module(self, call: ModuleCall, tensors: list[CapturedTensor]) -> None:
        if self.level in ("mix", "L0"):
            self.data[call.name] = self._entry(call.name, tensors)
            self.construct[call.name] = call.parent

    def close(self) -> Path:
        """Write the JSON files; returns dump.json's path."""
        dump = {"task": "tensor", "level": self.level, "framework": "pytorch",
                "dump_data_dir": str(self.data_dir.resolve()), "data": self.data}
        path = self.folder / "dump.json"
        path.write_text(json.dumps(dump, indent=1), encoding="utf-8")
        (self.folder / "construct.json").write_text(json.dumps(self.construct, indent=1), encoding="utf-8")
        stack = {"0": [list(self.data), ["captured by the DINOv3 acceptance suite (no Python stack recorded)"]]}
        (self.folder / "stack.json").write_text(json.dumps(stack, indent=1), encoding="utf-8")
        return path.resolve()
