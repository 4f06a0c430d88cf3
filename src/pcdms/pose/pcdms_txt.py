"""The PCDMs pose txt: 18 lines of ``x y``, in a pose convention (:mod:`pcdms.pose.vector`).

The file does not record the image size, so a reader is given it; it is written with numpy.savetxt's number
format, as the official files are.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import PoseFileError
from ..io import atomic_write
from .keypoints import NUM_KEYPOINTS, Keypoints, Size
from .reading import PathLike, read_text
from .vector import OFFICIAL, PoseConvention, keypoints_from_vector, pose_vector


def read_pcdms_txt(path: PathLike, image_size: Size, convention: PoseConvention | str = OFFICIAL) -> Keypoints:
    """A PCDMs pose txt (18 lines of ``x y`` in ``convention``), in the frame of an image of ``image_size``."""
    path = Path(path)
    return _vector_to_keypoints(read_pcdms_txt_vector(path), image_size, convention, path)


def read_pcdms_txt_vector(path: PathLike) -> np.ndarray:
    """The 36 raw numbers of a PCDMs pose txt, exactly as the official code feeds them to the prior."""
    path = Path(path)
    rows = read_text(path).splitlines()
    while rows and not rows[-1].strip():
        rows.pop()
    if len(rows) != NUM_KEYPOINTS:
        raise PoseFileError(f"{path}: has {len(rows)} lines, expected {NUM_KEYPOINTS} lines of 'x y'")
    values = []
    for number, row in enumerate(rows, start=1):
        fields = row.split()
        if len(fields) != 2:
            raise PoseFileError(f"{path}, line {number}: expected two numbers 'x y', got {row.strip()!r}")
        try:
            pair = [float(field) for field in fields]
        except ValueError:
            raise PoseFileError(f"{path}, line {number}: {row.strip()!r} is not two numbers") from None
        if not all(math.isfinite(v) for v in pair):
            raise PoseFileError(f"{path}, line {number}: NaN or infinite coordinate")
        values.extend(pair)
    return np.array(values)


def _vector_to_keypoints(vector, image_size, convention, path: Path) -> Keypoints:
    try:
        return keypoints_from_vector(vector, image_size, convention)
    except ValueError as error:
        raise PoseFileError(f"{path}: {error}") from None


def write_pcdms_txt(path: PathLike, keypoints: Keypoints, convention: PoseConvention | str = OFFICIAL) -> Path:
    """Write a PCDMs pose txt in ``convention``, with numpy.savetxt's number format as the official files."""
    rows = pose_vector(keypoints, convention).reshape(NUM_KEYPOINTS, 2)
    path = Path(path)
    with atomic_write(path) as file:
        file.writelines(f"{x:.18e} {y:.18e}\n" for x, y in rows)
    return path
