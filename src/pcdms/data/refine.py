"""Stage 3's training inputs: stage 2's coarse images of the training pairs, where to find them and how to write them.

Stage 3 learns to turn stage 2's output back into the real target (spec 3), so it trains on stage
2's images *of the training pairs*, written beforehand by ``pcdms sample inpaint --split train`` as
``{source}_to_{target}.png`` (the official recipe samples them with the real targets' CLIP
embeddings). Target and coarse image are placed alike: resized (bicubic) to the layout's size and
padded with their own edge pixels to sides the UNet can halve; the coarse image may come at any
size, stage 2's output size or another.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from .dataset import PoseTransferDataset


def pair_image_name(source_name: str, target_name: str) -> str:
    """The file name of a generated image of a pair, as the official scripts and ``pcdms sample`` write it."""
    return f"{Path(source_name).stem}_to_{Path(target_name).stem}.png"


def coarse_images_command(
    root: str | os.PathLike,
    split: str,
    out: str | os.PathLike,
    layout: str = "auto",
    images: str | os.PathLike | None = None,
) -> str:
    """The command that writes stage 2's images of a split where stage 3 looks for them."""
    command = ["pcdms", "sample", "inpaint", "--model", "STAGE2", "--clip", "CLIP", "--data", str(root)]
    for name, value in (("layout", layout), ("images", images)):
        if value and value != "auto":
            command += [f"--{name}", str(value)]
    return shlex.join([*command, "--split", split, "--out", str(out)])


def missing_coarse_images(dataset: PoseTransferDataset, folder: str | os.PathLike) -> list[int]:
    """The pairs of ``dataset`` whose coarse image is not in ``folder``."""
    return [
        index for index, names in enumerate(dataset.pairs) if not (Path(folder) / pair_image_name(*names)).is_file()
    ]
