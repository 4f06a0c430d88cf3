"""What PCDMsPipeline checks of its inputs before any stage runs: source photos and images per pair (its
sampling settings: :func:`pcdms.pipelines.settings.checked_sampling`).

Each check raises a one-line PcdmsError naming the file, or the role and place in the batch.
"""

from __future__ import annotations

from PIL import Image

from ..errors import PcdmsError
from ..io import MIN_IMAGE_SIDE, to_rgb
from .common import as_list

STAGES = ("prior", "inpaint", "refine")


def name_in_batch(role: str, number: int, count: int) -> str:
    return f"{role} {number + 1} of {count}" if count > 1 else role


def checked_source(image: Image.Image, number: int, batch) -> Image.Image:
    """A source photo as 8-bit RGB (pcdms.io.to_rgb: any mode, cut-outs on white), refused below the minimum size."""
    where = name_in_batch("source image", number, len(as_list(batch)))
    if min(image.size) < MIN_IMAGE_SIDE:
        width, height = image.size
        raise PcdmsError(f"{where}: {width}x{height} pixels is too small (at least {MIN_IMAGE_SIDE} pixels a side)")
    return to_rgb(image, where)


# Fewer steps than these fail inside the samplers: UnCLIP's scheduler needs 2.
MIN_STEPS = {"prior": 2, "inpaint": 1, "refine": 1}


def check_images_per_pair(num_images_per_pair: int) -> None:
    """Raise PcdmsError, in one line, for fewer than one image per pair."""
    if num_images_per_pair < 1:
        raise PcdmsError(f"at least 1 image per pair is needed, got {num_images_per_pair}")
