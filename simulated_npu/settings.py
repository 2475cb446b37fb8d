"""What the simulated host has: how many cards, which chip, how much memory, and the faults asked for.

Everything is read from the environment when the runtime first starts (as CANN reads
ASCEND_RT_VISIBLE_DEVICES), so an xdist worker that binds itself to a card before its
first device call sees only that card:

- ``SIMULATED_NPU_CARDS``: cards on the simulated host (default 1).
- ``SIMULATED_NPU_CHIP``: the chip every card reports (default ``Ascend910B2``; ``Ascend910A``
  is the older generation whose float32 matrix work runs in float16 unless told otherwise).
- ``SIMULATED_NPU_MEMORY``: each card's memory (default 64GiB, a 910B2's HBM).
- ``SIMULATED_NPU_FAULTS``: faults per card, as the host numbers the cards, e.g.
  ``5: nan=layer.7; 3: lost=1; 2: slow=3; 1: memory=2GiB; 0: leak=4MiB; 4: scale=layer.7.mlp*1.01;
  6: op=layer.7.mlp:gelu*1.01``. An ``op=MODULE:OPNAME*FACTOR`` fault is a wrong kernel: every floating output
  of the aten operator OPNAME (``gelu``: no ``aten::``, no overload) run inside MODULE (the innermost running
  module is MODULE or lies under it) is multiplied by FACTOR; a card may have several.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import torch

VISIBLE_DEVICES = "ASCEND_RT_VISIBLE_DEVICES"
DEFAULT_CHIP = "Ascend910B2"
DEFAULT_MEMORY = 64 * 2**30

FAULT_GRAMMAR = ("CARD: key=value[, key=value]; ... with keys nan=MODULE, scale=MODULE*FACTOR, "
                 "op=MODULE:OPNAME*FACTOR (repeatable), lost=FORWARDS, slow=FACTOR, memory=SIZE, leak=SIZE "
                 "(e.g. '5: nan=layer.7; 2: slow=3; 0: op=layer.7.mlp:gelu*1.01')")
_UNITS = {"": 1, "b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "kb": 10**3, "mb": 10**6, "gb": 10**9}


@dataclass
class CardFaults:
    """What goes wrong on one card. Module names are paths in the model run on it (``layer.7``)."""

    nan_module: str | None = None
    #: (module, factor): that module's output is multiplied by factor (a wrong value, not a NaN)
    scale: tuple[str, float] | None = None
    #: (module, aten operator, factor), in the order given: that operator's floating outputs inside that module
    #: are multiplied by factor (a wrong kernel; see operator_factor)
    ops: list[tuple[str, str, float]] = field(default_factory=list)
    #: the card is lost once this many forwards have run on it (0: at its first forward)
    lost_after: int | None = None
    #: every operator takes this many times as long
    slow: float = 1.0
    #: its own memory size, replacing SIMULATED_NPU_MEMORY
    memory: int | None = None
    #: bytes leaked on the card by every forward (a runtime that never frees a workspace)
    leak: int = 0

    def describe(self) -> str:
        """The faults as SIMULATED_NPU_FAULTS spells them: ``nan=layer.7, slow=3``."""
        parts = [f"nan={self.nan_module}"] if self.nan_module else []
        parts += [f"scale={self.scale[0]}*{self.scale[1]:g}"] if self.scale else []
        # repr, not :g, so that a factor such as 1.0000001 comes back exactly (2.0 as 2)
        parts += [f"op={module}:{operator}*{repr(factor).removesuffix('.0')}" for module, operator, factor in self.ops]
        parts += [f"lost={self.lost_after}"] if self.lost_after is not None else []
        parts += [f"slow={self.slow:g}"] if self.slow != 1.0 else []
        parts += [f"memory={self.memory}"] if self.memory is not None else []
        parts += [f"leak={self.leak}"] if self.leak else []
        return ", ".join(parts)

    @property
    def needs_module_hooks(self) -> bool:
        return bool(self.nan_module or self.scale or self.ops or self.lost_after is not None or self.leak)

    def operator_factor(self, operator: str, path: str | None) -> float:
        """What the op faults multiply ``operator``'s outputs by when the innermost running module is at ``path``
        (None: outside every module): the product of the faults naming that operator and a module that is the
        path or encloses it (``layer.7.mlp`` encloses ``layer.7.mlp.act_fn``, under any prefix the release adds,
        as module faults allow: ``model.layer.7.mlp.act_fn``); 1.0 for none."""
        factor = 1.0
        for module, name, value in self.ops:
            if name == operator and path is not None and f".{module}." in f".{path}.":
                factor *= value
        return factor


@dataclass(frozen=True)
class Settings:
    physical_cards: int
    chip: str
    memory: int
    #: host card number -> its faults
    faults: dict[int, CardFaults] = field(default_factory=dict)
    #: host card numbers this process sees, in the runtime's order (its card i is visible[i])
    visible: tuple[int, ...] = ()


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"bad size {text!r}: use bytes or a unit such as 512MiB, 2GiB")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_faults(text: str) -> dict[int, CardFaults]:
    faults: dict[int, CardFaults] = {}
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        card_text, colon, rest = entry.partition(":")
        if not colon or not card_text.strip().isdigit():
            raise ValueError(f"SIMULATED_NPU_FAULTS entry {entry!r} names no card; expected {FAULT_GRAMMAR}")
        card = faults.setdefault(int(card_text), CardFaults())
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, equals, value = (part.strip() for part in item.partition("="))
            if not equals or not value:
                raise ValueError(f"SIMULATED_NPU_FAULTS item {item!r} has no value; expected {FAULT_GRAMMAR}")
            try:
                if key == "nan":
                    card.nan_module = value
                elif key == "scale":
                    module, star, factor = value.rpartition("*")
                    if not star or not module:
                        raise ValueError("scale takes MODULE*FACTOR")
                    card.scale = (module, float(factor))
                elif key == "op":
                    target, star, factor = value.rpartition("*")
                    module, colon, operator = (part.strip() for part in target.partition(":"))
                    if not star or not colon or not module or not re.fullmatch(r"[A-Za-z_]\w*", operator):
                        raise ValueError("op takes MODULE:OPNAME*FACTOR, OPNAME an aten operator's name without "
                                         "aten:: or an overload (gelu, linear)")
                    if not hasattr(torch.ops.aten, operator):  # a misspelt name would silently never match
                        raise ValueError(f"torch has no aten operator {operator!r}")
                    card.ops.append((module, operator, float(factor)))
                elif key == "lost":
                    card.lost_after = int(value)
                elif key == "slow":
                    card.slow = float(value)
                    if card.slow < 1:
                        raise ValueError("slow takes a factor of 1 or more")
                elif key == "memory":
                    card.memory = parse_size(value)
                elif key == "leak":
                    card.leak = parse_size(value)
                else:
                    raise ValueError(f"unknown key {key!r}")
            except ValueError as error:
                raise ValueError(f"SIMULATED_NPU_FAULTS item {item!r}: {error}; expected {FAULT_GRAMMAR}") from None
    return faults


def read(environ: dict[str, str] | None = None) -> Settings:
    """The settings in ``environ`` (os.environ); ValueError naming the variable for a bad value."""
    environ = os.environ if environ is None else environ
    cards_text = environ.get("SIMULATED_NPU_CARDS", "1").strip()
    if not cards_text.isdigit() or not 0 < int(cards_text) <= 64:
        raise ValueError(f"SIMULATED_NPU_CARDS={cards_text!r}: give the number of simulated cards (1 to 64)")
    physical = int(cards_text)
    memory_text = environ.get("SIMULATED_NPU_MEMORY")
    try:
        memory = parse_size(memory_text) if memory_text else DEFAULT_MEMORY
    except ValueError as error:
        raise ValueError(f"SIMULATED_NPU_MEMORY: {error}") from None
    faults = parse_faults(environ.get("SIMULATED_NPU_FAULTS", ""))
    unknown = sorted(card for card in faults if card >= physical)
    if unknown:
        raise ValueError(f"SIMULATED_NPU_FAULTS names card(s) {unknown}, but the simulated host has "
                         f"{physical} (SIMULATED_NPU_CARDS)")
    return Settings(physical_cards=physical,
                    chip=environ.get("SIMULATED_NPU_CHIP", DEFAULT_CHIP).strip() or DEFAULT_CHIP,
                    memory=memory, faults=faults, visible=visible_cards(environ.get(VISIBLE_DEVICES), physical))


def visible_cards(text: str | None, physical: int) -> tuple[int, ...]:
    """ASCEND_RT_VISIBLE_DEVICES as the runtime reads it: the listed cards in order, up to the first entry
    that is not a card of this host; unset, every card."""
    if text is None or not text.strip():
        return tuple(range(physical))
    visible: list[int] = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry.isdigit() or int(entry) >= physical or int(entry) in visible:
            break
        visible.append(int(entry))
    return tuple(visible)
