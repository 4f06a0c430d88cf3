"""What every pose-file reader shares: text and JSON read with one-line errors, numbers and frames checked.

Readers raise :class:`PoseFileError` naming the file (and line) and the problem. Joints up to a tenth of the
frame outside it are moved onto its edge (with a warning); farther out, the numbers are wrong and the file is
refused. Frames above the image limits of :mod:`pcdms.io` are refused before anything is drawn.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PcdmsError, PcdmsWarning, PoseFileError
from ..io import check_frame_size
from .keypoints import KEYPOINT_NAMES, Keypoints, Size

PathLike = str | os.PathLike
# Detectors place a joint a little outside the image when the body is cut by its edge (DWPose does; editors
# let a joint be dragged past the border). Up to this share of the frame's side, such a joint is moved onto
# the edge; farther means the numbers are wrong (another frame, another unit) and the file is refused.
FRAME_MARGIN_SHARE = 0.1
# The most nested a pose JSON may be: the deepest real one (a list of frames of people of points) is 5 deep.
MAX_JSON_DEPTH = 32


def read_text(path: Path) -> str:
    if not path.exists():
        raise PoseFileError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PoseFileError(f"{path}: not a text file") from None
    except OSError as error:
        raise PoseFileError(f"{path}: cannot read ({error.strerror})") from None


def read_json(path: Path) -> Any:
    text = read_text(path)
    _check_depth(text, path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise PoseFileError(
            f"{path}: invalid JSON at line {error.lineno}, column {error.colno} ({error.msg}); is the file truncated?"
        ) from None
    except RecursionError:  # nesting hidden from the scan below (it cannot be, but never a traceback)
        raise PoseFileError(f"{path}: JSON nested too deeply to be a pose file") from None


def _check_depth(text: str, path: Path) -> None:
    """Refuse JSON nested deeper than any pose file, before the parser recurses into it."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                raise PoseFileError(f"{path}: JSON nested more than {MAX_JSON_DEPTH} deep; not a pose file")
        elif char in "]}":
            depth -= 1


def into_frame(keypoints: Keypoints, where: str) -> Keypoints:
    """Joints a little outside the image moved onto its edge (warned about); a joint farther out is an error."""
    outside = np.flatnonzero(keypoints.outside_frame(0.0))
    if not outside.size:
        return keypoints
    size = np.array(keypoints.image_size, dtype=np.float64)
    low, high = -0.5 - FRAME_MARGIN_SHARE * size, size - 0.5 + FRAME_MARGIN_SHARE * size
    width, height = keypoints.image_size
    for index in outside:
        x, y = keypoints.xy[index]
        if (keypoints.xy[index] < low).any() or (keypoints.xy[index] > high).any():
            raise PoseFileError(
                f"{where}: {KEYPOINT_NAMES[index]} at ({x:g}, {y:g}) lies outside the {width}x{height} image "
                f"(more than {FRAME_MARGIN_SHARE:.0%} of its side); are the coordinates of another frame?"
            )
    names = ", ".join(KEYPOINT_NAMES[index] for index in outside)
    warnings.warn(
        f"{where}: {names} slightly outside the {width}x{height} image, moved onto its edge", PcdmsWarning, stacklevel=2
    )
    xy = keypoints.xy.copy()
    xy[outside] = np.clip(xy[outside], 0, size - 1)
    return keypoints._replace(xy=xy)


def frame_checked(size: Size, where: str) -> Size:
    try:
        check_frame_size(size, where)
    except PcdmsError as error:
        raise PoseFileError(str(error)) from None
    return size


def finite_numbers(values: Any, count: int, where: str, what: str) -> np.ndarray:
    if not isinstance(values, list) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise PoseFileError(f"{where}: {what} must be a list of numbers")
    if len(values) != count:
        raise PoseFileError(f"{where}: {what} has {len(values)} numbers, expected {count}")
    array = np.array(values, dtype=np.float64)
    if not np.isfinite(array).all():
        raise PoseFileError(f"{where}: {what} contains NaN or infinite numbers")
    return array
