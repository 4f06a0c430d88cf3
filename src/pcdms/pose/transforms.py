"""Image transforms that carry the pose along, so every joint stays on its body part.

Each function takes a PIL image and the keypoints in its frame and returns both transformed.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageOps

from .keypoints import Keypoints, Size, check_size, letterbox_geometry

WHITE = (255, 255, 255)

Resample = Image.Resampling


def _check_frame(image: Image.Image, keypoints: Keypoints) -> None:
    if image.size != keypoints.image_size:
        raise ValueError(f"the keypoints are for a {keypoints.image_size} image, the image is {image.size}")


def resize(
    image: Image.Image, keypoints: Keypoints, size: Size, resample: Resample = Resample.BICUBIC
) -> tuple[Image.Image, Keypoints]:
    """Resize to ``size`` (width, height), stretching if the aspect differs."""
    _check_frame(image, keypoints)
    size = check_size(size, "size")
    return image.resize(size, resample), keypoints.resize(size)


def pad(
    image: Image.Image,
    keypoints: Keypoints,
    left: int,
    top: int,
    right: int = 0,
    bottom: int = 0,
    fill: tuple[int, int, int] = WHITE,
) -> tuple[Image.Image, Keypoints]:
    """Add borders of ``fill`` colour (white, as the 176 to 256 padding of DeepFashion images)."""
    _check_frame(image, keypoints)
    return ImageOps.expand(image, (left, top, right, bottom), fill=fill), keypoints.pad(left, top, right, bottom)


def letterbox(
    image: Image.Image,
    keypoints: Keypoints,
    size: Size,
    fill: tuple[int, int, int] = WHITE,
    resample: Resample = Resample.BICUBIC,
) -> tuple[Image.Image, Keypoints]:
    """Scale to fit inside ``size`` keeping the aspect, then pad, centred, to exactly ``size``.

    A 176x256 DeepFashion image letterboxed to 256x256 gets 40 white pixels on each side.
    """
    _check_frame(image, keypoints)
    size = check_size(size, "size")
    inner, (left, top, right, bottom) = letterbox_geometry(image.size, size)
    image = image if image.size == inner else image.resize(inner, resample)
    return ImageOps.expand(image, (left, top, right, bottom), fill=fill), keypoints.letterbox(size)


def crop(image: Image.Image, keypoints: Keypoints, box: Sequence[int]) -> tuple[Image.Image, Keypoints]:
    """Cut ``box`` = (left, top, right, bottom) out; joints outside it become missing."""
    _check_frame(image, keypoints)
    box = tuple(int(v) for v in box)
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"crop box {box} is empty")
    return image.crop(box), keypoints.crop(box)


def hflip(image: Image.Image, keypoints: Keypoints) -> tuple[Image.Image, Keypoints]:
    """Mirror left to right; left and right joints swap so that the right wrist stays the right wrist."""
    _check_frame(image, keypoints)
    return ImageOps.mirror(image), keypoints.hflip()
