"""The simulated cards: tensors that live on them, the operators they run, the memory they hold.

A tensor on card k is a wrapper subclass whose torch device is ``npu:k`` and which holds a CPU
tensor with its values. Every aten operator on it reaches ``__torch_dispatch__``, which checks
placement as a real runtime does (all tensors on one card; CPU tensors only as 0-dim scalars or
in copies), applies the chip's arithmetic (simulated_npu.precision), runs the CPU kernel and wraps
the results on the card. Each card counts the bytes of the live storages on it, with a peak and a
cap, and raises CANN's out-of-memory error above the cap.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any, Callable

import torch
from torch.utils._pytree import tree_map

from . import settings as settings_module
from .precision import Arithmetic, OptionRegistry
from .settings import CardFaults, Settings

#: operators that may mix cards, or a card and the CPU: copies between them
MIXED_OK = frozenset({"copy_", "_copy_from", "_copy_from_and_resize", "_to_copy", "index", "index_put",
                      "index_put_", "_index_put_impl_"})


def format_bytes(count: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return f"{int(count)} bytes"


class Card:
    """One simulated card: its numbers, its live storages and its faults."""

    def __init__(self, local: int, physical: int, chip: str, memory: int, faults: CardFaults):
        self.local, self.physical, self.chip = local, physical, chip
        self.faults = faults
        self.capacity = faults.memory if faults.memory is not None else memory
        #: storage address -> [live wrappers holding it, bytes]
        self.storages: dict[int, list[int]] = {}
        self.allocated = 0
        self.peak = 0
        self.forwards = 0
        self.lost = False
        self.leaked: list[torch.Tensor] = []
        self._slow_debt = 0.0

    @property
    def name(self) -> str:
        return f"npu:{self.local}"

    def acquire(self, key: int, nbytes: int) -> None:
        entry = self.storages.get(key)
        if entry is not None:
            entry[0] += 1
            return
        if self.allocated + nbytes > self.capacity:
            raise out_of_memory(self, nbytes)
        self.storages[key] = [1, nbytes]
        self.allocated += nbytes
        self.peak = max(self.peak, self.allocated)

    def release(self, key: int) -> None:
        entry = self.storages.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            del self.storages[key]
            self.allocated -= entry[1]

    def check_alive(self) -> None:
        if self.lost:
            raise card_lost(self)

    def spend(self, seconds: float) -> None:
        """A slow card: each operator takes ``slow`` times its time (slept in batches of a millisecond)."""
        if self.faults.slow <= 1.0:
            return
        self._slow_debt += seconds * (self.faults.slow - 1.0)
        if self._slow_debt >= 1e-3:
            time.sleep(self._slow_debt)
            self._slow_debt = 0.0


def out_of_memory(card: Card, nbytes: int) -> RuntimeError:
    """torch_npu's allocator message, with CANN's error code under it."""
    free = max(card.capacity - card.allocated, 0)
    text = (f"NPU out of memory. Tried to allocate {format_bytes(nbytes)} (NPU {card.local}; "
            f"{format_bytes(card.capacity)} total capacity; {format_bytes(card.allocated)} already allocated; "
            f"{format_bytes(card.allocated)} current active; {format_bytes(free)} free; "
            f"{format_bytes(card.allocated)} reserved in total by PyTorch) If reserved memory is >> allocated "
            f"memory try setting max_split_size_mb to avoid fragmentation.\n"
            f"EL0004: [PID: {os.getpid()}] Failed to allocate memory.\n"
            f"        Possible Cause: Available memory is insufficient.\n"
            f"        Solution: Close applications not in use.")
    error_class = getattr(torch, "OutOfMemoryError", RuntimeError)
    return error_class(text)


def card_lost(card: Card) -> RuntimeError:
    """What torch_npu raises once a card has dropped off the bus (heartbeat lost)."""
    return RuntimeError(
        f"npuSynchronizeDevice:torch_npu/csrc/core/npu/NPUStream.cpp:435 NPU function error: "
        f"aclrtSynchronizeDevice, error code is 507033\n[ERROR] EE1001: [PID: {os.getpid()}] device npu:"
        f"{card.physical} lost: the device heartbeat stopped (simulated fault)")


class Recorder:
    """What the profiler sees while it runs: each card's operators, with their times."""

    def __init__(self) -> None:
        #: (card, aten operator) -> [calls, total s, min s, max s]
        self.operators: dict[tuple[int, str], list[float]] = {}

    def record(self, card: Card, name: str, seconds: float) -> None:
        entry = self.operators.get((card.physical, name))
        if entry is None:
            self.operators[(card.physical, name)] = [1, seconds, seconds, seconds]
        else:
            entry[0] += 1
            entry[1] += seconds
            entry[2] = min(entry[2], seconds)
            entry[3] = max(entry[3], seconds)


class Runtime:
    """The process's simulated runtime, started on first use (it reads the environment then)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.cards = [Card(local, physical, settings.chip, settings.memory,
                           settings.faults.get(physical, CardFaults()))
                      for local, physical in enumerate(settings.visible)]
        self.registry = OptionRegistry(settings.chip)
        self.arithmetic = Arithmetic(self.registry)
        self.current = 0
        self.recorder: Recorder | None = None
        #: the innermost running module's path (modules.current_path), set only where module hooks are installed
        self.module_path: Callable[[], str | None] | None = None

    def card(self, index: int | None) -> Card:
        index = self.current if index is None else index
        if not 0 <= index < len(self.cards):
            raise RuntimeError(f"Invalid device ID {index}: the simulated host has {len(self.cards)} visible "
                               f"NPU card(s) ({settings_module.VISIBLE_DEVICES}="
                               f"{os.environ.get(settings_module.VISIBLE_DEVICES, '<unset>')})")
        return self.cards[index]

    def card_of(self, device: Any) -> Card:
        """The card of ``device`` as torch.npu's functions take it: None, an index, 'npu:1', torch.device."""
        if device is None:
            return self.card(None)
        if isinstance(device, int):
            return self.card(device)
        device = torch.device(device)
        if device.type != "npu":
            raise ValueError(f"Expected a npu device, but got: {device}")
        return self.card(device.index)


_RUNTIME: Runtime | None = None
_LOCK = threading.Lock()
#: called once with the runtime when it starts (modules.py's hooks, which need a fault that names a module)
_ON_START: list[Callable[[Runtime], None]] = []


def on_start(starter: Callable[[Runtime], None]) -> None:
    _ON_START.append(starter)


def runtime() -> Runtime:
    global _RUNTIME
    if _RUNTIME is None:
        with _LOCK:
            if _RUNTIME is None:
                _RUNTIME = Runtime(settings_module.read())
                for starter in _ON_START:
                    starter(_RUNTIME)
    return _RUNTIME


def started() -> bool:
    return _RUNTIME is not None


class _Hold:
    """A wrapper's claim on its storage's bytes, given back when the wrapper dies."""

    __slots__ = ("card", "key")

    def __init__(self, card: Card, raw: torch.Tensor):
        self.card, self.key = card, None
        self.take(raw)

    def take(self, raw: torch.Tensor) -> None:
        storage = raw.untyped_storage()
        key, nbytes = storage.data_ptr(), storage.nbytes()
        if nbytes and key:
            self.card.acquire(key, nbytes)
            self.key = key

    def release(self) -> None:
        if self.key is not None:
            self.card.release(self.key)
            self.key = None


class NpuTensor(torch.Tensor):
    """A tensor on a simulated card; ``raw`` holds its values on the host."""

    @staticmethod
    def __new__(cls, raw: torch.Tensor, card: Card) -> "NpuTensor":
        wrapper = torch.Tensor._make_wrapper_subclass(
            cls, raw.size(), strides=raw.stride(), storage_offset=raw.storage_offset(), dtype=raw.dtype,
            layout=raw.layout, device=torch.device("npu", card.local), requires_grad=raw.requires_grad)
        hold = _Hold(card, raw)  # raises CANN's out-of-memory error above the card's capacity
        wrapper.raw, wrapper.card, wrapper._hold = raw, card, hold
        weakref.finalize(wrapper, hold.release)
        return wrapper

    def __repr__(self, *, tensor_contents: Any = None) -> str:
        return repr(self.raw).rstrip(")") + f", device='{self.card.name}')"

    # nn.Module._apply assigns `param.data = new` for casts on the card (.half()): keep raw and the bytes in step
    @property
    def data(self) -> torch.Tensor:
        return torch.Tensor.data.__get__(self)

    @data.setter
    def data(self, new: torch.Tensor) -> None:
        torch.Tensor.data.__set__(self, new)
        raw = new.raw if isinstance(new, NpuTensor) else new
        self._hold.release()
        if isinstance(new, NpuTensor):  # module.to("npu:1") of a module on npu:0 moves the bytes with it
            self.card = self._hold.card = new.card
        self._hold.take(raw)
        self.raw = raw

    def numpy(self, *, force: bool = False) -> Any:
        raise TypeError(f"can't convert {self.card.name} device type tensor to numpy. Use Tensor.cpu() to copy "
                        "the tensor to host memory first.")

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        return dispatch(func, args, kwargs or {})


def _same_device_error(first: str, second: str, func: Any) -> RuntimeError:
    return RuntimeError(f"Expected all tensors to be on the same device, but found at least two devices, "
                        f"{first} and {second}! (when checking argument in {func})")


def dispatch(func: Any, args: tuple, kwargs: dict) -> Any:
    """Run one aten operator on the simulated card(s) its tensors are on."""
    rt = runtime()
    name = func._schema.name.split("::")[-1]
    cards: dict[int, Card] = {}
    cpu_seen = False
    inputs: dict[int, NpuTensor] = {}

    def unwrap(value: Any) -> Any:
        nonlocal cpu_seen
        if isinstance(value, NpuTensor):
            cards[value.card.local] = value.card
            inputs[id(value.raw)] = value
            return value.raw
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            cpu_seen = True
        if isinstance(value, torch.device) and value.type == "npu":
            return torch.device("cpu")
        return value

    host_args, host_kwargs = tree_map(unwrap, (tuple(args), dict(kwargs)))
    target = _target_card(rt, name, args, kwargs, cards)
    if name not in MIXED_OK and cards:
        if len(cards) > 1:
            first, second = sorted(cards)[:2]
            raise _same_device_error(f"npu:{first}", f"npu:{second}", func)
        if cpu_seen:
            raise _same_device_error(next(iter(cards.values())).name, "cpu", func)
    for card in list(cards.values()) + ([target] if target is not None else []):
        card.check_alive()
    output_rounding: Callable | None = None
    if target is not None:
        host_args, output_rounding = rt.arithmetic.apply(name, host_args)
    started_at = time.perf_counter()
    out = func(*host_args, **host_kwargs)
    seconds = time.perf_counter() - started_at
    if output_rounding is not None:
        out = tree_map(lambda t: _round_output(t, output_rounding, inputs), out)
    if target is None:
        return out  # e.g. _to_copy(device=cpu): the host result
    target.spend(seconds)
    if rt.recorder is not None and not func.is_view:
        rt.recorder.record(target, name, seconds * target.faults.slow)
    if target.faults.ops and rt.module_path is not None:  # op faults install the module hooks
        factor = target.faults.operator_factor(name, rt.module_path())
        if factor != 1.0:
            out = tree_map(lambda value: _faulty_output(value, factor, inputs), out)

    def wrap(value: Any) -> Any:
        if not isinstance(value, torch.Tensor) or isinstance(value, NpuTensor):
            return value
        if id(value) in inputs:  # in-place and out= operators return their argument
            return inputs[id(value)]
        if func.is_view and torch.is_inference_mode_enabled() and args and isinstance(args[0], torch.Tensor) \
                and not args[0].is_inference():
            with torch.inference_mode(False):  # a view of a normal tensor stays a normal tensor
                return NpuTensor(value, target)
        return NpuTensor(value, target)

    return tree_map(wrap, out)


def _round_output(value: Any, rounding: Callable, inputs: dict[int, NpuTensor]) -> Any:
    if not isinstance(value, torch.Tensor) or value.dtype != torch.float32:
        return value
    if id(value) in inputs:  # an in-place result keeps its identity
        return value.copy_(rounding(value))
    return rounding(value)


def _faulty_output(value: Any, factor: float, inputs: dict[int, NpuTensor]) -> Any:
    """An op fault's wrong result: a new tensor, so that no input (nor what a view shares with one) changes.
    Results written into a tensor the caller passed (in-place and out= forms) are left as they are."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point() or id(value) in inputs:
        return value
    return value * factor


def _target_card(rt: Runtime, name: str, args: tuple, kwargs: dict, cards: dict[int, Card]) -> Card | None:
    """The card the results go to: the one a ``device=`` names, a copy's destination, else the inputs' card."""
    device = kwargs.get("device")
    if device is not None:
        device = torch.device(device)
        return rt.card(device.index) if device.type == "npu" else None
    if name == "copy_" and args:  # the destination decides: a copy to the host stays a host tensor
        return args[0].card if isinstance(args[0], NpuTensor) else None
    if name in ("_copy_from", "_copy_from_and_resize") and len(args) > 1:
        return args[1].card if isinstance(args[1], NpuTensor) else None
    if not cards:
        return None
    return cards[min(cards)]
