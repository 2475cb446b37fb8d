"""The simulated Ascend card (simulated_npu): a real torch ``npu`` device, and the suite's NPU path on it.

Each check runs in a process of its own (the PrivateUse1 rename is once per process). On torch
older than 2.10 the simulation cannot exist: these tests skip, and the stand-in tests still run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

SIMULATION_POSSIBLE = hasattr(torch.utils.backend_registration, "_setup_privateuseone_for_python_backend")
pytestmark = pytest.mark.skipif(not SIMULATION_POSSIBLE, reason=(
    f"torch {torch.__version__} has no Python PrivateUse1 backend (torch >= 2.10): the simulated card cannot "
    "exist here; the torch_npu stand-in tests cover the NPU path instead"))

SIM = ("-p", "simulated_npu")
ROOT = Path(__file__).resolve().parents[2]


def _script(python_run, body: str, **env: str) -> str:
    """Run ``body`` after ``import simulated_npu`` in a fresh process; its stdout (it must exit 0)."""
    done = python_run("-c", "import simulated_npu, torch\n" + textwrap.dedent(body), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _report(tmp_path):
    return json.loads((tmp_path / "reports" / "benchmark_report.json").read_text())


# ---- the device itself ----

def test_cards_are_torch_devices_that_keep_their_tensors_apart(python_run):
    out = _script(python_run, """
        a = torch.ones(4, 4).to("npu:1")
        assert a.device == torch.device("npu", 1) and a.is_npu, a.device
        assert (a @ a).device == torch.device("npu", 1)
        for other, words in ((torch.ones(4, 4), "npu:1 and cpu"),
                             (torch.ones(4, 4, device="npu:0"), "npu:0 and npu:1")):
            try:
                a + other
            except RuntimeError as error:
                assert "Expected all tensors to be on the same device" in str(error) and words in str(error), error
            else:
                raise AssertionError("mixing devices did not raise")
        try:
            a.numpy()
        except TypeError as error:
            assert "can't convert npu:1 device type tensor to numpy" in str(error), error
        else:
            raise AssertionError("numpy() of a card tensor did not raise")
        assert (a.to("npu:0") + 1).cpu().sum().item() == 32.0 and a * 2.0 is not None  # copies and 0-dim scalars
        print("cards", torch.npu.device_count(), torch.npu.get_device_name(1))
    """, SIMULATED_NPU_CARDS="2")
    assert "cards 2 Ascend910B2 (simulated)" in out


def test_visible_devices_show_one_card_numbered_zero_with_its_own_faults(python_run):
    out = _script(python_run, """
        from simulated_npu.runtime import runtime
        card = runtime().cards[0]
        print("seen", torch.npu.device_count(), card.physical, card.faults.slow)
    """, SIMULATED_NPU_CARDS="8", ASCEND_RT_VISIBLE_DEVICES="5", SIMULATED_NPU_FAULTS="5: slow=3")
    assert "seen 1 5 3.0" in out


def test_memory_is_counted_from_the_live_tensors_on_each_card(python_run):
    out = _script(python_run, """
        x = torch.empty(1024, 256, device="npu:0")          # 1 MiB
        view = x[:10]                                       # shares x's storage: no new bytes
        assert torch.npu.memory_allocated(0) == 2**20 and torch.npu.memory_allocated(1) == 0
        y = torch.empty(2**19, device="npu:0")              # 2 MiB more
        assert torch.npu.max_memory_allocated(0) == 3 * 2**20
        del y
        assert torch.npu.memory_allocated(0) == 2**20 and torch.npu.max_memory_allocated(0) == 3 * 2**20
        torch.npu.reset_peak_memory_stats(0)
        assert torch.npu.max_memory_allocated(0) == 2**20
        del x
        assert torch.npu.memory_allocated(0) == 2**20      # the view still holds the storage
        del view
        assert torch.npu.memory_allocated(0) == 0
        model = torch.nn.Linear(256, 256).to("npu:1")
        held = sum(p.untyped_storage().nbytes() for p in model.parameters())
        assert torch.npu.memory_allocated(1) == held, (torch.npu.memory_allocated(1), held)
        model.half()                                        # the float32 storages are given back
        assert torch.npu.memory_allocated(1) == held // 2
        print("ok")
    """, SIMULATED_NPU_CARDS="2")
    assert "ok" in out


def test_out_of_memory_above_the_cap_in_canns_words(python_run):
    out = _script(python_run, """
        from acceptance.faults import is_out_of_memory
        keep = torch.empty(2**18, device="npu")              # 1 MiB of the card's 2
        try:
            torch.empty(2**19, device="npu")
        except RuntimeError as error:
            assert is_out_of_memory(error), error
            print(str(error))
        assert torch.npu.memory_allocated() == 2**20        # the failed allocation holds nothing
    """, SIMULATED_NPU_FAULTS="0: memory=2MiB")
    assert "NPU out of memory. Tried to allocate 2.00 MiB (NPU 0; 2.00 MiB total capacity" in out
    assert "EL0004" in out and "Failed to allocate memory" in out


def test_precision_follows_the_option_registry_as_on_the_chip(python_run):
    out = _script(python_run, """
        torch.manual_seed(0)
        conv, linear = torch.nn.Conv2d(3, 8, 4, stride=4), torch.nn.Linear(64, 64)
        image, rows = torch.randn(1, 3, 32, 32), torch.randn(8, 64)
        expected_conv, expected_linear = conv(image), linear(rows)
        conv_card, linear_card = conv.to("npu"), linear.to("npu")

        def errors():
            with torch.inference_mode():
                c = (conv_card(image.to("npu")).cpu() - expected_conv).abs().max().item()
                m = (linear_card(rows.to("npu")).cpu() - expected_linear).abs().max().item()
            return c, m

        getter = __import__("torch_npu")._C._npu_getOption
        c, m = errors()  # torch_npu's defaults: HF32 convolutions, float32 matmuls
        assert torch.npu.conv.allow_hf32 and not torch.npu.matmul.allow_hf32 and getter("ALLOW_CONV_HF32") is None
        assert c > 1e-5 and m == 0.0, (c, m)
        torch.npu.conv.allow_hf32 = False
        assert getter("ALLOW_CONV_HF32") == b"disable" and errors() == (0.0, 0.0)
        torch.npu.matmul.allow_hf32 = True
        assert errors()[1] > 1e-5
        torch.npu.matmul.allow_hf32 = False
        torch.npu.set_option({"ACL_PRECISION_MODE": "allow_fp32_to_fp16"})
        c, m = errors()
        assert c > 1e-4 and m > 1e-4 and getter("ACL_PRECISION_MODE") == b"allow_fp32_to_fp16", (c, m)
        try:
            torch.npu.set_option({"ACL_PRECISION_MODE": "fast"})
        except ValueError as error:
            print("refused:", error)
    """)
    assert "refused: value of ACL_PRECISION_MODE should be in" in out


def test_the_older_chip_runs_float32_matrix_work_in_float16_unless_told_otherwise(python_run):
    out = _script(python_run, """
        rows, weight = torch.randn(8, 64), torch.randn(64, 64)
        exact = rows @ weight
        on_card = (rows.to("npu") @ weight.to("npu")).cpu()
        assert torch.equal(on_card, (rows.half().float() @ weight.half().float()).half().float())
        torch.npu.set_option({"ACL_PRECISION_MODE": "must_keep_origin_dtype"})
        assert torch.equal((rows.to("npu") @ weight.to("npu")).cpu(), exact)
        print(torch.npu.get_device_name())
    """, SIMULATED_NPU_CHIP="Ascend910A")
    assert "Ascend910A (simulated)" in out


def test_events_time_the_work_and_a_slow_card_is_slower(python_run):
    out = _script(python_run, """
        def timed(card):
            # large operators, few of them: the kernels' time (which a slow card multiplies), not Python's
            # dispatch around them, must dominate, also when another process shares the cores
            x = torch.randn(768, 768, device=card)
            start, end = torch.npu.Event(enable_timing=True), torch.npu.Event(enable_timing=True)
            start.record()
            for _ in range(6):
                x = (x @ x).tanh()
            end.record()
            torch.npu.synchronize(card)
            return start.elapsed_time(end)

        import statistics
        # one thread and interleaved pairs: another process on the machine slows both cards alike
        torch.set_num_threads(1)
        timed("npu:0"), timed("npu:1")  # warm-up
        pairs = [(timed("npu:0"), timed("npu:1")) for _ in range(5)]
        ratio = statistics.median(slow / fast for fast, slow in pairs)
        print(f"ratio {ratio:.2f}")
        assert ratio > 2.5, pairs  # slow=4: about 4
    """, SIMULATED_NPU_CARDS="2", SIMULATED_NPU_FAULTS="1: slow=4")
    assert "ratio" in out


def test_the_profiler_writes_op_statistic_that_the_backend_reads(python_run, tmp_path):
    out = _script(python_run, f"""
        from pathlib import Path
        from acceptance.devices.npu import NpuBackend
        from acceptance.profiling import profile_forward
        model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.GELU(), torch.nn.LayerNorm(64)).to("npu")
        inputs = torch.randn(4, 64, device="npu")
        folder = Path({str(tmp_path)!r})
        side, events = profile_forward(NpuBackend(), "npu:0", "device", lambda: model(inputs),
                                       torch.npu.synchronize, folder / "device", folder)
        assert side.error is None, side.error
        csv = sorted(folder.glob("device/*_ascend_pt/ASCEND_PROFILER_OUTPUT/op_statistic.csv"))
        assert csv, list(folder.rglob("*"))
        print("header", csv[0].read_text().splitlines()[0])
        print("rows", sorted(row.name for row in side.rows))
    """)
    assert "header Device_id,OP Type,Core Type,Count,Total Time(us)" in out
    assert "'GeluV2'" in out and "'LayerNormV3'" in out and "'MatMulV2'" in out


def test_the_simulation_offers_the_declared_torch_npu_surface(python_run):
    out = _script(python_run, """
        import torch_npu
        from acceptance.devices.npu import TORCH_NPU_SURFACE as surface
        missing = [name for name in surface.functions if not callable(getattr(torch.npu, name, None))]
        missing += [name for name in surface.package_attributes if not hasattr(torch_npu, name)]
        missing += [name for name in surface.c_functions if not hasattr(torch_npu._C, name)]
        missing += [name for name in surface.profiler_names if not hasattr(torch_npu.profiler, name)]
        missing += [f"{group}.allow_hf32" for group in surface.hf32_switches if not isinstance(
            getattr(getattr(torch.npu, group), "allow_hf32"), bool)]
        event = torch.npu.Event(**{key: True for key in surface.event_keywords})
        missing += [name for name in surface.event_methods if not hasattr(event, name)]
        assert not missing, missing
        print("version", torch_npu.__version__)
    """)
    assert "+simulated" in out


def test_bad_simulation_settings_are_one_usage_error(run_suite, tiny_checkpoint, monkeypatch):
    monkeypatch.setenv("SIMULATED_NPU_FAULTS", "5 nan=layer.7")
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu", *SIM, "-m", "shapes")
    assert result.ret == 4, result.stdout.str()
    result.stderr.fnmatch_lines(["*SIMULATED_NPU_FAULTS entry '5 nan=layer.7' names no card; expected CARD:*"])
    assert "Traceback" not in result.stderr.str()


# ---- the suite on it ----

def test_the_suite_on_a_simulated_card_says_so_and_is_not_valid_for_signoff(run_suite, tiny_checkpoint, tmp_path):
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu", *SIM,
                       "-m", "environment or shapes or accuracy or consistency")
    result.assert_outcomes(passed=16)
    result.stdout.fnmatch_lines(["*simulated NPU (not hardware)*not valid for sign-off*"])
    report = _report(tmp_path)
    assert report["device"]["device"] == "npu:0" and report["device"]["name"] == "Ascend910B2 (simulated)"
    assert report["device"]["simulation"].startswith("simulated NPU (not hardware)")
    assert report["verdict"]["status"] == "NOT VALID FOR SIGN-OFF"
    assert ("the device under test is a simulated NPU (not hardware): no hardware was tested"
            in report["verdict"]["reasons"])
    assert report["versions"]["torch_npu"].endswith("+simulated")
    # read back from the simulated option registry: torch_npu's defaults, the chip's precision mode
    settings = report["precision"]["settings"]
    assert settings["conv_allow_hf32"] is True and settings["matmul_allow_hf32"] is False
    assert settings["acl_precision_mode"] == "must_keep_origin_dtype"
    assert settings["acl_precision_mode_source"] == "not set: CANN's default for Ascend910B2 (simulated)"
    # HF32 convolutions: the card's outputs differ from the CPU's, within the limit
    assert 0 < report["accuracy"]["tensors"]["last_hidden_state"]["relative_error"] < 1e-3
    html = (tmp_path / "reports" / "acceptance.html").read_text()
    assert "simulated NPU (not hardware)" in html and "no hardware ran the device model" in html

    auto = run_suite(f"--model-path={tiny_checkpoint}", *SIM, "-m", "shapes")
    auto.assert_outcomes(passed=10)
    assert _report(tmp_path)["device"]["kind"] == "cpu"  # a test device is never auto-selected
    auto.stdout.fnmatch_lines(["*auto: skipped npu: simulated NPU (not hardware)*--device npu*"])


@pytest.mark.parametrize(("chip", "options", "closest"), [
    ("Ascend910B2", (), ("tf32/hf32",)),
    ("Ascend910B2", ("--precision", "strict"), ("float32",)),
    # float16 matrix units (inputs and outputs rounded to float16, the vector work in float32) keep HF32's
    # 10-bit mantissa: the fingerprint's float16 and TF32/HF32 profiles both explain them (CONSISTENT_WITH_DTYPE)
    ("Ascend910A", (), ("float16", "tf32/hf32")),
])
def test_the_fingerprint_names_the_arithmetic_the_card_used(run_suite, tiny_deep_checkpoint, tmp_path, monkeypatch,
                                                           chip, options, closest):
    monkeypatch.setenv("SIMULATED_NPU_CHIP", chip)
    result = run_suite(f"--model-path={tiny_deep_checkpoint}", "--device=npu", *SIM, *options,
                       tests="tests/acceptance/test_precision.py")
    assert result.ret == 0, result.stdout.str()
    diagnosis = _report(tmp_path)["sections"]["diagnosis"]
    assert diagnosis["fingerprint"]["closest"] in closest, diagnosis["fingerprint"]
    settings = _report(tmp_path)["precision"]["settings"]
    if options:
        assert settings["conv_allow_hf32"] is False and settings["acl_precision_mode"] == "must_keep_origin_dtype"
        assert settings["acl_precision_mode_source"] == "read back from torch_npu's option registry"
    if chip == "Ascend910A":
        assert settings["acl_precision_mode"] == "allow_fp32_to_fp16"
        assert settings["acl_precision_mode_source"] == "not set: CANN's default for Ascend910A (simulated)"
        assert "runner_up" in diagnosis["fingerprint"] and set(closest) >= {
            diagnosis["fingerprint"]["closest"], diagnosis["fingerprint"]["runner_up"]}, diagnosis["fingerprint"]


def test_a_seeded_placement_bug_fails_on_the_simulated_card_and_passed_the_stand_in(run_suite, tiny_checkpoint,
                                                                                    tmp_path, monkeypatch):
    """The pixel values left on the host: a stand-in card computing on the CPU cannot notice, a device does."""
    bug = ("-p", "tests.selftests.plugins.placement_bug", "-m", "accuracy")
    monkeypatch.setenv("SELFTEST_NPU_CARDS", "1")
    stand_in = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu", "-p", "tests.selftests.plugins.npu_cards",
                         *bug)
    stand_in.assert_outcomes(passed=2)
    simulated = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu", *SIM, *bug)
    assert simulated.ret == 1
    simulated.stdout.fnmatch_lines(["*Expected all tensors to be on the same device*npu:0 and cpu*"])


def _thresholds(tmp_path, outlier_ratio: float = 1.5) -> Path:
    """The simulation's thresholds with another [server] outlier_p50_ratio and no min_speedup: on the tiny
    model a simulated forward is mostly Python dispatch, and with 2 cores shared by several workers its speedup
    over the CPU wanders around the 0.1 limit (measured 0.063 on a slow card in CI); these tests judge the
    outlier rule, which compares the cards with each other."""
    shipped = (ROOT / "simulated_npu" / "thresholds.toml").read_text()
    assert "min_speedup = 0.1\n" in shipped and "outlier_p50_ratio = 1.5" in shipped
    path = tmp_path / "thresholds.toml"
    path.write_text(shipped.replace("min_speedup = 0.1\n", "").replace(
        "outlier_p50_ratio = 1.5", f"outlier_p50_ratio = {outlier_ratio}"))
    return path


def test_eight_cards_in_one_command_every_check_on_every_card(run_suite, tiny_checkpoint, tmp_path,
                                                              monkeypatch):
    """Issue 22's server: one `pytest --device npu:all -n N` runs every check on every card - latency, sweep,
    peak memory, determinism, profile included - and the verdict names exactly the failing cards: npu:5's
    NaN from layer 1, npu:6 far slower than its siblings, npu:3 in Alarm and npu:1's ECC count rising (npu-smi
    stand-in replaying a real 910B3 table). Four workers of two cards each (-n 8 is the same with one card each:
    docs/scale.md; here each worker's start-up costs CI seconds). Timed sequentially: workers on the 2 cores
    of CI would time each other's Python, not the cards; the outlier ratio is 2.5 (not the shipped 1.5) for the
    same noise, and npu:6's kernels 12x slow make it about 4x slower end to end."""
    log = tmp_path / "npu-smi.log"
    for name, value in {"SIMULATED_NPU_CARDS": "8", "SIMULATED_NPU_FAULTS": "5: nan=layer.1; 6: slow=12",
                        "PATH": f"{ROOT / 'tests' / 'selftests' / 'standins' / 'smi'}{os.pathsep}{os.environ['PATH']}",
                        "NPU_SMI_STANDIN_ALARM": "3", "NPU_SMI_STANDIN_ECC_RISE": "1",
                        "NPU_SMI_STANDIN_LOG": str(log)}.items():
        monkeypatch.setenv(name, value)
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu:all", *SIM, "-n", "4",
                       "--timing", "sequential", "--sweep-batches", "1,2", "--sweep-resolutions", "224",
                       "--thresholds", str(_thresholds(tmp_path, 2.5)),
                       "--benchmark-json", str(tmp_path / "benchmarks.json"))
    assert result.ret == 1
    result.stdout.fnmatch_lines(["simulated NPU (not hardware)*: 8 card(s) of Ascend910B2*",
                                 "server npu:all: 8 card(s) timed sequential, p50 spread *"])
    report = _report(tmp_path)
    server = report["sections"]["server"]
    assert [row["card"] for row in server["cards"]] == [f"npu:{card}" for card in range(8)]
    assert [(row["worker"], row["visible_devices"]) for row in server["cards"]] == [
        (f"gw{card % 4}", f"{card % 4},{card % 4 + 4}") for card in range(8)]  # cards i and i+4 on worker i
    assert server["verdict"] == "FAIL" and server["failing_cards"] == ["npu:1", "npu:3", "npu:5", "npu:6"], server
    assert server["timing_mode"] == "sequential" and server["state_note"] is None
    assert (report["versions"]["card_driver"], report["versions"]["card_firmware"]) == ("25.5.1", "7.8.0.6.201")
    reasons = {row["card"]: " | ".join(row["reasons"]) for row in server["cards"]}
    assert "uncorrectable ECC errors rose from 0 to 2 during the run (npu-smi 24.1.rc1.b030)" in reasons["npu:1"]
    assert "health 'Alarm' before the run" in reasons["npu:3"]
    assert "layer.1" in reasons["npu:5"] and "layer.0" not in reasons["npu:5"]
    assert "server::latency_outlier[npu:6]: latency outlier: p50" in reasons["npu:6"], reasons["npu:6"]
    assert [reason.split(" FAILS")[0] for reason in report["verdict"]["reasons"][:4]] == [
        f"card npu:{card} (Ascend910B2 (simulated))" for card in (1, 3, 5, 6)]
    weights = (tiny_checkpoint / "model.safetensors").stat().st_size
    for row in server["cards"]:  # every figure per card
        assert row["latency_mode"] == "sequential" and row["p50_ms"] > 0 and row["throughput_img_per_s"] > 0, row
        assert row["sweep"]["points"] and all(point["status"] == "ok" for point in row["sweep"]["points"]), row
        assert row["profile_top"] and row["determinism"]["runs"] == 3, row
        assert weights * 0.95 < row["peak_memory_bytes"] < weights + 8 * 2**20, (weights, row)  # reset per card
        for state in (row["state_before"], row["state_after"]):
            assert (state["driver"], state["firmware"]) == ("25.5.1", "7.8.0.6.201") and state["bus_id"], state
        assert {check for check in row["counts"]} <= {"passed", "failed", "skipped"}
        assert row["verdict"] == ("PASS" if row["card"] in ("npu:0", "npu:2", "npu:4", "npu:7") else "FAIL")
    checks = {check["nodeid"]: check for check in report["checks"]}
    assert checks["server::card_state[npu:0]"]["outcome"] == "passed"
    assert checks["server::latency_outlier[npu:6]"]["outcome"] == "failed"
    junit = (tmp_path / "reports" / "junit.xml").read_text()
    assert 'classname="server" name="latency_outlier[npu:6]"' in junit and "<failure" in junit
    # the workers' own timings, in pytest-benchmark's JSON: 2 per card (the CPU reference and the card)
    benchmarks = json.loads((tmp_path / "benchmarks.json").read_text())["benchmarks"]
    assert len(benchmarks) == 16 and all(bench["stats"]["rounds"] > 0 for bench in benchmarks)
    assert log.read_text().count("info -t ecc -i 1") == 2  # before and after the run


def test_a_whole_server_in_parallel_names_the_slow_card_and_keeps_pytest_benchmark(run_suite, tiny_checkpoint,
                                                                                    tmp_path, monkeypatch):
    """The default under -n: every card timed at once; a card whose kernels are 30x slow stands out by more
    than the shipped 1.5. On the tiny model the kernels are a small part of a simulated forward (Python's
    dispatch is the rest), and the 2 cores of CI are shared with the other self-tests' workers: slow=3 measured
    2.9x on a quiet machine, slow=5 only 1.41x in a busy CI run. pytest-benchmark compare reads the JSON."""
    monkeypatch.setenv("SIMULATED_NPU_CARDS", "2")
    monkeypatch.setenv("SIMULATED_NPU_FAULTS", "1: slow=30")
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu:all", *SIM, "-n", "2", "-m", "performance",
                       "--thresholds", str(_thresholds(tmp_path)),
                       "--benchmark-json", str(tmp_path / "benchmarks.json"))
    server = _report(tmp_path)["sections"]["server"]
    assert server["timing_mode"] == "parallel" and server["failing_cards"] == ["npu:1"], server
    assert [row["latency_mode"] for row in server["cards"]] == ["parallel", "parallel"]
    assert server["p50_spread"] > 0.5 and "npu-smi is not on PATH" in server["state_note"]
    result.stdout.fnmatch_lines(["*FAILED server::latency_outlier[[]npu:1[]]*latency outlier: p50*allowed <= 1.5x*"])
    names = [bench["name"] for bench in json.loads((tmp_path / "benchmarks.json").read_text())["benchmarks"]]
    assert sorted(names) == [f"test_latency[npu:{card}-{side}]" for card in (0, 1) for side in ("cpu-float32",
                                                                                               "device")]
    compared = subprocess.run([sys.executable, "-m", "pytest_benchmark", "compare", str(tmp_path / "benchmarks.json")],
                              capture_output=True, text=True)
    assert compared.returncode == 0 and "test_latency[npu:1-device]" in compared.stdout, compared.stderr


def test_timing_in_parallel_needs_a_worker_per_card(run_suite, tiny_checkpoint, monkeypatch):
    monkeypatch.setenv("SIMULATED_NPU_CARDS", "2")
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu:all", *SIM, "--timing", "parallel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --timing parallel times every card of a whole-server run at once*",
                                 "*fix: run a whole server under -n: pytest --device npu:all -n auto*"])


def test_a_card_lost_mid_run_under_xdist_fails_only_its_own_tests(run_suite, tiny_checkpoint, tmp_path, monkeypatch):
    """Card 0 lost after its first forward; card 1, on the worker bound to it, keeps every result - its
    determinism too (found on the simulated cards: card_device compared the controller's card number with
    the worker's own numbering, where its card is 0, and failed determinism and soak on every card but 0)."""
    monkeypatch.setenv("SIMULATED_NPU_CARDS", "2")
    monkeypatch.setenv("SIMULATED_NPU_FAULTS", "0: lost=1")  # there for loading and the first forward, then gone
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu:all", *SIM, "-n", "2",
                       "-m", "accuracy or shapes or consistency or determinism")
    result.stdout.fnmatch_lines(["*2 workers*"])
    server = _report(tmp_path)["sections"]["server"]
    assert server["failing_cards"] == ["npu:0"], server
    lost, good = server["cards"]
    assert good["verdict"] == "PASS" and good["determinism"]["bitwise_identical"], good
    assert good["counts"] == {"passed": 15}, good
    assert lost["verdict"] == "FAIL" and any("device npu:0 lost" in reason for reason in lost["reasons"]), lost
    assert [(row["worker"], row["visible_devices"]) for row in server["cards"]] == [("gw0", "0"), ("gw1", "1")]


def test_the_sweep_records_out_of_memory_points_in_canns_words_and_goes_on(run_suite, tiny_checkpoint, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("SIMULATED_NPU_FAULTS", "0: memory=3MiB")
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu", *SIM, "--sweep-batches", "1,64",
                       "--sweep-resolutions", "224", "--thresholds", str(ROOT / "simulated_npu" / "thresholds.toml"),
                       tests="tests/acceptance/test_sweep.py")
    assert result.ret == 0, result.stdout.str()
    points = {point["batch"]: point for point in _report(tmp_path)["sections"]["sweep"]["points"]}
    assert points[1]["status"] == "ok", points
    assert points[64]["status"] == "out_of_memory" and "NPU out of memory" in points[64]["error"], points[64]


def test_a_leak_per_forward_fails_the_soak_memory_check(run_suite, tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMULATED_NPU_FAULTS", "0: leak=1MiB")
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu", *SIM, "--soak-seconds", "1",
                       tests="tests/acceptance/test_soak.py")
    assert result.ret == 1, result.stdout.str()
    soak = _report(tmp_path)["sections"]["soak"]
    (record,) = soak.values() if isinstance(soak, dict) and "npu:0" in soak else (soak,)
    assert record["memory_end_bytes"] - record["memory_start_bytes"] >= 2**20, record
    result.stdout.fnmatch_lines(["*memory*"])


def test_the_operator_profile_ranks_the_cards_operators(run_suite, tiny_checkpoint, tmp_path):
    result = run_suite(f"--model-path={tiny_checkpoint}", "--device=npu", *SIM,
                       tests="tests/acceptance/test_profile.py")
    result.assert_outcomes(passed=1)
    device = _report(tmp_path)["sections"]["profile"]["device"]
    names = [row["name"] for row in device["operators"]]
    assert device["error"] is None and "MatMulV2" in names and "LayerNormV3" in names, device
    assert device["time_basis"].startswith("device"), device["time_basis"]



def test_moves_between_cards_faults_on_views_and_copies_to_the_host(python_run):
    """Found in review: a module moved from card 0 to card 1 kept its bytes (and ops) on card 0; a fault on a
    module whose output is a view of its weights changed the weights; a copy into a host tensor came back
    as a card tensor."""
    out = _script(python_run, """
        layer = torch.nn.Linear(64, 64).to("npu:0").to("npu:1")
        held = sum(p.untyped_storage().nbytes() for p in layer.parameters())
        assert torch.npu.memory_allocated(0) == 0 and torch.npu.memory_allocated(1) == held
        assert layer(torch.randn(2, 64, device="npu:1")).device == torch.device("npu", 1)

        class Weights(torch.nn.Module):  # returns a view of its own parameter
            def __init__(self):
                super().__init__()
                self.w = torch.nn.Parameter(torch.ones(4))
            def forward(self, x):
                return self.w[:]

        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = Weights()
            def forward(self, x):
                return self.inner(x) + 0

        model = Model().to("npu:0")
        with torch.inference_mode():
            outs = [model(torch.zeros(1, device="npu:0")).cpu() for _ in range(3)]
        assert all(torch.equal(out, torch.full((4,), 2.0)) for out in outs), outs
        assert torch.equal(model.inner.w.detach().cpu(), torch.ones(4))  # the weights are untouched
        host = torch.zeros(4)
        back = host.copy_(torch.ones(4, device="npu:0"))
        assert back is host and back.device.type == "cpu" and host.sum().item() == 4.0
        print("ok")
    """, SIMULATED_NPU_CARDS="2", SIMULATED_NPU_FAULTS="0: scale=inner*2")
    assert "ok" in out


# ---- operator faults: a wrong kernel inside one module ----

def test_op_faults_parse_spell_back_as_given_and_refuse_bad_specs(python_run):
    out = _script(python_run, """
        from simulated_npu.settings import FAULT_GRAMMAR, parse_faults
        faults = parse_faults("0: op=layer.7.mlp:gelu*1.01, op=layer.3:linear*0.9, slow=2; 2: op=layer.1:gelu*2")
        card = faults[0]
        assert card.ops == [("layer.7.mlp", "gelu", 1.01), ("layer.3", "linear", 0.9)], card.ops
        assert card.describe() == "op=layer.7.mlp:gelu*1.01, op=layer.3:linear*0.9, slow=2", card.describe()
        assert parse_faults("0: " + card.describe())[0] == card and card.needs_module_hooks
        assert faults[2].describe() == "op=layer.1:gelu*2"
        assert parse_faults("0: op=layer.1:gelu*1.0000001")[0].describe() == "op=layer.1:gelu*1.0000001"
        # the module or any module under it, under any prefix the release adds; that operator only
        for operator, path, factor in (("gelu", "layer.7.mlp", 1.01), ("gelu", "model.layer.7.mlp.act_fn", 1.01),
                                       ("linear", "layer.3.mlp.up_proj", 0.9), ("gelu", "layer.7", 1.0),
                                       ("gelu", "layer.17.mlp", 1.0), ("gelu", "layer.7.mlpx", 1.0),
                                       ("gelu", "layer.3", 1.0), ("gelu", None, 1.0), ("mul", "layer.7.mlp", 1.0)):
            assert card.operator_factor(operator, path) == factor, (operator, path)
        for bad in ("op=layer.7.mlp*1.01", "op=layer.7.mlp:gelu", "op=:gelu*2", "op=layer.7:*2",
                    "op=layer.7:aten::gelu*2", "op=layer.7:gelu.default*2", "op=layer.7:gelu*x", "op=layer.7:geluu*2"):
            try:
                parse_faults("0: " + bad)
            except ValueError as error:
                assert f"item {bad!r}" in str(error) and str(error).endswith(FAULT_GRAMMAR), error
                print(error)
            else:
                raise AssertionError(f"{bad} was accepted")
    """)
    assert "op takes MODULE:OPNAME*FACTOR" in out and "torch has no aten operator 'geluu'" in out


def test_an_op_fault_changes_that_operator_inside_that_module_only(python_run):
    """Card 0 has the faults, card 1 runs the same model clean: layer.0 (with its own gelu) is bitwise the same,
    layer.1's gelu comes out 1.01 times too large, its down_proj (a second fault) twice, and F.gelu outside any
    module is untouched."""
    out = _script(python_run, """
        import copy
        import torch.nn.functional as F
        from transformers import DINOv3ViTConfig, DINOv3ViTModel
        torch.manual_seed(0)
        model = DINOv3ViTModel(DINOv3ViTConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                               num_attention_heads=2)).eval()
        faulty, clean = copy.deepcopy(model).to("npu:0"), model.to("npu:1")
        pixels = torch.randn(1, 3, 224, 224)
        wanted = ("layer.0", "layer.1.mlp.act_fn", "layer.1.mlp", "layer.1.mlp.down_proj")

        def run(model, device):
            seen, modules = {}, {name.removeprefix("model."): module for name, module in model.named_modules()}
            for name in wanted:  # transformers 5 nests the blocks as model.layer.N
                modules[name].register_forward_hook(lambda module, args, output, name=name: seen.__setitem__(
                    name, (output[0] if isinstance(output, tuple) else output).cpu()))
            with torch.inference_mode():
                last = model(pixel_values=pixels.to(device)).last_hidden_state.cpu()
            return seen, last, modules

        (bad, bad_last, _), (good, good_last, modules) = run(faulty, "npu:0"), run(clean, "npu:1")
        assert torch.equal(bad["layer.0"], good["layer.0"])
        assert torch.equal(bad["layer.1.mlp.act_fn"], good["layer.1.mlp.act_fn"] * 1.01)
        assert not torch.equal(bad["layer.1.mlp"], good["layer.1.mlp"])
        down = modules["layer.1.mlp.down_proj"]
        with torch.inference_mode():
            expected = F.linear(good["layer.1.mlp.act_fn"] * 1.01, down.weight.cpu(), down.bias.cpu()) * 2
        assert torch.equal(bad["layer.1.mlp"], expected)
        assert not torch.equal(bad_last, good_last)
        rows = torch.randn(8, 64)
        for mode in (torch.inference_mode(), torch.no_grad()):
            with mode:
                assert torch.equal(F.gelu(rows.to("npu:0")).cpu(), F.gelu(rows))
        print("ok")
    """, SIMULATED_NPU_CARDS="2",
        SIMULATED_NPU_FAULTS="0: op=layer.1.mlp:gelu*1.01, op=layer.1.mlp.down_proj:linear*2")
    assert "ok" in out
