"""How long the suite takes to start: options and data files checked, device and checkpoint inspected,
tests collected - everything before the first test runs - and which imports that time goes to.

    python benchmarks/startup.py [--runs 5]

Each run is a fresh ``python -m pytest --device=cpu --model-path=TINY --collect-only`` from the
repository root (collection is the last step before the first test). Prints the median wall time and
the slowest top-level imports of one run under ``-X importtime``. Figures: docs/testing.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: hidden 64, 2 layers: the self-tests' tiny checkpoint
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2}


def command(checkpoint: Path, reports: Path, *python_flags: str) -> list[str]:
    return [sys.executable, *python_flags, "-m", "pytest", "--device=cpu", f"--model-path={checkpoint}",
            f"--report-dir={reports}", "-p", "no:cacheprovider", "-q", "--collect-only"]


def top_imports(stderr: str, count: int) -> list[tuple[float, str]]:
    """The slowest imports that nothing else imported (top level of ``-X importtime``), in seconds."""
    found = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name.startswith("  "):
            found.append((int(cumulative) / 1e6, name.strip()))
    return sorted(found, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from acceptance.builtin import write_checkpoint

    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = write_checkpoint(Path(scratch) / "tiny", TINY, seed=1)
        reports = Path(scratch) / "reports"
        walls = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run(command(checkpoint, reports), cwd=ROOT, check=True, capture_output=True)
            walls.append(time.perf_counter() - started)
        traced = subprocess.run(command(checkpoint, reports, "-X", "importtime"), cwd=ROOT, check=True,
                                capture_output=True, text=True)
    imports = top_imports(traced.stderr, 8)
    print(f"start-up until the first test: median {statistics.median(walls):.2f} s over {args.runs} runs "
          f"(min {min(walls):.2f}, max {max(walls):.2f})")
    print(f"imports under -X importtime: {sum(seconds for seconds, _ in top_imports(traced.stderr, 10_000)):.2f} s;"
          " slowest top-level:")
    for seconds, name in imports:
        print(f"  {seconds:6.3f} s  {name}")


if __name__ == "__main__":
    main()
