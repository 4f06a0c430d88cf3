"""Reading images, and writing files so that a failure never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import PcdmsError

EXIF_ORIENTATION = 0x0112
# The largest image (or pose frame) pcdms reads: a 16384-pixel side or 40 megapixels, whichever comes first.
# Checked from the header, before any pixel is decoded: a file of a few kilobytes can declare a gigapixel.
MAX_IMAGE_SIDE = 16384
MAX_IMAGE_PIXELS = 40_000_000
# The smallest: below this a photo holds no person to speak of (and the encoders would upsample a blur).
MIN_IMAGE_SIDE = 16
# A cut-out (transparent background) is composed on this colour everywhere: CLI, Python API, web page.
BACKGROUND = (255, 255, 255)


def size_limits() -> str:
    """The largest size pcdms reads, in words, for messages."""
    return f"at most {MAX_IMAGE_SIDE} pixels a side and {MAX_IMAGE_PIXELS / 1_000_000:g} megapixels"


def check_frame_size(size: tuple[int, int], where: str) -> None:
    """Refuse an image or pose frame of ``size`` (width, height) above the limits; the message names ``where``.

    Raises :class:`PcdmsError`.
    """
    width, height = size
    if max(width, height) > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        raise PcdmsError(f"{where}: {width}x{height} pixels is too large for pcdms ({size_limits()})")


def _open_header(path: Path) -> Image.Image:
    """The image opened lazily (only its header read), its size checked against the limits."""
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning; the size is checked below against pcdms' lower limits.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(path)
    except FileNotFoundError:
        raise PcdmsError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise PcdmsError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError as error:
        # Pillow refuses before it tells the size; its message gives the pixel count.
        counted = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(counted.group(1)) / 1_000_000:g} megapixels" if counted else "the image"
        raise PcdmsError(f"{path}: {size} is too large for pcdms ({size_limits()})") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise PcdmsError(f"{path}: damaged image file ({error})") from None
    try:
        check_frame_size(opened.size, str(path))
    except PcdmsError:
        opened.close()
        raise
    return opened


def load_image(path: str | os.PathLike) -> Image.Image:
    """Open an image file as 8-bit RGB, upright (EXIF orientation applied), transparency over white.

    Any mode Pillow opens is converted by :func:`to_rgb`. The size is checked from the header before
    any pixel is decoded. Raises :class:`PcdmsError` naming the file when it is missing, not an image,
    damaged, larger than :data:`MAX_IMAGE_SIDE` / :data:`MAX_IMAGE_PIXELS` or smaller than
    :data:`MIN_IMAGE_SIDE` pixels a side.
    """
    path = Path(path)
    if not path.exists():
        raise PcdmsError(f"{path}: no such file")
    if not path.is_file():
        raise PcdmsError(f"{path}: not a file")
    opened = _open_header(path)
    with opened:
        if min(opened.size) < MIN_IMAGE_SIDE:
            width, height = opened.size
            raise PcdmsError(f"{path}: {width}x{height} pixels is too small (at least {MIN_IMAGE_SIDE} pixels a side)")
        try:
            opened.load()
            image = ImageOps.exif_transpose(opened)
        except (OSError, SyntaxError, ValueError) as error:
            raise PcdmsError(f"{path}: damaged image file ({error})") from None
    return to_rgb(image, str(path))


def to_rgb(image: Image.Image, where: str = "image") -> Image.Image:
    """Any image Pillow holds as 8-bit RGB, the one conversion every path uses.

    16-bit modes (``I;16``, ``I;16B``...) are scaled from 0..65535 to 0..255, not clipped; 32-bit
    integers (``I``) likewise when they fit 16 bits (what 16-bit files decode to), else from
    0..2**31-1; floats (``F``) in [0, 1] are scaled by 255, floats in [0, 255] taken as levels, others
    refused (:class:`PcdmsError` naming ``where``). Transparency (RGBA, LA, PA, P or L with a
    transparent colour) is composed on white. CMYK, 1, L, P and the rest convert as Pillow converts them.
    """
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        image = _gray_to_8bit(image, where)
    if image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info:
        # A cut-out person on a transparent background: composed on white, not on black.
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (*BACKGROUND, 255)), rgba)
    return image.convert("RGB")


def _gray_to_8bit(image: Image.Image, where: str) -> Image.Image:
    values = np.asarray(image).astype(np.float64)
    if image.mode == "F":
        if not np.isfinite(values).all():
            raise PcdmsError(f"{where}: a float image with NaN or infinite values")
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if low < 0 or high > 255:
            raise PcdmsError(
                f"{where}: a float image with values from {low:g} to {high:g}; pcdms reads floats in [0, 1] or [0, 255]"
            )
        scale = 255.0 if high <= 1 else 1.0
    elif image.mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
        values = np.clip(values, 0, None)
        scale = 255.0 / (2**31 - 1)
    else:  # 16 bits, or 32-bit integers holding 16 bits (a 16-bit PNG or TIFF decoded by an older Pillow)
        scale = 255.0 / 65535
    return Image.fromarray(np.clip(np.round(values * scale), 0, 255).astype(np.uint8))


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image file as :func:`load_image` returns it, reading only the header.

    Raises :class:`PcdmsError` naming the file when it is missing, not an image or too large.
    """
    path = Path(path)
    with _open_header(path) as opened:
        width, height = opened.size
        try:
            orientation = opened.getexif().get(EXIF_ORIENTATION, 1)
        except (OSError, SyntaxError, ValueError) as error:
            raise PcdmsError(f"{path}: damaged image file ({error})") from None
    # Orientations 5 to 8 are a quarter turn: width and height swap when the image is set upright.
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _write_error(error: OSError, path: Path, temporary: Path) -> PcdmsError | None:
    """The one-line error for a failed write of ``path``, naming ``path`` (never the temporary name; a file
    inside a temporary folder by its final name), or None when the error is about some other file."""
    named = Path(error.filename) if error.filename else None
    shown = path
    if named is not None and named in path.parents:
        return PcdmsError(f"{path}: cannot create its folder {named} ({error.strerror or error})")
    if named is not None and named != temporary and named.is_relative_to(temporary):
        shown = path / named.relative_to(temporary)
    elif named is not None and named not in (temporary, path):
        return None
    if error.errno == errno.ENOSPC:
        return PcdmsError(f"{shown}: no space left on device writing it (in {shown.parent})")
    if error.errno == errno.EDQUOT:
        return PcdmsError(f"{shown}: disk quota exceeded writing it (in {shown.parent})")
    return PcdmsError(f"{shown}: cannot write it ({error.strerror or error})")


@contextlib.contextmanager
def _errors_name(path: Path, temporary: Path) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        message = _write_error(error, path, temporary)
        if message is None:
            raise
        raise message from None


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """Open ``path`` for writing through a temporary file that replaces it only on success.

    The folder is made if need be. A failed write (read-only file system, full disk, no permission)
    raises :class:`PcdmsError` naming ``path`` (and its folder on a full disk), never the temporary file.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        with _errors_name(path, temporary):
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, mode, **open_kwargs) as file:
                yield file
            os.replace(temporary, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside ``path`` that replaces it (and whatever was there) only on success.

    Failures to write raise :class:`PcdmsError` naming ``path``, as :func:`atomic_write`.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        with _errors_name(path, temporary):
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.mkdir()
            yield temporary
            if path.exists():
                shutil.rmtree(path)
            os.replace(temporary, path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def save_image(image: Image.Image, path: str | os.PathLike, **save_kwargs) -> Path:
    """Save an image atomically, in the format its file extension names."""
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise PcdmsError(f"{path}: unknown image extension {path.suffix!r}; use .png or .jpg")
    if image_format == "JPEG":
        save_kwargs.setdefault("quality", 95)
    with atomic_write(path, "wb") as file:
        image.save(file, format=image_format, **save_kwargs)
    return path
