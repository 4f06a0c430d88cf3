"""What PCDMsPipeline checks of its inputs before any stage runs: source photos and steps.

Each check raises a one-line PcdmsError naming the file, or the role and place in the batch.
"""

from __future__ import annotations

from PIL import Image

from ..errors import PcdmsError
from ..io import MIN_IMAGE_SIDE, to_rgb
from .common import STAGE_TITLES, as_list

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


def check_sampling(steps: dict[str, int], num_images_per_pair: int = 1, stages: tuple[str, ...] = STAGES) -> None:
    """Raise PcdmsError, in one line, for fewer steps than a stage of ``stages`` takes (:data:`MIN_STEPS`) or
    fewer than one image per pair."""
    for stage in stages:
        if steps[stage] < MIN_STEPS[stage]:
            why = " (UnCLIP's sampler)" if stage == "prior" else ""
            plural = "s" if MIN_STEPS[stage] > 1 else ""
            raise PcdmsError(
                f"{STAGE_TITLES[stage]} needs at least {MIN_STEPS[stage]} sampling step{plural}{why}, got {steps[stage]}"
            )
    if num_images_per_pair < 1:
        raise PcdmsError(f"at least 1 image per pair is needed, got {num_images_per_pair}")
