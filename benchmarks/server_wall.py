"""How much longer a whole server takes than one card: the one command on 2 simulated cards under ``-n 2``
against the same command on 1 simulated card (``-n 1``), and against 1 card without xdist.

    python benchmarks/server_wall.py [--runs 3] [--goal 1.3]

Each run is a fresh ``python -m pytest -p simulated_npu --device npu:all`` of the whole suite (every
check, performance, sweep and determinism included) on the self-tests' tiny checkpoint, from the
repository root; the three commands rotate so that a drift of the machine falls on all. Prints each
wall time, the medians and two ratios:

- 2 cards -n 2 / 1 card -n 1: what a second card adds when the cards run in parallel (the goal is
  judged on it; exit 1 above it);
- 2 cards -n 2 / 1 card without -n: that, plus what xdist's worker processes cost (each starts
  Python, torch and transformers again).

Figures: docs/scale.md. The simulated card computes on the host CPU: on a 2-core machine the two
workers share its cores, so the figures say what the suite's parallel machinery costs, not what a
server's cards can do.
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


def run_once(cards: int, workers: int, checkpoint: Path, reports: Path) -> float:
    """Wall seconds of one whole-suite run on ``cards`` simulated cards (``-n workers``; 0: no xdist)."""
    command = [sys.executable, "-m", "pytest", "-p", "simulated_npu", "--device=npu:all",
               *(["-n", str(workers)] if workers else []),
               f"--model-path={checkpoint}", f"--report-dir={reports}", "-p", "no:cacheprovider", "-q",
               "--thresholds=simulated_npu/thresholds.toml", "--reference-cache=off"]
    environment = {**os.environ, "SIMULATED_NPU_CARDS": str(cards)}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: the suite's own verdict on a simulated card may fail a check
        raise SystemExit(f"run on {cards} card(s) ended with exit {done.returncode}:\n{done.stdout[-3000:]}")
    return wall


#: (cards, workers) of the three commands timed
SETUPS = ((1, 1), (2, 2), (1, 0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--goal", type=float, default=1.3, help="largest ratio (2 cards -n 2 / 1 card -n 1) allowed")
    args = parser.parse_args()
    from acceptance.builtin import write_checkpoint

    walls: dict[tuple[int, int], list[float]] = {setup: [] for setup in SETUPS}
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = write_checkpoint(Path(scratch) / "tiny", TINY, seed=1)
        for run in range(args.runs):
            for setup in SETUPS[run % 3:] + SETUPS[:run % 3]:
                cards, workers = setup
                walls[setup].append(run_once(cards, workers, checkpoint, Path(scratch) / f"reports-{cards}-{workers}"))
                print(f"run {run + 1}: {cards} card(s), {f'-n {workers}' if workers else 'no -n'}: "
                      f"{walls[setup][-1]:.1f} s", flush=True)
    one, two, serial = (statistics.median(walls[setup]) for setup in SETUPS)
    ratio = two / one
    print(f"median wall: 1 card -n 1 {one:.1f} s, 2 cards -n 2 {two:.1f} s, 1 card without -n {serial:.1f} s")
    print(f"2 cards -n 2 / 1 card -n 1: {ratio:.2f} (goal <= {args.goal}); "
          f"2 cards -n 2 / 1 card without -n: {two / serial:.2f}")
    print("PASS" if ratio <= args.goal else "FAIL")
    return 0 if ratio <= args.goal else 1


if __name__ == "__main__":
    sys.exit(main())
