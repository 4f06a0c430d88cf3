"""The street benchmark: the paper's ablation in miniature, on the street dataset's test split.

Four ways of producing each test pair's target image, each scored by ``pcdms evaluate``:

  copy                    the source image itself (the floor every method must beat)
  stage 2, real embedding stage 2 given the real target's CLIP embedding (an oracle stage 1)
  stage 2, stage-1 emb.   stage 2 given the prior's embedding: the coarse image of the full pipeline
  stages 1-3              the whole pipeline, as ``pcdms generate`` runs it

Stages 2 and 3 use the same per-pair seeds in every row, so rows differ only by what the ablation
changes; the third row is exactly the coarse image the fourth refines. Also written: a grid of the
pairs the package bundles as examples (test pairs 0, 50, ..., 350). Run from the repository root:

    python benchmarks/street.py --data street --out street-results [--model DIR] [--max-pairs N]

``--phase generate`` only writes the images (with their timing, OUT/generation.json), for a machine with a
GPU; ``--phase evaluate`` then scores that folder where MediaPipe and the FID network are installed.
The table goes to stdout (Markdown) and, with the device and date, to benchmarks/results/street.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from pipeline import device_name  # benchmarks/pipeline.py, beside this script

from pcdms.bundled import DEFAULT_SEEDS, bundled_model, read_pairs_file, stage_generators, street_examples_path
from pcdms.data import open_dataset
from pcdms.generation import run_street_examples
from pcdms.io import save_image
from pcdms.models.encoders import ClipImageEncoder
from pcdms.pipelines import load_pcdms_pipeline

ROWS = {
    "copy": "(a) copy the source",
    "stage2-real-embedding": "(b) stage 2, real target embedding",
    "stage2-prior-embedding": "(c) stage 2, stage-1 embedding",
    "pcdms": "(d) stages 1-3 (the bundled model)",
}
METRICS = {"ssim": "SSIM", "psnr": "PSNR", "fid": "FID", "pckh": "PCKh"}
FORMATS = {"ssim": "{:.3f}", "psnr": "{:.2f}", "fid": "{:.1f}", "pckh": "{:.3f}"}
RESULTS = Path(__file__).parent / "results" / "street.json"
BATCH = 16


def generate(pipeline, clip: ClipImageEncoder, dataset, out: Path) -> None:
    """The four rows' images of every pair of ``dataset``, as ``OUT/ROW/{source}_to_{target}.png``."""
    for start in range(0, len(dataset), BATCH):
        pairs = [dataset[index] for index in range(start, min(start + BATCH, len(dataset)))]
        names = [f"{Path(pair.source_name).stem}_to_{Path(pair.target_name).stem}.png" for pair in pairs]
        sources = [pair.source_image for pair in pairs]
        poses = ([pair.target_pose for pair in pairs], [pair.source_pose for pair in pairs])
        with_real_embedding = pipeline(
            sources,
            *poses,
            target_embeds=clip.encode([pair.target_image for pair in pairs]),
            stop_after="inpaint",
            generator=stage_generators(DEFAULT_SEEDS, len(pairs)),
        ).images
        full = pipeline(
            sources, *poses, generator=stage_generators(DEFAULT_SEEDS, len(pairs)), return_intermediates=True
        )
        for number, name in enumerate(names):
            save_image(sources[number], out / "copy" / name)
            save_image(with_real_embedding[number], out / "stage2-real-embedding" / name)
            save_image(full.coarse_images[number], out / "stage2-prior-embedding" / name)
            save_image(full.images[number], out / "pcdms" / name)
        print(f"generated {start + len(pairs)} of {len(dataset)} pairs", flush=True)


def evaluate(folder: Path, ground_truth: Path, *options: str) -> dict:
    """``pcdms evaluate --size 64x128`` of ``folder`` against ``ground_truth``; its report, also written beside
    the folder as FOLDER.json."""
    report = folder.parent / f"{folder.name}.json"  # not with_suffix: "strength0.3" would lose its ".3"
    command = [
        sys.executable,
        "-m",
        "pcdms",
        "evaluate",
        "--generated",
        str(folder),
        "--ground-truth",
        str(ground_truth),
    ]
    subprocess.run([*command, "--size", "64x128", *options, "--out", str(report)], check=True)
    return json.loads(report.read_text())


def example_grid(pipeline, out: Path) -> Path:
    """The grid of the bundled example pairs; their stage-3 images go to ``OUT/examples``, scored as
    tests/test_street_model.py scores them."""
    examples = read_pairs_file(street_examples_path() / "pairs.csv")
    images, grid = run_street_examples(pipeline, examples)
    for image, (source, target, _) in zip(images, examples, strict=True):
        save_image(image, out / "examples" / f"{source.stem}_to_{target.stem}.png")
    return save_image(grid, out / "street-grid.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the street dataset (pcdms data street --out DIR)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the images, reports and grid")
    parser.add_argument("--model", type=Path, help="a PCDMs pipeline folder (default: the bundled model)")
    parser.add_argument("--max-pairs", type=int, help="only the first N test pairs")
    parser.add_argument(
        "--phase",
        choices=("all", "generate", "evaluate"),
        default="all",
        help="generate the images, score an OUT that --phase generate wrote, or both (default)",
    )
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    model = args.model or bundled_model()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    generation_file = args.out / "generation.json"
    if args.phase != "evaluate":
        pipeline = load_pcdms_pipeline(model).to(device)
        pipeline.set_progress_bar_config(disable=True)
        dataset = open_dataset(args.data, "test")
        if args.max_pairs:
            dataset = dataset.subset(range(min(args.max_pairs, len(dataset))))
        started = time.perf_counter()
        generate(pipeline, ClipImageEncoder(pipeline.clip_encoder), dataset, args.out)
        generation = {
            "pairs": len(dataset),
            "seconds": round(time.perf_counter() - started, 1),
            "device": device_name(device),
        }
        generation_file.write_text(json.dumps(generation, indent=2) + "\n")
        if args.phase == "generate":
            return
    if not generation_file.is_file():
        parser.error(f"{generation_file}: not found; --phase evaluate scores what --phase generate wrote there")
    generation = json.loads(generation_file.read_text())
    # The grid and the examples on the CPU, as tests/test_street_model.py computes them.
    pipeline = load_pcdms_pipeline(model)
    pipeline.set_progress_bar_config(disable=True)
    grid = example_grid(pipeline, args.out)
    reports = {row: evaluate(args.out / row, args.data / "test", "--real", str(args.data / "train")) for row in ROWS}
    examples = evaluate(args.out / "examples", street_examples_path(), "--skip", "fid", "--skip", "pckh")

    print(f"\n| {generation['pairs']} street test pairs | " + " | ".join(METRICS.values()) + " |")
    print("| --- " * (len(METRICS) + 1) + "|")
    for row, title in ROWS.items():
        values = reports[row]["metrics"]
        print(f"| {title} | " + " | ".join(FORMATS[key].format(values[key]) for key in METRICS) + " |")
    print(f"\ngrid: {grid}")
    results = {
        "date": datetime.date.today().isoformat(),
        "device": generation["device"],
        "model": model.name,
        "pairs": generation["pairs"],
        "generation_seconds": generation["seconds"],
        "rows": {row: {"title": ROWS[row], **reports[row]} for row in ROWS},
        "examples": examples,
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
