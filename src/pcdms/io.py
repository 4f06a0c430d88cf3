"""Reading images, and writing files so that a failure never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import PcdmsError

EXIF_ORIENTATION = 0x0112


def load_image(path: str | os.PathLike) -> Image.Image:
    """Open an image file as RGB, upright (EXIF orientation applied), transparency over white."""
    path = Path(path)
    if not path.exists():
        raise PcdmsError(f"{path}: no such file")
    if not path.is_file():
        raise PcdmsError(f"{path}: not a file")
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except UnidentifiedImageError:
        raise PcdmsError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError as error:
        raise PcdmsError(f"{path}: image too large to open safely ({error})") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise PcdmsError(f"{path}: damaged image file ({error})") from None
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # A cut-out person on a transparent background: compose it on white, not on black.
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image.convert("RGB")


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image file as :func:`load_image` returns it, reading only the header."""
    path = Path(path)
    try:
        with Image.open(path) as opened:
            width, height = opened.size
            orientation = opened.getexif().get(EXIF_ORIENTATION, 1)
    except FileNotFoundError:
        raise PcdmsError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise PcdmsError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise PcdmsError(f"{path}: damaged image file ({error})") from None
    # Orientations 5 to 8 are a quarter turn: width and height swap when the image is set upright.
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """Open ``path`` for writing through a temporary file that replaces it only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        with open(temporary, mode, **open_kwargs) as file:
            yield file
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside ``path`` that replaces it (and whatever was there) only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    temporary.mkdir()
    try:
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
