"""Device selection and the backends' logic, with stand-ins for runtimes this machine lacks."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from acceptance.devices import AUTO_ORDER, select_device
from acceptance.devices.npu import cann_version
from acceptance.errors import DeviceUnavailable
from tests.selftests.standins import torch_npu_standin


@pytest.fixture
def clean_npu(monkeypatch):
    """Forget any torch_npu import and torch.npu attribute when the test ends."""
    monkeypatch.delitem(sys.modules, "torch_npu", raising=False)
    monkeypatch.delattr(torch, "npu", raising=False)
    torch_npu_standin.CALLS.clear()
    yield
    sys.modules.pop("torch_npu", None)


@pytest.fixture
def no_accelerators(monkeypatch):
    """CUDA, XPU and MPS report themselves unavailable, whatever this host has (a GPU machine too)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if getattr(torch, "xpu", None) is not None:
        monkeypatch.setattr(torch.xpu, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def write_package(root, body: str) -> None:
    package = root / "torch_npu"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(body))


@pytest.fixture
def standin_npu(tmp_path, monkeypatch, clean_npu):
    """A working torch_npu on sys.path: two Ascend910B2 cards."""
    write_package(tmp_path, """
        __version__ = "2.9.0.post1+standin"
        from tests.selftests.standins import torch_npu_standin
        torch_npu_standin.install(device_count=2, name="Ascend910B2")
    """)
    monkeypatch.syspath_prepend(tmp_path)
    return torch_npu_standin


def test_auto_order_prefers_accelerators():
    assert AUTO_ORDER == ("npu", "cuda", "xpu", "mps", "cpu")


def test_auto_falls_back_to_cpu_and_says_why(clean_npu, no_accelerators):
    device = select_device("auto")
    assert device.kind == "cpu" and device.torch_device == torch.device("cpu")
    assert device.selection == ("auto: skipped npu: torch_npu is not installed",
                                "auto: skipped cuda: torch.cuda.is_available() is False",
                                "auto: skipped xpu: torch.xpu.is_available() is False",
                                "auto: skipped mps: torch.backends.mps.is_available() is False",
                                "auto: picked cpu"), device.selection
    assert device.selection[-1] == "auto: picked cpu"


def test_auto_picks_npu_when_torch_npu_works(standin_npu):
    device = select_device("auto")
    assert device.kind == "npu" and device.name == "Ascend910B2" and device.count == 2
    assert device.torch_device == torch.device("npu", 0)
    assert device.describe()["versions"]["torch_npu"] == "2.9.0.post1+standin"


def test_auto_picks_cuda_before_cpu(monkeypatch, clean_npu):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "NVIDIA H100")
    device = select_device("auto")
    assert device.kind == "cuda" and device.name == "NVIDIA H100" and device.count == 4
    assert device.torch_device == torch.device("cuda", 0)


def test_explicit_npu_index(standin_npu):
    device = select_device("npu:1")
    assert device.torch_device == torch.device("npu", 1) and device.index == 1
    device.synchronize()
    assert ("synchronize", 1) in standin_npu.CALLS


def test_npu_index_out_of_range_names_the_visible_devices_variable(standin_npu, monkeypatch):
    monkeypatch.setenv("ASCEND_RT_VISIBLE_DEVICES", "0,1")
    with pytest.raises(DeviceUnavailable) as raised:
        select_device("npu:2")
    message = str(raised.value)
    assert "npu:2 was requested but only 2 npu device(s) are visible (ASCEND_RT_VISIBLE_DEVICES=0,1)" in message
    assert "use an index below 2" in message


def test_npu_reads_precision_defaults_and_memory(standin_npu):
    device = select_device("npu")
    settings = device.backend.precision_settings()
    assert settings["conv_allow_hf32"] is True and settings["matmul_allow_hf32"] is False
    assert device.backend.max_memory_allocated(0) == 4096
    device.backend.reset_peak_memory(0)
    assert ("reset_peak_memory_stats", 0) in standin_npu.CALLS


def test_npu_events_and_cache_as_the_timing_and_sweep_use_them(standin_npu):
    from acceptance.sweep import free_device_memory
    from acceptance.timing import _EventPairs

    device = select_device("npu")
    pairs = _EventPairs(device.backend.event_class(), 1)
    start, end = pairs.next()
    start.record()
    end.record()
    assert pairs.elapsed_ms() == [1.0]
    free_device_memory(device)
    assert ("empty_cache",) in standin_npu.CALLS


def test_missing_torch_npu_says_how_to_install(clean_npu):
    with pytest.raises(DeviceUnavailable) as raised:
        select_device("npu")
    message = str(raised.value)
    assert "--device npu was requested but is not usable here: torch_npu is not installed" in message
    assert "pip install the torch-npu release that matches torch" in message and "set_env.sh" in message


def test_torch_npu_without_cann_says_to_source_set_env(tmp_path, monkeypatch, clean_npu):
    write_package(tmp_path, """
        raise ImportError("libhccl.so: cannot open shared object file: No such file or directory")
    """)
    monkeypatch.syspath_prepend(tmp_path)
    with pytest.raises(DeviceUnavailable) as raised:
        select_device("npu:0")
    message = str(raised.value)
    assert "torch_npu is installed but failed to import (libhccl.so" in message
    assert "source /usr/local/Ascend/ascend-toolkit/set_env.sh" in message


def test_auto_skips_a_broken_torch_npu_and_records_why(tmp_path, monkeypatch, clean_npu, no_accelerators):
    write_package(tmp_path, 'raise ImportError("libascendcl.so: cannot open shared object file")\n')
    monkeypatch.syspath_prepend(tmp_path)
    device = select_device("auto")
    assert device.kind == "cpu"
    assert "failed to import (libascendcl.so" in device.selection[0]


def test_npu_with_no_cards(tmp_path, monkeypatch, clean_npu):
    write_package(tmp_path, """
        from tests.selftests.standins import torch_npu_standin
        torch_npu_standin.install(device_count=0)
    """)
    monkeypatch.syspath_prepend(tmp_path)
    with pytest.raises(DeviceUnavailable, match=r"torch.npu.is_available\(\) is False"):
        select_device("npu")


@pytest.mark.parametrize("spec,reason", [
    ("cuda", r"torch.cuda.is_available\(\) is False"),
    ("xpu", r"torch.xpu.is_available\(\) is False"),
    ("mps", r"torch.backends.mps.is_available\(\) is False"),
])
def test_missing_accelerators_fail_with_reason_and_fix(spec, reason, no_accelerators):
    with pytest.raises(DeviceUnavailable, match=reason) as raised:
        select_device(spec)
    assert "fix:" in str(raised.value)


def test_cpu_device_describes_itself():
    device = select_device("cpu")
    described = device.describe()
    assert described["kind"] == "cpu" and described["name"] and described["count"] == 1
    assert described["versions"]["torch_threads"] == str(torch.get_num_threads())


@pytest.mark.parametrize("layout,expected", [
    ({"x86_64-linux/ascend_toolkit_install.info": "package_name=Ascend-cann-toolkit\nversion=8.3.RC1\n"}, "8.3.RC1"),
    ({"version.cfg": "# comment\nversion=[8.2.RC1:8.2.RC1.alpha003]\n"}, "8.2.RC1.alpha003"),
    ({}, None),
])
def test_cann_version_from_toolkit_files(tmp_path, layout, expected):
    for relative, text in layout.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert cann_version({"ASCEND_TOOLKIT_HOME": str(tmp_path)}) == expected


def test_cann_version_without_toolkit():
    assert cann_version({}) is None
