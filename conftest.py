"""Wiring only. The suite is the pytest plugin ``fixtures/plugin.py``; markers, test paths and
report defaults live in pytest.ini, the option table in acceptance/options.py.

``pip install -e .`` installs the plugin (README), so pytest knows the suite's options
before it reads the command line. Where it is not installed, this file loads it
instead - then pytest has read the command line already, and a path option must be
written with ``=`` (``--model-path=DIR``).
"""

from __future__ import annotations

import pytest

from fixtures import plugin


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if not pluginmanager.has_plugin(plugin.PLUGIN_NAME):
        pluginmanager.register(plugin, plugin.PLUGIN_NAME)  # its options are added now, as if installed


def pytest_report_header(config: pytest.Config) -> list[str]:
    if plugin.installed():
        return []
    return ["dinov3: the suite's plugin is not installed in this Python: write path options as "
            "--model-path=DIR, or run `pip install -e .` once so that --model-path DIR works too"]
