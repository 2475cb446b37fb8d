"""Layer-wise drift: every probe point on the device against the CPU float32 reference, and where drift begins.

Each probe point (for a ViT: embeddings, each transformer block, final norm) gets the
same metrics as the outputs - relative error, cosine, max |diff| - plus
msprobe's fractions of elements within 0.1 % and 0.5 %. Its limits come from
``[layers.<dtype>]`` in the thresholds file; the first probe point over them
is where a failing output's error begins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch

from .layers import CapturedRun
from .metrics import (
    cosine_similarity,
    fraction_rel_err_below_0_1pct,
    fraction_rel_err_below_0_5pct,
    relative_error,
)
from .thresholds import AccuracyLimits

LAYERS_TABLE = "layers"


def _percent(value: float) -> str:
    return f"{value:.4%}" if math.isfinite(value) else str(value)


@dataclass(frozen=True)
class LayerRow:
    """One probe point compared with the reference."""

    name: str
    depth: int
    relative_error: float
    cosine: float
    max_abs_diff: float
    frac_rel_err_below_0_1pct: float
    frac_rel_err_below_0_5pct: float
    within_limits: bool

    def describe(self, limits: AccuracyLimits) -> str:
        return (f"{self.name} (relative error {_percent(self.relative_error)}, allowed < "
                f"{limits.max_relative_error:.4%}; cosine {self.cosine:.6f}, allowed >= {limits.min_cosine}; "
                f"max |diff| {self.max_abs_diff:.3e})")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "depth": self.depth, "relative_error": self.relative_error,
                "cosine": self.cosine, "max_abs_diff": self.max_abs_diff,
                "frac_rel_err_below_0.1pct": self.frac_rel_err_below_0_1pct,
                "frac_rel_err_below_0.5pct": self.frac_rel_err_below_0_5pct,
                "within_limits": self.within_limits}


def compare_layer(name: str, depth: int, reference: torch.Tensor, candidate: torch.Tensor,
                  limits: AccuracyLimits) -> LayerRow:
    if tuple(reference.shape) != tuple(candidate.shape):
        raise ValueError(f"probe point {name}: shapes differ, reference {list(reference.shape)} "
                         f"vs device {list(candidate.shape)}")
    ref, cand = reference.to(torch.float64), candidate.to(torch.float64)
    row = LayerRow(name=name, depth=depth, relative_error=relative_error(ref, cand),
                   cosine=cosine_similarity(ref, cand),
                   max_abs_diff=(cand - ref).abs().max().item() if ref.numel() else 0.0,
                   frac_rel_err_below_0_1pct=fraction_rel_err_below_0_1pct(ref, cand),
                   frac_rel_err_below_0_5pct=fraction_rel_err_below_0_5pct(ref, cand),
                   within_limits=False)
    return replace(row, within_limits=limits.accepts(row))


@dataclass(frozen=True)
class LayerDrift:
    """Every probe point's comparison, in forward order, under one dtype's layer limits."""

    rows: tuple[LayerRow, ...]
    dtype: str
    limits: AccuracyLimits
    #: what was compared: "all tokens" or "token 0 (CLS)"
    scope: str = "all tokens"

    @property
    def first_drifting(self) -> LayerRow | None:
        """The first probe point over its limits (NaN/Inf counts as over), or None."""
        return next((row for row in self.rows if not row.within_limits), None)

    @property
    def worst(self) -> LayerRow:
        """The probe point with the largest relative error (NaN first)."""
        return max(self.rows, key=lambda row: math.inf if math.isnan(row.relative_error) else row.relative_error)

    @property
    def profile(self) -> list[float]:
        return [row.relative_error for row in self.rows]

    def localisation(self) -> str:
        """One sentence for failure messages: where drift begins, or that no probe point drifts."""
        source = f"[{LAYERS_TABLE}.{self.dtype}]"
        first = self.first_drifting
        if first is None:
            return (f"no probe point ({self.scope}) exceeds its {source} limits; the largest relative error is "
                    f"at {self.worst.name} ({_percent(self.worst.relative_error)})")
        return f"first probe point ({self.scope}) over its {source} limits: {first.describe(self.limits)}"


def compare_layers(reference: CapturedRun, candidate: CapturedRun, dtype: str, limits: AccuracyLimits,
                   token: int | None = None, token_name: str = "CLS") -> LayerDrift:
    """Compare every probe point; ``token`` restricts the comparison to one token (0 = CLS, for pooler_output).

    Only probe points of [batch, tokens, channels] have tokens; a [batch, channels, height, width]
    map (a ConvNeXt stage) is compared whole, and the scope says so.
    """
    if reference.names != candidate.names:
        raise ValueError(f"probe points differ: reference {reference.names} vs device {candidate.names}")
    rows, whole = [], []
    for name in reference.names:
        ref, cand = reference.layers[name], candidate.layers[name]
        if token is not None:
            if reference.tokens.get(name, True):
                ref, cand = ref[:, token], cand[:, token]
            else:
                whole.append(name)
        rows.append(compare_layer(name, reference.depths[name], ref, cand, limits))
    scope = "all tokens"
    if token is not None:
        scope = f"token {token} ({token_name})" if token == 0 else f"token {token}"
        if whole:
            with_tokens = [name for name in reference.names if name not in whole]
            scope += (f" at {', '.join(with_tokens)}; the whole tensor at {', '.join(whole)} "
                      "(channels-first maps have no tokens)")
    return LayerDrift(rows=tuple(rows), dtype=dtype, limits=limits, scope=scope)


def drift_for_output(reference: CapturedRun, candidate: CapturedRun, family: Any, output: str, dtype: str,
                     limits: AccuracyLimits) -> LayerDrift:
    """Where ``output``'s drift begins, by the one rule every localisation follows: a probe point is compared
    on the tokens the output is made of (``family.output_token``: token 0 for pooler_output, all tokens for
    last_hidden_state), so the accuracy test and the dtype matrix name the same probe point for one drift."""
    token = family.output_token(output)
    return compare_layers(reference, candidate, dtype, limits, token=token, token_name=family.token_zero)
