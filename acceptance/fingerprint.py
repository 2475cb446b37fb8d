"""Effective-precision fingerprint: which arithmetic explains the device's error?

A device that claims float32 but rounds somewhere (TF32/HF32 convolutions or
matmuls, float16 matrix units, bfloat16) leaves a characteristic error profile:
the relative error of every probe point (embeddings, each block, final norm)
against the CPU float32 reference. Here the same model runs on the CPU with
known reduced-precision arithmetic, each run giving an expected profile:

- ``float32``: the model in float64 - the rounding noise any correct float32
  implementation shows against another (different summation order).
- ``tf32/hf32``: float32, with the inputs of every matmul and convolution
  rounded to a 10-bit mantissa (TF32 on NVIDIA, HF32 on Ascend).
- ``bfloat16`` and ``float16``: the model in that dtype (the suite loads it the
  way the device model is loaded, so a CPU target in that dtype matches exactly).

The device's measured profile is placed on that scale: the distance to each
profile is the mean, over probe points, of |log10 measured - log10 expected|
(decades). Both errors are first raised to a floor: the float32 profile's
error at that point (and at least float32's unit roundoff 2^-24), because an
error below float32's own rounding noise - an exact match included - cannot
be told apart from float32 arithmetic. The closest profile is the verdict; the
distances are reported with it, and the thresholds file's
``[fingerprint] max_distance_decades`` says how far the closest may be before
the error counts as explained by no known arithmetic (a kernel bug, not rounding).
"""

from __future__ import annotations

import copy
import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .layers import CapturedRun, run_with_capture
from .metrics import relative_error

#: TF32 (NVIDIA) and HF32 (Ascend) keep 10 of float32's 23 explicit mantissa bits
TF32_MANTISSA_BITS = 10
FLOAT32_MANTISSA_BITS = 23
#: errors below float32's unit roundoff cannot be told apart from float32 arithmetic
ERROR_FLOOR = 2.0 ** -24

#: profile name -> verdict sentence
VERDICTS = {
    "float32": "consistent with float32",
    "tf32/hf32": "consistent with TF32/HF32 matmul or conv",
    "bfloat16": "consistent with bfloat16",
    "float16": "consistent with float16",
}
PROFILE_NAMES = tuple(VERDICTS)
#: profiles a device computing in a dtype may honestly match: float16 and TF32/HF32 both keep a 10-bit
#: mantissa and differ mainly in what else is rounded, so their profiles sit close together
CONSISTENT_WITH_DTYPE = {"float32": ("float32",), "bfloat16": ("bfloat16",), "float16": ("float16", "tf32/hf32")}


def round_mantissa(tensor: torch.Tensor, bits: int = TF32_MANTISSA_BITS) -> torch.Tensor:
    """Round float32 values to ``bits`` explicit mantissa bits (nearest, ties to even), kept in float32.

    The exponent range is float32's, as in TF32/HF32. NaN and Inf pass through;
    tensors of other dtypes are returned unchanged.
    """
    if tensor.dtype != torch.float32 or bits >= FLOAT32_MANTISSA_BITS:
        return tensor
    drop = FLOAT32_MANTISSA_BITS - bits
    pattern = tensor.contiguous().view(torch.int32)
    lowest_kept = (pattern >> drop) & 1
    # Adding half an ulp minus one, plus the kept lowest bit, then truncating rounds to nearest with ties to
    # even; a carry out of the mantissa correctly bumps the exponent (and overflows to Inf past float32's max).
    rounded = ((pattern + ((1 << (drop - 1)) - 1) + lowest_kept) & ~((1 << drop) - 1)).view(torch.float32)
    return torch.where(torch.isfinite(tensor), rounded, tensor).view_as(tensor)


class ReducedPrecisionInputs(TorchFunctionMode):
    """While active, round the float32 inputs of matmuls and/or convolutions to ``bits`` mantissa bits.

    This is what TF32/HF32 hardware does: multiply rounded inputs, accumulate in
    float32. Attention (scaled_dot_product_attention) is computed as its two
    matmuls with rounded inputs and a float32 softmax between them. Biases are
    added at full precision, as in the accumulator.
    """

    CONV = frozenset({F.conv1d, F.conv2d, F.conv3d})
    #: functions whose first two tensor arguments are the multiplied operands
    MATMUL = frozenset({F.linear, torch.matmul, torch.mm, torch.bmm, torch.Tensor.matmul, torch.Tensor.__matmul__})
    #: functions whose second and third arguments are the multiplied operands (bias first)
    ADD_MATMUL = frozenset({torch.addmm, torch.baddbmm})

    def __init__(self, kinds: Iterable[str] = ("matmul", "conv"), bits: int = TF32_MANTISSA_BITS):
        super().__init__()
        self.kinds = frozenset(kinds)
        unknown = self.kinds - {"matmul", "conv"}
        if unknown:
            raise ValueError(f"unknown operation kinds {sorted(unknown)}; expected matmul and/or conv")
        self.bits = bits

    def _round(self, value: Any) -> Any:
        return round_mantissa(value, self.bits) if isinstance(value, torch.Tensor) else value

    def _round_positions(self, args: tuple, positions: tuple[int, ...]) -> tuple:
        return tuple(self._round(arg) if index in positions else arg for index, arg in enumerate(args))

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if "conv" in self.kinds and func in self.CONV:
            return func(*self._round_positions(args, (0, 1)), **kwargs)
        if "matmul" in self.kinds:
            if func in self.MATMUL:
                return func(*self._round_positions(args, (0, 1)), **kwargs)
            if func in self.ADD_MATMUL:
                return func(*self._round_positions(args, (1, 2)), **kwargs)
            if func is F.scaled_dot_product_attention:
                return self._attention(*args, **kwargs)
        return func(*args, **kwargs)

    def _attention(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                   attn_mask: torch.Tensor | None = None, dropout_p: float = 0.0, is_causal: bool = False,
                   scale: float | None = None, enable_gqa: bool = False) -> torch.Tensor:
        if dropout_p or is_causal or enable_gqa:
            raise NotImplementedError("the emulation covers inference attention only "
                                      "(no dropout, causal mask or grouped-query attention)")
        scale = query.shape[-1] ** -0.5 if scale is None else scale
        scores = torch.matmul(self._round(query), self._round(key).transpose(-2, -1)) * scale
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, -math.inf) if attn_mask.dtype == torch.bool else scores + attn_mask
        weights = torch.softmax(scores, dim=-1)
        return torch.matmul(self._round(weights), self._round(value))


@dataclass(frozen=True)
class Fingerprint:
    """The closest emulated arithmetic and the distance (decades) to every profile."""

    closest: str | None
    distances: dict[str, float]
    measured: list[float]
    profiles: dict[str, list[float]]
    names: list[str]
    floors: list[float]

    @property
    def verdict(self) -> str:
        if self.closest is None:
            return "no verdict: the measured errors are not finite"
        return VERDICTS.get(self.closest, f"consistent with {self.closest}")

    @property
    def closest_distance(self) -> float:
        return self.distances[self.closest] if self.closest is not None else math.nan

    @property
    def runner_up(self) -> str | None:
        """The second-closest profile (TF32/HF32 and float16 both keep 10 mantissa bits and often sit close)."""
        ranked = sorted((d, name) for name, d in self.distances.items() if math.isfinite(d))
        return ranked[1][1] if len(ranked) > 1 else None

    def describe(self) -> str:
        distances = ", ".join(f"{name} {distance:.2f}" for name, distance in self.distances.items())
        return f"{self.verdict} (distance in decades: {distances})"

    def to_dict(self) -> dict[str, Any]:
        return {"closest": self.closest, "verdict": self.verdict, "distances": dict(self.distances),
                "runner_up": self.runner_up, "measured": list(self.measured),
                "profiles": {name: list(values) for name, values in self.profiles.items()},
                "probe_points": list(self.names), "floors": list(self.floors),
                "distance": "mean over probe points of |log10 max(measured, floor) - log10 max(expected, floor)|, "
                            "floor = the float32 profile's error at that point (at least 2^-24)"}


def profile_floors(profiles: Mapping[str, Sequence[float]], points: int) -> list[float]:
    """Per probe point: the float32 profile's error there (float32's own noise), at least 2^-24."""
    float32 = profiles.get("float32")
    if float32 is None:
        return [ERROR_FLOOR] * points
    return [max(ERROR_FLOOR, value) if math.isfinite(value) else ERROR_FLOOR for value in float32]


def profile_distance(measured: Sequence[float], expected: Sequence[float], floors: Sequence[float]) -> float:
    """Mean |log10 max(m, floor) - log10 max(e, floor)| over probe points (decades); NaN if any value is NaN."""
    if not (len(measured) == len(expected) == len(floors)) or not measured:
        raise ValueError(f"profiles differ in length: measured {len(measured)}, expected {len(expected)}, "
                         f"floors {len(floors)} points")
    total = 0.0
    for m, e, floor in zip(measured, expected, floors):  # lengths checked above
        if math.isnan(m) or math.isnan(e):
            return math.nan
        total += abs(math.log10(max(m, floor)) - math.log10(max(e, floor)))  # inf stays inf: no match
    return total / len(measured)


def classify(measured: Sequence[float], profiles: Mapping[str, Sequence[float]], names: Sequence[str]) -> Fingerprint:
    """The profile closest to the measured per-layer errors (None when no distance is finite)."""
    floors = profile_floors(profiles, len(measured))
    distances = {name: profile_distance(measured, profile, floors) for name, profile in profiles.items()}
    finite = {name: distance for name, distance in distances.items() if math.isfinite(distance)}
    closest = min(finite, key=finite.__getitem__) if finite else None
    return Fingerprint(closest=closest, distances=distances, measured=list(measured),
                       profiles={name: list(profile) for name, profile in profiles.items()}, names=list(names),
                       floors=floors)


def error_profile(reference: CapturedRun, candidate: CapturedRun) -> list[float]:
    """Relative error (mean|c - r| / mean|r|) of every probe point, in forward order."""
    return [relative_error(reference.layers[name], candidate.layers[name]) for name in reference.names]


#: builds the model a profile runs: given a dtype, a CPU model of the checkpoint in that dtype
ModelSource = Callable[[torch.dtype], torch.nn.Module]

#: the dtype each profile's model is in (tf32/hf32 is float32 with rounded matmul and conv inputs)
PROFILE_DTYPES = {"float32": torch.float64, "tf32/hf32": torch.float32, "bfloat16": torch.bfloat16,
                  "float16": torch.float16}


def cast_copies(reference_model: torch.nn.Module) -> ModelSource:
    """A ModelSource that casts copies of the float32 reference (the reference itself for float32).

    Prefer loading the checkpoint in the dtype the way the device model is loaded
    where that differs: from_pretrained keeps some buffers (RoPE frequencies) in
    float32 that a plain cast rounds.
    """
    def source(dtype: torch.dtype) -> torch.nn.Module:
        return reference_model if dtype == torch.float32 else copy.deepcopy(reference_model).to(dtype)

    return source


def emulated_run(source: ModelSource, pixel_values: torch.Tensor, profile: str) -> CapturedRun:
    """Run the model with one profile's arithmetic on the CPU, capturing every probe point."""
    if profile not in PROFILE_NAMES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILE_NAMES)}")
    dtype = PROFILE_DTYPES[profile]
    model = source(dtype)
    context = ReducedPrecisionInputs(("matmul", "conv")) if profile == "tf32/hf32" else nullcontext()
    with context:
        return run_with_capture(model, pixel_values.to(dtype))


@dataclass
class EmulatedProfiles:
    """Expected error profiles (per probe point and final) for each emulated arithmetic."""

    names: list[str]
    profiles: dict[str, list[float]] = field(default_factory=dict)
    final: dict[str, dict[str, float]] = field(default_factory=dict)


def emulate_profiles(source: ModelSource, pixel_values: torch.Tensor, reference: CapturedRun,
                     profiles: Iterable[str] = PROFILE_NAMES) -> EmulatedProfiles:
    """Every profile's per-layer and final relative errors against the CPU float32 ``reference`` run."""
    result = EmulatedProfiles(names=reference.names)
    for profile in profiles:
        run = emulated_run(source, pixel_values, profile)
        result.profiles[profile] = error_profile(reference, run)
        result.final[profile] = {name: relative_error(reference.outputs[name], run.outputs[name])
                                 for name in reference.outputs}
    return result
