"""One rule for a photo that is not the model's shape: pad it to the model's aspect, generate, cut the result back.

A model works at one frame (its training size, or the size asked for): a 548x342 photo given to a
64x128 model would be squeezed to a third of its width if it were simply resized, and the person with
it. Instead the photo and its pose are padded, centred, with white (as DeepFashion's backgrounds) to
the model's aspect; the target pose is fitted into the photo's frame without stretching (letterboxed,
whatever frame it was drawn in) and padded alike; and the generated image is cut back to where the
photo was, so the result keeps the photo's aspect. A photo already of the model's aspect is left as it
is. ``pcdms generate`` (one pair or ``--pairs``), the Python pipeline and the web page all go through
:func:`fit_to_model` and :func:`crop_back`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image, ImageOps

from ..pose import Keypoints
from ..pose.keypoints import Size
from .common import format_images, to_pil

PAD_COLOUR = (255, 255, 255)


@dataclass(frozen=True)
class FittedPair:
    """A pair as the model gets it. ``box``: where the photo lies in the padded frame, as fractions
    (left, top, right, bottom) of its width and height; None when nothing was padded."""

    source: Image.Image
    source_pose: Keypoints | None
    target_pose: Keypoints
    box: tuple[float, float, float, float] | None


def aspect_padding(size: Size, model_size: Size) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) pixels that pad ``size`` (width, height), centred, to the aspect of
    ``model_size``; all 0 when it has that aspect to the pixel."""
    width, height = size
    if width * model_size[1] > height * model_size[0]:  # wider than the model's frame: pad above and below
        extra_x, extra_y = 0, round(width * model_size[1] / model_size[0]) - height
    else:
        extra_x, extra_y = round(height * model_size[0] / model_size[1]) - width, 0
    return extra_x // 2, extra_y // 2, extra_x - extra_x // 2, extra_y - extra_y // 2


def padded_source(source: Image.Image, model_size: Size) -> Image.Image:
    """``source`` padded, centred, with white to the aspect of ``model_size`` (itself when it has that aspect):
    the photo :func:`fit_to_model` gives the model, and the one its DINOv2 and CLIP encodings are computed from."""
    padding = aspect_padding(source.size, model_size)
    return ImageOps.expand(source, padding, fill=PAD_COLOUR) if any(padding) else source


def fit_to_model(
    source: Image.Image, source_pose: Keypoints | None, target_pose: Keypoints, model_size: Size
) -> FittedPair:
    """``source`` (RGB) and its pose (None: to be extracted from the padded photo) padded to the aspect of
    ``model_size`` (width, height), and ``target_pose`` letterboxed into the source's frame and padded
    alike. A source pose drawn in another frame is taken as the photo's, scaled to it."""
    if source_pose is not None and source_pose.image_size != source.size:
        source_pose = source_pose.resize(source.size)
    target = target_pose if target_pose.image_size == source.size else target_pose.letterbox(source.size)
    left, top, right, bottom = aspect_padding(source.size, model_size)
    if not any((left, top, right, bottom)):
        return FittedPair(source, source_pose, target, None)
    padded = padded_source(source, model_size)
    width, height = padded.size
    box = (left / width, top / height, (left + source.width) / width, (top + source.height) / height)
    pose = None if source_pose is None else source_pose.pad(left, top, right, bottom)
    return FittedPair(padded, pose, target.pad(left, top, right, bottom), box)


def crop_box(box: tuple[float, float, float, float] | None, size: Size) -> tuple[int, int, int, int]:
    """``box`` (fractions, see :class:`FittedPair`) in pixels of an image of ``size``: the whole of it for None."""
    if box is None:
        return 0, 0, size[0], size[1]
    left, top = round(box[0] * size[0]), round(box[1] * size[1])
    right, bottom = max(left + 1, round(box[2] * size[0])), max(top + 1, round(box[3] * size[1]))
    return left, top, right, bottom


def crop_back(images: torch.Tensor, boxes: list, per_pair: int) -> list[torch.Tensor]:
    """Each of ``images`` (pairs * per_pair, C, H, W), consecutive ``per_pair`` to a pair, cut to its pair's
    box: a list of (C, h, w) tensors, h x w keeping the pair's source aspect."""
    height, width = images.shape[-2:]
    cut = []
    for index, image in enumerate(images):
        left, top, right, bottom = crop_box(boxes[index // per_pair], (width, height))
        cut.append(image[:, top:bottom, left:right])
    return cut


def framed_output(images: torch.Tensor, boxes: list, per_pair: int, output_type: str):
    """A pipeline's images (pairs * per_pair, 3, H, W) in [0, 1], each cut back to its pair's box where the
    source was padded (:func:`crop_back`), in ``output_type`` ("pil", "np" or "pt", see
    :func:`pcdms.pipelines.common.format_images`). Raises ValueError for "np" or "pt" when the cut images
    differ in size (sources of different aspects)."""
    if any(box is not None for box in boxes):
        cut = crop_back(images, boxes, per_pair)
        if output_type == "pil":
            return [to_pil(picture[None] * 2 - 1)[0] for picture in cut]
        if len({picture.shape for picture in cut}) > 1:
            raise ValueError("sources of different aspects give outputs of different sizes: use output_type='pil'")
        images = torch.stack(cut)
    return format_images(images, output_type)
