"""Wiring only: the suite's option group and the plugin modules that hold its fixtures and hooks.

Markers, test paths and report defaults live in pytest.ini; the option table
itself lives in acceptance/options.py so the command lines share it.
"""

from acceptance.options import OPTIONS

pytest_plugins = [
    "fixtures.session",
    "fixtures.models",
    "fixtures.inputs",
    "fixtures.outputs",
    "fixtures.diagnosis",
    "fixtures.reporting",
    "fixtures.benchmarking",
    "fixtures.scale",
]


def pytest_addoption(parser):
    group = parser.getgroup("dinov3", "DINOv3 acceptance suite (each option also reads DINOV3_<NAME>)")
    for option in OPTIONS:
        group.addoption(option.flag, dest=option.dest, metavar=option.metavar, default=None,
                        help=f"{option.help} (env {option.env}; default: {option.default or 'see text'})")
