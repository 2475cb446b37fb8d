"""TOML data files (thresholds.toml, peak_flops.toml): read once, every key checked against a schema.

One parser per kind of value, so every key of every data file is held to the
same rule and a bad one is named the same way: the file, the key and what was
expected, in one line, with the fix. Unknown keys and tables are errors too: a
typo such as ``max_drfit`` would otherwise drop a limit without a word.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # Ascend hosts with torch 2.9 may run Python 3.10
    import tomli as tomllib

from .errors import ConfigError


def _no_change(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Kind:
    """One kind of value: what the messages call it, an example for the fix, the check and the conversion."""

    expected: str
    example: str
    accepts: Callable[[Any], bool]
    convert: Callable[[Any], Any] = _no_change


def _is_number(value: Any) -> bool:
    # bool is an int subclass, and NaN compares false with every limit: neither is a number here
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


NUMBER = Kind("a number", "<number>", _is_number, float)
NON_NEGATIVE = Kind("a non-negative number", "<number >= 0>", lambda v: _is_number(v) and v >= 0, float)
POSITIVE = Kind("a positive number", "<number > 0>", lambda v: _is_number(v) and v > 0, float)
POSITIVE_INT = Kind("a positive integer", "<integer >= 1>", lambda v: _is_int(v) and v >= 1)
NON_NEGATIVE_INT = Kind("a non-negative integer", "<integer >= 0>", lambda v: _is_int(v) and v >= 0)
BOOL = Kind("true or false", "true", lambda v: isinstance(v, bool))
GLOB = Kind("a device-name glob", '"Ascend910*"', lambda v: isinstance(v, str) and bool(v.strip()))
STRING_LIST = Kind("a list of non-empty strings", '["<name>", ...]',
                   lambda v: isinstance(v, list) and all(isinstance(s, str) and s.strip() for s in v), tuple)


def int_list(multiple_of: int = 1) -> Kind:
    """A non-empty list of positive integers, each a multiple of ``multiple_of``."""
    extra = f" (multiples of {multiple_of})" if multiple_of > 1 else ""
    return Kind(f"a non-empty list of positive integers{extra}", f"[{multiple_of}, {2 * multiple_of}]",
                lambda v: isinstance(v, list) and bool(v) and all(_is_int(i) and i > 0 and i % multiple_of == 0
                                                                  for i in v), tuple)


def choice(options: Iterable[str]) -> Kind:
    options = tuple(options)
    return Kind(f"one of {', '.join(options)}", f'"{options[0]}"', lambda v: v in options)


@dataclass(frozen=True)
class Key:
    """A key of a table: its kind, and whether it must be there (else ``default``)."""

    kind: Kind
    required: bool = True
    default: Any = None


@dataclass(frozen=True)
class Source:
    """The data file being checked: every error names it, and the fix says where to edit."""

    what: str  # "thresholds file", "peak FLOP table"
    path: Path

    def error(self, problem: str, fix: str) -> ConfigError:
        return ConfigError(f"{self.what} {self.path}: {problem}", f"{fix} in {self.path}")


def read_toml(path: Path, what: str, fix_missing: str) -> dict[str, Any]:
    """The parsed file; ConfigError for a file that is missing, unreadable or not TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist", fix_missing) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{what} {path} cannot be read: {error}",
                          "check the file's permissions and encoding (UTF-8 TOML)") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{what} {path} is not valid TOML: {error}",
                          "fix the TOML syntax at the line named") from None


def _unknown(source: Source, found: Iterable[str], known: Iterable[str], problem: str, fix: str) -> None:
    unknown = sorted(set(found) - set(known))
    if unknown:
        raise source.error(problem.format(", ".join(unknown)), fix.format(", ".join(known)))


def table(value: Any, where: str, header: str, keys: Mapping[str, Key], source: Source) -> dict[str, Any]:
    """Every key of one table checked and converted (defaults filled in). ``where`` prefixes key names
    in messages (``soak`` -> ``soak.max_drift``), ``header`` is how the file spells the table."""
    if not isinstance(value, dict):
        raise source.error(f"{header} must be a table, got {type(value).__name__}",
                           f"write {header} as a TOML table with {', '.join(keys)}")
    _unknown(source, value, keys, f"unknown key(s) {{}} under {header}", f"use only {{}} under {header}")
    parsed = {}
    for name, key in keys.items():
        if name not in value:
            if key.required:
                raise source.error(f"missing key {where}.{name} ({key.kind.expected})",
                                   f"add `{name} = {key.kind.example}` under {header}")
            parsed[name] = key.default
            continue
        if not key.kind.accepts(value[name]):
            raise source.error(f"{where}.{name} must be {key.kind.expected}, got {value[name]!r}",
                               f"set {where}.{name} to {key.kind.expected}")
        parsed[name] = key.kind.convert(value[name])
    return parsed


def named_tables(value: Any, section: str, names: Iterable[str], required: bool, keys: Mapping[str, Key],
                 source: Source) -> dict[str, dict[str, Any]]:
    """``[section.<name>]`` tables for the names given (each required, or each optional); others are errors."""
    names = tuple(names)
    if not isinstance(value, dict):
        raise source.error(f"[{section}] must hold tables [{section}.<name>], got {type(value).__name__}",
                           f"write [{section}.{names[0]}] etc. as TOML tables")
    _unknown(source, value, names, f"unknown table(s) {{}} under [{section}]",
             f"use only [{section}.<name>] with a name from {{}}")
    parsed = {}
    for name in names:
        if name not in value:
            if required:
                raise source.error(f"missing table [{section}.{name}]",
                                   f"add [{section}.{name}] with {', '.join(keys)}")
            continue
        parsed[name] = table(value[name], f"{section}.{name}", f"[{section}.{name}]", keys, source)
    return parsed


def entries(value: Any, section: str, keys: Mapping[str, Key], source: Source) -> list[dict[str, Any]]:
    """``[[section]]`` entries, each checked; messages call them ``<section> entry N`` (from 1)."""
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise source.error(f"{section} must be an array of tables ([[{section}]] entries)",
                           f"write each entry as a [[{section}]] table")
    return [table(entry, f"{section} entry {number}", f"[[{section}]] entry {number}", keys, source)
            for number, entry in enumerate(value, start=1)]


def known_tables(raw: Mapping[str, Any], known: Iterable[str], source: Source) -> None:
    """No top-level table or key outside ``known`` (a misspelt ``[determinsm]`` would drop its limits)."""
    _unknown(source, raw, tuple(known), "unknown top-level table(s) or key(s) {}", "use only the tables {}")
