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
    #: the vendor stack's versions every report names (null where not installed), from the backend's versions()
    reported_versions: tuple[str, ...] = ()
    #: the vendor's Python packages whose installed version every report names
    vendor_packages: tuple[str, ...] = ()


#: in auto-selection order: the first available kind wins (the CPU always is)
KINDS: tuple[DeviceKind, ...] = (
    # torch_npu registers "npu" with dynamo (checked against the real wheels: acceptance/devices/npu.py)
    DeviceKind("npu", takes_index=True, visible_devices_variable="ASCEND_RT_VISIBLE_DEVICES", compile_backend="npu",
               reported_versions=("torch_npu", "cann"), vendor_packages=("torch_npu",)),
    DeviceKind("cuda", takes_index=True, visible_devices_variable="CUDA_VISIBLE_DEVICES", compile_backend="inductor"),
    DeviceKind("xpu", takes_index=True, visible_devices_variable="ZE_AFFINITY_MASK", compile_backend="inductor"),
    DeviceKind("mps", takes_index=False, visible_devices_variable=None, compile_backend=None),
    DeviceKind("cpu", takes_index=False, visible_devices_variable=None, compile_backend="inductor"),
)
KIND_NAMES: tuple[str, ...] = tuple(kind.name for kind in KINDS)
BY_NAME: dict[str, DeviceKind] = {kind.name: kind for kind in KINDS}
#: every kind's reported versions, in table order (each report names them all: one layout on every host)
REPORTED_VERSIONS: tuple[str, ...] = tuple(name for kind in KINDS for name in kind.reported_versions)
VENDOR_PACKAGES: tuple[str, ...] = tuple(name for kind in KINDS for name in kind.vendor_packages)


def reported_versions(installed: dict, runtime: dict) -> dict:
    """The vendor versions a report names: each known one, the device runtime's own where it knows it (it says
    "unknown" where it does not), else what is installed, else None."""
    def known(value):
        return value if value not in (None, "unknown") else None

    return {name: known(runtime.get(name)) or known(installed.get(name)) for name in REPORTED_VERSIONS}


def kind_named(name: str) -> DeviceKind:
    return BY_NAME[name]


#: ``kind:all``: every card the runtime makes visible
ALL_CARDS = "all"


@dataclass(frozen=True, eq=False)
class DeviceSpec:
    """--device, parsed once (``DeviceSpec.parse``) and passed as data. This class is the only place a device
    string is split, a card label (``npu:3``) built or read, or a test id searched for its card.

    ``auto``; ``kind``; ``kind:N`` (``index``); ``kind:all`` (``all_cards``) or ``kind:N,M,...`` (``cards``):
    the last two are a whole-server run, every device test once per card.
    """

    kind: str
    index: int | None = None
    cards: tuple[int, ...] | None = None
    all_cards: bool = False

    @classmethod
    def parse(cls, text: str) -> "DeviceSpec":
        """Any case, spaces anywhere, a card list in the order given; ValueError naming what is wrong."""
        text = "".join(text.split()).lower()
        name, _, index = text.partition(":")
        if name == "auto" and not index:
            return cls("auto")
        if name not in BY_NAME:
            raise ValueError(f"unknown device {text!r}; expected auto, " + ", ".join(KIND_NAMES)
                             + " (optionally kind:N, kind:all or kind:N,M,...)")
        if not index:
            return cls(name)
        single = " and ".join(sorted(kind.name for kind in KINDS if not kind.takes_index))
        if not BY_NAME[name].takes_index:
            raise ValueError(f"bad device index in {text!r}; use e.g. npu:0 or cuda:1 ({single} take no index)")
        if index == ALL_CARDS:
            return cls(name, all_cards=True)
        cards = index.split(",")
        if not all(card.isascii() and card.isdigit() for card in cards):
            raise ValueError(f"bad device index in {text!r}; use e.g. npu:0, npu:all or npu:0,2,5 "
                             f"({single} take no index)")
        if len(set(int(card) for card in cards)) != len(cards):
            raise ValueError(f"card listed twice in {text!r}; name each card once, e.g. npu:0,2,5")
        if len(cards) == 1:
            return cls(name, index=int(cards[0]))
        return cls(name, cards=tuple(int(card) for card in cards))

    def __str__(self) -> str:
        if self.all_cards:
            return f"{self.kind}:{ALL_CARDS}"
        if self.cards is not None:
            return f"{self.kind}:" + ",".join(str(card) for card in self.cards)
        return self.kind if self.index is None else card_label(self.kind, self.index)

    def __eq__(self, other: object) -> bool:
        # the canonical text names one spec: a spec equals its own text ("npu:0,2,5"), as options compare
        if isinstance(other, (DeviceSpec, str)):
            return str(self) == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    @property
    def server(self) -> bool:
        """``kind:all`` or ``kind:N,M,...``: a whole-server run."""
        return self.all_cards or self.cards is not None

    def card(self, index: int) -> "DeviceSpec":
        """``kind:index`` of this spec's kind."""
        return DeviceSpec(self.kind, index=index)


def card_label(kind: str, card: int) -> str:
    """A card's label in reports and test ids: ``npu:3``."""
    return f"{kind}:{card}"


def card_number(label: str) -> int:
    """The card of a label made by card_label: ``npu:3`` -> 3."""
    return int(label.rpartition(":")[2])


#: the card of a test that runs on no particular card (a whole-server run's session-wide tests)
NO_CARD = ""


def card_in_test_id(nodeid: str) -> str:
    """The card label in a whole-server test id (``test_x[npu:3-last_hidden_state]`` -> ``npu:3``), or NO_CARD."""
    params = nodeid.partition("[")[2].rstrip("]")
    for part in params.split("-"):
        kind, _, index = part.partition(":")
        if kind in BY_NAME and index.isascii() and index.isdigit():
            return part
    return NO_CARD


def parse_device_spec(text: str) -> DeviceSpec:
    """The option parser of --device (acceptance/options.py): DeviceSpec.parse."""
    return DeviceSpec.parse(text)
