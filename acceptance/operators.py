"""Operator capture: every torch API call of one forward pass, with the module it ran in.

Layer drift names a block (``layer.7``); this names the operator in it
(``layer.7.mlp.act_fn`` -> ``Functional.gelu``). The capture is a
``TorchFunctionMode``, not a ``TorchDispatchMode``: it sees the calls the model's
own code makes (``F.linear``, ``F.gelu``, ``F.layer_norm``,
``F.scaled_dot_product_attention``, ``torch.cat``, ``Tensor.mul``), which are the
same on every device and dtype and are what Ascend's msprobe dumps at level L1.
A dispatch mode would see aten decompositions, which differ between backends,
so the two sides of a comparison would not line up. Inside the mode's handler
the mode is off, so a call's internals are not captured twice.

The module path comes from forward pre/post hooks on the model's own modules,
named as the checkpoint file names them (transformers 5 nests DINOv3's blocks as
``model.layer.N`` in memory; reports say ``layer.N`` on every release).

Each captured call goes to a *sink* with its tensors copied to the CPU, one call at
a time, so the capture never holds a forward's worth of tensors: a sink keeps
statistics, writes the tensors to disk (acceptance/msprobe_dump.py), or compares
them with the reference side's (acceptance/operator_drift.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = ["CapturedTensor", "ModuleCall", "OperatorCall", "OperatorSink", "api_name", "capture_operators"]

#: calls that only re-view or describe a tensor: their output is their input's values, so it can only be wrong
#: when the input is (left out of the comparison and the dump; copies such as contiguous, to, cat stay in)
VIEWS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "transpose", "permute", "t", "expand", "expand_as", "flatten",
    "unflatten", "squeeze", "unsqueeze", "__getitem__", "split", "chunk", "unbind", "narrow", "select", "detach",
    "as_strided", "movedim", "size", "dim", "numel", "stride", "data_ptr", "is_contiguous", "element_size",
})


def api_name(func: Any) -> str | None:
    """msprobe's name of a torch API: ``Functional.gelu``, ``Torch.cat``, ``Tensor.mul``; None for an attribute
    read (``tensor.shape``) or a view (VIEWS)."""
    name = getattr(func, "__name__", None)
    if not name or name == "__get__" or name == "__set__" or name in VIEWS:
        return None
    if getattr(torch.nn.functional, name, None) is func:
        return f"Functional.{name}"
    if getattr(torch.Tensor, name, None) is func or getattr(torch._C.TensorBase, name, None) is func:
        return f"Tensor.{name}"
    if (getattr(func, "__module__", None) or "").startswith("torch.nn.functional"):
        return f"Functional.{name}"
    if "Tensor" in (getattr(func, "__qualname__", "") or "").split(".")[0]:
        return f"Tensor.{name}"
    return f"Torch.{name}"


@dataclass(frozen=True)
class CapturedTensor:
    """One floating tensor of a call, copied to the CPU.

    ``role`` is where it sat: ``("input", 0)``, ``("input", 0, 1)`` (the second tensor of a list argument),
    ``("input", "weight")`` (a keyword), ``("output", 0)``. ``parameter`` names a model parameter or buffer
    (``layer.7.mlp.up_proj.weight``), None for an activation.
    """

    role: tuple[Any, ...]
    tensor: torch.Tensor
    parameter: str | None = None

    @property
    def is_output(self) -> bool:
        return self.role[0] == "output"


@dataclass(frozen=True)
class OperatorCall:
    """One torch API call of the forward pass."""

    #: position among the captured calls, in forward order (0 first)
    index: int
    #: msprobe's API name, e.g. "Functional.gelu"
    api: str
    #: how many times this API ran before this call in the forward (msprobe's per-API counter)
    count: int
    #: the innermost module the call ran in, checkpoint-named ("layer.7.mlp.act_fn"; "" at the model's top)
    module: str
    #: this API's occurrence within that module (the key two runs are aligned by, with module and api)
    occurrence: int
    #: the other arguments by role, as plain data (ints, floats, dtypes, None; an integer tensor's description)
    scalars: tuple[tuple[tuple[Any, ...], Any], ...] = ()
    #: msprobe's name of the module entry it ran in (``Module.layer.7.mlp.act_fn.GELUActivation.forward.0``)
    parent: str | None = None

    @property
    def name(self) -> str:
        """msprobe's dump name: ``Functional.gelu.7.forward``."""
        return f"{self.api}.{self.count}.forward"

    @property
    def key(self) -> tuple[str, str, int]:
        """What aligns two runs' calls: (module, api, occurrence in that module)."""
        return (self.module, self.api, self.occurrence)


@dataclass(frozen=True)
class ModuleCall:
    """One module's forward (msprobe's level L0 entry ``Module.<path>.<Class>.forward.<n>``)."""

    path: str
    class_name: str
    count: int
    #: msprobe's name of the module entry it ran in, None at the model's top level
    parent: str | None = None

    @property
    def name(self) -> str:
        return f"Module.{self.path}.{self.class_name}.forward.{self.count}"


class OperatorSink(Protocol):
    """Receives each call as it completes, with its floating tensors on the CPU."""

    def operator(self, call: OperatorCall, tensors: list[CapturedTensor]) -> None: ...

    def module(self, call: ModuleCall, tensors: list[CapturedTensor]) -> None: ...


def checkpoint_names(model: nn.Module) -> tuple[dict[int, str], dict[int, str]]:
    """id(module) -> its path, id(parameter or buffer) -> its name, as the checkpoint file names them:
    transformers 5 keeps DINOv3's blocks under a ``model`` child in memory (``model.layer.7``), its files and
    transformers 4.57 do not (``layer.7``)."""
    wrapped = "model" in dict(model.named_children())

    def named(path: str) -> str:
        return ("" if path == "model" else path.removeprefix("model.")) if wrapped else path

    modules = {id(module): named(path) for path, module in model.named_modules()}
    tensors = {id(tensor): named(name) for name, tensor in [*model.named_parameters(), *model.named_buffers()]}
    return modules, tensors


def _flatten(value: Any, role: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(role, leaf) pairs of a call's argument or output; lists and tuples add their index to the role."""
    if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
        for index, item in enumerate(value):
            yield from _flatten(item, (*role, index))
    else:
        yield role, value


def _leaves(groups: Any) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(role, leaf) of every value in ``groups``: ("input", args), ("input", kwargs) or ("output", output)."""
    for side, value in groups:
        items = value.items() if isinstance(value, dict) else enumerate(
            value if isinstance(value, (list, tuple)) else [value])
        for key, item in items:
            yield from _flatten(item, (side, key))


def _floating(leaf: Any) -> bool:
    return isinstance(leaf, torch.Tensor) and leaf.is_floating_point()


def _plain(value: Any) -> Any:
    """A non-floating-tensor argument as plain data: a number, string, None or dtype stays; an integer tensor
    becomes its description (its values are not compared); anything else its text."""
    if value is None or isinstance(value, (bool, int, float, str, torch.dtype)):
        return value
    if isinstance(value, torch.Tensor):
        return {"type": "torch.Tensor", "dtype": str(value.dtype), "shape": list(value.shape)}
    return str(value)


class _Capture(TorchFunctionMode):
    def __init__(self, model: nn.Module, sink: OperatorSink):
        super().__init__()
        self.sink = sink
        self.paths, self.parameters = checkpoint_names(model)
        #: True while the capture itself copies tensors: those calls are the capture's, not the model's
        self.busy = False
        #: the modules running now, innermost last ("" for the model itself), each with its inputs' copies
        self.stack: list[tuple[ModuleCall, list[CapturedTensor]]] = []
        self.api_counts: Counter[str] = Counter()
        self.occurrences: Counter[tuple[str, str]] = Counter()
        self.module_counts: Counter[str] = Counter()
        self.calls: list[OperatorCall] = []
        self.handles: list[Any] = []
        for module in model.modules():
            self.handles.append(module.register_forward_pre_hook(self._enter, with_kwargs=True))
            self.handles.append(module.register_forward_hook(self._leave, with_kwargs=True, always_call=True))

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()

    def _innermost(self) -> ModuleCall | None:
        return next((call for call, _ in reversed(self.stack) if call.path), None)

    def _enter(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        path = self.paths.get(id(module), "")
        parent = self._innermost()
        call = ModuleCall(path=path, class_name=type(module).__name__, count=self.module_counts[path],
                          parent=parent.name if parent else None)
        self.module_counts[path] += 1
        # its inputs as they were when it started: an in-place operator inside it must not change them
        inputs = self._copies((("input", args), ("input", kwargs or {}))) if path else []
        self.stack.append((call, inputs))

    def _leave(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        call, inputs = self.stack.pop() if self.stack else (None, [])
        if call is None or not call.path:  # the model itself: its outputs are the last operators' outputs
            return
        self._hand_on(self.sink.module, call, inputs + self._copies((("output", output),)))

    def _hand_on(self, hand: Any, call: Any, tensors: list[CapturedTensor]) -> None:
        """Give a call to the sink; what the sink does with torch is the capture's own work, not the model's."""
        self.busy = True
        try:
            hand(call, tensors)
        finally:
            self.busy = False

    def _copies(self, groups: Any) -> list[CapturedTensor]:
        """The floating tensors of a call's arguments or outputs, on the CPU."""
        self.busy = True
        try:
            return [self._copy(role, leaf) for role, leaf in _leaves(groups) if _floating(leaf)]
        finally:
            self.busy = False

    def _copy(self, role: tuple[Any, ...], leaf: torch.Tensor) -> CapturedTensor:
        parameter = self.parameters.get(id(leaf))
        if parameter is not None and leaf.device.type == "cpu" and leaf.is_contiguous():
            # a CPU parameter does not change during an inference forward: shared, not copied (the reference
            # model's weights are never held twice, whatever the model's size)
            return CapturedTensor(role, leaf.detach(), parameter)
        # a CPU copy: later in-place ops on the device cannot change it; contiguous for torch.save
        return CapturedTensor(role, leaf.detach().to("cpu", copy=True).contiguous(), parameter)

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        api = None if self.busy else api_name(func)
        if api is None:
            return func(*args, **kwargs)
        arguments = (("input", args), ("input", kwargs))
        # the inputs before the call: an in-place operator (mul_, relu(inplace=True)) overwrites them
        inputs = self._copies(arguments)
        output = func(*args, **kwargs)
        if not any(_floating(leaf) for _, leaf in _leaves((("output", output),))):
            return output
        innermost = self._innermost()
        module = innermost.path if innermost else ""
        call = OperatorCall(index=len(self.calls), api=api, count=self.api_counts[api], module=module,
                            parent=innermost.name if innermost else None,
                            occurrence=self.occurrences[(module, api)],
                            scalars=tuple((role, _plain(leaf)) for role, leaf in _leaves(arguments)
                                          if not _floating(leaf)))
        self.api_counts[api] += 1
        self.occurrences[(module, api)] += 1
        self.calls.append(call)
        self._hand_on(self.sink.operator, call, inputs + self._copies((("output", output),)))
        return output


@torch.inference_mode()
def capture_operators(model: nn.Module, pixel_values: torch.Tensor, sink: OperatorSink) -> list[OperatorCall]:
    """One forward of ``pixel_values`` (on the model's device and dtype) with every torch API call handed to
    ``sink`` as it completes (after one uncaptured forward); returns the calls in forward order. The model's
    outputs are unchanged."""
    # One forward first: transformers caches helpers such as DINOv3's patch coordinates per device and dtype
    # (an lru_cache no caller can empty), so a cold forward makes calls a warm one skips. Both sides are
    # captured warm, so they make the same calls whatever ran before.
    model(pixel_values=pixel_values)
    capture = _Capture(model, sink)
    try:
        with capture:
            model(pixel_values=pixel_values)
    finally:
        capture.close()
    return capture.calls


class Tee:
    """One sink that hands each call to several (e.g. a comparison and an msprobe dump writer)."""

    def __init__(self, *sinks: OperatorSink | None):
        self.sinks = [sink for sink in sinks if sink is not None]

    def operator(self, call: OperatorCall, tensors: list[CapturedTensor]) -> None:
        for sink in self.sinks:
            sink.operator(call, tensors)

    def module(self, call: ModuleCall, tensors: list[CapturedTensor]) -> None:
        for sink in self.sinks:
            sink.module(call, tensors)
