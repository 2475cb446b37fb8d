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


#: ``kind:all``: every card the runtime makes visible
ALL_CARDS = "all"


def parse_device_spec(text: str) -> str:
    """``auto``, ``kind``, ``kind:N``, ``kind:all`` or ``kind:N,M,...`` (the last three for kinds that take
    an index), lower-cased, a card list in the order given; ValueError otherwise."""
    text = "".join(text.split()).lower()
    name, _, index = text.partition(":")
    if name == "auto" and not index:
        return text
    if name not in BY_NAME:
        raise ValueError(f"unknown device {text!r}; expected auto, " + ", ".join(KIND_NAMES)
                         + " (optionally kind:N, kind:all or kind:N,M,...)")
    if not index:
        return text
    single = " and ".join(sorted(kind.name for kind in KINDS if not kind.takes_index))
    if not BY_NAME[name].takes_index:
        raise ValueError(f"bad device index in {text!r}; use e.g. npu:0 or cuda:1 ({single} take no index)")
    if index == ALL_CARDS:
        return text
    cards = index.split(",")
    if not all(card.isdigit() for card in cards):
        raise ValueError(f"bad device index in {text!r}; use e.g. npu:0, npu:all or npu:0,2,5 "
                         f"({single} take no index)")
    if len(set(int(card) for card in cards)) != len(cards):
        raise ValueError(f"card listed twice in {text!r}; name each card once, e.g. npu:0,2,5")
    return f"{name}:" + ",".join(str(int(card)) for card in cards)


def listed_cards(spec: str) -> tuple[int, ...] | str | None:
    """What a parsed spec says about cards: ALL_CARDS for ``kind:all``, the indices of ``kind:N,M``
    (two or more), None for one card or none (``kind``, ``kind:N``, ``cpu``, ``auto``)."""
    _, _, index = spec.partition(":")
    if index == ALL_CARDS:
        return ALL_CARDS
    if "," in index:
        return tuple(int(card) for card in index.split(","))
    return None


def is_card_list(spec: str) -> bool:
    """True for ``kind:all`` and ``kind:N,M,...``: a whole-server run, every device test once per card."""
    return listed_cards(spec) is not None
