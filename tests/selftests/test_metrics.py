"""Accuracy metrics on hand-computed cases, including NaN, Inf and all-zero references."""

import math

import pytest
import torch

from acceptance.metrics import (
    at_least,
    at_most,
    compare,
    cosine_similarity,
    first_nonfinite,
    less_than,
    relative_error,
)


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def test_relative_error_is_mean_abs_diff_over_mean_abs_reference():
    # mean|d - r| = (0.1 + 0.2 + 0.3) / 3 = 0.2 ; mean|r| = (1 + 2 + 3) / 3 = 2
    assert relative_error(t(1, -2, 3), t(1.1, -2.2, 3.3)) == pytest.approx(0.1)


def test_relative_error_matches_the_seed_columns():
    # the seed's last_hidden_state row: mean_diff 1.084065e-03 and rel_err 3.502032e-03
    # imply mean|ref| = 0.30955; a reference with that mean and a uniform diff reproduces it
    reference = torch.full((1, 201, 768), 0.30955)
    candidate = reference + 1.084065e-03
    assert relative_error(reference, candidate) == pytest.approx(3.502032e-03, rel=1e-4)


def test_identical_tensors_have_zero_error_and_unit_cosine():
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    assert relative_error(x, x.clone()) == 0.0
    assert cosine_similarity(x, x.clone()) == pytest.approx(1.0)


def test_all_zero_reference():
    assert relative_error(t(0, 0), t(0, 0)) == 0.0
    assert relative_error(t(0, 0), t(0, 1e-9)) == math.inf
    assert cosine_similarity(t(0, 0), t(0, 0)) == 1.0
    assert cosine_similarity(t(0, 0), t(1, 0)) == 0.0


def test_cosine_of_orthogonal_and_opposite_vectors():
    assert cosine_similarity(t(1, 0), t(0, 1)) == pytest.approx(0.0)
    assert cosine_similarity(t(1, 2), t(-1, -2)) == pytest.approx(-1.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_values_give_nan_metrics_that_fail_every_check(bad):
    reference, candidate = t(1, 2, 3), t(1, bad, 3)
    rel, cos = relative_error(reference, candidate), cosine_similarity(reference, candidate)
    assert math.isnan(rel) and math.isnan(cos)
    assert not less_than(rel, 0.01) and not at_most(rel, 1e9) and not at_least(cos, -1.0)
    comparison = compare("x", reference, candidate)
    assert not comparison.finite
    assert comparison.nonfinite_candidate == 1 and comparison.first_nonfinite_candidate == (1,)
    assert "1 NaN/Inf values in the device x (first at index [1])" in comparison.nonfinite_message()


def test_nonfinite_reference_is_reported_too():
    comparison = compare("ref", t(math.nan, 1), t(1, 1))
    assert comparison.nonfinite_reference == 1 and "CPU reference" in comparison.nonfinite_message()


@pytest.mark.parametrize("check,value,limit,expected", [
    (less_than, 0.0099, 0.01, True), (less_than, 0.01, 0.01, False), (less_than, None, 0.01, False),
    (at_most, 0.0, 0.0, True), (at_most, 1e-12, 0.0, False), (at_most, math.inf, math.inf, False),
    (at_least, 0.99, 0.99, True), (at_least, 0.98999, 0.99, False), (at_least, math.nan, 0.0, False),
])
def test_checks_are_nan_safe(check, value, limit, expected):
    assert check(value, limit) is expected


def test_compare_reports_all_fields_in_float64():
    reference = t(1.0, -1.0, 2.0, 0.0)
    candidate = torch.tensor([1.0, -1.5, 2.0, 0.25], dtype=torch.bfloat16)
    comparison = compare("out", reference, candidate)
    assert comparison.max_abs_diff == pytest.approx(0.5)
    assert comparison.mean_abs_diff == pytest.approx(0.1875)
    assert comparison.relative_error == pytest.approx(0.1875 / 1.0)
    assert comparison.candidate_dtype == "bfloat16" and comparison.reference_dtype == "float32"
    assert comparison.to_dict()["shape"] == [4]


def test_compare_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"shapes differ, reference \[2\] vs device \[3\]"):
        compare("x", t(1, 2), t(1, 2, 3))


def test_first_nonfinite_index():
    x = torch.zeros(2, 3)
    assert first_nonfinite(x) is None
    x[1, 2] = math.nan
    assert first_nonfinite(x) == (1, 2)
