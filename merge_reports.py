"""Merge the benchmark_report.json of several hosts or cards into one fleet table (JSON + HTML).

    python merge_reports.py host1/reports host2/reports/runs/*/benchmark_report.json -o reports/fleet

A folder stands for the benchmark_report.json in it (that host's latest run).
Writes fleet_report.json and fleet_report.html into the output folder and
prints the table. Exit status: 0 merged, 1 with --strict when the fleet is not
PASS, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from acceptance.errors import AcceptanceError
from acceptance.report.fleet import (
    fleet_html,
    fleet_text,
    load_report,
    merge,
    report_paths,
)
from acceptance.report.json_report import dumps, write_atomic
from acceptance.report.verdict import PASS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, metavar="REPORT",
                        help="benchmark_report.json files, or report folders (their latest run)")
    parser.add_argument("-o", "--output-dir", type=Path, default=Path("reports/fleet"),
                        help="where fleet_report.json and fleet_report.html go (default: reports/fleet)")
    parser.add_argument("--strict", action="store_true", help="exit 1 unless the fleet verdict is PASS")
    args = parser.parse_args(argv)
    try:
        paths = report_paths(args.reports)
        fleet = merge((str(path), load_report(path)) for path in paths)
        write_atomic(args.output_dir / "fleet_report.json", dumps(fleet))
        write_atomic(args.output_dir / "fleet_report.html", fleet_html(fleet))
    except AcceptanceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot write to {args.output_dir}: {error}\n  fix: pass a writable --output-dir",
              file=sys.stderr)
        return 2
    print("\n".join(fleet_text(fleet)))
    print(f"wrote {args.output_dir / 'fleet_report.json'} and {args.output_dir / 'fleet_report.html'}")
    return 1 if args.strict and fleet["verdict"]["status"] != PASS else 0


if __name__ == "__main__":
    sys.exit(main())
