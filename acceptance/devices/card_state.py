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


def parse_npu_smi_info(text: str) -> tuple[str | None, list[dict[str, Any]]]:
    """``npu-smi info``'s table: (the driver version, one entry per chip in the order listed).

    Each chip takes two rows: ``| 0  910B3 | OK | 93.6  36  0 / 0 |`` (NPU ID, name, health, power, temperature,
    hugepages) then ``| 0  | 0000:C1:00.0 | 0  0 / 0  3161 / 65536 |`` (chip, bus id, AI core %, memory, HBM). An
    NPU of two dies or chips (Atlas A3, 310P Duo) repeats its NPU row per chip, and its chip row carries the
    chip's device number after the chip index (``Phy-ID`` / ``Device``): ``device`` in the entry (None where the
    table has no such column: one chip per NPU). The process table below is not read.
    """
    version_match = _NPU_SMI_VERSION.search(text)
    version = version_match.group(2) if version_match else None  # "Version:" is the driver's
    chips: list[dict[str, Any]] = []
    pending: dict[str, Any] | None = None
    for line in text.splitlines():
        if "Process id" in line or "Process name" in line:
            break  # the process table
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) != 3:
            continue
        first, second, figures = cells[0].split(), cells[1], cells[2].split()
        bus = re.fullmatch(r"[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]", second)
        if len(first) >= 2 and first[0].isdigit() and not first[1].isdigit() and not bus:  # an NPU row
            pending = {"npu": int(first[0]), "name": " ".join(first[1:]), "health": second or None,
                       "power_w": _number(figures[0]) if figures else None,
                       "temperature_c": _number(figures[1]) if len(figures) > 1 else None}
        elif pending is not None and first and all(token.isdigit() for token in first) and bus:  # its chip row
            used_total = re.findall(r"(\d+)\s*/\s*(\d+)", cells[2])
            used, total = used_total[-1] if used_total else (None, None)  # the last pair: HBM (else the memory)
            chips.append({**pending, "chip": int(first[0]), "device": int(first[1]) if len(first) > 1 else None,
                          "bus_id": second, "memory_used_mib": float(used) if used is not None else None,
                          "memory_total_mib": float(total) if total is not None else None})
            pending = None
    return version, chips


def chip_devices(chips: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The chips by the device number the runtime gives them (ASCEND_RT_VISIBLE_DEVICES numbering): the table's
    device column, else the NPU ID; where those are not 0..N-1 (a container that sees NPU 5 and 7), the order
    the table lists them in, as the runtime numbers what it sees."""
    numbers = [chip["device"] if chip["device"] is not None else chip["npu"] for chip in chips]
    if sorted(numbers) != list(range(len(numbers))):
        numbers = list(range(len(numbers)))
    return dict(zip(numbers, chips))


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


def parse_npu_smi_ecc(text: str) -> dict[int, int]:
    """``npu-smi info -t ecc -i N``: each chip's uncorrectable (double-bit) error count, HBM and DDR together, by
    chip index. A two-chip NPU prints a block per chip, each closed by ``Chip ID : k``; a block without it is
    chip 0. Empty when the tool lists no such counter."""
    counts: dict[int, int] = {}
    block: list[int] = []
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if re.search(r"double bit error count", name, re.IGNORECASE) and value.isdigit():
            block.append(int(value))
        elif name == "Chip ID" and value.isdigit():
            if block:
                counts[int(value)] = sum(block)
            block = []
    if block:
        counts[0] = counts.get(0, 0) + sum(block)
    return counts


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
        last = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(f"`{' '.join(command)}` exited {done.returncode}" + (f": {last[-1]}" if last else ""))
    return done.stdout


def _bus(text: str | None) -> str | None:
    """A PCI bus id as both nvidia-smi (``00000000:01:00.0``) and torch (``0000:01:00.0``) write it: comparable."""
    if not text:
        return None
    parts = text.strip().lower().split(":")
    if len(parts) == 3 and re.fullmatch(r"[0-9a-f]+", parts[0]):
        return f"{int(parts[0], 16):04x}:{parts[1]}:{parts[2]}"
    return text.strip().lower()


def _npu_states(run: Runner, cards: Mapping[int, str | None]) -> dict[int, CardState]:
    version, chips = parse_npu_smi_info(run(["npu-smi", "info"]))
    if not chips:
        raise RuntimeError("`npu-smi info` listed no NPU in a format this suite reads")
    tool = f"npu-smi {version}" if version else "npu-smi"
    by_device = chip_devices(chips)
    states, boards, eccs = {}, {}, {}
    for card in cards:
        chip = by_device.get(card)
        if chip is None:
            continue
        npu = chip["npu"]
        if npu not in boards:
            boards[npu] = parse_npu_smi_board(run(["npu-smi", "info", "-t", "board", "-i", str(npu)]))
            eccs[npu] = parse_npu_smi_ecc(run(["npu-smi", "info", "-t", "ecc", "-i", str(npu)]))
        figures = {key: chip[key] for key in ("name", "health", "power_w", "temperature_c", "bus_id",
                                              "memory_used_mib", "memory_total_mib")}
        states[card] = CardState(tool=tool, index=npu, **figures, **boards[npu],
                                 ecc_uncorrectable=eccs[npu].get(chip["chip"]))
    return states


def _cuda_states(run: Runner, cards: Mapping[int, str | None]) -> dict[int, CardState]:
    """Matched on the bus id where the runtime gives one (CUDA numbers its cards its own way), else the index."""
    listed = parse_nvidia_smi_csv(run(["nvidia-smi", f"--query-gpu={','.join(NVIDIA_SMI_FIELDS)}", "--format=csv"]))
    if not listed:
        raise RuntimeError("`nvidia-smi --query-gpu` listed no GPU in a format this suite reads")
    by_bus = {_bus(row.get("bus_id")): index for index, row in listed.items() if row.get("bus_id")}
    states = {}
    for card, bus_id in cards.items():
        index = by_bus.get(_bus(bus_id)) if bus_id else card
        if index in listed:
            states[card] = CardState(tool="nvidia-smi", index=index, **listed[index])
    return states


#: device kind -> (its tool, how its states are read)
TOOLS: Mapping[str, tuple[str, Callable[[Runner, Mapping[int, str | None]], dict[int, CardState]]]] = {
    "npu": ("npu-smi", _npu_states), "cuda": ("nvidia-smi", _cuda_states)}


def read_card_states(kind: str, cards: Mapping[int, str | None],
                     run: Runner = _run) -> tuple[dict[int, CardState], str | None]:
    """The state of each card (numbered as the runtime numbers the host's cards, with its bus id where the runtime
    gives one), and why there is none for some or all (the tool is not on PATH, failed, printed what the suite
    cannot read, or does not list the card)."""
    if kind not in TOOLS:
        return {}, f"no vendor tool reads a {kind} card's state"
    tool, read = TOOLS[kind]
    if run is _run and shutil.which(tool) is None:
        return {}, f"{tool} is not on PATH: the cards' health, temperature, ECC, driver and firmware are not recorded"
    try:
        states = read(run, cards)
    except (OSError, RuntimeError, subprocess.SubprocessError, ValueError) as error:
        return {}, f"{tool} could not be read: {error}"
    missing = [card for card in cards if card not in states]
    return states, (f"{tool} lists no card matching {', '.join(map(str, missing))}" if missing else None)
