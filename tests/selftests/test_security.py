"""Security: no remote code ever, no pickle by default, no network at run time.

(No pickle by default is in the bad-input corpus: weights-pickle-only; pickles
that would run code are refused even with --allow-pickle: test_accepted_inputs.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.selftests.conftest import expect_suite

ROOT = Path(__file__).resolve().parents[2]
#: the suite's own code: what users run (tests/selftests is not shipped to a sign-off)
SOURCES = sorted(path for folder in ("acceptance", "fixtures", "tests/acceptance")
                 for path in (ROOT / folder).rglob("*.py")) + sorted(ROOT.glob("*.py"))


def calls(name: str):
    """Every call to a function or method called ``name`` in the suite's code, with where it is."""
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if called == name:
                    yield f"{path.relative_to(ROOT)}:{node.lineno}", {kw.arg: kw.value for kw in node.keywords}


def constant(node) -> object:
    return node.value if isinstance(node, ast.Constant) else "<not a constant>"


def test_remote_code_is_never_enabled():
    needle = "trust_remote_code" + "=True"  # split so this file does not match itself
    # the project's own code only: virtual environments and caches hold other people's
    ours = [path for folder in ("acceptance", "fixtures", "tests", "benchmarks")
            for path in (ROOT / folder).rglob("*.py")]
    offenders = [str(path.relative_to(ROOT)) for path in ours + sorted(ROOT.glob("*.py"))
                 if needle in path.read_text().replace(" ", "")]
    assert not offenders, f"{needle} in {offenders}"


@pytest.mark.parametrize("method", ["from_pretrained", "from_config"])
def test_every_transformers_load_refuses_remote_code(method):
    found = list(calls(method))
    assert found, f"no {method} call found in {len(SOURCES)} files: the check looks in the wrong place"
    for where, keywords in found:
        assert constant(keywords.get("trust_remote_code")) is False, (
            f"{where}: {method} without trust_remote_code=False")
        if method == "from_pretrained":
            assert constant(keywords.get("local_files_only")) is True, f"{where}: from_pretrained may download"


def test_offline_mode_is_in_force_during_a_run(run_suite, tiny_checkpoint, pytester, monkeypatch):
    """pytest.ini sets the hub's and transformers' offline switches for every run, whatever the shell says."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    check = pytester.makepyfile(test_offline="""
        import os

        def test_offline_switches(reference_model):
            import huggingface_hub.constants
            from transformers.utils.hub import is_offline_mode  # where transformers 4.57 and 5.x both have it

            assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
            assert huggingface_hub.constants.HF_HUB_OFFLINE is True
            assert is_offline_mode() is True
    """)
    result = run_suite("--model-path", str(tiny_checkpoint), "--device", "cpu", str(check))
    expect_suite(result, passed=1)


def test_a_run_opens_no_network_connection(run_suite, tiny_checkpoint, tmp_path, monkeypatch):
    """Every socket connect and name lookup refused and logged from before transformers is imported:
    the whole run - checks, loading, both forward passes - still passes and nothing was attempted."""
    log = tmp_path / "network.log"
    monkeypatch.setenv("NO_NETWORK_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    result = run_suite("--model-path", str(tiny_checkpoint), "--device", "cpu",
                       "-p", "tests.selftests.plugins.no_network")
    expect_suite(result)
    assert not log.exists(), f"network access attempted:\n{log.read_text()}"


def test_the_network_guard_works(tmp_path, monkeypatch):
    """The plugin above really refuses and logs (so its silence in a run means something)."""
    import importlib
    import socket
    import sys

    log = tmp_path / "network.log"
    monkeypatch.setenv("NO_NETWORK_LOG", str(log))
    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, getattr(socket.socket, name))
    monkeypatch.setattr(socket, "create_connection", socket.create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", socket.getaddrinfo)
    monkeypatch.delitem(sys.modules, "tests.selftests.plugins.no_network", raising=False)
    importlib.import_module("tests.selftests.plugins.no_network")
    with pytest.raises(OSError, match="network access attempted"):
        socket.create_connection(("huggingface.co", 443), timeout=1)
    assert "create_connection" in log.read_text()
