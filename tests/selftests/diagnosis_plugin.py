"""A pytest plugin for the suite's own tests: makes the device model misbehave on purpose, and dumps the results.

Loaded into an acceptance-suite run with ``-p tests.selftests.diagnosis_plugin``
(PYTHONPATH must hold the repository root). Never part of a real run.

- ``--perturb-layer N``: add seeded noise (``--perturb-scale`` x the output's std)
  to the output of transformer layer N of the device model, as a faulty kernel would.
- ``--hf32-conv``: round the patch-embedding convolution's input and weight to a
  10-bit mantissa, as Ascend's default ``conv.allow_hf32`` does.
- ``--dump-results PATH``: write ``RunResults.to_dict()`` as JSON at session end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from acceptance.fingerprint import round_mantissa
from acceptance.models.vit import transformer_blocks


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("diagnosis-selftest", "faults injected by the suite's own tests")
    group.addoption("--perturb-layer", type=int, default=None, help="layer index whose device output gets noise")
    group.addoption("--perturb-scale", type=float, default=0.05, help="noise std as a fraction of the output's std")
    group.addoption("--hf32-conv", action="store_true", help="round the patch embedding's inputs to 10 mantissa bits")
    group.addoption("--dump-results", default=None, help="write the run's results as JSON to this path")


def _perturb(scale: float):
    def hook(module: torch.nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(7)
        noise = torch.randn(output.shape, generator=generator).to(output)
        return output + scale * output.float().std().to(output.dtype) * noise

    return hook


@torch.no_grad()
def _round_conv(conv: torch.nn.Conv2d) -> None:
    conv.weight.copy_(round_mantissa(conv.weight))
    conv.register_forward_pre_hook(lambda module, args: (round_mantissa(args[0]), *args[1:]))


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest):
    value = yield
    if fixturedef.argname == "device_model":
        index = request.config.getoption("--perturb-layer")
        if index is not None:
            transformer_blocks(value)[index].register_forward_hook(_perturb(request.config.getoption("--perturb-scale")))
        if request.config.getoption("--hf32-conv"):
            _round_conv(value.embeddings.patch_embeddings)
    return value


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    from fixtures.stash import SESSION

    path = session.config.getoption("--dump-results")
    if path and SESSION in session.config.stash:
        Path(path).write_text(json.dumps(session.config.stash[SESSION].results.to_dict(), indent=1))
