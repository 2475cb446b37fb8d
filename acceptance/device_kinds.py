"""The kinds of device the suite knows, as data - no torch, no vendor module.

The option parser (which specs are valid), auto-selection (in which order),
graph mode (which torch.compile backend) and the per-card code (which kinds
have several cards, which variable makes a card visible) all read this table;
the backends (one file each in acceptance/devices/) own everything that needs the
runtime: availability, synchronization, events, memory, precision switches.
Adding a device kind is a row here plus its backend file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceKind:
    name: str
    #: ``kind:N`` selects card N; False for one-device runtimes (cpu, mps)
    takes_index: bool
    #: the environment variable that decides which cards the runtime sees (None: not card-addressed)
    visible_devices_variable: str | None
    #: the torch.compile backend graph mode uses on this kind (None: graph mode is not offered)
    compile_backend: str | None


#: in auto-selection order: the first available kind wins (the CPU always is)
KINDS: tuple[DeviceKind, ...] = (
    # torch_npu registers "npu" with dynamo (checked against the real wheels: acceptance/devices/npu.py)
    DeviceKind("npu", takes_index=True, visible_devices_variable="ASCEND_RT_VISIBLE_DEVICES", compile_backend="npu"),
    DeviceKind("cuda", takes_index=True, visible_devices_variable="CUDA_VISIBLE_DEVICES", compile_backend="inductor"),
    DeviceKind("xpu", takes_index=True, visible_devices_variable="ZE_AFFINITY_MASK", compile_backend="inductor"),
    DeviceKind("mps", takes_index=False, visible_devices_variable=None, compile_backend=None),
    DeviceKind("cpu", takes_index=False, visible_devices_variable=None, compile_backend="inductor"),
)
KIND_NAMES: tuple[str, ...] = tuple(kind.name for kind in KINDS)
BY_NAME: dict[str, DeviceKind] = {kind.name: kind for kind in KINDS}


def kind_named(name: str) -> DeviceKind:
    return BY_NAME[name]


def parse_device_spec(text: str) -> str:
    """``auto``, ``kind`` or ``kind:N`` (for kinds that take an index), lower-cased; ValueError otherwise."""
    text = text.strip().lower()
    name, _, index = text.partition(":")
    if name == "auto" and not index:
        return text
    if name not in BY_NAME:
        raise ValueError(f"unknown device {text!r}; expected auto, " + ", ".join(KIND_NAMES) + " (optionally kind:N)")
    if index and (not index.isdigit() or not BY_NAME[name].takes_index):
        single = " and ".join(sorted(kind.name for kind in KINDS if not kind.takes_index))
        raise ValueError(f"bad device index in {text!r}; use e.g. npu:0 or cuda:1 ({single} take no index)")
    return text
