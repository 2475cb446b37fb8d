"""The peak TFLOP/s table for MFU (peak_flops.toml): device-name glob -> dtype -> TFLOP/s.

A data file users extend with their card; read and checked once, at session
start, like the thresholds file (no torch here, so the config can load it).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .options import DTYPES
from .tables import GLOB, POSITIVE, Key, Source, entries, known_tables, read_toml

PEAK_TABLE = Path(__file__).resolve().parents[1] / "peak_flops.toml"
PEAK_KEYS = {"device": Key(GLOB), **{dtype: Key(POSITIVE, required=False) for dtype in DTYPES}}


@dataclass(frozen=True)
class PeakTable:
    path: Path
    #: (device glob, {dtype: TFLOP/s}) in file order: the first match with the dtype wins
    entries: tuple[tuple[str, Mapping[str, float]], ...]


def load_peak_table(path: Path = PEAK_TABLE) -> PeakTable:
    """Every [[peak]] entry checked; ConfigError naming the file, the key and what is expected."""
    raw = read_toml(path, "peak FLOP table", "pass --peak-flops PATH to an existing file, or restore peak_flops.toml")
    source = Source("peak FLOP table", path)
    known_tables(raw, ("peak",), source)
    parsed = entries(raw.get("peak", []), "peak", PEAK_KEYS, source)
    return PeakTable(path=path, entries=tuple(
        (entry["device"], {dtype: entry[dtype] for dtype in DTYPES if entry[dtype] is not None}) for entry in parsed))


def table_peak_tflops(device_name: str, dtype: str, table: PeakTable) -> float | None:
    """The first entry whose glob matches the device name (case-insensitive) and has the dtype."""
    for glob, rates in table.entries:
        if fnmatch.fnmatch(device_name.lower(), glob.lower()) and dtype in rates:
            return rates[dtype]
    return None
