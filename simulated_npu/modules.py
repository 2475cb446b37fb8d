"""Faults that belong to a model's modules: a NaN or a wrong value out of one named module, a wrong
operator inside one, a card lost after some forwards, a workspace leaked by every forward.

A card does not know module names; a faulty kernel in a model does show up in one module's
output. Global module hooks (installed only when such a fault is asked for) follow the module
stack, name each module by its path in the outermost model (``layer.7``, ``layer.7.mlp``) and
apply the card's faults to the outputs that live on it. Operator faults are applied by the runtime's
dispatch, which asks ``current_path()`` which module is running.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

from .runtime import Card, NpuTensor, Runtime, card_lost, on_start

_NAMES: "weakref.WeakKeyDictionary[torch.nn.Module, dict[int, str]]" = weakref.WeakKeyDictionary()
_STACK: list[tuple[torch.nn.Module, torch.nn.Module]] = []  # (module, the outermost model it runs in)


def install_if_needed(rt: Runtime) -> None:
    if any(card.faults.needs_module_hooks for card in rt.cards):
        torch.nn.modules.module.register_module_forward_pre_hook(_before)
        torch.nn.modules.module.register_module_forward_hook(_after, always_call=True)
        rt.module_path = current_path  # only now is there a stack to read


on_start(install_if_needed)


def current_path() -> str | None:
    """The path of the innermost module running now (``model.layer.7.mlp.act_fn``, ``""`` for the model itself);
    None outside every module. Looked up on demand: dispatch asks only on a card that has an op fault."""
    if not _STACK:
        return None
    module, root = _STACK[-1]
    return _path(root, module)


def _card_of_module(module: torch.nn.Module) -> Card | None:
    for tensor in module.parameters():
        return tensor.card if isinstance(tensor, NpuTensor) else None
    for tensor in module.buffers():
        return tensor.card if isinstance(tensor, NpuTensor) else None
    return None


def _before(module: torch.nn.Module, args: Any) -> None:
    root = _STACK[-1][1] if _STACK else module
    _STACK.append((module, root))
    if root is module:
        card = _card_of_module(module)
        faults = card.faults if card is not None else None
        if faults is not None and faults.lost_after is not None and card.forwards >= faults.lost_after:
            card.lost = True
            _STACK.pop()
            raise card_lost(card)


def _after(module: torch.nn.Module, args: Any, output: Any) -> Any:
    if not _STACK or _STACK[-1][0] is not module:  # a forward that raised unwound past us
        while _STACK and _STACK[-1][0] is not module:
            _STACK.pop()
    if not _STACK:
        return None
    _, root = _STACK.pop()
    tensor = _first_card_tensor(output)
    if tensor is None:
        return None
    card = tensor.card
    faults = card.faults
    if root is module:
        card.forwards += 1
        if faults.leak:
            with torch.inference_mode(False):
                card.leaked.append(torch.empty(faults.leak, dtype=torch.uint8, device=tensor.device))
        return None
    path = _path(root, module)
    nan = bool(faults.nan_module) and _names(path, faults.nan_module)
    scale = faults.scale is not None and _names(path, faults.scale[0])
    if not (nan or scale):
        return None
    # on a copy the hook hands on: the output may be a view of the weights or of the input
    with torch.no_grad():
        wrong = tensor.clone()
        if nan:
            wrong.raw[(0,) * wrong.dim()] = float("nan")
        if scale:
            wrong.raw.mul_(faults.scale[1])
    return _replace(output, tensor, wrong)


def _replace(value: Any, old: torch.Tensor, new: torch.Tensor) -> Any:
    """``value`` with ``old`` (found by _first_card_tensor) replaced by ``new``; dicts (ModelOutput) in place."""
    if value is old:
        return new
    if isinstance(value, dict):
        for key, item in value.items():
            replaced = _replace(item, old, new)
            if replaced is not item:
                value[key] = replaced
                return value
        return value
    if isinstance(value, (tuple, list)):
        items = list(value)
        for index, item in enumerate(items):
            replaced = _replace(item, old, new)
            if replaced is not item:
                items[index] = replaced
                return type(value)(items) if not hasattr(value, "_fields") else type(value)(*items)
    return value


def _names(path: str, wanted: str) -> bool:
    """``layer.7`` names the module at that path, under any prefix the model's release adds (transformers 5
    nests DINOv3's blocks as ``model.layer.7``, 4.57 as ``layer.7``)."""
    return path == wanted or path.endswith("." + wanted)


def _path(root: torch.nn.Module, module: torch.nn.Module) -> str:
    names = _NAMES.get(root)
    if names is None:
        names = {id(child): name for name, child in root.named_modules()}
        _NAMES[root] = names
    return names.get(id(module), "")


def _first_card_tensor(value: Any) -> NpuTensor | None:
    if isinstance(value, NpuTensor):
        return value if value.is_floating_point() else None
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_card_tensor(item)
            if found is not None:
                return found
    return None
