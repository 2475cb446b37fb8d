"""Can the latency harness be trusted? Two figures, measured on this machine in one run.

(a) Agreement: the median latency of the built-in ViT-B/16 forward on the CPU
    as our harness measures it - acceptance.timing directly, and through
    pytest-benchmark's pedantic mode as the suite runs it - against an
    independent torch.utils.benchmark.Timer median of the same callable, with
    the real thread count (Timer's default is 1 thread). The three take turns
    in many short cycles (the order rotates), so the machine's drift falls on
    all of them alike within a cycle. Each cycle gives a *paired* ratio
    (method median / Timer median of that cycle): drift moves both sides of a
    ratio, bias moves only one. The verdict is on the median of those ratios
    with a distribution-free 95 % confidence interval (binomial order
    statistics): PASS when the whole interval lies within --tolerance (5 %),
    FAIL when it lies wholly outside, INCONCLUSIVE when it straddles the bound
    (run more cycles). The per-cycle Timer medians' spread is printed beside it:
    the drift the pairing removed.
(b) Overhead: what one timed round costs around a model that does nothing
    (a no-op forward, the CPU's synchronize), in both harness paths, next to
    the floor of two back-to-back clock readings. This is the bias each
    sample carries; on the CPU it is the whole cost of the harness.

Run from the repository root:  python benchmarks/harness_check.py
Exit status 1 when (a) disagrees by more than the tolerance, 3 when it cannot tell.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils.benchmark import Timer  # noqa: E402

from acceptance.builtin import builtin_checkpoint  # noqa: E402
from acceptance.devices import select_device  # noqa: E402
from acceptance.images import default_image  # noqa: E402
from acceptance.loading import inspect_checkpoint, load_model  # noqa: E402
from acceptance.preprocessing import load_preprocessor  # noqa: E402
from acceptance.timing import CLOCK, TimedStep, percentile, run_timed  # noqa: E402

#: the test pytest-benchmark runs: the same pedantic call as fixtures/features/benchmarking.py
PEDANTIC_TEST = '''
def test_timed_step(benchmark, timed_step, rounds, warmup):
    benchmark.pedantic(timed_step, rounds=rounds, warmup_rounds=warmup, iterations=1)
'''


class StepPlugin:
    """Hands the already-built step to the in-process pytest run as fixtures."""

    def __init__(self, step, rounds: int, warmup: int):
        self._step, self._rounds, self._warmup = step, rounds, warmup

    @pytest.fixture
    def timed_step(self):
        return self._step

    @pytest.fixture
    def rounds(self):
        return self._rounds

    @pytest.fixture
    def warmup(self):
        return self._warmup


def pytest_benchmark_samples_ms(step, rounds: int, warmup: int, folder: Path) -> list[float]:
    """Run ``step`` through pytest-benchmark's pedantic mode in this process; its samples in ms."""
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "test_pedantic.py").write_text(PEDANTIC_TEST)
    output = folder / "benchmark.json"
    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        code = pytest.main([str(folder / "test_pedantic.py"), "--rootdir", str(folder), "-c",
                            str(folder / "pytest.ini"), "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
                            "--benchmark-json", str(output)], plugins=[StepPlugin(step, rounds, warmup)])
    if code != 0:
        raise RuntimeError(f"the pytest-benchmark run failed (exit {code}):\n{log.getvalue()}")
    data = json.loads(output.read_text())["benchmarks"][0]["stats"]["data"]
    return [seconds * 1000 for seconds in data]


def timer_samples_ms(step, threads: int, min_run_time_s: float) -> tuple[list[float], int]:
    """torch.utils.benchmark.Timer on the same callable: per-call times in ms and its block size."""
    measurement = Timer(stmt="step()", globals={"step": step}, num_threads=threads,
                        label="harness check").blocked_autorange(min_run_time=min_run_time_s)
    return [seconds * 1000 for seconds in measurement.times], measurement.number_per_run


def agreement(model, inputs, device, runs: int, warmup: int, cycles: int, threads: int) -> dict:
    step = TimedStep(model, inputs, device)
    run_timed(step, num_runs=3, warmup=0)  # warm caches and thread pools once, before any method
    samples: dict[str, list[float]] = {"acceptance.timing": [], "pytest-benchmark pedantic": [], "torch Timer": []}
    per_cycle = []
    block = 0
    with tempfile.TemporaryDirectory() as tmp:
        for cycle in range(cycles):
            methods = list(samples)
            methods = methods[cycle % 3:] + methods[:cycle % 3]  # rotate the order every cycle
            medians = {}
            for method in methods:
                if method == "acceptance.timing":
                    _, values = run_timed(step, num_runs=runs, warmup=warmup)
                elif method == "pytest-benchmark pedantic":
                    values = pytest_benchmark_samples_ms(step, runs, warmup, Path(tmp))
                else:
                    guess_s = statistics.median(samples["acceptance.timing"] or [250.0]) / 1000
                    values, block = timer_samples_ms(step, threads, runs * guess_s)
                samples[method].extend(values)
                medians[method] = statistics.median(values)
            per_cycle.append(medians)
    pooled = {method: statistics.median(values) for method, values in samples.items()}
    return {"pooled": pooled, "per_cycle": per_cycle, "counts": {m: len(v) for m, v in samples.items()},
            "timer_block": block}


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free confidence interval of the median: the order statistics k and n-1-k whose
    binomial(n, 1/2) probability of covering the median is at least ``confidence``."""
    ordered, n = sorted(values), len(values)
    if n < 6:
        raise ValueError(f"a 95 % interval of the median needs at least 6 cycles, got {n}")
    k = 0
    while True:  # the largest k with P(k < X < n-k) >= confidence, X ~ binomial(n, 1/2)
        covered = sum(math.comb(n, i) for i in range(k + 1, n - k)) / 2 ** n
        if covered < confidence:
            break
        k += 1
    k = max(k - 1, 0)
    return ordered[k], ordered[n - 1 - k]


def judge(low: float, high: float, tolerance: float) -> str:
    """PASS: the whole interval within +-tolerance; FAIL: wholly outside; else INCONCLUSIVE."""
    if -tolerance <= low and high <= tolerance:
        return "PASS"
    if high < -tolerance or low > tolerance:
        return "FAIL"
    return "INCONCLUSIVE"


def noop_forward(pixel_values):
    return pixel_values


def overhead(device, rounds: int) -> dict[str, dict[str, float]]:
    """Microseconds per timed round around a forward that does nothing."""
    step = TimedStep(noop_forward, torch.zeros(1, 3, 224, 224), device)
    clock_floor = []
    for _ in range(rounds):
        start = CLOCK()
        clock_floor.append((CLOCK() - start) * 1e6)
    _, ours = run_timed(step, num_runs=rounds, warmup=100)
    with tempfile.TemporaryDirectory() as tmp:
        pedantic = pytest_benchmark_samples_ms(step, rounds, 100, Path(tmp))
    result = {}
    for name, values in (("two clock readings (floor)", clock_floor),
                         ("acceptance.timing round", [v * 1000 for v in ours]),
                         ("pytest-benchmark pedantic round", [v * 1000 for v in pedantic])):
        ordered = sorted(values)
        result[name] = {"median_us": percentile(ordered, 50), "mean_us": statistics.fmean(values),
                        "p99_us": percentile(ordered, 99)}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per method per cycle (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs per method per cycle (default 1)")
    parser.add_argument("--cycles", type=int, default=25,
                        help="short cycles of taking turns, each one paired ratio (default 25, at least 6)")
    parser.add_argument("--overhead-rounds", type=int, default=20000, help="no-op rounds (default 20000)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="allowed median disagreement (default 0.05)")
    args = parser.parse_args(argv)

    threads = torch.get_num_threads()
    device = select_device("cpu")
    checkpoint = inspect_checkpoint(builtin_checkpoint())
    model = load_model(checkpoint, "float32", "cpu")
    inputs = load_preprocessor(checkpoint.path)(default_image().image)
    print(f"harness check: built-in ViT-B/16 (seeded random weights), float32, batch 1, on {device.name} (cpu), "
          f"{threads} torch threads; torch {torch.__version__}, pytest-benchmark "
          f"{importlib.metadata.version('pytest-benchmark')}")
    started = time.perf_counter()

    result = agreement(model, inputs, device, args.runs, args.warmup, args.cycles, threads)
    timer_medians = [cycle["torch Timer"] for cycle in result["per_cycle"]]
    drift = max(timer_medians) / min(timer_medians) - 1
    print(f"\n(a) forward latency, {args.cycles} cycles of {args.runs} runs per method taking turns, "
          f"torch Timer block size {result['timer_block']}; the machine drifted {drift:.1%} between cycles "
          f"(torch Timer's per-cycle medians {min(timer_medians):.1f} to {max(timer_medians):.1f} ms):")
    print(f"  {'method':<28} {'samples':>7} {'pooled median':>14}   {'paired ratio to Timer: median':>30} "
          f"{'95% CI':>19}  verdict")
    verdicts = []
    for method, median in result["pooled"].items():
        if method == "torch Timer":
            print(f"  {method:<28} {result['counts'][method]:>7} {median:>11.2f} ms   (reference)")
            continue
        ratios = [cycle[method] / cycle["torch Timer"] for cycle in result["per_cycle"]]
        middle, (low, high) = statistics.median(ratios), median_interval(ratios)
        verdict = judge(low - 1, high - 1, args.tolerance)
        verdicts.append(verdict)
        print(f"  {method:<28} {result['counts'][method]:>7} {median:>11.2f} ms   {middle - 1:>+30.2%} "
              f"[{low - 1:+.2%}, {high - 1:+.2%}]  {verdict}")
    overall = "FAIL" if "FAIL" in verdicts else ("INCONCLUSIVE" if "INCONCLUSIVE" in verdicts else "PASS")
    print(f"  agreement within {args.tolerance:.0%} of torch Timer: {overall}")

    print(f"\n(b) harness overhead per timed round, no-op forward on the cpu, {args.overhead_rounds} rounds:")
    for name, figures in overhead(device, args.overhead_rounds).items():
        print(f"  {name:<33} median {figures['median_us']:6.2f} us   mean {figures['mean_us']:6.2f} us   "
              f"p99 {figures['p99_us']:6.2f} us")
    print(f"\ntook {time.perf_counter() - started:.0f} s")
    return {"PASS": 0, "FAIL": 1, "INCONCLUSIVE": 3}[overall]


if __name__ == "__main__":
    sys.exit(main())
