"""Precision modes in the device backends, on stand-in runtimes, and the options that choose them."""

from __future__ import annotations

import sys

import pytest
import torch

from acceptance.devices.base import Device
from acceptance.devices.cpu import CpuBackend
from acceptance.devices.cuda import CudaBackend
from acceptance.devices.npu import NpuBackend, default_acl_precision_mode
from acceptance.errors import ConfigError, DeviceUnavailable
from acceptance.options import resolve
from tests.selftests.standins import torch_npu_standin

from .conftest import ROOT


@pytest.fixture
def stand_in_npu(monkeypatch):
    """Install a stand-in torch_npu and torch.npu for the duration of one test."""
    def install(chip: str = "Ascend910B2", **kwargs) -> torch_npu_standin.StandIn:
        fake = torch_npu_standin.build(name=chip, **kwargs)
        monkeypatch.setitem(sys.modules, "torch_npu", fake.module)
        monkeypatch.setattr(torch, "npu", fake.npu, raising=False)
        return fake

    return install


def npu_device(backend: NpuBackend) -> Device:
    """A Device around the NPU backend (torch.device("npu") needs the real torch_npu, so a meta device stands in)."""
    return Device(backend=backend, index=1, torch_device=torch.device("meta"), name=backend.device_name(1), count=2)


@pytest.fixture
def keep_torch_precision():
    """Restore torch's global precision switches after a test that changes them."""
    saved = (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    yield
    torch.set_float32_matmul_precision(saved[0])
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[1], saved[2]


def test_npu_vendor_default_leaves_switches_and_reports_chip_default(stand_in_npu, keep_torch_precision):
    fake = stand_in_npu(chip="Ascend910B2")
    assert NpuBackend().unavailable_reason() is None  # the stand-in passes for an installed, working runtime
    device = npu_device(NpuBackend())
    settings = device.apply_precision("vendor-default")
    assert fake.options == {}  # nothing was set
    assert settings["conv_allow_hf32"] is True and settings["matmul_allow_hf32"] is False
    assert settings["acl_precision_mode"] == "must_keep_origin_dtype"
    assert settings["acl_precision_mode_source"] == "not set: CANN's default for Ascend910B2"
    assert device.describe()["precision_settings"] == settings


def test_npu_strict_sets_and_reads_back(stand_in_npu, keep_torch_precision):
    fake = stand_in_npu(chip="Ascend910A")
    backend = NpuBackend()
    assert backend.precision_settings()["acl_precision_mode"] == "allow_fp32_to_fp16"  # older chip's default
    backend.apply_precision("strict")
    assert fake.options == {"ALLOW_CONV_HF32": "disable", "ALLOW_MATMUL_HF32": "disable",
                            "ACL_PRECISION_MODE": "must_keep_origin_dtype"}
    settings = backend.precision_settings()
    assert {key: settings[key] for key in backend.strict_settings()} == backend.strict_settings()
    assert settings["acl_precision_mode_source"] == "read back from torch_npu's option registry"


def test_npu_strict_without_option_read_back_says_so(stand_in_npu, keep_torch_precision):
    stand_in_npu(read_back_acl=False)
    backend = NpuBackend()
    backend.apply_precision("strict")
    settings = backend.precision_settings()
    assert settings["acl_precision_mode"] == "must_keep_origin_dtype"
    assert "no read-back" in settings["acl_precision_mode_source"]


def test_refused_switch_is_a_clear_device_error(stand_in_npu, keep_torch_precision):
    fake = stand_in_npu()
    del fake.npu.set_option  # a torch_npu without set_option
    device = npu_device(NpuBackend())
    with pytest.raises(DeviceUnavailable, match="--precision strict cannot be applied on npu:1") as error:
        device.apply_precision("strict")
    assert "--precision vendor-default" in error.value.fix


@pytest.mark.parametrize("chip, mode", [("Ascend910B4", "must_keep_origin_dtype"),
                                        ("Ascend910_9392", "must_keep_origin_dtype"),
                                        ("Ascend910PremiumA", "allow_fp32_to_fp16"),
                                        ("Ascend310P3", "allow_fp32_to_fp16"), ("Something else", None)])
def test_default_acl_precision_mode_by_chip(chip, mode):
    assert default_acl_precision_mode(chip) == mode


def test_cuda_strict_turns_tf32_off(keep_torch_precision):
    torch.backends.cudnn.allow_tf32 = True  # PyTorch's default for convolutions
    torch.set_float32_matmul_precision("high")
    backend = CudaBackend()
    backend.apply_precision("vendor-default")
    assert backend.precision_settings()["cudnn_allow_tf32"] is True
    backend.apply_precision("strict")
    settings = backend.precision_settings()
    assert {key: settings[key] for key in backend.strict_settings()} == {
        "float32_matmul_precision": "highest", "matmul_allow_tf32": False, "cudnn_allow_tf32": False}


def test_cpu_modes(keep_torch_precision):
    backend = CpuBackend()
    backend.apply_precision("strict")
    assert backend.precision_settings() == backend.strict_settings() == {"float32_matmul_precision": "highest"}
    device = Device(backend=backend, index=None, torch_device=torch.device("cpu"), name="cpu", count=1)
    assert device.apply_precision("vendor-default") == {"float32_matmul_precision": "highest"}


def test_precision_and_dtypes_options():
    values = resolve({"precision": "strict", "dtypes": "float16, bfloat16,float16"}, {})
    assert values["precision"] == "strict" and values["dtypes"] == ("float16", "bfloat16")
    assert resolve({}, {"DINOV3_DTYPES": "all"})["dtypes"] == ("float32", "bfloat16", "float16")
    defaults = resolve({}, {})
    assert defaults["precision"] == "vendor-default" and defaults["dtypes"] is None
    with pytest.raises(ConfigError, match="--precision"):
        resolve({"precision": "fast"}, {})
    with pytest.raises(ConfigError, match="--dtypes .*float64"):
        resolve({"dtypes": "float32,float64"}, {})


def test_a_switch_that_cannot_be_read_back_fails_the_settings_check(run_suite, tiny_checkpoint, monkeypatch):
    """The report must show every switch strict mode sets; one the framework does not read back is a failure."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=cpu", "-k", "test_precision_settings_in_force",
                       "-p", "tests.selftests.plugins.unreadable_switch")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cpu: the precision switches [[]'matmul_allow_hf32'[]] (those --precision strict "
                                 "sets) could not be read back from the framework*"])
