"""Choosing a street model's sampling settings on training pairs, never on the test split.

Generates 80 pairs of the street dataset's *training* split (every 78th, one sample each, the
benchmark's seeds) with stage 2 at guidance 1 (unguided) and 2 (official), each followed by stage 3
started at strength 0.1, 0.2, 0.3, 0.5 and 1 (from noise, the official start), and scores every folder with
``pcdms evaluate --skip fid``. The settings of the best row are what ``pcdms convert trained --sampling``
records in the model's folder (docs/street-benchmark.md, "Its sampling settings"). Run from the
repository root:

    python benchmarks/street_settings.py --data street --model DIR --out street-settings [--phase ...]

``--phase generate`` only writes the images (for a machine with a GPU), ``--phase evaluate`` scores them.
The table goes to stdout and, with the date, to benchmarks/results/street-settings.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import torch
from street import evaluate  # benchmarks/street.py, beside this script

from pcdms.bundled import DEFAULT_SEEDS, stage_generators
from pcdms.data import open_dataset
from pcdms.io import save_image
from pcdms.pipelines import load_pcdms_pipeline

PAIRS = 80
GUIDANCES = (1.0, 2.0)
STRENGTHS = (0.1, 0.2, 0.3, 0.5, 1.0)
BATCH = 16
RESULTS = Path(__file__).parent / "results" / "street-settings.json"


def rows() -> dict[str, dict]:
    """Folder name to the sampling settings it was generated with (``None`` strength: stage 2's image)."""
    table = {}
    for guidance in GUIDANCES:
        table[f"stage2-guidance{guidance:g}"] = {"inpaint_guidance": guidance, "refine_strength": None}
        for strength in STRENGTHS:
            table[f"guidance{guidance:g}-strength{strength:g}"] = {
                "inpaint_guidance": guidance,
                "refine_strength": strength,
            }
    return table


def generate(model: Path, data: Path, out: Path) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pipeline = load_pcdms_pipeline(model).to(device)
    pipeline.set_progress_bar_config(disable=True)
    dataset = open_dataset(data, "train")
    dataset = dataset.subset(range(3, len(dataset), len(dataset) // PAIRS)[:PAIRS])
    for start in range(0, len(dataset), BATCH):
        pairs = [dataset[index] for index in range(start, min(start + BATCH, len(dataset)))]
        names = [f"{Path(pair.source_name).stem}_to_{Path(pair.target_name).stem}.png" for pair in pairs]
        inputs = (
            [pair.source_image for pair in pairs],
            [pair.target_pose for pair in pairs],
            [pair.source_pose for pair in pairs],
        )
        for guidance in GUIDANCES:
            for strength in STRENGTHS:
                result = pipeline(
                    *inputs,
                    inpaint_guidance=guidance,
                    refine_strength=strength,
                    generator=stage_generators(DEFAULT_SEEDS, len(pairs)),
                    return_intermediates=True,
                )
                for number, name in enumerate(names):
                    save_image(result.images[number], out / f"guidance{guidance:g}-strength{strength:g}" / name)
                    save_image(result.coarse_images[number], out / f"stage2-guidance{guidance:g}" / name)
        print(f"generated {start + len(pairs)} of {len(dataset)} pairs", flush=True)


def evaluate_rows(data: Path, out: Path) -> dict:
    return {
        row: {"settings": settings, **evaluate(out / row, data / "train", "--skip", "fid")}
        for row, settings in rows().items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the street dataset (pcdms data street --out DIR)")
    parser.add_argument("--model", type=Path, required=True, help="the PCDMs pipeline folder to choose settings for")
    parser.add_argument("--out", type=Path, required=True, help="folder for the images and reports")
    parser.add_argument("--phase", choices=("all", "generate", "evaluate"), default="all")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    if args.phase != "evaluate":
        generate(args.model, args.data, args.out)
    if args.phase == "generate":
        return
    scores = evaluate_rows(args.data, args.out)
    print(f"\n| {PAIRS} training pairs | SSIM | PSNR | PCKh | PCKh notes |")
    print("| --- | --- | --- | --- | --- |")
    for row, score in scores.items():
        metrics, notes = score["metrics"], score["notes"]["pckh"].split("; ")[-1]
        print(f"| {row} | {metrics['ssim']:.3f} | {metrics['psnr']:.2f} | {metrics['pckh']:.3f} | {notes} |")
    RESULTS.write_text(
        json.dumps({"date": datetime.date.today().isoformat(), "model": str(args.model), "rows": scores}, indent=2)
        + "\n"
    )
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
