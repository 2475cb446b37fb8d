"""Every option: defaults, environment < command line, and a clear error for each bad value."""

import json
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


def test_missing_thresholds_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        RunConfig.load({"thresholds": str(tmp_path / "nope.toml")}, {}, ROOT)


def test_bad_option_ends_the_suite_with_a_usage_error(run_suite):
    result = run_suite("--num-runs", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: bad value for --num-runs (from command line --num-runs): "
                                 "expected a positive integer, got 0*"])
    assert "Traceback" not in result.stderr.str()


def test_help_lists_every_option_with_its_default(pytester):
    result = pytester.runpytest_subprocess("-c", str(ROOT / "pytest.ini"), "--rootdir", str(ROOT),
                                           str(ROOT / "tests" / "acceptance"), "--help")
    text = " ".join(result.stdout.str().split())  # help text is wrapped to the terminal width
    for option in OPTIONS:
        shown = f"{option.flag}=" if option.takes_value else f"{option.flag} "
        assert shown in text and f"env {option.env}; default:" in text
    assert "(env DINOV3_NUM_RUNS; default: 20)" in text


def test_readme_documents_every_option():
    readme = (ROOT / "README.md").read_text()
    missing = [option.flag for option in OPTIONS if f"`{option.flag}" not in readme]
    assert not missing, f"README.md's options table lacks {missing}"
