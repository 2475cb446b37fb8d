"""Shared helpers for the suite's own tests: tiny checkpoints and a runner for the acceptance suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from acceptance.builtin import write_checkpoint

ROOT = Path(__file__).resolve().parents[2]

#: outcomes of one whole acceptance run on a tiny checkpoint on the CPU (update when tests are added)
SUITE_PASSED = 27  # + sweep (2), determinism (1) and the operator profile (1)
#: the latency limits (no [[latency]] entry for CPUs); soak and compile (off by default); the published reference
#: values (none exist for seeded weights)
SUITE_SKIPPED = 7
SUITE_TOTAL = SUITE_PASSED + SUITE_SKIPPED
#: the verdict's outcome counts for such a run
SUITE_COUNTS = {"passed": SUITE_PASSED, "skipped": SUITE_SKIPPED}


def expect_suite(result: pytest.RunResult, passed: int = 0, failed: int = 0, **others: int) -> None:
    """Assert a whole acceptance run's outcomes: the suite as usual, changed by ``passed``/``failed``."""
    result.assert_outcomes(passed=SUITE_PASSED + passed, failed=failed, skipped=SUITE_SKIPPED, **others)


#: hidden 64, 2 layers: a forward pass takes milliseconds
TINY_CONFIG = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2}
#: a dinov3_convnext of four stages, 16 to 64 channels: last_hidden_state [1, 50, 64] at 224x224
TINY_CONVNEXT_CONFIG = {"hidden_sizes": [16, 32, 48, 64], "depths": [1, 1, 2, 1]}


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


@pytest.fixture
def run_suite(pytester: pytest.Pytester, tmp_path: Path, monkeypatch):
    """Run the acceptance suite in a subprocess, reports under tmp_path/reports; returns the RunResult."""
    for name in [key for key in os.environ if key.startswith("DINOV3_")]:
        monkeypatch.delenv(name)
    # each run its own reference cache: a self-test never reads what another one (or a user's run) stored
    monkeypatch.setenv("DINOV3_REFERENCE_CACHE_DIR", str(tmp_path / "reference-cache"))

    def run(*args: str, tests: str = "tests/acceptance") -> pytest.RunResult:
        return pytester.runpytest_subprocess(
            "-c", str(ROOT / "pytest.ini"), "--rootdir", str(ROOT), str(ROOT / tests),
            "--report-dir", str(tmp_path / "reports"), "-p", "no:cacheprovider", *args)

    return run
