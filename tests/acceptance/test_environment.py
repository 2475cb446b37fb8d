"""The device runtime works (the seed's `a + a` check) and the software stack is recorded."""

import pytest
import torch

from acceptance.metrics import at_most

pytestmark = pytest.mark.environment


def test_device_arithmetic_matches_cpu(device, run_config, record_property):
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, generator=generator)
    on_device = a.to(device.torch_device)
    doubled = (on_device + on_device).to("cpu")
    device.synchronize()
    diff = (doubled - (a + a)).abs().max().item()
    limit = run_config.thresholds.max_smoke_abs_diff
    record_property("max_abs_diff", diff)
    record_property("allowed_max_abs_diff", limit)
    assert at_most(diff, limit), (
        f"a + a on {device.label} differs from the CPU by max |diff| {diff:.3e}; allowed {limit:.1e} "
        f"(environment.max_smoke_abs_diff in {run_config.thresholds_path})")


def test_software_versions_recorded(results, device):
    versions = results.versions
    missing = [name for name in ("python", "torch", "transformers", "safetensors") if not versions.get(name)]
    assert not missing, f"versions not recorded for: {', '.join(missing)} (recorded: {versions})"
    vendor = results.device.get("versions", {})
    if device.kind == "npu":
        assert vendor.get("torch_npu") not in (None, "unknown"), f"torch_npu version not recorded: {vendor}"
