"""pcdms' own pose JSON, which names every joint and records the image size and confidences.

``{"format": "pcdms-pose", "version": 1, "image_size": [width, height], "keypoints": {name: [x, y,
confidence] or null}}``, coordinates in pixels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PoseFileError
from ..io import atomic_write
from .keypoints import KEYPOINT_NAMES, NUM_KEYPOINTS, Keypoints, check_size
from .reading import PathLike, finite_numbers, frame_checked, into_frame, read_json

POSE_JSON_FORMAT = "pcdms-pose"


def pose_to_dict(keypoints: Keypoints) -> dict[str, Any]:
    """The pcdms pose JSON document of ``keypoints`` (a missing joint is null)."""
    joints = {}
    for name, (x, y), confidence, present in zip(
        KEYPOINT_NAMES, keypoints.xy, keypoints.confidence, keypoints.present, strict=True
    ):
        joints[name] = [float(x), float(y), float(confidence)] if present else None
    return {"format": POSE_JSON_FORMAT, "version": 1, "image_size": list(keypoints.image_size), "keypoints": joints}


def pose_from_dict(data: Any, where: str) -> Keypoints:
    """The keypoints of a pcdms pose JSON document already parsed; raises :class:`PoseFileError` naming
    ``where`` (the file, or the frame of a sequence)."""
    if not isinstance(data, dict) or data.get("format") != POSE_JSON_FORMAT:
        raise PoseFileError(f"{where}: not a pcdms pose (its 'format' must be {POSE_JSON_FORMAT!r})")
    if data.get("version") != 1:
        raise PoseFileError(f"{where}: pose format version {data.get('version')!r} is not supported (expected 1)")
    try:
        image_size = check_size(data.get("image_size") or ())
    except (TypeError, ValueError):
        raise PoseFileError(f"{where}: image_size must be [width, height] in pixels") from None
    frame_checked(image_size, where)
    joints = data.get("keypoints")
    if not isinstance(joints, dict):
        raise PoseFileError(f"{where}: 'keypoints' must map joint names to [x, y, confidence] or null")
    unknown = sorted(set(joints) - set(KEYPOINT_NAMES))
    absent = [name for name in KEYPOINT_NAMES if name not in joints]
    if unknown or absent:
        raise PoseFileError(f"{where}: joints must be exactly the 18 names; unknown {unknown}, absent {absent}")
    xy = np.full((NUM_KEYPOINTS, 2), np.nan)
    confidence = np.zeros(NUM_KEYPOINTS)
    for index, name in enumerate(KEYPOINT_NAMES):
        if joints[name] is None:
            continue
        x, y, score = finite_numbers(joints[name], 3, where, name)
        if not 0 < score <= 1:
            raise PoseFileError(
                f"{where}: {name} has confidence {score:g}, outside (0, 1]; use null for a missing joint"
            )
        xy[index], confidence[index] = (x, y), score
    present = ~np.isnan(xy[:, 0])
    if present.sum() > 1 and np.nanmax(xy) <= 1 and max(image_size) > 2:
        raise PoseFileError(
            f"{where}: every joint lies within a pixel of the corner; a pcdms pose holds pixels, not fractions "
            "of the image (multiply by image_size)"
        )
    return into_frame(Keypoints(xy, confidence, image_size), where)


def read_pose_json(path: PathLike) -> Keypoints:
    """A pcdms pose JSON file, in its own frame; raises :class:`PoseFileError` naming the file."""
    path = Path(path)
    return pose_from_dict(read_json(path), str(path))


def write_pose_json(path: PathLike, keypoints: Keypoints) -> Path:
    """Write ``keypoints`` as pcdms pose JSON, atomically."""
    path = Path(path)
    with atomic_write(path) as file:
        json.dump(pose_to_dict(keypoints), file, indent=2)
        file.write("\n")
    return path
