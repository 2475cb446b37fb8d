"""The torch_npu contract: the surface the NPU backend declares exists, as the backend uses it, in the real wheels.

The backend is otherwise tested only against a stand-in, which is built from
the same declared surface (TORCH_NPU_SURFACE). Here the surface is checked
against the Python sources of the real torch-npu wheels (downloaded once,
cached in $DINOV3_WHEEL_CACHE, read as zips, never installed or imported), and
the check itself is shown to fail for a name a wheel lacks.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from acceptance.device_kinds import kind_named
from acceptance.devices.npu import (
    ACL_PRECISION_MODE,
    STRICT_ACL_PRECISION_MODE,
    TORCH_NPU_SURFACE,
    NpuBackend,
    default_acl_precision_mode,
)
from tests.selftests.standins import torch_npu_standin
from tests.selftests.torch_npu_wheels import (
    VERSIONS,
    RegistryUnreachable,
    WheelSources,
    cache_folder,
    check_wheel,
    fetch_wheel,
)

ROOT = Path(__file__).resolve().parents[2]
OLDEST, NEWEST = VERSIONS[0], VERSIONS[-1]


@pytest.fixture(scope="session")
def wheel_sources():
    """version -> that wheel's sources; each wheel fetched (or found in the cache) once per session."""
    cache = cache_folder()
    loaded: dict[str, WheelSources] = {}
    unreachable: list[str] = []

    def load(version: str) -> WheelSources:
        if unreachable:  # one answer per session: pip's retries are not waited out again for every wheel
            pytest.skip(unreachable[0])
        if version not in loaded:
            if importlib.util.find_spec("pip") is None and not any(cache.glob(f"torch_npu-{version}-*.whl")):
                pytest.skip(f"pip is not installed in this environment: the torch-npu {version} wheel cannot be "
                            f"fetched (or put it in {cache})")
            try:
                loaded[version] = WheelSources.read(fetch_wheel(version, cache))
            except RegistryUnreachable as error:
                unreachable.append(str(error))
                pytest.skip(str(error))
        return loaded[version]

    return load


@pytest.mark.parametrize("version", VERSIONS)
def test_wheel_offers_the_declared_surface(wheel_sources, version):
    problems = check_wheel(wheel_sources(version), TORCH_NPU_SURFACE)
    assert not problems, (f"the NPU backend uses {len(problems)} name(s) torch-npu {version} does not offer as "
                          "declared in TORCH_NPU_SURFACE:\n" + "\n".join(problems))


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
@pytest.mark.parametrize("change, reported", [
    ({"functions": {**TORCH_NPU_SURFACE.functions, "current_device_index": 0}},
     "torch.npu.current_device_index: not defined or imported in torch_npu/npu"),
    ({"functions": {**TORCH_NPU_SURFACE.functions, "synchronize": 2}},
     "torch.npu.synchronize: takes (device) but the suite passes 2 positional argument(s)"),
    ({"event_keywords": ("enable_timing", "external")},
     "torch.npu.Event: takes (enable_timing, blocking, interprocess): no keyword external"),
    ({"event_methods": {"record": 0, "elapsed_seconds": 1}}, "torch.npu.Event.elapsed_seconds: not defined"),
    ({"hf32_switches": {"conv": ("ALLOW_CONV_HF32", False)}}, "torch.npu.conv.allow_hf32: the getter gives"),
    ({"hf32_switches": {"matmul": ("ALLOW_MATMUL_HF32", True)}}, "torch.npu.matmul.allow_hf32: the getter gives"),
    ({"options": {"ACL_PRECISION_MODE": ("must_keep_origin_dtype", "force_fp32")}},
     "set_option ACL_PRECISION_MODE: the wheel accepts ['allow_fp32_to_fp16', 'must_keep_origin_dtype']"),
    ({"c_functions": ("_npu_getOption", "_npu_getPrecisionMode")},
     "torch_npu._C._npu_getPrecisionMode: never used by the wheel's own Python code"),
    ({"compile_backend": "torchair"}, "torch.compile backend 'torchair': not registered with dynamo"),
    ({"profiler_names": ("profile", "key_averages")}, "torch_npu.profiler.key_averages: not in"),
], ids=["function", "arguments", "event-keyword", "event-method", "conv-default", "matmul-default", "option-value",
        "c-function", "compile-backend", "profiler-name"])
def test_check_fails_for_a_name_a_wheel_lacks(wheel_sources, version, change, reported):
    """The check is not vacuous: a surface that declares what a real wheel lacks is reported, naming both."""
    problems = check_wheel(wheel_sources(version), dataclasses.replace(TORCH_NPU_SURFACE, **change))
    expected = f"torch-npu {version}: {reported}"
    assert any(problem.startswith(expected) for problem in problems), (
        f"expected a problem starting {expected!r}, the check reported {problems}")


def test_backend_constants_are_within_the_surface():
    allowed = TORCH_NPU_SURFACE.options[ACL_PRECISION_MODE]
    assert STRICT_ACL_PRECISION_MODE in allowed, f"{STRICT_ACL_PRECISION_MODE!r} not in {allowed}"
    defaults = {default_acl_precision_mode(chip) for chip in ("Ascend910B2", "Ascend910_9392", "Ascend910A")}
    assert defaults <= set(allowed), f"chip defaults {defaults} not all in set_option's values {allowed}"
    assert kind_named(NpuBackend.kind).compile_backend == TORCH_NPU_SURFACE.compile_backend
    assert NpuBackend.kind == TORCH_NPU_SURFACE.device_type


def test_standin_offers_exactly_the_surface():
    stand_in = torch_npu_standin.build()
    offered = {name for name in vars(stand_in.npu) if not name.startswith("__")}
    declared = set(TORCH_NPU_SURFACE.functions) | set(TORCH_NPU_SURFACE.hf32_switches) | {"Event"}
    assert offered == declared, f"stand-in torch.npu offers {sorted(offered)}, the surface declares {sorted(declared)}"
    package = {name for name in vars(stand_in.module) if name not in ("__name__", "__doc__", "__package__",
                                                                       "__loader__", "__spec__")}
    assert package == set(TORCH_NPU_SURFACE.package_attributes), package
    assert set(vars(stand_in.module._C)) == set(TORCH_NPU_SURFACE.c_functions)
    event_methods = {name for name in vars(torch_npu_standin._Event) if not name.startswith("_")}
    assert event_methods == set(TORCH_NPU_SURFACE.event_methods), event_methods


def test_backend_using_an_undeclared_name_fails_on_the_standin(monkeypatch):
    """What keeps the backend inside the surface: the stand-in has nothing else, so the self-tests fail."""
    stand_in = torch_npu_standin.build()
    monkeypatch.setitem(sys.modules, "torch_npu", stand_in.module)
    monkeypatch.setattr("torch.npu", stand_in.npu, raising=False)
    backend = NpuBackend()
    assert backend.device_count() == 2
    monkeypatch.setattr(NpuBackend, "device_count", lambda self: int(self.module().current_device()) + 1)
    with pytest.raises(AttributeError, match="current_device"):
        backend.device_count()


def test_only_the_npu_backend_names_torch_npu():
    """Outside acceptance/devices/npu.py nothing reaches torch.npu or torch_npu by name (the rest goes through
    the backend, whose every use is in the surface)."""
    sources = [path for folder in ("acceptance", "fixtures", "tests/acceptance")
               for path in (ROOT / folder).rglob("*.py")]
    offenders = []
    for path in sources:
        if path == ROOT / "acceptance" / "devices" / "npu.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            npu_attribute = (isinstance(node, ast.Attribute) and node.attr == "npu" and isinstance(node.value, ast.Name)
                             and node.value.id == "torch")
            if npu_attribute or isinstance(node, ast.Name) and node.id == "torch_npu" or \
                    isinstance(node, (ast.Import, ast.ImportFrom)) and "torch_npu" in ast.dump(node):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"torch_npu used outside the NPU backend: {offenders}"


# --- fetching, without the network ----------------------------------------------------------------------------

def test_cache_folder_is_the_variable_or_home_not_xdg(monkeypatch, tmp_path):
    assert cache_folder({"DINOV3_WHEEL_CACHE": str(tmp_path)}) == tmp_path
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_folder({"XDG_CACHE_HOME": "/clone/.ci-cache"}) == tmp_path / ".cache" / "dinov3-acceptance" / "wheels"


def test_a_cached_wheel_is_not_downloaded_again(tmp_path, monkeypatch):
    wheel = tmp_path / "torch_npu-2.6.0-cp310-cp310-manylinux2014_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("torch_npu/npu/__init__.py", "__all__ = []\n")
        archive.writestr("torch_npu/_inductor/big.py", "x = 1\n")  # not one of the files the check reads
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip ran although the wheel is cached"))
    assert fetch_wheel("2.6.0", tmp_path) == wheel
    sources = WheelSources.read(wheel)
    assert sources.version == "2.6.0" and set(sources.files) == {"torch_npu/npu/__init__.py"}


@pytest.mark.parametrize("output, error", [
    ("WARNING: Retrying (Retry(total=0, ...)) after connection broken by 'NewConnectionError(... [Errno -3] Temporary "
     "failure in name resolution')'\nERROR: Could not find a version that satisfies the requirement torch-npu==2.6.0 "
     "(from versions: none)\nERROR: No matching distribution found for torch-npu==2.6.0", RegistryUnreachable),
    ("ERROR: Could not find a version that satisfies the requirement torch-npu==2.6.0 (from versions: 2.5.1)\n"
     "ERROR: No matching distribution found for torch-npu==2.6.0", RuntimeError),
], ids=["offline-skips", "missing-release-fails"])
def test_only_an_unreachable_registry_skips(tmp_path, monkeypatch, output, error):
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1, "", output))
    with pytest.raises(error) as raised:
        fetch_wheel("2.6.0", tmp_path)
    assert "torch-npu==2.6.0" in str(raised.value)
    assert not list(tmp_path.iterdir()), "a failed download left files in the cache"
