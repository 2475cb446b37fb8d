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
    "fixtures.nightly",
    "fixtures.scale",
]


def pytest_addoption(parser):
    # "--model-path=DIR", with "=": pytest reads an existing path after an option it does not know yet
    # (ours are added by this file) as a test path and looks for pytest.ini beside it (pytest #8846)
    group = parser.getgroup("dinov3", "DINOv3 acceptance suite (each option also reads DINOV3_<NAME>; "
                            "write paths as --model-path=DIR)")
    for option in OPTIONS:
        # a switch stores the text "true", parsed by the same table entry as its environment variable
        kind = {"metavar": option.metavar} if option.takes_value else {"action": "store_const", "const": "true"}
        group.addoption(option.flag, dest=option.dest, default=None, **kind,
                        help=f"{option.help} (env {option.env}; default: {option.default or 'see text'})")
