#!/usr/bin/env python3
"""The seed's full evaluation, as one command: runs the acceptance suite and writes its JSON report.

    python benchmark.py [--model_path DIR] [--num_runs N] [--output FILE] [--device D] [--dtype T] [-- PYTEST_ARGS]

It is the pytest suite itself (accuracy, shapes, latency, diagnosis, reports),
so the JSON is the same schema as reports/benchmark_report.json; --output gets
a copy of it. Without --model_path it uses the built-in ViT-B/16 (architecture-
only). Exit status: pytest's (0 pass, 1 a check failed, 2 interrupted, 4 bad
input or missing device).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent

#: the seed's flag -> the suite's option
FLAGS = {"model_path": "--model-path", "device": "--device", "dtype": "--dtype", "image": "--image",
         "num_runs": "--num-runs", "warmup": "--warmup", "batch_size": "--batch-size",
         "thresholds": "--thresholds", "report_dir": "--report-dir"}


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Arguments after -- go to pytest unchanged (e.g. -- -m accuracy).")
    for seed_flag in FLAGS:
        spellings = dict.fromkeys((f"--{seed_flag}", f"--{seed_flag.replace('_', '-')}"))  # --device once
        parser.add_argument(*spellings, dest=seed_flag, help=f"the suite's {FLAGS[seed_flag]} (default: the suite's)")
    parser.add_argument("--output", default="benchmark_report.json",
                        help="where to copy the run's JSON report (default: benchmark_report.json)")
    args, rest = parser.parse_known_args(argv)
    if rest[:1] == ["--"]:
        rest = rest[1:]
    return args, rest


def pytest_arguments(args: argparse.Namespace, rest: list[str]) -> list[str]:
    """The pytest command line: the suite at this checkout, each given flag as --option=value."""
    arguments = ["-c", str(ROOT / "pytest.ini"), f"--rootdir={ROOT}", str(ROOT / "tests" / "acceptance")]
    for seed_flag, option in FLAGS.items():
        value = getattr(args, seed_flag)
        if value is not None:
            # =-form: pytest would otherwise take a path value for a test path (pytest-dev/pytest#7380)
            arguments.append(f"{option}={value}")
    return arguments + rest


def main(argv: list[str] | None = None) -> int:
    args, rest = parse_args(argv)
    import pytest

    started = time.time()
    status = int(pytest.main(pytest_arguments(args, rest)))

    report_dir = Path(args.report_dir or os.environ.get("DINOV3_REPORT_DIR") or ROOT / "reports")
    report = report_dir / "benchmark_report.json"
    if not report.is_file() or report.stat().st_mtime < started:
        print(f"benchmark.py: this run wrote no report (pytest exit status {status}); {args.output} not written",
              file=sys.stderr)
        return status or 1
    from acceptance.report.json_report import copy_atomic

    output = Path(args.output)
    copy_atomic(report, output)
    print(f"benchmark.py: report written to {output.resolve()} (pytest exit status {status})")
    return status


if __name__ == "__main__":
    sys.exit(main())
