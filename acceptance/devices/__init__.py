"""Device backends, one per file, and the one function that picks the device under test.

Each row of the kinds table (acceptance/device_kinds.py) has its backend in the module of its name here,
``acceptance/devices/<kind>.py``, which names its class ``BACKEND``: the table is the one registry.
"""

from __future__ import annotations

import os
from importlib import import_module

from ..device_kinds import KIND_NAMES, KINDS, DeviceSpec, kind_named
from ..errors import DeviceUnavailable
from .base import Backend, Device

#: auto-selection order: the first available kind wins (acceptance/device_kinds.py)
AUTO_ORDER = KIND_NAMES

#: kind -> its backend class (importing a backend imports no vendor module: each does that when first asked)
BACKENDS: dict[str, type[Backend]] = {kind.name: import_module(f"{__name__}.{kind.name}").BACKEND for kind in KINDS}


def backend_for(kind: str) -> Backend:
    return BACKENDS[kind]()


def _spec(spec: DeviceSpec | str) -> DeviceSpec:
    return spec if isinstance(spec, DeviceSpec) else DeviceSpec.parse(spec)


def select_device(spec: DeviceSpec | str) -> Device:
    """Resolve ``auto``, ``kind`` or ``kind:N`` (a card list: its first card) to a usable Device.

    A device asked for by name that is missing raises DeviceUnavailable with the
    fix; ``auto`` falls through the AUTO_ORDER and records why each was passed over.
    """
    spec = _spec(spec)
    if spec.kind == "auto":
        log = []
        for candidate in AUTO_ORDER:
            backend = backend_for(candidate)
            reason = backend.unavailable_reason()
            if reason is None and backend.simulation() is not None:
                reason = f"{backend.simulation()}; a test device, used only when asked for (--device {candidate})"
            if reason is None:
                log.append(f"auto: picked {candidate}")
                return _open(backend, None, tuple(log))
            log.append(f"auto: skipped {candidate}: {reason}")
        raise AssertionError("the cpu backend is always available")  # pragma: no cover
    backend = backend_for(spec.kind)
    reason = backend.unavailable_reason()
    if reason is not None:
        raise DeviceUnavailable(f"--device {spec} was requested but is not usable here: {reason}",
                                backend.install_hint or "choose another --device")
    if spec.server:  # a whole-server run: every listed card must be there; the first leads
        cards = server_cards(spec, backend)
        return _open(backend, cards[0], (f"requested: {spec} ({len(cards)} cards)",))
    return _open(backend, spec.index, (f"requested: {spec}",))


def server_cards(spec: DeviceSpec | str, backend: Backend) -> list[int]:
    """The cards of ``kind:all`` (every visible one) or ``kind:N,M,...`` (each checked to be visible)."""
    spec, count = _spec(spec), backend.device_count()
    if spec.all_cards:
        if count < 1:
            raise DeviceUnavailable(f"--device {spec} was requested but no {backend.kind} card is visible",
                                    "make the cards visible, or choose another --device")
        return list(range(count))
    listed = spec.cards if spec.cards is not None else (() if spec.index is None else (spec.index,))
    for index in listed:
        _check_visible(backend, index, count)  # raises, naming the card that is not visible
    return list(listed)


def _open(backend: Backend, index: int | None, selection: tuple[str, ...]) -> Device:
    count = backend.device_count()
    _check_visible(backend, index, count)
    return Device(backend=backend, index=index, torch_device=backend.torch_device(index),
                  name=backend.device_name(index or 0), count=count, selection=selection)


def _check_visible(backend: Backend, index: int | None, count: int) -> None:
    if index is not None and index >= count:
        variable = kind_named(backend.kind).visible_devices_variable
        visible = f" ({variable}={os.environ.get(variable, '<unset>')})" if variable else ""
        raise DeviceUnavailable(
            f"--device {backend.kind}:{index} was requested but only {count} {backend.kind} device(s) "
            f"are visible{visible}",
            f"use an index below {count}, or make the card visible" + (f" via {variable}" if variable else ""))


def card_indices(spec: DeviceSpec | str, backend: Backend, resolved_kind: str | None = None) -> list[int | None]:
    """The cards a per-card test runs on: ``kind:N`` -> [N]; ``kind`` with several visible cards ->
    every index; one card, cpu or mps -> [None] (the session's device). ``auto`` counts as the kind it
    resolved to (``resolved_kind``, the session device's kind; ``backend`` is that kind's); unresolved, [None]."""
    spec = _spec(spec)
    kind = spec.kind
    if spec.server:
        return list(server_cards(spec, backend))
    if spec.index is not None:
        return [spec.index]
    if kind == "auto":
        kind = resolved_kind or "auto"
    if kind == "auto" or not kind_named(kind).takes_index:
        return [None]
    count = backend.device_count()
    return list(range(count)) if count > 1 else [None]


__all__ = ["AUTO_ORDER", "BACKENDS", "Backend", "Device", "backend_for", "card_indices", "select_device",
           "server_cards"]
