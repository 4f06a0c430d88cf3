"""Sampling presets and each acceleration technique alone, side by side on the street test split (issue 20).

Every row generates the same test pairs with the same per-pair seeds, on the CPU with a fixed number of
threads, and is scored by ``pcdms evaluate`` against the real targets (SSIM, FID against the train split's
images, PCKh). Rows:

  model                 no preset: the model's own settings (its recommended ones, else the official ones)
  official, fast, fastest   the presets (pcdms.pipelines.presets)
  technique rows        the model's own settings with one change: a solver and step count
                        (unipc-8, unipc-6, unipc3-8, dpm-karras-10), guidance on part of the steps
                        (interval-0.3, interval-0.4), deep-feature reuse (reuse-2, reuse-3)

Per row: seconds per image (whole pipeline, stage 1 to 3, all pairs in batches of ``--batch-size``) and as a
ratio of the official and of the model rows' (speed-up: theirs / this), the UNet work (images through each
UNet per generated image, deep blocks skipped), the metrics and their differences from the official and model
rows. Run from the repository root, alone on the machine (other work changes the seconds):

    python benchmarks/presets.py --data street --out preset-results --threads 2 [--model DIR] [--max-pairs N]

Writes the table (Markdown) to stdout and, with the machine and date, to benchmarks/results/presets.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import torch
from street import evaluate  # benchmarks/street.py, beside this script

from pcdms.bundled import DEFAULT_SEEDS, bundled_model, stage_generators
from pcdms.commands.common import open_split
from pcdms.io import save_image
from pcdms.pipelines import load_pcdms_pipeline
from pcdms.pipelines.presets import DPM_SOLVER_KARRAS, PRESETS, Preset, Sampler

RESULTS = Path(__file__).parent / "results" / "presets.json"
METRICS = {"ssim": "SSIM", "fid": "FID", "pckh": "PCKh"}


def technique(name: str, summary: str, **fields) -> Preset:
    """The model's own settings with one technique: a preset that sets nothing else."""
    return Preset(name, summary, **fields)


UNIPC = Sampler("UniPCMultistepScheduler", {"solver_order": 2})
TECHNIQUES = [
    technique(
        "unipc-8", "UniPC, 8 steps per UNet stage", sampling={"inpaint_steps": 8, "refine_steps": 8}, sampler=UNIPC
    ),
    technique(
        "unipc-6", "UniPC, 6 steps per UNet stage", sampling={"inpaint_steps": 6, "refine_steps": 6}, sampler=UNIPC
    ),
    technique(
        "unipc3-8",
        "UniPC third order, 8 steps",
        sampling={"inpaint_steps": 8, "refine_steps": 8},
        sampler=Sampler("UniPCMultistepScheduler", {"solver_order": 3}),
    ),
    technique(
        "dpm-karras-10",
        "DPM-Solver++ 2M, Karras sigmas, 10 steps",
        sampling={"inpaint_steps": 10, "refine_steps": 10},
        sampler=DPM_SOLVER_KARRAS,
    ),
    technique("interval-0.3", "guidance only from t/T 0.3 up", guidance_interval=(0.3, 1.0)),
    technique("interval-0.4", "guidance only from t/T 0.4 up", guidance_interval=(0.4, 1.0)),
    technique("reuse-2", "deep UNet features reused every second step", feature_reuse=2),
    technique("reuse-3", "deep UNet features run every third step", feature_reuse=3),
]
ROWS: dict[str, Preset | None] = {
    "model": None,
    **{name: PRESETS[name] for name in ("official", "fast", "fastest")},
    **{preset.name: preset for preset in TECHNIQUES},
}


class UNetWork:
    """Counts, while inside, the images that pass through each UNet (a guided step of one image counts 2) and
    the calls whose deep blocks were skipped (the middle block's first resnet did not run)."""

    def __init__(self, pipeline):
        self.unets = [model.unet for model in (pipeline.inpaint, pipeline.refine) if model is not None]
        self.images = self.calls = self.deep = 0

    def __enter__(self):
        def count(module, args, kwargs):
            self.calls += 1
            self.images += (args[0] if args else kwargs["sample"]).shape[0]

        def deep(*_):
            self.deep += 1

        self.handles = [unet.register_forward_pre_hook(count, with_kwargs=True) for unet in self.unets]
        self.handles += [unet.mid_block.resnets[0].register_forward_hook(deep) for unet in self.unets]
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def generate_row(pipeline, dataset, preset: Preset | None, out: Path, batch_size: int) -> dict:
    """The row's images as ``OUT/{source}_to_{target}.png``; seconds (in the pipeline) and UNet work per image."""
    seconds, images = 0.0, 0
    with UNetWork(pipeline) as work:
        for start in range(0, len(dataset), batch_size):
            pairs = [dataset[index] for index in range(start, min(start + batch_size, len(dataset)))]
            began = time.perf_counter()
            generated = pipeline(
                [pair.source_image for pair in pairs],
                [pair.target_pose for pair in pairs],
                [pair.source_pose for pair in pairs],
                generator=stage_generators(DEFAULT_SEEDS, len(pairs)),
                preset=preset,
            ).images
            seconds += time.perf_counter() - began
            images += len(pairs)
            for pair, image in zip(pairs, generated, strict=True):
                save_image(image, out / f"{Path(pair.source_name).stem}_to_{Path(pair.target_name).stem}.png")
    return {
        "seconds_per_image": seconds / images,
        "unet_images_per_image": work.images / images,
        "deep_skipped_per_image": (work.calls - work.deep) / images,
    }


def describe(preset: Preset | None, pipeline) -> dict:
    """What a row samples with: its settings, resolved as a call with the preset resolves them."""
    if preset is None:
        return {"settings": pipeline.sampling_defaults}
    return {
        "summary": preset.summary,
        "settings": preset.defaults(pipeline.config.sampling),
        "sampler": None if preset.sampler is None else {"kind": preset.sampler.kind, **preset.sampler.options},
        "guidance_interval": preset.guidance_interval,
        "feature_reuse": preset.feature_reuse,
    }


def compared(rows: dict, name: str, against: str) -> dict:
    """The row's speed-up over ``against`` (its seconds / this row's) and metric differences (this - its)."""
    if against not in rows:
        return {}
    base, row = rows[against], rows[name]
    return {
        f"speedup_vs_{against}": base["seconds_per_image"] / row["seconds_per_image"],
        **{f"{key}_minus_{against}": row["metrics"][key] - base["metrics"][key] for key in METRICS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the street dataset (pcdms data street --out DIR)")
    parser.add_argument("--out", type=Path, required=True, help="folder for each row's images and reports")
    parser.add_argument("--model", type=Path, help="a PCDMs pipeline folder (default: the bundled model)")
    parser.add_argument("--max-pairs", type=int, help="only N test pairs, spread evenly over the split")
    parser.add_argument("--threads", type=int, default=2, help="torch's CPU threads, fixed for every row (default 2)")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per pipeline call (default 8)")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS), help="rows to run (default: all)")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"results file (default: {RESULTS})")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    torch.set_num_threads(args.threads)
    model = args.model or bundled_model()
    pipeline = load_pcdms_pipeline(model)
    pipeline.set_progress_bar_config(disable=True)
    split = argparse.Namespace(data=args.data, split="test", layout="auto", images=None, max_pairs=args.max_pairs)
    dataset = open_split(split)
    load = os.getloadavg()[0]
    rows = {}
    for name in args.rows:
        rows[name] = generate_row(pipeline, dataset, ROWS[name], args.out / name, args.batch_size)
        rows[name] |= describe(ROWS[name], pipeline)
        print(f"{name}: {rows[name]['seconds_per_image']:.2f} s per image", flush=True)
    for name in rows:
        rows[name]["metrics"] = evaluate(args.out / name, args.data / "test", "--real", str(args.data / "train"))[
            "metrics"
        ]
    for name in rows:
        rows[name] |= compared(rows, name, "official") | compared(rows, name, "model")

    print(
        f"\n| {len(dataset)} street test pairs | s / image | vs official | vs model | UNet images | "
        + " | ".join(METRICS.values())
        + " |"
    )
    print("| --- " * (5 + len(METRICS)) + "|")
    for name, row in rows.items():
        speedups = [
            f"{row[f'speedup_vs_{base}']:.2f}x" if f"speedup_vs_{base}" in row else "-"
            for base in ("official", "model")
        ]
        metrics = [f"{row['metrics'][key]:.3f}" for key in METRICS]
        print(
            f"| {name} | {row['seconds_per_image']:.2f} | {' | '.join(speedups)} | {row['unet_images_per_image']:.0f} | {' | '.join(metrics)} |"
        )
    results = {
        "date": datetime.date.today().isoformat(),
        "device": f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), {args.threads} threads",
        "load_average_at_start": round(load, 2),
        "torch": torch.__version__,
        "model": Path(model).name,
        "pairs": len(dataset),
        "batch_size": args.batch_size,
        "rows": rows,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {args.results}")


if __name__ == "__main__":
    main()
