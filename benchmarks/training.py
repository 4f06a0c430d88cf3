"""Stage-2 training speed before and after the frozen-network cache, side by side in one run.

Runs ``pcdms train inpaint`` with the street config for a few steps twice, in subprocesses on the same
machine: once with the code of a commit from before the cache (``--before``, checked out into a
temporary git worktree), once with this checkout's code (its cache filled first, outside the timing).
Each run's samples/s is measured from the optimiser steps' times after a warm-up, data loading, EMA
and optimiser included. Run from the repository root, after the street dataset, encoders and VAE of
the recipe of docs/street-benchmark.md:

    python benchmarks/training.py --before 8882148 [--steps 40] [--config configs/inpaint-street.yaml]

Both runs get the random 64-d stand-in encoders the old code was written for (``--encoders``, written by
``pcdms encoders DIR --clip-dim 64 --dinov2-dim 64``), so that only the cache differs. Results go to
stdout and benchmarks/results/training.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results" / "training.json"
REPOSITORY = Path(__file__).resolve().parent.parent

# Runs in the subprocess: train a few steps, print the seconds between the warm-up's end and the last step.
TIMER = """
import json, sys, time
from pcdms.training import load_config, run_training
config = load_config(sys.argv[1], overrides=json.loads(sys.argv[2]))
times = []
run_training(config, resume="none", on_step=lambda step, loss: times.append(time.perf_counter()))
warmup = int(sys.argv[3])
print(json.dumps({"seconds": times[-1] - times[warmup - 1], "steps": len(times) - warmup}))
"""


def timed_run(source: Path, config: Path, overrides: dict, warmup: int) -> dict:
    environment = {"PYTHONPATH": str(source / "src"), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-c", TIMER, str(config), json.dumps(overrides), str(warmup)]
    done = subprocess.run(command, env=environment, cwd=REPOSITORY, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"training with {source} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def architecture(config: Path) -> dict:
    import yaml

    return yaml.safe_load(config.read_text())["inpaint"]["architecture"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="a commit from before the cache, e.g. 8882148")
    parser.add_argument("--encoders", type=Path, default=Path("street-encoders-random"))
    parser.add_argument("--config", type=Path, default=Path("configs/inpaint-street.yaml"))
    parser.add_argument("--steps", type=int, default=40, help="timed steps (default: 40)")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    batch = 16
    common = {
        "training.max_steps": args.steps + args.warmup,
        "training.checkpoint_every": 10**6,
        "inpaint.dinov2": str(args.encoders / "dinov2"),
        "inpaint.clip": str(args.encoders / "clip"),
        "inpaint.architecture": {**architecture(args.config), "image_feature_dim": 64},
    }
    with tempfile.TemporaryDirectory() as scratch:
        old = Path(scratch) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.before], check=True, capture_output=True)
        try:
            before = timed_run(
                old,
                args.config,
                {**common, "output_dir": f"{scratch}/run-before"},
                args.warmup,
            )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], check=True)
        after_dir = f"{scratch}/run-after"
        timed_run(REPOSITORY, args.config, {**common, "output_dir": after_dir, "training.max_steps": 1}, 1)  # the cache
        after = timed_run(REPOSITORY, args.config, {**common, "output_dir": after_dir}, args.warmup)
    rows = {}
    for name, run in (("before", before), ("after", after)):
        rows[name] = {"samples_per_second": round(batch * run["steps"] / run["seconds"], 2), **run}
    speedup = rows["after"]["samples_per_second"] / rows["before"]["samples_per_second"]
    result = {
        "date": datetime.date.today().isoformat(),
        "device": f"{platform.machine()} CPU, {torch.get_num_threads()} threads (torch {torch.__version__})",
        "config": str(args.config),
        "before_commit": args.before,
        "batch_size": batch,
        **rows,
        "speedup": round(speedup, 2),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
