"""Shared helpers for the suite's own tests: tiny checkpoints and a runner for the acceptance suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from acceptance.builtin import write_checkpoint
from tests.selftests.warm import WarmPython

ROOT = Path(__file__).resolve().parents[2]

#: outcomes of one whole acceptance run on a tiny checkpoint on the CPU (update when tests are added)
SUITE_PASSED = 31  # + sweep (2), determinism (1), the operator profile (1) and the input set (4)
#: the latency limits (no [[latency]] entry for CPUs); soak and compile (off by default); the published reference
#: values (none exist for seeded weights); the operator-level drift (--ops auto: no probe point drifts)
SUITE_SKIPPED = 9
SUITE_TOTAL = SUITE_PASSED + SUITE_SKIPPED
#: the verdict's outcome counts for such a run
SUITE_COUNTS = {"passed": SUITE_PASSED, "skipped": SUITE_SKIPPED}


def expect_suite(result: pytest.RunResult, passed: int = 0, failed: int = 0, skipped: int = 0, **others: int) -> None:
    """Assert a whole acceptance run's outcomes: the suite as usual, changed by ``passed``/``failed``/``skipped``."""
    result.assert_outcomes(passed=SUITE_PASSED + passed, failed=failed, skipped=SUITE_SKIPPED + skipped, **others)


#: hidden 64, 2 layers: a forward pass takes milliseconds
TINY_CONFIG = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2}
#: a dinov3_convnext of four stages, 16 to 64 channels: last_hidden_state [1, 50, 64] at 224x224
TINY_CONVNEXT_CONFIG = {"hidden_sizes": [16, 32, 48, 64], "depths": [1, 1, 2, 1]}


def pytest_configure(config: pytest.Config) -> None:
    """Under ``-n``, each worker (and every run it starts) gets its share of the cores: two workers of two
    torch threads each on two cores spend their time waiting for each other's threads."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        import torch

        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _not_an_xdist_worker_inside(monkeypatch):
    """The self-tests may run under pytest-xdist (-n); the suites they start in subprocesses must not
    inherit the worker's variables, or their latency tests would rightly refuse to run."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny dinov3_vit checkpoint written with save_pretrained (4 registers, gelu MLP)."""
    return write_checkpoint(tmp_path_factory.mktemp("tiny") / "checkpoint", TINY_CONFIG, seed=1)


@pytest.fixture(scope="session")
def tiny_gated_checkpoint(tmp_path_factory) -> Path:
    """A tiny checkpoint with a gated (SwiGLU) MLP and 2 register tokens."""
    return write_checkpoint(tmp_path_factory.mktemp("tiny_gated") / "checkpoint",
                            {**TINY_CONFIG, "use_gated_mlp": True, "hidden_act": "silu", "num_register_tokens": 2},
                            seed=2)


@pytest.fixture(scope="session")
def tiny_deep_checkpoint(tmp_path_factory) -> Path:
    """A tiny checkpoint with 9 layers, deep enough to localise drift to layer 7."""
    return write_checkpoint(tmp_path_factory.mktemp("tiny_deep") / "checkpoint",
                            {**TINY_CONFIG, "num_hidden_layers": 9}, seed=3)


@pytest.fixture(scope="session")
def tiny_convnext_checkpoint(tmp_path_factory) -> Path:
    """A tiny dinov3_convnext checkpoint (built from its config with seeded weights, never downloaded)."""
    return write_checkpoint(tmp_path_factory.mktemp("tiny_convnext") / "checkpoint", TINY_CONVNEXT_CONFIG, seed=4,
                            model_type="dinov3_convnext")


@pytest.fixture(scope="session")
def warm_python(tmp_path_factory) -> WarmPython:
    """The warm interpreter this worker forks its command-line runs from (tests/selftests/warm.py)."""
    warm = WarmPython(tmp_path_factory.mktemp("warm"))
    yield warm
    warm.close()


@pytest.fixture
def python_run(warm_python, monkeypatch):
    """``python ARGS`` as a user's shell starts it (no DINOV3_* from this run), forked from the warm
    interpreter; returns a ``subprocess.CompletedProcess``. ``env`` adds variables."""
    def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
        environment = {key: value for key, value in os.environ.items() if not key.startswith("DINOV3_")}
        return warm_python.run(args, cwd=cwd, env={**environment, **(env or {})}, timeout=timeout).completed()

    return run


@pytest.fixture
def run_suite(pytester: pytest.Pytester, tmp_path: Path, monkeypatch, warm_python):
    """Run the acceptance suite in a process of its own (forked from the warm interpreter), as
    ``pytester.runpytest_subprocess`` would, reports under tmp_path/reports; returns the RunResult."""
    for name in [key for key in os.environ if key.startswith("DINOV3_")]:
        monkeypatch.delenv(name)
    # each run its own reference cache: a self-test never reads what another one (or a user's run) stored
    monkeypatch.setenv("DINOV3_REFERENCE_CACHE_DIR", str(tmp_path / "reference-cache"))
    runs = iter(range(1_000_000))

    def run(*args: str, tests: str = "tests/acceptance") -> pytest.RunResult:
        command = ("-m", "pytest", f"--basetemp={pytester.path / f'runpytest-{next(runs)}'}",
                   "-c", str(ROOT / "pytest.ini"), "--rootdir", str(ROOT), str(ROOT / tests),
                   "--report-dir", str(tmp_path / "reports"), "-p", "no:cacheprovider", *args)
        cwd = Path.cwd()  # pytester's folder, as runpytest_subprocess: on PYTHONPATH too
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(cwd), os.environ.get("PYTHONPATH"))))}
        print("running: python", *command, f"\n     in: {cwd}")
        done = warm_python.run(command, cwd=cwd, env=env)
        print(done.stdout)
        print(done.stderr, file=sys.stderr)
        return pytest.RunResult(done.returncode, done.stdout.splitlines(), done.stderr.splitlines(), done.duration)

    return run
