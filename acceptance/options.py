"""The suite's options: one table shared by pytest and the command lines.

Each option is read, in rising priority, from its default, the environment
variable ``DINOV3_<NAME>`` and the command line. Values are parsed and checked
once, here, so a bad value fails with the option's name and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .device_kinds import KIND_NAMES, KINDS, parse_device_spec
from .errors import ConfigError

DTYPES = ("float32", "bfloat16", "float16")
PRECISION_MODES = ("vendor-default", "strict")
STALE_ACTIONS = ("off", "warn", "fail")
SWEEP_PROFILES = ("quick", "full", "off")
COMPILE_MODES = ("off", "on")
REFERENCE_CACHE_MODES = ("off", "on", "refresh")
PROFILE_MODES = ("off", "on")
OPS_MODES = ("auto", "on", "off")
TIMING_MODES = ("auto", "parallel", "sequential")
ENV_PREFIX = "DINOV3_"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise ValueError(f"expected a non-negative integer, got {value}")
    return value


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text

    return parse


def _dtype_list(text: str) -> tuple[str, ...]:
    """``all`` or a comma-separated list of dtypes, in the order given, without repeats."""
    if text.strip().lower() == "all":
        return DTYPES
    names = [name for name in _list_entries(text, "float32,bfloat16") if name]
    unknown = [name for name in names if name not in DTYPES]
    if unknown or not names:
        raise ValueError(f"expected 'all' or a comma-separated list of {', '.join(DTYPES)}, got {text!r}")
    return tuple(dict.fromkeys(names))


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"expected 1/0, true/false, yes/no or on/off, got {text!r}")


def _baseline_name(text: str) -> str:
    from .baseline import check_name  # a name is a file name; baseline.py owns the rule

    return check_name(text.strip())


def _list_entries(text: str, example: str) -> list[str]:
    """The entries of a comma-separated list; an empty one is a typo (``1, 2`` typed with a space makes the
    shell pass ``1,`` as the value and ``2`` as a test path), never silently dropped."""
    entries = [part.strip() for part in text.split(",")]
    if "" in entries and text.strip().lower() != "":
        raise ValueError(f"{text!r} has an empty entry: write the list without spaces, e.g. {example} "
                         "(after a space the shell passes the rest as another argument)")
    return entries


def _int_list(multiple_of: int) -> Callable[[str], tuple[int, ...]]:
    """A comma-separated list of positive integers (multiples of ``multiple_of``)."""
    def parse(text: str) -> tuple[int, ...]:
        _list_entries(text, f"{multiple_of},{2 * multiple_of}" if multiple_of > 1 else "1,2")
        try:
            values = tuple(dict.fromkeys(int(part) for part in text.split(",") if part.strip()))
        except ValueError:
            values = ()
        if not values or any(v < 1 or v % multiple_of for v in values):
            extra = f" (multiples of {multiple_of})" if multiple_of > 1 else ""
            raise ValueError(f"expected a comma-separated list of positive integers{extra}, got {text!r}")
        return values

    return parse


def _path(text: str) -> Path:
    if not text.strip():
        raise ValueError("expected a path, got an empty string")
    return Path(text).expanduser()


@dataclass(frozen=True)
class Option:
    """One option: ``--name`` on the command line, ``DINOV3_NAME`` in the environment."""

    name: str
    default: str | None
    help: str
    parse: Callable[[str], Any]
    metavar: str = "VALUE"
    #: False for a switch: ``--name`` alone on the command line means "true"
    takes_value: bool = True

    @property
    def flag(self) -> str:
        return "--" + self.name

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper().replace("-", "_")

    @property
    def dest(self) -> str:
        return "dinov3_" + self.name.replace("-", "_")

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")


#: every form --device takes, from the kinds table: ``cpu``, ``npu, npu:N, npu:all, npu:N,M,...`` ...
DEVICE_FORMS = ", ".join(f"{kind.name}, {kind.name}:N, {kind.name}:all, {kind.name}:N,M,..." if kind.takes_index
                         else kind.name for kind in KINDS)

OPTIONS: tuple[Option, ...] = (
    Option("model-path", None, "local Hugging Face checkpoint folder (config.json, model.safetensors, "
           "preprocessor_config.json); default: the built-in ViT-B/16 with seeded random weights, "
           "architecture-only and not valid for sign-off", _path, "DIR"),
    Option("device", "auto", "device under test: auto; " + DEVICE_FORMS + " (kind:all and card lists: every "
           "listed card, one report); auto picks " + " > ".join(KIND_NAMES), parse_device_spec, "DEVICE"),
    Option("dtype", "float32", "dtype of the device model (the CPU reference is always float32)",
           _choice(DTYPES), "DTYPE"),
    Option("dtypes", None, "dtype matrix: 'all' or a comma-separated list of dtypes, each run on the device "
           "and held to its own [accuracy.<dtype>] limits; default: the --dtype only", _dtype_list, "LIST"),
    Option("precision", "vendor-default", "reduced-precision shortcuts of the device: vendor-default leaves the "
           "framework's defaults (e.g. TF32/HF32 convolutions) in force; strict turns them off so that float32 "
           "means float32 arithmetic; the settings in force are recorded", _choice(PRECISION_MODES), "MODE"),
    Option("image", None, "input image file; default: a deterministic 224x224 synthetic image",
           _path, "PATH"),
    Option("thresholds", "thresholds.toml", "tolerances and latency limits (TOML)", _path, "PATH"),
    Option("peak-flops", "peak_flops.toml", "peak TFLOP/s per device name and dtype, for MFU (TOML; "
           "a CPU's peak is measured by a GEMM)", _path, "PATH"),
    Option("report-dir", "reports", "folder for the reports and the image used", _path, "DIR"),
    Option("batch-size", "1", "images per forward pass", _positive_int, "N"),
    Option("num-runs", "20", "timed runs per latency measurement", _positive_int, "N"),
    Option("warmup", "3", "untimed warm-up runs before the timed ones (after the cold call)",
           _non_negative_int, "N"),
    Option("stale-thresholds", "warn", "a latency limit passed by more than its stale_fraction (thresholds "
           "file) is stale: off, warn or fail", _choice(STALE_ACTIONS), "ACTION"),
    Option("allow-pickle", "false", "load a pytorch_model.bin (pickle) when the checkpoint has no model.safetensors; "
           "a pickle can run code when loaded, so only for files you trust (recorded in the reports)",
           _boolean, takes_value=False),
    Option("require-device", None, f"nightly: the device under test must be of this kind ({', '.join(KIND_NAMES)}), "
           "else the session stops at once (exit 4); a skipped accuracy or latency test or the built-in "
           "architecture-only model then fails the run (exit 1)", _choice(KIND_NAMES), "KIND"),
    Option("baseline", None, "compare latency and accuracy with the stored baseline NAME (this device name, dtype "
           "and batch size); limits in [regression] of the thresholds file", _baseline_name, "NAME"),
    Option("save-baseline", None, "store this run's figures as baseline NAME (for this device name, dtype and "
           "batch size) when no check failed", _baseline_name, "NAME"),
    Option("baselines-dir", "reports/baselines", "folder of the baseline files (NAME.json); keep it outside "
           "--report-dir to survive report clean-ups", _path, "DIR"),
    Option("history-size", "30", "runs kept in <report dir>/history/ for the trend plot (0: keep no history)",
           _non_negative_int, "N"),
    Option("sweep", "quick", "batch x resolution sweep profile from [sweep.<profile>] in the thresholds file: "
           "quick (CI), full, or off", _choice(SWEEP_PROFILES), "PROFILE"),
    Option("sweep-batches", None, "sweep batch sizes, e.g. 1,2,4,8 (replaces the profile's)", _int_list(1), "LIST"),
    Option("sweep-resolutions", None, "sweep resolutions, multiples of the model's input stride (checked at "
           "session start), e.g. 224,448 (replaces the profile's)", _int_list(1), "LIST"),
    Option("determinism-runs", "3", "repeated forwards of one input checked for identical outputs",
           _positive_int, "N"),
    Option("soak-seconds", "0", "run forwards continuously for S seconds checking NaN/Inf, drift and memory "
           "growth; 0 = off", _non_negative_int, "S"),
    Option("reference-cache", "on", "the CPU float32 reference outputs (final and probe points, per input) are "
           "kept under --reference-cache-dir, keyed by checkpoint, input, torch/transformers and dtype: on reuses "
           "them, refresh recomputes and overwrites them, off neither reads nor writes",
           _choice(REFERENCE_CACHE_MODES), "MODE"),
    Option("reference-cache-dir", None, "folder of the reference cache; default: "
           "$XDG_CACHE_HOME/dinov3-acceptance/references (~/.cache/...)", _path, "DIR"),
    Option("cpu-runs", None, "timed runs of the CPU reference latency (for the speedup); default: --num-runs",
           _positive_int, "N"),
    Option("profile", "on", "one profiled forward on the device and on the CPU reference (torch.profiler) after "
           "warm-up, outside the timed runs: operator tables, trace file; off skips it", _choice(PROFILE_MODES),
           "MODE"),
    Option("ops", "auto", "operator-level drift: every torch API call on the device against the CPU reference's, "
           "naming the first operator that goes wrong while its inputs were fine (msprobe's rule); auto runs it "
           "when a probe point drifts, on always, off never", _choice(OPS_MODES), "MODE"),
    Option("dump", None, "write both sides' operator captures in msprobe's PyTorch dump layout under DIR "
           "(DIR/cpu/step0/rank0/dump.json and DIR/<device>/...), for 'msprobe compare'; implies --ops on",
           _path, "DIR"),
    Option("timing", "auto", "how the cards of a whole-server run (--device kind:all -n N) are timed: parallel "
           "(every card at once, as a server runs in production), sequential (one card at a time, nothing else "
           "running); auto: parallel under -n, sequential without (where it is the only way)",
           _choice(TIMING_MODES), "MODE"),
    Option("compile", "off", "graph mode: on runs torch.compile (inductor; the torch_npu backend on NPU) "
           "against the CPU reference and eager latency; off skips it", _choice(COMPILE_MODES), "MODE"),
)

OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}


def resolve(cli: Mapping[str, str | None], env: Mapping[str, str]) -> dict[str, Any]:
    """Parse every option from default < environment < command line.

    ``cli`` maps option names to the raw command-line text (None when not given).
    Raises ConfigError naming the option, where the value came from and the fix.
    """
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw, source = option.default, "default"
        if env.get(option.env) not in (None, ""):
            raw, source = env[option.env], f"environment variable {option.env}"
        if cli.get(option.name) is not None:
            raw, source = cli[option.name], f"command line {option.flag}"
        if raw is None:
            values[option.field] = None
            continue
        try:
            values[option.field] = option.parse(str(raw))
        except ValueError as error:
            fix = (f"pass a valid {option.flag} {option.metavar}; see pytest --help" if option.takes_value
                   else f"set {option.env} to 1 or 0 (or unset it), or pass {option.flag}")
            raise ConfigError(f"bad value for {option.flag} (from {source}): {error}", fix) from None
    return values
