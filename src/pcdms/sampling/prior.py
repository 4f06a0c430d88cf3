"""Stage 1 over a split: each pair's predicted target CLIP embedding, scored by cosine similarity."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from ..data.embeddings import PriorPairs, cached_embeddings
from ..io import atomic_write
from ..pipelines.prior import sample_pairs
from . import pair_file_name


def sample_prior_split(
    pipeline,
    dataset,
    image_encoder: Path,
    out: Path | None,
    device,
    batch_size: int,
    seed: int,
    **sampling,
) -> float:
    """Every pair of ``dataset`` (a validated split): with ``out``, ``out/{source}_to_{target}.npy`` files of
    shape (1, D) and the CLIP embedding cache under ``out/cache``. ``image_encoder``: the CLIP vision folder
    the prior was trained with; ``sampling``: the prior pipeline's call arguments (steps, guidance).
    Prints and returns the mean cosine similarity (-1 to 1) of the predicted to the real target embeddings."""
    with tempfile.TemporaryDirectory() as scratch:
        cache = out / "cache" if out else Path(scratch)
        embeds, null = cached_embeddings(dataset, image_encoder, cache, batch_size, device)
    pairs = PriorPairs(dataset, embeds, pipeline.prior.pose_convention)
    predicted = sample_pairs(pipeline, pairs, batch_size, seed, progress=True, null_embeds=null, **sampling)
    if out:
        for (source, target), embedding in zip(pairs.names, predicted, strict=True):
            with atomic_write(out / pair_file_name(source, target, ".npy"), "wb") as file:
                np.save(file, embedding[None].numpy())
        print(f"{len(pairs)} embeddings in {out}")
    targets, sources = pairs.embeds[pairs.pairs[:, 1]], pairs.embeds[pairs.pairs[:, 0]]
    similarity = torch.nn.functional.cosine_similarity(predicted, targets).mean().item()
    copying = torch.nn.functional.cosine_similarity(sources, targets).mean().item()
    print(
        f"mean cosine similarity to the targets' CLIP embeddings: {similarity:.4f} (copying the source's: {copying:.4f})"
    )
    return similarity
