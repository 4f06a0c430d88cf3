"""Stage 2's loader: milliseconds to make one training batch, per-pair stacking against gathering (issue 16).

    python benchmarks/training_batches.py [--config configs/inpaint-street.yaml] [--batches 20]

Builds the stage-2 task of the config (its frozen-network cache must exist: run the config's training
once, or let this build it) and times, side by side in one run, the two ways of making a batch of the
config's size from the cached tensors: the per-pair items stacked as the loader did before (each pair's
canvas, masked canvas, tokens and pose canvas copied, then stacked), and the gathering it does now (one
index per tensor). Both give equal batches, which is checked. The batch then still has to reach the GPU;
the gathering also runs there, from tensors kept on the training device, which this CPU measurement does
not show. Results, with the device and date, to benchmarks/results/training_batches.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import torch

from pcdms.training.config_file import load_config
from pcdms.training.inpaint import FrozenCanvasPairs, InpaintTask

RESULTS = Path(__file__).parent / "results" / "training_batches.json"


def stacked(pairs: FrozenCanvasPairs, indices: list[int]) -> dict[str, torch.Tensor]:
    """The batch as per-pair items stacked (the loader before)."""
    items = []
    for index in indices:
        source = pairs.sources[index]
        source_pose, target_pose = pairs.poses[index]
        pose = torch.cat([pairs.pose_maps[source_pose], pairs.pose_maps[target_pose]], dim=2)
        items.append(
            {
                "canvas": pairs.canvas[index],
                "masked": pairs.masked[source],
                "tokens": pairs.tokens[source],
                "pose": pose.float() / 127.5 - 1.0,
                "target_embeds": pairs.target_embeds[index],
            }
        )
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


def milliseconds(make, batches: list[list[int]]) -> float:
    make(batches[0])  # the first touch of the memory is not a step's cost
    started = time.perf_counter()
    for indices in batches[1:]:
        make(indices)
    return (time.perf_counter() - started) / (len(batches) - 1) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/inpaint-street.yaml"))
    parser.add_argument("--batches", type=int, default=20, help="batches timed per way (default 20)")
    args = parser.parse_args()
    config = load_config(args.config)
    task = InpaintTask(config.inpaint, config.data, config.output_dir)
    pairs, size = task.dataset, config.training.batch_size
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(0)).tolist()
    batches = [order[start : start + size] for start in range(0, (args.batches + 1) * size, size)]
    gathered, before = task.collate(batches[0]), stacked(pairs, batches[0])
    assert gathered.keys() == before.keys() and all(torch.equal(gathered[key], before[key]) for key in before)
    rows = {
        "stacked per pair (before)": milliseconds(lambda indices: stacked(pairs, indices), batches),
        "gathered (now)": milliseconds(task.collate, batches),
    }
    megabytes = sum(value.nbytes for value in gathered.values()) / 1e6
    print(f"| {size} pairs a batch, {megabytes:.0f} MB | ms per batch |\n| --- | --- |")
    for name, value in rows.items():
        print(f"| {name} | {value:.1f} |")
    ratio = rows["stacked per pair (before)"] / rows["gathered (now)"]
    print(f"gathering is {ratio:.2f}x faster")
    results = {
        "date": datetime.date.today().isoformat(),
        "device": f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "config": str(args.config),
        "batch_size": size,
        "batch_megabytes": round(megabytes, 1),
        "milliseconds_per_batch": {name: round(value, 2) for name, value in rows.items()},
        "speedup": round(ratio, 2),
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
