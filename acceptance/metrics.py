"""Accuracy metrics: one documented function each, computed in float64 on the CPU.

Every check here is NaN-safe: a NaN or infinite value never passes a limit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from .bounds import at_least, at_most, less_than  # noqa: F401 - re-exported: the checks are used from here


def _as_float64(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to("cpu", torch.float64)


def relative_error(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """mean|candidate - reference| / mean|reference| (the seed's definition).

    An all-zero reference gives 0.0 when the candidate is also all zero and
    +inf otherwise; any NaN or Inf in either tensor gives NaN.
    """
    ref, cand = _as_float64(reference), _as_float64(candidate)
    diff = (cand - ref).abs().mean().item()
    scale = ref.abs().mean().item()
    if not (math.isfinite(diff) and math.isfinite(scale)):
        return math.nan
    if scale == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / scale


def cosine_similarity(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """Cosine of the angle between the flattened tensors.

    Two all-zero tensors count as identical (1.0); one all-zero tensor as
    orthogonal (0.0); any NaN or Inf gives NaN.
    """
    ref, cand = _as_float64(reference).flatten(), _as_float64(candidate).flatten()
    norms = ref.norm().item() * cand.norm().item()
    dot = torch.dot(ref, cand).item()
    if not (math.isfinite(norms) and math.isfinite(dot)):
        return math.nan
    if norms == 0.0:
        return 1.0 if ref.norm().item() == cand.norm().item() else 0.0
    return dot / norms


#: msprobe-style element-wise relative errors: a reference element smaller than this fraction of the
#: tensor's mean |reference| is measured against that floor instead of its own magnitude (see below)
NEAR_ZERO_FRACTION = 1e-3


def elementwise_relative_error(reference: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
    """|candidate - reference| / max(|reference|, NEAR_ZERO_FRACTION * mean|reference|), per element, in float64.

    The near-zero guard: an element whose reference is (almost) zero - a sign
    change, a ReLU/GELU tail - would show an arbitrarily large relative error
    for a tiny absolute one. Below 0.1 % of the tensor's mean magnitude the
    element is compared against that floor, i.e. its error is read relative to
    the tensor's scale. An all-zero reference uses the smallest positive float64
    as the floor (equal elements give 0, different ones a huge error).
    """
    ref, cand = _as_float64(reference), _as_float64(candidate)
    if ref.shape != cand.shape:
        raise ValueError(f"shapes differ: reference {list(ref.shape)} vs candidate {list(cand.shape)}")
    scale = ref.abs().mean() if ref.numel() else torch.zeros((), dtype=torch.float64)
    floor = torch.clamp(NEAR_ZERO_FRACTION * scale, min=torch.finfo(torch.float64).tiny)
    return (cand - ref).abs() / torch.maximum(ref.abs(), floor)


def _fraction_relative_error_below(reference: torch.Tensor, candidate: torch.Tensor, limit: float) -> float:
    ref, cand = _as_float64(reference), _as_float64(candidate)
    if not (bool(torch.isfinite(ref).all()) and bool(torch.isfinite(cand).all())):
        return math.nan
    if ref.numel() == 0:
        return 1.0
    return (elementwise_relative_error(ref, cand) < limit).double().mean().item()


def fraction_rel_err_below_0_1pct(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """Fraction of elements whose element-wise relative error is below 0.1 % (msprobe's "one-thousandth" ratio).

    Uses elementwise_relative_error (with its near-zero guard); NaN when either tensor has NaN/Inf.
    """
    return _fraction_relative_error_below(reference, candidate, 1e-3)


def fraction_rel_err_below_0_5pct(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """Fraction of elements whose element-wise relative error is below 0.5 % (msprobe's "five-thousandths" ratio).

    Uses elementwise_relative_error (with its near-zero guard); NaN when either tensor has NaN/Inf.
    """
    return _fraction_relative_error_below(reference, candidate, 5e-3)


def first_nonfinite(tensor: torch.Tensor) -> tuple[int, ...] | None:
    """Index of the first NaN/Inf element, or None when all are finite."""
    bad = ~torch.isfinite(tensor.detach().cpu())
    if not bool(bad.any()):
        return None
    return tuple(int(i) for i in bad.nonzero()[0].tolist())


@dataclass(frozen=True)
class TensorComparison:
    """A device tensor compared with its CPU float32 reference."""

    name: str
    shape: tuple[int, ...]
    reference_dtype: str
    candidate_dtype: str
    max_abs_diff: float
    mean_abs_diff: float
    relative_error: float
    cosine: float
    nonfinite_reference: int
    nonfinite_candidate: int
    first_nonfinite_candidate: tuple[int, ...] | None

    @property
    def finite(self) -> bool:
        return self.nonfinite_reference == 0 and self.nonfinite_candidate == 0

    def nonfinite_message(self) -> str:
        """Where NaN/Inf values appear, for failure messages ('' when all finite)."""
        parts = []
        if self.nonfinite_candidate:
            parts.append(f"{self.nonfinite_candidate} NaN/Inf values in the device {self.name} "
                         f"(first at index {list(self.first_nonfinite_candidate or ())})")
        if self.nonfinite_reference:
            parts.append(f"{self.nonfinite_reference} NaN/Inf values in the CPU reference {self.name}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["shape"] = list(self.shape)
        return data


def compare(name: str, reference: torch.Tensor, candidate: torch.Tensor) -> TensorComparison:
    """All accuracy metrics for one output tensor (shapes must match)."""
    if tuple(reference.shape) != tuple(candidate.shape):
        raise ValueError(f"{name}: shapes differ, reference {list(reference.shape)} vs device {list(candidate.shape)}")
    ref, cand = _as_float64(reference), _as_float64(candidate)
    abs_diff = (cand - ref).abs()
    return TensorComparison(
        name=name,
        shape=tuple(reference.shape),
        reference_dtype=str(reference.dtype).replace("torch.", ""),
        candidate_dtype=str(candidate.dtype).replace("torch.", ""),
        max_abs_diff=abs_diff.max().item() if abs_diff.numel() else 0.0,
        mean_abs_diff=abs_diff.mean().item() if abs_diff.numel() else 0.0,
        relative_error=relative_error(ref, cand),
        cosine=cosine_similarity(ref, cand),
        nonfinite_reference=int((~torch.isfinite(ref)).sum()),
        nonfinite_candidate=int((~torch.isfinite(cand)).sum()),
        first_nonfinite_candidate=first_nonfinite(cand),
    )
