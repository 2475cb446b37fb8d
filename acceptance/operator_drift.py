"""Operator-level drift: every torch API call on the device against the same call in the CPU float32 reference.

The reference forward runs first: each call's tensors go to a spill folder on disk
(parameters stay where they are: the reference model holds them anyway), with only
the index in memory. The device forward is compared as it runs: each call is lined
up with the reference call of the same module, API and occurrence in that module,
whose tensors are read back one call at a time. So no forward's worth of tensors is
ever held, whatever the model's size.

Metrics and the verdict of each call are msprobe's (mindstudio-probe 26.2, real-data
"tensor" comparison), so the table reads like the CSV of ``msprobe compare``:

- Cosine, MaxAbsErr, MaxRelativeErr (|dev - ref| / |ref|, the float32 epsilon added
  where the reference is 0), One Thousandth / Five Thousandths Err Ratio (the
  fraction of elements whose relative error is below 0.1 % / 0.5 %);
- error: NaN/Inf in a device tensor where the reference has none; shapes that differ;
  every input and parameter with a one-thousandth ratio above 0.9 while an output's
  is below 0.1 (the output went wrong although its inputs were fine);
- warning: inputs' lowest cosine above 0.9 and more than 0.1 above the outputs'.

To those the suite adds one rule msprobe lacks (GROWTH, below): an output whose relative error
grew tenfold over its inputs' and passed a floor set by the dtype is an error too.

msprobe also marks a dtype that differs between the sides as an error; a bfloat16
device run against the float32 reference differs by design, so that rule is left
out here (``msprobe compare`` on the dumps of such a run shows it on every row).
The first ``error`` in forward order is the first operator whose output goes wrong
while its inputs were fine: where the device's error begins.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch

from .metrics import relative_error
from .operators import (
    CapturedTensor,
    ModuleCall,
    OperatorCall,
    OperatorSink,
    Tee,
    capture_operators,
)

#: msprobe's thresholds (msprobe/core/compare/indicator_analysis/algorithm.py, CompareConst)
ONE_THOUSANDTH = 0.001
FIVE_THOUSANDTHS = 0.005
INPUT_RATIO_FINE = 0.9
OUTPUT_RATIO_WRONG = 0.1
INPUT_COSINE_FINE = 0.9
COSINE_DROP = 0.1
STATUSES = ("pass", "warning", "error")
#: the suite's growth rule, for what msprobe's misses: a device whose reduced-precision shortcuts (HF32
#: convolutions, on by default on Ascend) leave every activation a little off never has inputs with a
#: one-thousandth ratio above 0.9, so an operator computing 1 % wrong there passes msprobe's rule. The growth
#: rule flags an output whose relative error is GROWTH times its inputs' largest (msprobe's own warning factor)
#: and above the dtype's floor: 10 unit roundoffs of the arithmetic the device may use (HF32/float16 2^-11,
#: bfloat16 2^-8), so ordinary rounding, even of exact inputs, never reaches it.
GROWTH = 10.0
GROWTH_FLOOR = {"float32": 10 * 2.0**-11, "float16": 10 * 2.0**-11, "bfloat16": 10 * 2.0**-8}


@dataclass(frozen=True)
class TensorMetrics:
    """One tensor of a call, device against reference, by msprobe's definitions (plus the suite's relative error)."""

    cosine: float
    max_abs_err: float
    max_relative_err: float
    one_thousandth: float
    five_thousandths: float
    #: mean|dev - ref| / mean|ref| (the seed's definition, as the layer table)
    relative_error: float
    device_finite: bool
    reference_finite: bool

    def to_dict(self) -> dict[str, Any]:
        return {"cosine": self.cosine, "max_abs_err": self.max_abs_err, "max_relative_err": self.max_relative_err,
                "one_thousandth_err_ratio": self.one_thousandth, "five_thousandths_err_ratio": self.five_thousandths,
                "relative_error": self.relative_error}


def tensor_metrics(reference: torch.Tensor, candidate: torch.Tensor) -> TensorMetrics:
    """msprobe's comparison of one tensor pair (computed in float64; NaN where a side is not finite)."""
    ref = reference.detach().to("cpu", torch.float64).flatten()
    cand = candidate.detach().to("cpu", torch.float64).flatten()
    device_finite, reference_finite = bool(torch.isfinite(cand).all()), bool(torch.isfinite(ref).all())
    if ref.numel() == 0:  # nothing to differ: identical
        return TensorMetrics(1.0, 0.0, 0.0, 1.0, 1.0, 0.0, True, True)
    if not (device_finite and reference_finite):
        nan = math.nan
        return TensorMetrics(nan, nan, nan, nan, nan, nan, device_finite, reference_finite)
    ref_norm, cand_norm = ref.norm().item(), cand.norm().item()
    eps64 = torch.finfo(torch.float64).eps
    if ref_norm <= eps64 and cand_norm <= eps64:
        cosine = 1.0
    elif ref_norm <= eps64 or cand_norm <= eps64:
        cosine = math.nan  # msprobe: "all the data is zero" on one side
    else:
        cosine = torch.dot(ref, cand).item() / (ref_norm * cand_norm)
    # msprobe's get_relative_err: where the reference is 0 both sides get float32's epsilon
    zero = ref == 0
    eps32 = torch.finfo(torch.float32).eps
    rel = ((cand + zero * eps32) - (ref + zero * eps32)).abs() / (ref + zero * eps32).abs()
    return TensorMetrics(
        cosine=cosine, max_abs_err=(cand - ref).abs().max().item(), max_relative_err=rel.max().item(),
        one_thousandth=(rel < ONE_THOUSANDTH).double().mean().item(),
        five_thousandths=(rel < FIVE_THOUSANDTHS).double().mean().item(),
        relative_error=relative_error(ref, cand), device_finite=True, reference_finite=True)


def where(name: str, module: str) -> str:
    """``Functional.gelu.7.forward in layer.7.mlp.act_fn``: a call and the module it ran in."""
    return f"{name} in {module or 'the model top level'}"


def _role_name(role: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in role)


class ReferenceStore:
    """Sink for the reference forward: each call's activations written to a spill folder, parameters kept by
    reference (the reference model holds them), the index in memory. ``close()`` removes the folder."""

    def __init__(self, under: Path | None = None):
        if under is not None:
            under.mkdir(parents=True, exist_ok=True)
        # a folder of its own (under the run folder when given: disk, not a tmpfs /tmp that holds it in memory)
        self.folder = Path(tempfile.mkdtemp(prefix=".operator-spill-", dir=under))
        #: call key -> (call, role name -> file path or parameter tensor)
        self.calls: dict[tuple[str, str, int], tuple[OperatorCall, dict[str, Any]]] = {}
        self.bytes_written = 0

    def operator(self, call: OperatorCall, tensors: list[CapturedTensor]) -> None:
        entries: dict[str, Any] = {}
        for item in tensors:
            role = _role_name(item.role)
            if item.parameter is not None:
                entries[role] = item.tensor
                continue
            path = self.folder / f"{call.name}.{role}.pt"
            torch.save(item.tensor, path)
            self.bytes_written += item.tensor.numel() * item.tensor.element_size()
            entries[role] = path
        self.calls[call.key] = (call, entries)

    def module(self, call: ModuleCall, tensors: list[CapturedTensor]) -> None:
        """Modules are compared through their operators."""

    def tensor(self, entry: Any) -> torch.Tensor:
        return entry if isinstance(entry, torch.Tensor) else torch.load(entry, weights_only=True)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass(frozen=True)
class OperatorRow:
    """One device call against its reference call, with msprobe's verdict."""

    index: int
    name: str
    api: str
    module: str
    shape: tuple[int, ...]
    dtype: str
    reference_dtype: str
    #: the first floating output's metrics
    output: TensorMetrics
    #: the lowest one-thousandth ratio and cosine, and the largest relative error, over inputs and parameters
    #: (None for a call without tensor inputs, e.g. torch.arange)
    input_one_thousandth: float | None
    input_cosine: float | None
    input_relative_error: float | None
    status: str
    reason: str = ""

    def describe(self) -> str:
        """``Functional.gelu.7.forward in layer.7.mlp.act_fn: <why>``."""
        return f"{where(self.name, self.module)}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "api": self.api, "module": self.module,
                "shape": list(self.shape), "dtype": self.dtype, "reference_dtype": self.reference_dtype,
                **self.output.to_dict(), "input_one_thousandth_err_ratio": self.input_one_thousandth,
                "input_cosine": self.input_cosine, "input_relative_error": self.input_relative_error,
                "status": self.status, "reason": self.reason}


def _lowest(values: list[float]) -> float | None:
    finite = [value for value in values if not math.isnan(value)]
    return min(finite) if finite else (math.nan if values else None)


def _highest(values: list[float]) -> float | None:
    finite = [value for value in values if not math.isnan(value)]
    return max(finite) if finite else (math.nan if values else None)


def msprobe_status(inputs: list[TensorMetrics], outputs: list[TensorMetrics], shapes_differ: bool = False,
                   dtype: str | None = None) -> tuple[str, str]:
    """(status, reason) by msprobe's real-data checkers (the dtype rule left out: see the module's docstring),
    then, with ``dtype``, the suite's growth rule (GROWTH)."""
    for side, metrics in (("input", inputs), ("output", outputs)):
        if any(not m.device_finite and m.reference_finite for m in metrics):
            return "error", f"NaN/Inf in a device {side} where the CPU reference has none"
    # msprobe lets a NaN pass where the reference has one too; the suite never does (the first such operator
    # is where it begins: a NaN in the weights shows up in the first operator that uses them)
    if any(not m.device_finite for m in outputs):
        return "error", "NaN/Inf in the device output (the CPU reference has them too: the weights or the input?)"
    if shapes_differ:
        return "error", "the device's output shape differs from the reference's"
    in_ratio, out_ratio = _lowest([m.one_thousandth for m in inputs]), _lowest([m.one_thousandth for m in outputs])
    if (in_ratio is not None and out_ratio is not None and in_ratio > INPUT_RATIO_FINE
            and out_ratio < OUTPUT_RATIO_WRONG):
        worst = min(outputs, key=lambda m: m.one_thousandth)
        return "error", (f"output one-thousandth error ratio {out_ratio:.4f} (< {OUTPUT_RATIO_WRONG}) "
                         f"while its inputs' "
                         f"lowest is {in_ratio:.4f} (> {INPUT_RATIO_FINE}): the output went wrong although its inputs "
                         f"were fine; relative error {worst.relative_error:.4%}, max relative error "
                         f"{worst.max_relative_err:.3e}, cosine {worst.cosine:.6f}")
    in_cos, out_cos = _lowest([m.cosine for m in inputs]), _lowest([m.cosine for m in outputs])
    if in_cos is not None and out_cos is not None and in_cos > INPUT_COSINE_FINE and in_cos - out_cos > COSINE_DROP:
        return "warning", (f"output cosine {out_cos:.6f} is more than {COSINE_DROP} below its inputs' lowest "
                           f"({in_cos:.6f})")
    in_err, out_err = _highest([m.relative_error for m in inputs]), _highest([m.relative_error for m in outputs])
    floor = GROWTH_FLOOR.get(dtype or "", math.inf)
    if in_err is not None and out_err is not None and out_err > max(GROWTH * in_err, floor):
        return "error", (f"output relative error {out_err:.4%} is over {GROWTH:g}x its inputs' largest ({in_err:.4%}) "
                         f"and over {floor:.4%} ({dtype}'s floor): the output went wrong although its inputs were "
                         f"nearly right (the suite's growth rule; msprobe's one-thousandth rule needs inputs above "
                         f"{INPUT_RATIO_FINE}, here {in_ratio:.4f})")
    return "pass", ""


class DeviceComparison:
    """Sink for the device forward: each call compared with its reference call as soon as it completes."""

    def __init__(self, reference: ReferenceStore, dtype: str):
        self.reference = reference
        self.dtype = dtype
        self.rows: list[OperatorRow] = []
        self.unmatched: list[str] = []
        self.seen: set[tuple[str, str, int]] = set()

    def module(self, call: ModuleCall, tensors: list[CapturedTensor]) -> None:
        """Modules are compared through their operators."""

    def operator(self, call: OperatorCall, tensors: list[CapturedTensor]) -> None:
        found = self.reference.calls.get(call.key)
        if found is None:
            self.unmatched.append(where(call.name, call.module))
            return
        self.seen.add(call.key)
        _, entries = found
        inputs: list[TensorMetrics] = []
        outputs: list[TensorMetrics] = []
        shapes_differ = False
        first_output: tuple[CapturedTensor, torch.Tensor] | None = None
        for item in tensors:
            role = _role_name(item.role)
            if role not in entries:  # an output the reference call lacks is a shape that differs
                shapes_differ = shapes_differ or item.is_output
                continue
            reference = self.reference.tensor(entries[role])
            if item.is_output and first_output is None:
                first_output = (item, reference)
            if tuple(reference.shape) != tuple(item.tensor.shape):
                shapes_differ = shapes_differ or item.is_output
                continue
            metrics = tensor_metrics(reference, item.tensor)
            (outputs if item.is_output else inputs).append(metrics)
        if first_output is None:  # no floating output lines up with the reference's: nothing to judge it by
            self.unmatched.append(f"{where(call.name, call.module)} (no output lines up)")
            return
        status, reason = msprobe_status(inputs, outputs, shapes_differ, self.dtype)
        item, reference = first_output
        nan = math.nan
        self.rows.append(OperatorRow(
            index=call.index, name=call.name, api=call.api, module=call.module, shape=tuple(item.tensor.shape),
            dtype=str(item.tensor.dtype).removeprefix("torch."),
            reference_dtype=str(reference.dtype).removeprefix("torch."),
            output=outputs[0] if outputs else TensorMetrics(nan, nan, nan, nan, nan, nan, True, True),
            input_one_thousandth=_lowest([m.one_thousandth for m in inputs]),
            input_cosine=_lowest([m.cosine for m in inputs]),
            input_relative_error=_highest([m.relative_error for m in inputs]), status=status, reason=reason))

    def missing(self) -> list[str]:
        """Reference calls the device never made."""
        return [where(call.name, call.module)
                for key, (call, _) in self.reference.calls.items() if key not in self.seen]


@dataclass(frozen=True)
class OperatorDrift:
    """Every operator of one forward on the device against the CPU float32 reference, in forward order."""

    rows: tuple[OperatorRow, ...]
    dtype: str
    #: device calls with no reference call of the same module, API and occurrence, and the reverse
    unmatched_device: tuple[str, ...] = ()
    unmatched_reference: tuple[str, ...] = ()
    #: what the capture cost: seconds of each side's captured forward, bytes spilled to disk
    costs: dict[str, float] = field(default_factory=dict)
    #: where the msprobe dumps were written (--dump), side -> dump.json path
    dumps: dict[str, str] = field(default_factory=dict)

    def with_dumps(self, dumps: dict[str, str]) -> "OperatorDrift":
        return replace(self, dumps=dict(dumps))

    @property
    def first_error(self) -> OperatorRow | None:
        return next((row for row in self.rows if row.status == "error"), None)

    @property
    def counts(self) -> dict[str, int]:
        return {status: sum(row.status == status for row in self.rows) for status in STATUSES}

    def worst(self, count: int = 10) -> list[OperatorRow]:
        """The ``count`` rows with the largest output relative error (NaN first), in that order."""
        def badness(row: OperatorRow) -> float:
            value = row.output.relative_error
            return math.inf if math.isnan(value) else value
        return sorted(self.rows, key=badness, reverse=True)[:count]

    def largest_step(self) -> OperatorRow | None:
        """The call whose output's relative error grew most over its inputs' (where a gradual drift grows most)."""
        def step(row: OperatorRow) -> float:
            out, into = row.output.relative_error, row.input_relative_error
            if math.isnan(out):
                return math.inf
            return out / max(into or 0.0, 1e-12) if out > 0 else 0.0
        candidates = [row for row in self.rows if row.input_relative_error is not None]
        return max(candidates, key=step) if candidates else None

    def localisation(self) -> str:
        """One sentence: the first operator that went wrong while its inputs were fine, or that none did."""
        first = self.first_error
        if first is not None:
            return f"first operator whose output goes wrong while its inputs were fine: {first.describe()}"
        step = self.largest_step()
        tail = ""
        if step is not None and step.output.relative_error > 0:
            tail = (f"; the error grows most at {where(step.name, step.module)} (relative error "
                    f"{step.output.relative_error:.4%}, its inputs' {step.input_relative_error or 0.0:.4%})")
        return f"no operator's output goes wrong while its inputs were fine ({len(self.rows)} operators){tail}"

    def to_dict(self) -> dict[str, Any]:
        first = self.first_error
        step = self.largest_step()
        return {"dtype": self.dtype, "operators": [row.to_dict() for row in self.rows], "counts": self.counts,
                "first_error": first.name if first else None, "first_error_module": first.module if first else None,
                "largest_step": step.name if step else None, "localisation": self.localisation(),
                "unmatched_device": list(self.unmatched_device), "unmatched_reference": list(self.unmatched_reference),
                "costs": dict(self.costs), "dumps": dict(self.dumps)}


def compare_operators(reference_model: torch.nn.Module, reference_pixels: torch.Tensor,
                      device_model: torch.nn.Module, device_pixels: torch.Tensor, dtype: str,
                      synchronize: Callable[[], None], reference_dump: OperatorSink | None = None,
                      device_dump: OperatorSink | None = None, spill_under: Path | None = None) -> OperatorDrift:
    """One captured forward per side, the device's compared call by call with the reference's; each side's
    calls also go to its dump writer when one is given (--dump). The reference's tensors are spilled to a
    folder under ``spill_under`` (the system's temporary folder when None), removed at the end."""
    store = ReferenceStore(spill_under)
    try:
        started = time.perf_counter()
        capture_operators(reference_model, reference_pixels, Tee(store, reference_dump))
        reference_s = time.perf_counter() - started
        comparison = DeviceComparison(store, dtype)
        started = time.perf_counter()
        capture_operators(device_model, device_pixels, Tee(comparison, device_dump))
        synchronize()
        device_s = time.perf_counter() - started
        missing = comparison.missing()
    finally:
        store.close()
    return OperatorDrift(rows=tuple(comparison.rows), dtype=dtype, unmatched_device=tuple(comparison.unmatched),
                         unmatched_reference=tuple(missing),
                         costs={"reference_capture_s": reference_s, "device_capture_s": device_s,
                                "spilled_bytes": float(store.bytes_written), "operators": float(len(comparison.rows))})
