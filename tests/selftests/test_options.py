"""Every option: defaults, environment < command line, and a clear error for each bad value."""

import json
import re
from pathlib import Path

import pytest

from acceptance.config import RunConfig
from acceptance.errors import ConfigError
from acceptance.options import OPTIONS, resolve

ROOT = Path(__file__).resolve().parents[2]


def test_defaults():
    values = resolve({}, {})
    assert values["device"] == "auto" and values["dtype"] == "float32" and values["model_path"] is None
    assert values["num_runs"] == 20 and values["batch_size"] == 1 and values["warmup"] == 3


def test_environment_is_read_and_the_command_line_wins():
    env = {"DINOV3_DEVICE": "cuda:1", "DINOV3_DTYPE": "float16"}
    assert resolve({}, env)["device"] == "cuda:1"
    values = resolve({"dtype": "bfloat16"}, env)
    assert values["dtype"] == "bfloat16" and values["device"] == "cuda:1"


def test_every_option_has_an_env_variable_and_help_text():
    for option in OPTIONS:
        assert option.env == "DINOV3_" + option.name.upper().replace("-", "_")
        assert option.help and option.flag.startswith("--")


@pytest.mark.parametrize("name,value,fragment", [
    ("device", "tpu", "unknown device 'tpu'"),
    ("device", "npu:x", "bad device index in 'npu:x'"),
    ("device", "cpu:0", "cpu and mps take no index"),
    ("dtype", "float64", "expected one of float32, bfloat16, float16, got 'float64'"),
    ("num-runs", "0", "expected a positive integer, got 0"),
    ("num-runs", "-3", "expected a positive integer, got -3"),
    ("batch-size", "two", "expected a positive integer, got 'two'"),
    ("warmup", "-1", "expected a non-negative integer, got -1"),
    ("model-path", " ", "expected a path"),
])
def test_bad_values_name_the_option_and_the_fix(name, value, fragment):
    with pytest.raises(ConfigError) as raised:
        resolve({name: value}, {})
    message = str(raised.value)
    assert f"bad value for --{name} (from command line --{name})" in message and fragment in message
    assert "fix:" in message


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError, match="from environment variable DINOV3_NUM_RUNS"):
        resolve({}, {"DINOV3_NUM_RUNS": "zero"})


@pytest.mark.parametrize("spec", ["auto", "cpu", "npu", "npu:3", "cuda:0", "XPU:1", "mps"])
def test_good_device_specs(spec):
    assert resolve({"device": spec}, {})["device"] == spec.lower()


def test_run_config_resolves_default_paths_from_the_suite_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = RunConfig.load({}, {}, ROOT)
    assert config.thresholds_path == ROOT / "thresholds.toml"
    assert config.report_dir == ROOT / "reports"
    assert config.thresholds.accuracy_for("float32").max_relative_error == 0.01
    assert config.uses_builtin_model


def test_run_config_is_frozen():
    config = RunConfig.load({}, {}, ROOT)
    with pytest.raises(AttributeError):
        config.device = "npu"


def test_option_values_name_every_option_json_ready(tmp_path):
    """What the report records as run.options: every option of the table, so a new one is not forgotten."""
    cli = {"model-path": str(tmp_path / "ckpt"), "dtypes": "float32,bfloat16", "sweep-batches": "1,2",
           "compile": "on", "soak-seconds": "5", "require-device": "cpu"}
    values = RunConfig.load(cli, {}, ROOT).option_values()
    assert sorted(values) == sorted(option.field for option in OPTIONS), values
    assert json.loads(json.dumps(values)) == values  # plain JSON: no Path, no tuple
    assert values["model_path"] == str(tmp_path / "ckpt") and values["thresholds"] == str(ROOT / "thresholds.toml")
    assert values["dtypes"] == ["float32", "bfloat16"] and values["sweep_batches"] == [1, 2]
    assert values["sweep_resolutions"] is None and values["image"] is None
    assert values["compile"] == "on" and values["soak_seconds"] == 5 and values["require_device"] == "cpu"


@pytest.mark.parametrize("text,fragment", [
    ("[accuracy.float32\n", "is not valid TOML"),
    ("", "missing table [accuracy.<dtype>]"),
    ("[accuracy.float32]\nmax_relative_error = 0.01\nmin_cosine = 0.99\n", "missing table [accuracy.bfloat16]"),
    ("[accuracy.float32]\nmax_relative_error = 'one'\n",
     "accuracy.float32.max_relative_error must be a number, got 'one'"),
    ("[accuracy.float32]\nmin_cosine = 0.9\n", "missing key accuracy.float32.max_relative_error (a number)"),
])
def test_bad_thresholds_files_name_the_key(tmp_path, text, fragment):
    path = tmp_path / "thresholds.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        RunConfig.load({"thresholds": str(path)}, {}, ROOT)
    assert fragment in str(raised.value) and "fix:" in str(raised.value)


SHIPPED = (ROOT / "thresholds.toml").read_text()


def _replace(old: str, new: str):
    """The shipped thresholds file with the first line starting with ``old`` replaced by ``new``."""
    def edit(text: str) -> str:
        edited = re.sub(rf"(?m)^{re.escape(old)}.*$", lambda match: new, text, count=1)
        assert edited != text, f"{old!r} not in the shipped thresholds.toml"
        return edited
    return edit


def _remove_table(header: str):
    """The shipped thresholds file without one table (its header and keys, up to the next blank line)."""
    def edit(text: str) -> str:
        edited = re.sub(rf"(?m)^{re.escape(header)}\n(?:[^\n]+\n)*", "", text, count=1)
        assert edited != text, f"{header!r} not in the shipped thresholds.toml"
        return edited
    return edit


@pytest.mark.parametrize("edit,problem,fix", [
    (_replace("batches = [1, 2]", 'batches = "1,2"'),
     "sweep.quick.batches must be a non-empty list of positive integers, got '1,2'", "set sweep.quick.batches to"),
    (_replace("resolutions = [224, 448]", "resolutions = [224, 0]"),
     "sweep.quick.resolutions must be a non-empty list of positive integers, got [224, 0]", "to a non-empty"),
    (_replace("num_runs = 10", "num_runs = 0"), "sweep.full.num_runs must be a positive integer, got 0",
     "set sweep.full.num_runs to a positive integer"),
    (_replace("warmup = 2", "warmup = 1.5"), "sweep.full.warmup must be a non-negative integer, got 1.5", "warmup"),
    (_replace("warmup = 1", "warmup = 1\ngrid = 1"), "sweep.quick.grid must be true or false, got 1", "grid"),
    (_replace("[sweep.full]", "[sweep.fast]"), "unknown table(s) fast under [sweep]", "quick, full"),
    (_replace("max_abs_spread = 0.0", 'max_abs_spread = "0"'),
     "determinism.max_abs_spread must be a non-negative number, got '0'", "set determinism.max_abs_spread"),
    (_replace("max_drift = 0.0", 'max_drift = "zero"'), "soak.max_drift must be a non-negative number, got 'zero'",
     "set soak.max_drift to a non-negative number"),
    (_replace("max_drift = 0.0", "max_drift = nan"), "soak.max_drift must be a non-negative number, got nan", ""),
    (_replace("max_memory_growth_bytes = 0", "max_memory_growth_bytes = -1"),
     "soak.max_memory_growth_bytes must be a non-negative number, got -1", "max_memory_growth_bytes"),
    (_replace("max_drift = 0.0", "max_drfit = 0.0"), "unknown key(s) max_drfit under [soak]",
     "use only max_drift, max_memory_growth_bytes under [soak]"),
    (_replace("[determinism]", "[determinsm]"), "unknown top-level table(s) or key(s) determinsm", "determinism"),
    (_remove_table("[soak]"), "missing key soak.max_drift", "add `max_drift = <number >= 0>` under [soak]"),
    (_replace("max_latency_regression_percent = 15.0", "max_latency_regression_percent = true"),
     "regression.max_latency_regression_percent must be a non-negative number, got True", "regression"),
    (_replace("max_relative_error_increase = 0.001", "max_relative_error_increse = 0.001"),
     "unknown key(s) max_relative_error_increse under [regression]", "max_relative_error_increase"),
    (_replace("required_markers = ", 'required_markers = "accuracy"'),
     "signoff.required_markers must be a list of non-empty strings, got 'accuracy'", "signoff.required_markers"),
    (_replace("max_p50_ms = 11.2", 'max_p50_ms = "11"'),
     "latency entry 1.max_p50_ms must be a non-negative number, got '11'", "set latency entry 1.max_p50_ms"),
    (_remove_table("[layers.float32]"), "missing table [layers.float32]", "add [layers.float32] with"),
    (_replace("[layers.float16]", "[layers.half]"), "unknown table(s) half under [layers]", "float32, bfloat16"),
    (_replace("max_distance_decades = 1.0", 'max_distance_decades = "1"'),
     "fingerprint.max_distance_decades must be a non-negative number, got '1'", "fingerprint.max_distance_decades"),
    (_replace("max_pooler_cls_abs_diff = 0.0", "max_pooler_cls_abs_diff = false"),
     "consistency.max_pooler_cls_abs_diff must be a number, got False", "to a number"),
    (_replace("max_smoke_abs_diff = 0.0", "max_smoke_abs_diff = 0.0\nmax_smoke_diff = 1.0"),
     "unknown key(s) max_smoke_diff under [environment]", "use only max_smoke_abs_diff"),
    (_replace("min_cosine = 0.99            #", "min_cosine = 0.99\nmin_cosin = 0.9 #"),
     "unknown key(s) min_cosin under [accuracy.float32]", "max_relative_error, min_cosine"),
    (_replace("[soak]", "soak = 1\n[soak_]"), "unknown top-level table(s) or key(s) soak_", ""),
    (lambda text: text + "\n[fingerprint.extra]\nx = 1\n", "unknown key(s) extra under [fingerprint]", ""),
    (lambda text: text.replace("[soak]\n", "soak = 1\n[removed]\n"), "unknown top-level table(s) or key(s) removed",
     ""),
])
def test_every_thresholds_section_is_checked_at_load(tmp_path, edit, problem, fix):
    """Every table, not only the ones the first tests read: one line naming the file, the key and the kind."""
    path = tmp_path / "thresholds.toml"
    path.write_text(edit(SHIPPED))
    with pytest.raises(ConfigError) as raised:
        RunConfig.load({"thresholds": str(path)}, {}, ROOT)
    error = raised.value
    assert error.problem.startswith(f"thresholds file {path}: ") and "\n" not in error.problem
    assert problem in error.problem, error.problem
    assert fix in error.fix and str(path) in error.fix and "\n" not in error.fix, error.fix


def test_missing_sweep_profile_is_named_unless_the_sweep_is_off(tmp_path):
    path = tmp_path / "thresholds.toml"
    path.write_text(_remove_table("[sweep.full]")(SHIPPED))
    assert RunConfig.load({"thresholds": str(path)}, {}, ROOT).thresholds.sweep_profiles.keys() == {"quick"}
    with pytest.raises(ConfigError, match=r"missing table \[sweep.full\] \(--sweep full\)"):
        RunConfig.load({"thresholds": str(path), "sweep": "full"}, {}, ROOT)


def test_optional_tables_may_be_absent(tmp_path):
    path = tmp_path / "thresholds.toml"
    text = _remove_table("[signoff]")(_remove_table("[regression]")(SHIPPED))
    path.write_text(text)
    thresholds = RunConfig.load({"thresholds": str(path)}, {}, ROOT).thresholds
    assert thresholds.signoff_markers == () and thresholds.regression == {}


@pytest.mark.parametrize("text,problem", [
    ('[[peak]]\ndevice = "X*"\nfloat32 = -1\n', "peak entry 1.float32 must be a positive number, got -1"),
    ('[[peak]]\ndevice = "X*"\nfloat32 = "67"\n', "peak entry 1.float32 must be a positive number, got '67'"),
    ('[[peak]]\nfloat32 = 67\n', "missing key peak entry 1.device (a device-name glob)"),
    ('[[peak]]\ndevice = "X*"\nfp32 = 67\n', "unknown key(s) fp32 under [[peak]] entry 1"),
    ('[peaks]\n', "unknown top-level table(s) or key(s) peaks"),
    ("[[peak]\n", "is not valid TOML"),
])
def test_bad_peak_table_is_named_at_load(tmp_path, text, problem):
    path = tmp_path / "peak.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        RunConfig.load({"peak-flops": str(path)}, {}, ROOT)
    assert raised.value.problem.startswith(f"peak FLOP table {path}") and problem in raised.value.problem
    assert "\n" not in raised.value.problem and "fix:" in str(raised.value)


def test_peak_table_from_the_environment(tmp_path):
    path = tmp_path / "peak.toml"
    path.write_text('[[peak]]\ndevice = "Card*"\nbfloat16 = 100\n')
    table = RunConfig.load({}, {"DINOV3_PEAK_FLOPS": str(path)}, ROOT).peak_table
    assert table.path == path and table.entries == (("Card*", {"bfloat16": 100.0}),)


def test_missing_thresholds_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        RunConfig.load({"thresholds": str(tmp_path / "nope.toml")}, {}, ROOT)


def test_bad_option_ends_the_suite_with_a_usage_error(run_suite):
    result = run_suite("--num-runs", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: bad value for --num-runs (from command line --num-runs): "
                                 "expected a positive integer, got 0*"])
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize("typed", [("--sweep-batches", "1,", "2"), ("--sweep-resolutions", "224,", "448"),
                                   ("--dtypes", "float32,", "bfloat16")], ids=["batches", "resolutions", "dtypes"])
def test_a_space_after_a_comma_is_named_at_start(run_suite, tiny_checkpoint, typed):
    """`--sweep-batches 1, 2`: the shell passes `1,` and `2`; the run ends at once naming the option and the fix,
    not after the whole session with `file or directory not found: 2`."""
    flag, value, rest = typed
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=cpu", flag, value, rest)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    result.stderr.fnmatch_lines([f"ERROR: bad value for {flag} (from command line {flag}): {value!r} has an empty "
                                 "entry: write the list without spaces, e.g. *"])
    assert "passed" not in result.stdout.str() and "Traceback" not in result.stderr.str()


def test_help_lists_every_option_with_its_default(run_suite):
    result = run_suite("--help")
    text = " ".join(result.stdout.str().split())  # help text is wrapped to the terminal width
    for option in OPTIONS:
        shown = f"{option.flag}=" if option.takes_value else f"{option.flag} "
        assert shown in text and f"env {option.env}; default:" in text
    assert "(env DINOV3_NUM_RUNS; default: 20)" in text


def test_readme_documents_every_option():
    readme = (ROOT / "README.md").read_text()
    missing = [option.flag for option in OPTIONS if f"`{option.flag}" not in readme]
    assert not missing, f"README.md's options table lacks {missing}"
