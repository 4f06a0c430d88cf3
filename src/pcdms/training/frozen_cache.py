"""What the frozen networks compute for training, computed once and kept on disk.

Stages 2 and 3 spent over a third of each step encoding the same images again: the VAE's posterior of
each canvas, the encoder's tokens of each source, the pose maps. Those depend only on the image (or
pose) and on the frozen network, so they are stored in safetensors files under a key made of both:
the SHA-256 of the input's content (image file bytes, keypoints, the layout) and of the network's
files. A changed image or network is a new key, never a stale value. Only deterministic outputs are
kept (the posterior's mean and standard deviation, not a draw from it), so the per-step draws still
come from the loop's generator and resumption stays exact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from tqdm.auto import tqdm

from ..io import atomic_write


def content_digest(*parts: bytes | str) -> str:
    """SHA-256 of the parts, each length-prefixed so that no two lists of parts share a digest."""
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()


def file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def folder_digest(folder: Path) -> str:
    """The digest of a model folder's files (configuration and weights), whatever their names or dates."""
    files = sorted(path for path in Path(folder).rglob("*") if path.is_file())
    return content_digest(*(f"{path.relative_to(folder)}={file_digest(path)}" for path in files))


def cached_outputs(
    path: Path,
    network: str,
    keys: Sequence[str],
    compute: Callable[[list[int]], torch.Tensor],
    batch_size: int,
    description: str,
) -> torch.Tensor:
    """``compute``'s outputs for the inputs ``keys`` name, stacked (len(keys), ...), from the file at ``path``
    where present and computed (``batch_size`` inputs a call, given as positions in ``keys``) where not.

    ``network`` is the frozen network's digest. The file is rewritten (atomically) with exactly the
    entries of ``keys`` whenever any was missing, so it never grows with entries no run asks for.
    """
    names = [content_digest(network, key) for key in keys]
    unique = list(dict.fromkeys(names))
    stored: dict[str, torch.Tensor] = {}
    if path.is_file():
        with safe_open(path, "pt") as file:
            present = set(file.keys())
            stored = {name: file.get_tensor(name) for name in unique if name in present}
    first: dict[str, int] = {}  # each missing input once, at its first position
    for position, name in enumerate(names):
        if name not in stored:
            first.setdefault(name, position)
    todo = list(first.values())
    if todo:
        for start in tqdm(range(0, len(todo), batch_size), desc=description, unit="batch", disable=len(todo) < 2):
            chunk = todo[start : start + batch_size]
            with torch.no_grad():
                outputs = compute(chunk).float().cpu()
            stored.update(
                {names[position]: output.contiguous() for position, output in zip(chunk, outputs, strict=True)}
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as file:
            file.write(safetensors_bytes({name: stored[name] for name in unique}))
    return torch.stack([stored[name] for name in names])
