"""Stage 2 over a split: each pair's coarse image, scored by pixel error to the real target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.embeddings import cached_embeddings
from ..errors import PcdmsError
from ..generation import sample_paths
from ..io import save_image
from . import batches, pair_file_name


def sample_inpaint_split(
    pipeline,
    dataset,
    out: Path,
    device,
    *,
    samples: int = 1,
    batch_size: int = 8,
    clip: Path | None = None,
    embeddings: Path | None = None,
    **sampling,
) -> None:
    """Every pair of ``dataset`` (a validated split), as ``out/{source}_to_{target}.png`` (``samples`` images
    per pair: ``_0``, ``_1``, ...): with the real targets' CLIP embeddings from the ``clip`` encoder folder (what
    stage 3 trains on) or stage-1 ones (``embeddings``, a folder of ``{source}_to_{target}.npy``). Pairs whose
    images are already there are skipped, so an interrupted run resumes. ``sampling``: the stage-2 pipeline's
    call arguments. Prints the mean absolute pixel error (0-1 scale) beside copying the source's. Raises
    PcdmsError when the model needs target embeddings and neither ``clip`` nor ``embeddings`` is given, or a
    stage-1 embedding is missing or unreadable."""
    names = [pair_file_name(source, target, ".png") for source, target in dataset.pairs]
    todo = [index for index, name in enumerate(names) if not sample_paths(out / name, samples)[-1].exists()]
    uses_embeds = pipeline.inpaint.uses_target_embedding
    embeds = None
    if uses_embeds and not embeddings:
        if not clip:
            raise PcdmsError("sample inpaint --data needs --clip DIR (real targets' embeddings) or --embeddings DIR")
        embeds, _ = cached_embeddings(dataset, clip, out / "cache", batch_size, device)
    errors, copy_errors = [], []
    tokens = {}  # each source's DINOv2 tokens, computed once however many pairs it is in
    for start in batches(len(todo), batch_size, "stage 2"):
        batch = [dataset[index] for index in todo[start : start + batch_size]]
        new = list({pair.source_name: pair.source_image for pair in batch if pair.source_name not in tokens}.items())
        if new:
            tokens.update(
                zip([name for name, _ in new], pipeline.encode_images([image for _, image in new]).cpu(), strict=True)
            )
        target_embeds = None
        if uses_embeds and embeds is not None:
            target_embeds = torch.stack([embeds[pair.target_name] for pair in batch])
        elif uses_embeds:
            target_embeds = torch.cat([load_stage1_embedding(embeddings, pair) for pair in batch])
        images = pipeline(
            [pair.source_image for pair in batch],
            [pair.source_pose for pair in batch],
            [pair.target_pose for pair in batch],
            target_embeds,
            image_features=torch.stack([tokens[pair.source_name] for pair in batch]),
            **sampling,
        ).images
        for number, pair in enumerate(batch):
            pair_samples = images[number * samples : (number + 1) * samples]
            name = pair_file_name(pair.source_name, pair.target_name, ".png")
            for path, image in zip(sample_paths(out / name, samples), pair_samples, strict=True):
                save_image(image, path)
            size = pair_samples[0].size
            target = np.asarray(pair.target_image.convert("RGB").resize(size), dtype=np.float32) / 255
            source = np.asarray(pair.source_image.convert("RGB").resize(size), dtype=np.float32) / 255
            errors.append(np.abs(np.asarray(pair_samples[0], dtype=np.float32) / 255 - target).mean())
            copy_errors.append(np.abs(source - target).mean())
    print(f"{len(todo)} pairs sampled, {len(names) - len(todo)} already there, images in {out}")
    if errors:
        print(
            f"mean absolute pixel error to the targets (0-1 scale): {np.mean(errors):.4f} "
            f"(copying the source: {np.mean(copy_errors):.4f})"
        )


def load_stage1_embedding(folder: Path, pair) -> torch.Tensor:
    """The (1, D) stage-1 embedding of ``pair`` from ``folder/{source}_to_{target}.npy``; PcdmsError if absent."""
    path = folder / pair_file_name(pair.source_name, pair.target_name, ".npy")
    if not path.is_file():
        raise PcdmsError(f"{path}: no stage-1 embedding for this pair (write them with: pcdms sample prior --data)")
    try:
        return torch.from_numpy(np.load(path)).float().reshape(1, -1)
    except (OSError, ValueError) as error:
        raise PcdmsError(f"{path}: not a .npy embedding ({error})") from None
