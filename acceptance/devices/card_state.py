"""Each card's own state as the vendor's tool reports it: health, temperature, power, memory in use, ECC
counts, driver and firmware - what a hardware sign-off records next to the suite's figures.

Read with ``npu-smi`` on Ascend hosts and ``nvidia-smi`` on CUDA hosts, when the tool is on PATH,
before and after the run (acceptance/server_checks.py judges the change). The parsers read the
tools' real output formats; samples of them are the self-tests' data
(tests/selftests/data/smi/, with their sources). A tool that is missing, fails or prints
something unreadable gives no state and a reason, never a guess.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

#: how long one call of a vendor tool may take (npu-smi on a busy 8-card host takes a few seconds)
TOOL_TIMEOUT_S = 60


@dataclass(frozen=True)
class CardState:
    """One card at one moment, as its vendor's tool reports it (None: the tool does not report it)."""

    #: the tool and its version ("npu-smi 23.0.rc3", "nvidia-smi")
    tool: str
    #: the card's number as the tool numbers it (npu-smi's NPU ID, nvidia-smi's index)
    index: int
    name: str | None = None
    bus_id: str | None = None
    #: npu-smi's OK, Warning, Alarm, Critical or UNKNOWN (nvidia-smi has no single health: None)
    health: str | None = None
    temperature_c: float | None = None
    power_w: float | None = None
    memory_used_mib: float | None = None
    memory_total_mib: float | None = None
    #: uncorrectable ECC errors (npu-smi: HBM and DDR double-bit; nvidia-smi: volatile uncorrected total)
    ecc_uncorrectable: int | None = None
    driver: str | None = None
    firmware: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(text: str | None) -> float | None:
    """A figure from a tool's cell: '93.6', '36', '[N/A]', 'N/A', '[Not Supported]' -> float or None."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(?:[A-Za-z%]+)?\s*", text)
    return float(match.group(1)) if match else None


def _text(text: str | None) -> str | None:
    value = (text or "").strip()
    return None if not value or value.strip("[]").upper() in ("N/A", "NA", "NOT SUPPORTED", "UNKNOWN ERROR") \
        else value


# ---- npu-smi (Ascend) ----------------------------------------------------------------------------------

_NPU_SMI_VERSION = re.compile(r"npu-smi\s+(\S+)\s+Version:\s*(\S+)")


def parse_npu_smi_info(text: str) -> tuple[str | None, dict[int, dict[str, Any]]]:
    """``npu-smi info``'s table: (the driver version, NPU ID -> name, health, power, temperature, bus id, memory).

    Each chip takes two rows: ``| 0  910B3 | OK | 93.6  36  0 / 0 |`` (NPU ID, name, health, power, temperature,
    hugepages) then ``| 0  | 0000:C1:00.0 | 0  0 / 0  3161 / 65536 |`` (chip [and Phy-ID or device], bus id,
    AI core %, memory, HBM). An NPU of two dies or chips (Atlas A3, 310P Duo) repeats its NPU row per chip: its
    health is the worst of them, its memory the sum. The process table below is not read.
    """
    version_match = _NPU_SMI_VERSION.search(text)
    version = version_match.group(2) if version_match else None  # "Version:" is the driver's
    cards: dict[int, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        if "Process id" in line or "Process name" in line:
            break  # the process table
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) != 3:
            continue
        first, second, figures = cells[0].split(), cells[1], cells[2].split()
        bus = re.fullmatch(r"[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]", second)
        if len(first) >= 2 and first[0].isdigit() and not first[1].isdigit() and not bus:  # an NPU row
            current = cards.setdefault(int(first[0]), {"name": " ".join(first[1:]), "health": None, "power_w": None,
                                                       "temperature_c": None})
            if current["health"] in (None, "OK"):
                current["health"] = second or None
            power, temperature = (_number(figures[0]) if figures else None,
                                  _number(figures[1]) if len(figures) > 1 else None)
            current["power_w"] = current["power_w"] if power is None else (current["power_w"] or 0) + power
            if temperature is not None:
                current["temperature_c"] = max(temperature, current["temperature_c"] or temperature)
        elif current is not None and first and all(token.isdigit() for token in first) and bus:  # its chip row
            current.setdefault("bus_id", second)
            used_total = re.findall(r"(\d+)\s*/\s*(\d+)", cells[2])
            if used_total:  # the last used/total pair is the HBM (the memory where there is no HBM column)
                used, total = used_total[-1]
                current["memory_used_mib"] = current.get("memory_used_mib", 0.0) + float(used)
                current["memory_total_mib"] = current.get("memory_total_mib", 0.0) + float(total)
    return version, cards


def _colon_fields(text: str) -> dict[str, str]:
    """``Name : value`` lines (npu-smi info -t board / -t ecc) as a dict of stripped names and values."""
    found = {}
    for line in text.splitlines():
        if ":" in line:
            name, _, value = line.partition(":")
            found[name.strip()] = value.strip()
    return found


def parse_npu_smi_board(text: str) -> dict[str, Any]:
    """``npu-smi info -t board -i N``: the driver (Software Version) and the firmware (Firmware Version)."""
    found = _colon_fields(text)
    return {"driver": _text(found.get("Software Version")), "firmware": _text(found.get("Firmware Version"))}


def parse_npu_smi_ecc(text: str) -> int | None:
    """``npu-smi info -t ecc -i N``: the uncorrectable (double-bit) error count, HBM and DDR together;
    None when the tool lists no such counter."""
    counts = [int(value) for name, value in _colon_fields(text).items()
              if re.search(r"double bit error count", name, re.IGNORECASE) and value.strip().isdigit()]
    return sum(counts) if counts else None


# ---- nvidia-smi (CUDA) ---------------------------------------------------------------------------------

#: the fields asked of nvidia-smi --query-gpu, in order
NVIDIA_SMI_FIELDS = ("index", "name", "pci.bus_id", "driver_version", "vbios_version", "temperature.gpu",
                     "power.draw", "memory.used", "memory.total", "ecc.errors.uncorrected.volatile.total")


def parse_nvidia_smi_csv(text: str) -> dict[int, dict[str, Any]]:
    """``nvidia-smi --query-gpu=<NVIDIA_SMI_FIELDS> --format=csv`` (header line first, units in it and in the
    values: ``45 W``, ``1024 MiB``; ``[N/A]`` where the card does not say)."""
    rows = list(csv.reader(io.StringIO(text.strip()), skipinitialspace=True))
    if not rows:
        return {}
    header = [re.sub(r"\s*\[.*\]$", "", name.strip()) for name in rows[0]]
    cards: dict[int, dict[str, Any]] = {}
    for row in rows[1:]:
        if len(row) != len(header):
            continue
        values = dict(zip(header, (cell.strip() for cell in row)))
        index = _number(values.get("index"))
        if index is None:
            continue
        ecc = _number(values.get("ecc.errors.uncorrected.volatile.total"))
        cards[int(index)] = {
            "name": _text(values.get("name")), "bus_id": _text(values.get("pci.bus_id")),
            "driver": _text(values.get("driver_version")), "firmware": _text(values.get("vbios_version")),
            "temperature_c": _number(values.get("temperature.gpu")), "power_w": _number(values.get("power.draw")),
            "memory_used_mib": _number(values.get("memory.used")),
            "memory_total_mib": _number(values.get("memory.total")),
            "ecc_uncorrectable": int(ecc) if ecc is not None else None,
            # nvidia-smi has no single health field (health=None): its ECC count is what is judged
        }
    return cards


# ---- reading ----------------------------------------------------------------------------------------------

Runner = Callable[[list[str]], str]


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` exited {done.returncode}: "
                           f"{(done.stderr or done.stdout).strip().splitlines()[-1:] or ''}")
    return done.stdout


def _npu_states(run: Runner, indices: list[int]) -> dict[int, CardState]:
    version, cards = parse_npu_smi_info(run(["npu-smi", "info"]))
    if not cards:
        raise RuntimeError("`npu-smi info` listed no NPU in a format this suite reads")
    tool = f"npu-smi {version}" if version else "npu-smi"
    states = {}
    for index in indices:
        if index not in cards:
            continue
        board = parse_npu_smi_board(run(["npu-smi", "info", "-t", "board", "-i", str(index)]))
        ecc = parse_npu_smi_ecc(run(["npu-smi", "info", "-t", "ecc", "-i", str(index)]))
        states[index] = CardState(tool=tool, index=index, **cards[index], **board, ecc_uncorrectable=ecc)
    return states


def _cuda_states(run: Runner, indices: list[int]) -> dict[int, CardState]:
    cards = parse_nvidia_smi_csv(run(["nvidia-smi", f"--query-gpu={','.join(NVIDIA_SMI_FIELDS)}", "--format=csv"]))
    if not cards:
        raise RuntimeError("`nvidia-smi --query-gpu` listed no GPU in a format this suite reads")
    return {index: CardState(tool="nvidia-smi", index=index, **cards[index]) for index in indices if index in cards}


#: device kind -> (its tool, how its states are read)
TOOLS: Mapping[str, tuple[str, Callable[[Runner, list[int]], dict[int, CardState]]]] = {
    "npu": ("npu-smi", _npu_states), "cuda": ("nvidia-smi", _cuda_states)}


def read_card_states(kind: str, indices: list[int],
                     run: Runner = _run) -> tuple[dict[int, CardState], str | None]:
    """The state of the cards ``indices`` (numbered as the tool numbers them), and why there is none when
    there is none (the tool is not on PATH, failed or printed what the suite cannot read)."""
    if kind not in TOOLS:
        return {}, f"no vendor tool reads a {kind} card's state"
    tool, read = TOOLS[kind]
    if run is _run and shutil.which(tool) is None:
        return {}, f"{tool} is not on PATH: the cards' health, temperature, ECC, driver and firmware are not recorded"
    try:
        states = read(run, indices)
    except (OSError, RuntimeError, subprocess.SubprocessError, ValueError) as error:
        return {}, f"{tool} could not be read: {error}"
    missing = [index for index in indices if index not in states]
    return states, (f"{tool} does not list card(s) {', '.join(map(str, missing))}" if missing else None)
