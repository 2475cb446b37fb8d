#!/usr/bin/env python3
"""Single-image DINOv3 inference, with the seed's flags and log layout.

    python inference.py [--model_path DIR] [--device D] [--dtype T] [--image PATH] [--compare] [--num_runs N]

Without --model_path it uses the built-in ViT-B/16 (seeded random weights,
architecture-only). With --compare it runs the CPU float32 baseline and the
device, prints both blocks, the per-tensor comparison, PASS/FAIL against the
thresholds file and the speedup. Exit status: 0 pass, 1 precision failure or
non-finite output, 2 bad input (one "error:" line with the fix).
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_path", "--model-path", help="local checkpoint folder (default: built-in ViT-B/16)")
    parser.add_argument("--device", default="auto", help="auto, cpu, npu, npu:N, cuda, cuda:N, xpu, mps "
                        "(default: auto)")
    parser.add_argument("--dtype", default="float32", help="dtype on the device: float32, bfloat16, float16")
    parser.add_argument("--image", help="input image (default: the deterministic synthetic image)")
    parser.add_argument("--compare", action="store_true", help="also run the CPU float32 baseline and compare")
    parser.add_argument("--num_runs", "--num-runs", default="10", help="timed runs (default: 10)")
    parser.add_argument("--warmup", default="3", help="untimed warm-up runs after the cold call (default: 3)")
    parser.add_argument("--thresholds", help="tolerances file (default: thresholds.toml beside this script)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Before torch is imported: torch_npu only for npu, and never the network.
    os.environ.setdefault("TORCH_DEVICE_BACKEND_AUTOLOAD", "0")
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1")

    from acceptance.errors import AcceptanceError
    from acceptance.seed_cli import run_inference

    try:
        return run_inference(args)
    except AcceptanceError as error:
        print(f"error: {in_own_words(str(error))}", file=sys.stderr)
        return 2


#: the suite's words for this script's options: an error names the option the user can type here
OWN_WORDS = {"--model-path": "--model_path", "--num-runs": "--num_runs", "pytest --help": "inference.py --help"}


def in_own_words(message: str) -> str:
    for suite, own in OWN_WORDS.items():
        message = message.replace(suite, own)
    return message


if __name__ == "__main__":
    sys.exit(main())
