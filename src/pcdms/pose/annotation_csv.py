"""The DeepFashion / Market-1501 annotation CSV of PATN, PIDM, NTED and CFLD.

``name: [y0, ..., y17]: [x0, ..., x17]`` under the header ``name:keypoints_y:keypoints_x``, -1 for a missing
joint; the coordinates are in the dataset's frame (176x256 for DeepFashion, 64x128 for Market-1501).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import PoseFileError
from ..io import atomic_write
from .keypoints import KEYPOINT_NAMES, NUM_KEYPOINTS, Keypoints, Size, check_size
from .reading import PathLike, finite_numbers, into_frame, read_text

ANNOTATION_HEADER = "name:keypoints_y:keypoints_x"


def read_annotation_csv(path: PathLike, image_size: Size) -> dict[str, Keypoints]:
    """``{image name: keypoints}`` from an annotation CSV whose coordinates are in an ``image_size`` frame.

    DeepFashion's (PATN / CFLD) are in a 176x256 frame, Market-1501's in 64x128.
    """
    path = Path(path)
    image_size = check_size(image_size)
    lines = read_text(path).splitlines()
    if not lines or lines[0].replace(" ", "") != ANNOTATION_HEADER:
        raise PoseFileError(f"{path}: not an annotation CSV (the first line must be {ANNOTATION_HEADER!r})")
    annotations: dict[str, Keypoints] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        parts = line.rsplit(":", 2)
        if len(parts) != 3:
            raise PoseFileError(f"{where}: expected 'name: [ys]: [xs]'")
        name = parts[0].strip()
        columns = []
        for text, axis in ((parts[1], "keypoints_y"), (parts[2], "keypoints_x")):
            try:
                values = json.loads(text)
            except json.JSONDecodeError:
                raise PoseFileError(f"{where}: {axis} is not a list of numbers (truncated line?)") from None
            columns.append(finite_numbers(values, NUM_KEYPOINTS, where, axis))
        ys, xs = columns
        missing_x, missing_y = xs == -1, ys == -1
        if (missing_x != missing_y).any():
            index = int(np.flatnonzero(missing_x != missing_y)[0])
            raise PoseFileError(f"{where}: {KEYPOINT_NAMES[index]} has only one coordinate equal to -1")
        xy = np.where(missing_x[:, None], np.nan, np.stack([xs, ys], axis=1))
        keypoints = into_frame(Keypoints(xy, np.where(missing_x, 0.0, 1.0), image_size), where)
        if name in annotations and annotations[name] != keypoints:
            raise PoseFileError(f"{where}: {name} is annotated twice, differently")
        annotations[name] = keypoints
    return annotations


def write_annotation_csv(path: PathLike, annotations: Mapping[str, Keypoints]) -> Path:
    """Write an annotation CSV; integral coordinates are written as integers, as the datasets do."""
    rows = [ANNOTATION_HEADER]
    for name, keypoints in annotations.items():
        xy = np.where(keypoints.present[:, None], keypoints.xy, -1.0)
        ys, xs = ([_plain_number(v) for v in xy[:, axis]] for axis in (1, 0))
        rows.append(f"{name}: [{', '.join(ys)}]: [{', '.join(xs)}]")
    path = Path(path)
    with atomic_write(path) as file:
        file.write("\n".join(rows) + "\n")
    return path


def _plain_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
