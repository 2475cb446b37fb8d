"""What every device backend provides, and the resolved device the suite uses.

A backend knows how to become available, synchronize, read memory and describe
itself. Nothing outside ``acceptance/devices`` names a vendor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import DeviceUnavailable


class Backend:
    """One kind of device. Subclasses override what their runtime offers."""

    kind: str = ""
    #: what the user should do when this kind is asked for but missing
    install_hint: str = ""

    def unavailable_reason(self) -> str | None:
        """None when the kind can be used here, else why not (imports the vendor module)."""
        raise NotImplementedError

    def device_count(self) -> int:
        return 1

    def device_name(self, index: int) -> str:
        raise NotImplementedError

    def torch_device(self, index: int | None) -> torch.device:
        return torch.device(self.kind, index or 0)

    def simulation(self) -> str | None:
        """None on real hardware; else what simulates this device (a test device: never auto-selected, and a
        run on it is not valid for sign-off)."""
        return None

    def bus_id(self, index: int) -> str | None:
        """The card's PCI address (``0000:3b:00.0``) where the runtime gives it, else None."""
        return None

    def synchronize(self, index: int) -> None:
        """Block until all queued work on the device has finished."""

    def versions(self) -> dict[str, str]:
        """Versions of the vendor stack (runtime, toolkit), for reports."""
        return {}

    def apply_precision(self, mode: str) -> None:
        """Set the reduced-precision switches for ``mode`` (options.PRECISION_MODES).

        ``vendor-default`` leaves every switch as the framework and vendor set it;
        ``strict`` turns off each shortcut that makes float32 less than float32
        (subclasses add their runtime's switches). Read back with precision_settings().
        """
        if mode == "strict":
            torch.set_float32_matmul_precision("highest")

    def strict_settings(self) -> dict[str, Any]:
        """What precision_settings() must read back after apply_precision("strict")."""
        return {"float32_matmul_precision": "highest"}

    def precision_settings(self) -> dict[str, Any]:
        """Reduced-precision switches in force on this backend, read back from the framework."""
        return {"float32_matmul_precision": torch.get_float32_matmul_precision()}

    def memory_allocated(self, index: int) -> int | None:
        """Bytes held by tensors now, or None where the backend cannot tell."""
        return None

    def max_memory_allocated(self, index: int) -> int | None:
        return None

    def reset_peak_memory(self, index: int) -> None:
        """Start a new peak-memory window (no-op where unsupported)."""

    def empty_cache(self) -> None:
        """Return the runtime's cached, unused blocks (after an out-of-memory error; no-op where none)."""

    def event_class(self) -> Any | None:
        """The runtime's Event class for device-side timing, or None."""
        return None

    #: which time a profile ranks operators by: "cpu" (the host runs the forward) or "device" (kernel time)
    profile_time: str = "cpu"

    def profiler_activities(self) -> list[Any]:
        """torch.profiler activities that record this device's work."""
        from torch.profiler import ProfilerActivity

        return [ProfilerActivity.CPU]

    def profiler(self, trace_dir: Path) -> Any:
        """An unstarted profiler for one forward (a context manager with ``key_averages()``); it may write
        into ``trace_dir``. Raises ImportError or RuntimeError when this runtime cannot profile."""
        import torch.profiler

        return torch.profiler.profile(activities=self.profiler_activities())

    def operator_events(self, profiler: Any, trace_dir: Path, basis: str) -> list[Any]:
        """The finished profile's operators (acceptance.profiling.RawEvent) by ``basis`` ("cpu"/"device")
        self time, from ``key_averages()``."""
        from ..profiling import raw_events

        return raw_events(profiler.key_averages(), basis)

    def export_trace(self, profiler: Any, trace_dir: Path, stem: str) -> Path:
        """Write the finished profile's trace (Chrome trace JSON) into ``trace_dir``; its path."""
        trace_dir.mkdir(parents=True, exist_ok=True)
        path = trace_dir / f"{stem}_trace.json"
        profiler.export_chrome_trace(str(path))
        return path



@dataclass(frozen=True)
class Device:
    """The device under test, resolved once per session."""

    backend: Backend = field(repr=False)
    index: int | None
    torch_device: torch.device
    name: str
    count: int
    #: how it was chosen: "requested" or the auto-selection log
    selection: tuple[str, ...] = ()
    #: the card's number on the host where this process sees only some cards (an xdist worker bound to its
    #: card by the visible-devices variable: its runtime calls it 0); None: ``index`` is that number
    card: int | None = None

    @property
    def kind(self) -> str:
        return self.backend.kind

    @property
    def label(self) -> str:
        if self.card is not None:
            return f"{self.kind}:{self.card}"
        if self.torch_device.type != self.kind:  # a stand-in card computing elsewhere keeps its kind's name
            return f"{self.kind}:{self.index or 0}"
        return str(self.torch_device)

    @property
    def is_cpu(self) -> bool:
        return self.kind == "cpu"

    def synchronize(self) -> None:
        self.backend.synchronize(self.index or 0)

    def apply_precision(self, mode: str) -> dict[str, Any]:
        """Apply a precision mode (vendor-default or strict) and return the settings read back."""
        try:
            self.backend.apply_precision(mode)
        except (AttributeError, RuntimeError, ValueError) as error:  # the runtime lacks or refuses a switch
            raise DeviceUnavailable(f"--precision {mode} cannot be applied on {self.label}: {error}",
                                    "run with --precision vendor-default, or update the device runtime") from None
        return self.backend.precision_settings()

    def describe(self) -> dict[str, Any]:
        """Plain data for reports."""
        return {
            "kind": self.kind,
            "device": self.label,
            "name": self.name,
            "count": self.count,
            "versions": self.backend.versions(),
            "precision_settings": self.backend.precision_settings(),
            "selection": list(self.selection),
            "simulation": self.backend.simulation(),
        }
