"""Graph mode: which torch.compile backend a device uses, or why none can be used."""

from __future__ import annotations

import shutil

import torch

from .device_kinds import kind_named


def compile_backend(kind: str) -> tuple[str | None, str | None]:
    """(backend, None) when torch.compile can run on this kind, else (None, the reason)."""
    backend = kind_named(kind).compile_backend
    if backend is None:
        return None, f"no torch.compile backend is known for {kind} devices"
    if not hasattr(torch, "compile"):
        return None, f"torch {torch.__version__} has no torch.compile"
    import torch._dynamo as dynamo  # noqa: PLC0415 - only when graph mode is asked for

    if backend not in dynamo.list_backends(exclude_tags=()):
        return None, f"torch.compile backend {backend!r} is not registered (installed: {dynamo.list_backends()})"
    if backend == "inductor" and kind == "cpu" and not (shutil.which("g++") or shutil.which("c++")):
        return None, "inductor on the CPU needs a C++ compiler (g++) on PATH"
    return backend, None
