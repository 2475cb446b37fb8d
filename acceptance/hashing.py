"""The sha256 of a file, read in 1 MiB blocks: the one hash of checkpoint files, images, thresholds files and
cached references (torch-free, so the reports and merge_reports.py can use it without importing torch)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
