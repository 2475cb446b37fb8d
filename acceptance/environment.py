"""Versions and host facts recorded with every run."""

from __future__ import annotations

import importlib.metadata
import platform
import socket
import sys

from .device_kinds import VENDOR_PACKAGES

#: the installed packages whose versions every report names (the device kinds' vendor packages after torch)
PACKAGES = ("torch", *VENDOR_PACKAGES, "transformers", "safetensors", "torchvision", "numpy", "Pillow",
            "pytest", "pytest-benchmark", "pytest-html")


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    versions.update({name: package_version(name) for name in PACKAGES})
    torch = sys.modules.get("torch")
    if torch is not None:  # the build string (+cpu, +cu128) says more than the distribution version
        versions["torch"] = torch.__version__
    return versions


def host_facts() -> dict[str, str]:
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "machine": platform.machine()}
