"""[[latency]] entries in the thresholds file: parsing, matching on the device name, verdicts."""

import math
from pathlib import Path

import pytest

from acceptance.errors import ConfigError
from acceptance.thresholds import LatencyLimits, load_thresholds

ROOT = Path(__file__).resolve().parents[2]


def thresholds_with(tmp_path, latency_toml):
    base = (ROOT / "thresholds.toml").read_text()
    # the shipped file without its latency entries (they lie between [regression] and the sweeps)
    base = base[:base.index("\n[[latency]]") + 1] + base[base.index("\n[sweep.quick]"):]
    path = tmp_path / "thresholds.toml"
    path.write_text(base + latency_toml)
    return load_thresholds(path)


def test_shipped_ascend_defaults_match_ascend_names_only():
    thresholds = load_thresholds(ROOT / "thresholds.toml")
    for name in ("Ascend910B4", "Ascend910_9392", "ascend910b"):
        limits = thresholds.latency_for(name, "float32", 1)
        assert limits is not None and limits.limits["max_p50_ms"] == 11.2, name
    assert thresholds.latency_for("Ascend310P3", "float32", 1) is None
    assert thresholds.latency_for("Ascend910B4", "bfloat16", 1) is None
    assert thresholds.latency_for("Ascend910B4", "float32", 8) is None
    assert thresholds.latency_for("AMD EPYC 7B13", "float32", 1) is None  # no CPU defaults


def test_ascend_defaults_are_the_seed_figures_with_30_percent_margin():
    limits = load_thresholds(ROOT / "thresholds.toml").latency_for("Ascend910B4", "float32", 1).limits
    assert limits["max_p50_ms"] == pytest.approx(8.598 * 1.3, abs=0.05)
    assert limits["max_p99_ms"] == pytest.approx(9.335 * 1.3, abs=0.07)
    assert limits["min_throughput_img_per_s"] == pytest.approx(114.2 / 1.3, abs=0.05)
    assert limits["min_speedup"] == pytest.approx(74.66 / 1.3, abs=0.05)


def test_first_matching_entry_wins(tmp_path):
    thresholds = thresholds_with(tmp_path, """
[[latency]]
device = "NVIDIA H100*"
dtype = "bfloat16"
max_p50_ms = 3.0
[[latency]]
device = "NVIDIA *"
dtype = "bfloat16"
max_p50_ms = 9.0
""")
    assert thresholds.latency_for("NVIDIA H100 80GB HBM3", "bfloat16", 1).limits == {"max_p50_ms": 3.0}
    assert thresholds.latency_for("NVIDIA A100-SXM4-40GB", "bfloat16", 1).limits == {"max_p50_ms": 9.0}
    assert thresholds.latency_for("NVIDIA A100-SXM4-40GB", "float32", 1) is None


@pytest.mark.parametrize(("entry", "message"), [
    ('device = "X*"\ndtype = "float32"\nmax_p50 = 3.0', "unknown key(s) max_p50"),
    ('dtype = "float32"\nmax_p50_ms = 3.0', "missing key latency entry 1.device (a device-name glob)"),
    ('device = "X*"\ndtype = "fp32"\nmax_p50_ms = 3.0', "latency entry 1.dtype must be one of"),
    ('device = "X*"\ndtype = "float32"', "sets no limit"),
    ('device = "X*"\ndtype = "float32"\nmax_p50_ms = "fast"',
     "latency entry 1.max_p50_ms must be a non-negative number, got 'fast'"),
    ('device = "X*"\ndtype = "float32"\nmax_p50_ms = -1.0', "max_p50_ms must be a non-negative number, got -1.0"),
    ('device = "X*"\ndtype = "float32"\nbatch_size = 0\nmax_p50_ms = 1.0', "batch_size must be a positive integer"),
    ('device = "X*"\ndtype = "float32"\nmax_p50_ms = 1.0\nstale_fraction = -0.5',
     "stale_fraction must be a non-negative number"),
])
def test_bad_entries_name_the_key(tmp_path, entry, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        thresholds_with(tmp_path, "[[latency]]\n" + entry + "\n")
    assert str(tmp_path / "thresholds.toml") in str(error.value) and "fix:" in str(error.value)


def test_latency_must_be_an_array_of_tables(tmp_path):
    with pytest.raises(ConfigError, match=r"array of tables \(\[\[latency\]\] entries\)"):
        thresholds_with(tmp_path, "[latency]\nmax_p50_ms = 3.0\n")


LIMITS = LatencyLimits(device="*", dtype="float32", batch_size=1, stale_fraction=0.5,
                       limits={"max_p50_ms": 10.0, "min_throughput_img_per_s": 100.0})


def test_max_limit_verdicts():
    assert LIMITS.check("max_p50_ms", 10.0).passed is True  # at the limit passes
    assert LIMITS.check("max_p50_ms", 10.01).passed is False
    assert LIMITS.check("max_p50_ms", 8.0).ratio == pytest.approx(1.25)
    assert LIMITS.check("max_p50_ms", 8.0).comparison == "<="


def test_min_limit_verdicts():
    assert LIMITS.check("min_throughput_img_per_s", 100.0).passed is True
    assert LIMITS.check("min_throughput_img_per_s", 99.0).passed is False
    assert LIMITS.check("min_throughput_img_per_s", 120.0).ratio == pytest.approx(1.2)
    assert LIMITS.check("min_throughput_img_per_s", 120.0).comparison == ">="


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nonfinite_never_passes(value):
    assert LIMITS.check("max_p50_ms", value).passed is False
    assert LIMITS.check("min_throughput_img_per_s", value).passed is False


def test_unavailable_is_not_checked():
    verdict = LIMITS.check("max_p50_ms", None)
    assert verdict.passed is None and not verdict.stale


def test_stale_only_beyond_one_plus_stale_fraction():
    assert not LIMITS.check("max_p50_ms", 10.0 / 1.5).stale  # exactly 1.5x better: not yet stale
    assert LIMITS.check("max_p50_ms", 6.0).stale  # 1.67x better
    assert LIMITS.check("min_throughput_img_per_s", 151.0).stale
    assert not LIMITS.check("max_p50_ms", 11.0).stale  # a failure is never stale
    no_fraction = LatencyLimits(device="*", dtype="float32", batch_size=1, limits={"max_p50_ms": 10.0})
    assert not no_fraction.check("max_p50_ms", 0.1).stale


def test_the_simulated_cards_thresholds_differ_from_the_repositorys_only_in_latency():
    """simulated_npu/thresholds.toml holds a simulated card to every rule of thresholds.toml but the latency
    limits (a Python simulation on the host CPU meets no card's); it must be a valid thresholds file."""
    from acceptance.tables import tomllib

    root = ROOT
    hardware, simulated = (tomllib.loads((folder / "thresholds.toml").read_text())
                           for folder in (root, root / "simulated_npu"))
    assert {key: value for key, value in simulated.items() if key != "latency"} == \
        {key: value for key, value in hardware.items() if key != "latency"}
    assert all(entry["device"] == "* (simulated)" for entry in simulated["latency"])
    limits = load_thresholds(root / "simulated_npu" / "thresholds.toml")
    assert limits.latency_for("Ascend910B2 (simulated)", "float32", 1) is not None
