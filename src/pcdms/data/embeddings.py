"""Frozen-encoder embeddings of a dataset's images, computed once and cached, and the per-pair vectors
the stage-1 prior reads."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..io import atomic_write, image_size, load_image
from ..models.encoders import ClipImageEncoder, clip_pixels
from ..pose.vector import PoseConvention, pose_vector
from .dataset import PoseTransferDataset

CACHE_FILE = "clip-embeddings.safetensors"


def _stamp(path: Path) -> str:
    status = path.stat()
    return f"{status.st_size}:{status.st_mtime_ns}"


def _encoder_identity(folder: Path) -> str:
    """Changes whenever the encoder's config or weight files change."""
    parts = [str(folder.resolve())]
    for file in sorted(folder.iterdir()):
        if file.is_file():
            parts.append(f"{file.name}={_stamp(file)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class _Pixels(Dataset):
    """Images preprocessed for the encoder, so that worker processes can decode them in parallel."""

    def __init__(self, paths: list[Path], processor):
        self.paths, self.processor = paths, processor

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return clip_pixels([load_image(self.paths[index])], self.processor)[0]


def cached_embeddings(
    dataset: PoseTransferDataset, encoder_folder: Path, cache_dir: Path, batch_size: int, device: torch.device
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``{image name: CLIP embedding}`` for every image of ``dataset``, and the null embedding.

    Embeddings are kept in ``cache_dir`` with the encoder's identity and each image's size and
    modification time: a changed image or encoder is re-encoded, never served stale.
    """
    encoder_folder, cache_path = Path(encoder_folder), Path(cache_dir) / CACHE_FILE
    identity = _encoder_identity(encoder_folder)
    names = dataset.image_names()
    stamps = {name: _stamp(dataset.image_path(name)) for name in names}
    cached, null = {}, None
    if cache_path.is_file():
        with safe_open(cache_path, "pt") as file:
            meta = file.metadata()
            if meta.get("encoder") == identity:
                null, embeds = file.get_tensor("null"), file.get_tensor("embeds")
                for (name, stamp), embedding in zip(json.loads(meta["images"]), embeds, strict=True):
                    if stamps.get(name) == stamp:
                        cached[name] = embedding
    todo = [name for name in names if name not in cached]
    if todo or null is None:
        encoder = ClipImageEncoder.from_pretrained(encoder_folder).to(device)
        null = encoder.null_embeds()[0].float().cpu()
        # Decoding images is the slow part of a large set: worker processes do it, for sets worth it.
        workers = min(8, os.cpu_count() or 1) if len(todo) > 4 * batch_size else 0
        pixels = DataLoader(
            _Pixels([dataset.image_path(name) for name in todo], encoder.processor), batch_size, num_workers=workers
        )
        done = 0
        for batch in tqdm(pixels, desc="CLIP embeddings", unit="batch", disable=len(pixels) < 2):
            embeds = encoder(batch).float().cpu()
            cached.update(zip(todo[done : done + len(embeds)], embeds, strict=True))
            done += len(embeds)
        del encoder
        kept = sorted(cached)
        images = json.dumps([[name, stamps.get(name, "")] for name in kept])
        tensors = {"embeds": torch.stack([cached[name] for name in kept]), "null": null.contiguous()}
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(cache_path, "wb") as file:
            file.write(safetensors_bytes(tensors, metadata={"encoder": identity, "images": images}))
    return {name: cached[name] for name in names}, null


class PriorPairs(Dataset):
    """Each pair as the four vectors the prior reads: both CLIP embeddings and both poses."""

    def __init__(self, dataset: PoseTransferDataset, embeds: dict[str, torch.Tensor], convention: PoseConvention):
        names = dataset.image_names()
        index = {name: position for position, name in enumerate(names)}
        self.embeds = torch.stack([embeds[name] for name in names])
        self.poses = torch.from_numpy(
            np.stack(
                [pose_vector(dataset.pose(name, image_size(dataset.image_path(name))), convention) for name in names]
            )
        ).float()
        self.pairs = torch.tensor([(index[source], index[target]) for source, target in dataset.pairs])
        self.names = list(dataset.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        source, target = self.pairs[item].tolist()
        return {
            "source_embeds": self.embeds[source],
            "target_embeds": self.embeds[target],
            "source_pose": self.poses[source],
            "target_pose": self.poses[target],
        }

    def batch(self, items: list[int]) -> dict[str, torch.Tensor]:
        return collate_vectors([self[item] for item in items])


def collate_vectors(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}
