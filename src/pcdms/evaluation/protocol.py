"""Evaluation protocols: which settings give which paper's numbers, and how images are paired and read.

Two protocols of the field, each a set of named settings:

``pcdms``: the official PCDMs scripts (``caculate_metrics_256/512.py``, from the GFLA/NTED/PIDM line):
images resized with OpenCV's bicubic on float pixels (no antialiasing, no rounding), SSIM with
sigma 1.2 and the data range of the prediction, LPIPS fed [0, 1] images as if they were [-1, 1].

``cfld``: CFLD (CVPR 2024) and the papers comparing against it: antialiased bicubic resizing to
8-bit pixels (PIL, as torchvision's ``Resize`` on images), SSIM with sigma 1.5 and the prediction's
data range, LPIPS with inputs normalised to [-1, 1].

Both compute FID against the *training* images with torchvision's ImageNet Inception-v3 and score
every pair; the official scripts' dropped remainders (LPIPS in batches of 64, FID of 128) are a flag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import PcdmsError
from ..io import load_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
# The papers' sizes as WIDTHxHEIGHT, like every --size of pcdms; the papers write them height first
# (256x176), which would read here as a landscape size: those spellings are refused with the right one.
PAPER_SIZES = {"176x256": "256x176", "352x512": "512x352", "64x128": "128x64"}


@dataclass(frozen=True)
class Protocol:
    name: str
    resize: str  # "opencv-bicubic-float" or "pil-bicubic-antialias"
    ssim_sigma: float
    ssim_data_range: float | None  # None: max - min of each prediction
    lpips_normalize: bool  # map [0, 1] to [-1, 1] before LPIPS
    drop_last: bool = False  # drop the remainders of batches of LPIPS_BATCH / FID_BATCH
    height: int = 256
    width: int = 176

    def settings(self) -> dict:
        return {
            "protocol": self.name,
            "size": f"{self.width}x{self.height}",
            "resize": self.resize,
            "ssim_sigma": self.ssim_sigma,
            "ssim_data_range": "prediction max - min" if self.ssim_data_range is None else self.ssim_data_range,
            "lpips_inputs": "normalised to [-1, 1]" if self.lpips_normalize else "[0, 1] as given",
            "drop_last": self.drop_last,
        }


LPIPS_BATCH, FID_BATCH = 64, 128
PROTOCOLS = {
    "pcdms": Protocol("pcdms", "opencv-bicubic-float", 1.2, None, lpips_normalize=False),
    "cfld": Protocol("cfld", "pil-bicubic-antialias", 1.5, None, lpips_normalize=True),
}


def get_protocol(name: str, size: str = "176x256", drop_last: bool = False) -> Protocol:
    """The protocol ``name`` ("pcdms" or "cfld") at ``size``, ``WIDTHxHEIGHT`` (176x256: DeepFashion's
    256x176 as the papers write it). Raises ValueError for a malformed size, one under 16 pixels, or a
    paper size written height first."""
    width, height = parse_width_height(size)
    return replace(PROTOCOLS[name], height=height, width=width, drop_last=drop_last)


def parse_width_height(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` as (width, height), both at least 16."""
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match or min(int(side) for side in match.groups()) < 16:
        raise ValueError(f"{text!r} is not WIDTHxHEIGHT, for example 176x256")
    written_height_first = {paper: ours for ours, paper in PAPER_SIZES.items()}
    if match[0] in written_height_first:
        raise ValueError(
            f"{text!r} is WIDTHxHEIGHT in pcdms, a landscape size; the papers' {text} (height x width) is "
            f"{written_height_first[match[0]]}"
        )
    return int(match[1]), int(match[2])


def read_for_protocol(path: Path, protocol: Protocol) -> torch.Tensor:
    """An image file as a (3, H, W) float tensor at the protocol's size, on the [0, 1] scale."""
    return resize_for_protocol(load_image(path), protocol)


def resize_for_protocol(image: Image.Image, protocol: Protocol) -> torch.Tensor:
    """An RGB image as a (3, H, W) float tensor at the protocol's size, on the [0, 1] scale."""
    size = (protocol.width, protocol.height)
    if protocol.resize == "pil-bicubic-antialias":
        resized = image if image.size == size else image.resize(size, Image.Resampling.BICUBIC)
        return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255).permute(2, 0, 1)
    # OpenCV's INTER_CUBIC on float pixels is bicubic interpolation (a = -0.75, half-pixel centres,
    # edge pixels repeated, no antialiasing): the same as torch's, and like the official script
    # neither rounded nor clipped.
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)
    if image.size != size:
        pixels = F.interpolate(pixels[None], size=(protocol.height, protocol.width), mode="bicubic")[0]
    return pixels / 255


def image_files(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise PcdmsError(f"{folder}: no such folder ({what})")
    files = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
    if not files:
        raise PcdmsError(f"{folder}: no images in it ({what}; looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


# How the community's code names a generated image of a pair: PCDMs and CFLD SOURCE_to_TARGET.png,
# GFLA/NTED/PIDM SOURCE_2_TARGET_vis.png (and the strip SOURCE_2_TARGET_all.png), PATN
# SOURCE___TARGET_vis.jpg, Deformable-GAN SOURCE.jpg_TARGET.jpg.png. Names themselves may keep their
# extension (PATN's "0002_c1s1_000451_03.jpg___0002_c6s1_000551_02.jpg_vis.jpg").
SEPARATORS = ("_to_", "___", "_2_", *(f"{suffix}_" for suffix in IMAGE_SUFFIXES))
SUFFIXES = ("_vis", "_all")


def _target_candidates(stem: str) -> Iterable[str]:
    for suffix in ("", *SUFFIXES):
        if suffix and not stem.endswith(suffix):
            continue
        name = stem.removesuffix(suffix) if suffix else stem
        lowered = name.lower()  # ".JPG_" separates as ".jpg_" does
        for separator in SEPARATORS:
            start = lowered.find(separator)
            while start != -1:
                target = name[start + len(separator) :]
                yield target
                yield Path(target).stem if Path(target).suffix.lower() in IMAGE_SUFFIXES else target
                start = lowered.find(separator, start + 1)


@dataclass(frozen=True)
class EvaluationPair:
    generated: Path
    ground_truth: Path


def pair_with_ground_truth(generated: Sequence[Path], ground_truth: Sequence[Path]) -> list[EvaluationPair]:
    """Each generated image with the ground-truth image of its target, found by name.

    The target is the part of the name after a separator (``_to_``, ``___``, ``_2_``, or an image
    extension and ``_`` as in Deformable-GAN's ``SRC.jpg_TGT.jpg.png``) that names a
    ground-truth image, whatever the two files' extensions (the official rule swaps jpg for png). A
    generated image whose name names no ground-truth image is an error, reported by name.
    """
    by_stem = {path.stem: path for path in ground_truth}
    pairs, unpaired = [], []
    for path in generated:
        match = next((by_stem[name] for name in _target_candidates(path.stem) if name in by_stem), None)
        if match is None:
            unpaired.append(path)
        else:
            pairs.append(EvaluationPair(path, match))
    if unpaired:
        raise PcdmsError(
            f"{unpaired[0]}: no ground-truth image for it (a name SOURCE_to_TARGET.png needs TARGET.png or "
            f"TARGET.jpg in the ground-truth folder); {len(unpaired)} of {len(generated)} generated images are "
            "unpaired"
        )
    return pairs
