"""How much longer a whole server takes than one card: the one command on 2 simulated cards under ``-n 2``
against the same checks on 1 simulated card without ``-n``.

    python benchmarks/server_wall.py [--runs 3] [--goal 1.3]

Each run is a fresh ``python -m pytest -p simulated_npu --device npu:all`` of the whole suite (every
check, performance, sweep and determinism included) on the self-tests' tiny checkpoint, from the
repository root; the two commands alternate so that a drift of the machine falls on both. Prints
each wall time, the medians and their ratio; exit 1 when the ratio is above the goal. Figures:
docs/scale.md. The simulated card computes on the host CPU: on a 2-core machine the two workers
share its cores, so the ratio says what the suite's parallel machinery costs, not what a server's
cards can do.
"""

from __future__ import annotations

import argparse
import os
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


def run_once(cards: int, checkpoint: Path, reports: Path) -> float:
    """Wall seconds of one whole-suite run on ``cards`` simulated cards (-n cards when more than one)."""
    workers = ["-n", str(cards)] if cards > 1 else []
    command = [sys.executable, "-m", "pytest", "-p", "simulated_npu", "--device=npu:all", *workers,
               f"--model-path={checkpoint}", f"--report-dir={reports}", "-p", "no:cacheprovider", "-q",
               "--thresholds=simulated_npu/thresholds.toml", "--reference-cache=off"]
    environment = {**os.environ, "SIMULATED_NPU_CARDS": str(cards)}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: the suite's own verdict on a simulated card may fail a check
        raise SystemExit(f"run on {cards} card(s) ended with exit {done.returncode}:\n{done.stdout[-3000:]}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--goal", type=float, default=1.3, help="largest ratio (2 cards -n 2 / 1 card) allowed")
    args = parser.parse_args()
    from acceptance.builtin import write_checkpoint

    walls: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = write_checkpoint(Path(scratch) / "tiny", TINY, seed=1)
        for run in range(args.runs):
            for cards in (1, 2) if run % 2 == 0 else (2, 1):
                walls[cards].append(run_once(cards, checkpoint, Path(scratch) / f"reports-{cards}"))
                print(f"run {run + 1}: {cards} card(s): {walls[cards][-1]:.1f} s", flush=True)
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    ratio = two / one
    print(f"median wall: 1 card {one:.1f} s, 2 cards under -n 2 {two:.1f} s; ratio {ratio:.2f} (goal <= {args.goal})")
    print("PASS" if ratio <= args.goal else "FAIL")
    return 0 if ratio <= args.goal else 1


if __name__ == "__main__":
    sys.exit(main())
