"""Stage 3 over a split: stage 2's images refined, scored by pixel error beside the coarse images' own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..data.refine import missing_coarse_images, pair_image_name
from ..errors import PcdmsError
from ..generation import sample_paths
from ..io import load_image, save_image
from . import batches


def pixel_error(image: Image.Image, target: Image.Image) -> float:
    """Mean absolute difference on a 0-1 scale, the target resized to the image."""
    reference = np.asarray(target.convert("RGB").resize(image.size), dtype=np.float32)
    return float(np.abs(np.asarray(image.convert("RGB"), dtype=np.float32) - reference).mean() / 255)


def sample_refine_split(
    pipeline,
    dataset,
    coarse_images: Path,
    out: Path,
    *,
    samples: int = 1,
    batch_size: int = 8,
    regenerate: str = "",
    **sampling,
) -> None:
    """Every pair of ``dataset`` (a validated split), refining stage 2's ``{source}_to_{target}.png`` from
    ``coarse_images`` into the same name under ``out``; pairs already there are skipped, so an interrupted run
    resumes. ``sampling``: the stage-3 pipeline's call arguments. The pixel error to the targets (0-1 scale) is
    printed beside the coarse images' own, to show what refining did. Raises PcdmsError naming the first
    missing stage-2 image; ``regenerate`` is the command that writes them, quoted in that message."""
    names = [pair_image_name(source, target) for source, target in dataset.pairs]
    missing = missing_coarse_images(dataset, coarse_images)
    if missing:
        raise PcdmsError(
            f"{coarse_images / names[missing[0]]}: no stage-2 image for this pair ({len(missing)} of "
            f"{len(names)} missing; write them with: {regenerate})"
        )
    todo = [index for index, name in enumerate(names) if not sample_paths(out / name, samples)[-1].exists()]
    errors, coarse_errors, copy_errors = [], [], []
    for start in batches(len(todo), batch_size, "stage 3"):
        indices = todo[start : start + batch_size]
        batch = [dataset[index] for index in indices]
        coarse = [load_image(coarse_images / names[index]) for index in indices]
        images = pipeline([pair.source_image for pair in batch], coarse, **sampling).images
        for number, (index, pair) in enumerate(zip(indices, batch, strict=True)):
            pair_samples = images[number * samples : (number + 1) * samples]
            for path, image in zip(sample_paths(out / names[index], samples), pair_samples, strict=True):
                save_image(image, path)
            errors.append(pixel_error(pair_samples[0], pair.target_image))
            coarse_errors.append(pixel_error(coarse[number], pair.target_image))
            copy_errors.append(pixel_error(pair.source_image, pair.target_image))
    print(f"{len(todo)} pairs refined, {len(names) - len(todo)} already there, images in {out}")
    if errors:
        print(
            f"mean absolute pixel error to the targets (0-1 scale): {np.mean(errors):.4f} "
            f"(the coarse images: {np.mean(coarse_errors):.4f}; copying the source: {np.mean(copy_errors):.4f})"
        )
