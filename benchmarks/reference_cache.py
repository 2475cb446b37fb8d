"""What the reference cache saves: the default suite twice on the built-in model, same checkpoint and image.

Each run is a separate ``pytest`` process (the suite as a user runs it, plus
benchmarks/forward_counter.py, which counts the CPU reference model's forwards).
Both use one fresh reference-cache folder, so the first run computes and stores
the CPU float32 reference and the second reads it. Printed per run: wall time,
the CPU reference forwards (count and seconds) and what the report's reference
section says (parts cached / computed). The forwards left in the second run are
the CPU latency measurement (1 cold + --warmup + --cpu-runs), the fingerprint's
emulated-precision runs and the CPU side of the operator profile, none of which
the cache replaces.

Run from the repository root:  python benchmarks/reference_cache.py [--keep DIR] [-- extra pytest options]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(number: int, cache: Path, reports: Path, extra: list[str]) -> dict:
    counts = reports / f"forwards-{number}.json"
    env = {**os.environ, "FORWARD_COUNT_FILE": str(counts),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "pytest", "-p", "benchmarks.forward_counter", "-p", "no:cacheprovider", "-q",
               f"--reference-cache-dir={cache}", f"--report-dir={reports / str(number)}", *extra]
    started = time.perf_counter()
    reports.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    report = json.loads((reports / str(number) / "benchmark_report.json").read_text())
    return {"exit": done.returncode, "wall_s": wall, **json.loads(counts.read_text()),
            "reference": report["sections"].get("reference", {}), "tail": done.stdout.splitlines()[-1:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="keep the cache and both runs' reports in DIR (default: a temporary folder)")
    parser.add_argument("extra", nargs="*", help="more pytest options for both runs (after --)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dinov3-refcache-bench-") as folder:
        root = args.keep.resolve() if args.keep else Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        print(f"reference cache benchmark: default suite twice, built-in model, cache {root / 'cache'}")
        print(f"  {'run':<5}{'exit':>5}{'wall s':>9}{'CPU ref forwards':>18}{'s in them':>11}"
              f"{'parts cached':>14}{'computed':>10}")
        rows = []
        for number in (1, 2):
            row = run_once(number, root / "cache", root / "reports", args.extra)
            rows.append(row)
            reference = row["reference"]
            print(f"  {number:<5}{row['exit']:>5}{row['wall_s']:>9.1f}{row['forwards']:>18}{row['seconds']:>11.1f}"
                  f"{reference.get('cached', 0):>14}{reference.get('computed', 0):>10}   {' '.join(row['tail'])}")
        first, second = rows
        print(f"  saved: {first['wall_s'] - second['wall_s']:.1f} s wall, {first['forwards'] - second['forwards']} "
              f"CPU reference forwards ({first['seconds'] - second['seconds']:.1f} s in them)")
        print(f"  run 2: {second['reference'].get('summary', '')[:160]}")
    return 0 if first["exit"] == second["exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
