"""The dtype matrix: each --dtypes entry on the device against the CPU float32 reference, with its own limits."""

import pytest

pytestmark = pytest.mark.dtype_matrix


def test_dtype_against_cpu_reference(dtype_matrix_entry, device, run_config):
    failed = [row for row in dtype_matrix_entry.rows if not row.passed]
    assert not failed, (
        f"{device.label} in {dtype_matrix_entry.dtype} vs CPU float32 ([accuracy.{dtype_matrix_entry.dtype}] in "
        f"{run_config.thresholds_path}): " + "; ".join(
            f"{row.comparison.name} relative error {row.comparison.relative_error:.4%} "
            f"(allowed < {row.limits.max_relative_error:.4%}), "
            f"cosine {row.comparison.cosine:.6f} (allowed >= {row.limits.min_cosine}); "
            + dtype_matrix_entry.drifts[row.comparison.name].localisation() for row in failed))
