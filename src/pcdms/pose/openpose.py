"""OpenPose JSON, as OpenPose, ControlNet editors and ComfyUI's DWPose write it.

``people[i].pose_keypoints_2d``, COCO-18 or BODY_25, missing joints ``0 0 0``: flat ``x y c`` triples or
``x y`` pairs (no confidences), lists of points, coordinates in pixels or in fractions of the canvas
(``--keypoint_scale 3``, ComfyUI), one frame or a list of one frame, any number of people. Written as COCO-18
triples with ControlNet's canvas size.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PoseFileError
from ..io import atomic_write
from .convert import from_body25
from .keypoints import NUM_KEYPOINTS, Keypoints, Size, check_size
from .reading import PathLike, finite_numbers, frame_checked, into_frame, read_json


def read_openpose_json(path: PathLike, image_size: Size | None = None) -> list[Keypoints]:
    """Every person in an OpenPose JSON file, in file order, in the frame of ``image_size``.

    The coordinates are in the frame of the file's ``canvas_width`` x ``canvas_height`` where it has
    them (ControlNet and ComfyUI files), else in ``image_size``; given both, poses are rescaled to
    ``image_size``. Coordinates that all lie in [0, 1] are fractions of that frame (OpenPose's
    ``--keypoint_scale 3``, ComfyUI's DWPose) and are scaled to pixels; with no frame size they are
    refused. Points may be flat ``x y c`` triples, ``x y`` pairs (no confidences; ``0 0`` or negative
    is a missing joint) or lists of points; 18 (COCO) or 25 (BODY_25) of them. Confidences above 1
    count as 1. A person without body points is an empty pose. Raises :class:`PoseFileError`.
    """
    path = Path(path)
    return openpose_people(read_json(path), path, image_size)


def _openpose_document(data: Any, path: Path) -> dict:
    """The one frame of an OpenPose file; ComfyUI writes a list of frames, one per image of a batch."""
    if isinstance(data, list) and data and all(isinstance(frame, dict) and "people" in frame for frame in data):
        if len(data) > 1:
            raise PoseFileError(f"{path}: {len(data)} frames of poses (a batch or a video); pcdms reads one frame")
        data = data[0]
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise PoseFileError(f"{path}: not an OpenPose file (no 'people' list)")
    return data


def _person_points(person: Any, where: str) -> tuple[np.ndarray, np.ndarray] | None:
    """A person's body points (N, 2) and confidences (N,), N = 18 or 25; None when it has no body points."""
    if not isinstance(person, dict):
        raise PoseFileError(f"{where} is not an object with pose_keypoints_2d")
    # "pose_keypoints" is the name OpenPose used before version 1.2.
    values = person.get("pose_keypoints_2d", person.get("pose_keypoints"))
    if values is None or values == []:
        return None
    if isinstance(values, list) and values and all(isinstance(point, list) for point in values):
        widths = {len(point) for point in values}  # a list of points: [[x, y, c], ...] or [[x, y], ...]
        if widths not in ({2}, {3}):
            raise PoseFileError(f"{where}: pose_keypoints_2d points must all be [x, y] or all [x, y, confidence]")
        values = [value for point in values for value in point]
        counts = {2: (2 * NUM_KEYPOINTS, 2 * 25), 3: (3 * NUM_KEYPOINTS, 3 * 25)}[widths.pop()]
    else:
        counts = (3 * NUM_KEYPOINTS, 3 * 25, 2 * NUM_KEYPOINTS, 2 * 25)
    count = len(values) if isinstance(values, list) else 0
    if count not in counts:
        raise PoseFileError(
            f"{where}: pose_keypoints_2d has {count} numbers; expected 54 or 75 (x y confidence of COCO-18 or "
            "BODY_25 points) or 36 or 50 (x y)"
        )
    numbers = finite_numbers(values, count, where, "pose_keypoints_2d")
    if count in (3 * NUM_KEYPOINTS, 3 * 25):
        triples = numbers.reshape(-1, 3)
        if (triples[:, 2] < 0).any():
            raise PoseFileError(f"{where}: negative confidence")
        return triples[:, :2], np.minimum(triples[:, 2], 1.0)
    points = numbers.reshape(-1, 2)
    # Without confidences, OpenPose's 0 0 and the datasets' -1 -1 mark a missing joint.
    missing = (points == 0).all(axis=1) | (points < 0).any(axis=1)
    return points, np.where(missing, 0.0, 1.0)


def _are_fractions(people: list, path: Path, frame: Size | None) -> bool:
    """Whether the file's numbers are fractions of the canvas rather than pixels (refused without a frame).

    A body whose every joint lies within one pixel of the corner is not a pose in pixels."""
    present = [points[scores > 0] for points, scores in people]
    values = np.concatenate([points.reshape(-1) for points in present]) if present else np.zeros(0)
    if values.size == 0 or values.max() > 1:
        return False
    if values.min() < 0:
        raise PoseFileError(
            f"{path}: every coordinate lies in [-1, 1] (OpenPose's --keypoint_scale 4); pcdms reads pixels or "
            "fractions of the canvas in [0, 1]"
        )
    if frame is None:
        raise PoseFileError(
            f"{path}: the coordinates are fractions of the canvas (all in [0, 1]) and the file does not record "
            "its size; give the image size (image_size / --image-size)"
        )
    return True


def openpose_people(data: Any, path: Path, image_size: Size | None) -> list[Keypoints]:
    """Every person of an OpenPose document already parsed from JSON (``data``), as :func:`read_openpose_json`
    reads them; ``path`` names the file (or the frame of a sequence) in errors."""
    data = _openpose_document(data, path)
    canvas = None
    if "canvas_width" in data or "canvas_height" in data:
        try:
            canvas = check_size((data.get("canvas_width"), data.get("canvas_height")))
        except (TypeError, ValueError):
            raise PoseFileError(f"{path}: canvas_width and canvas_height must be positive integers") from None
        canvas = frame_checked(canvas, str(path))
    given = None if image_size is None else frame_checked(check_size(image_size), str(path))
    read = [_person_points(person, f"{path}: person {number}") for number, person in enumerate(data["people"])]
    points_read = [person for person in read if person is not None]
    fractions = _are_fractions(points_read, path, canvas or given)
    frame = _frame(canvas, given, path)
    people = []
    for number, person in enumerate(read):
        where = f"{path}: person {number}"
        if person is None:
            people.append(Keypoints.empty(frame))
            continue
        points, scores = person
        if fractions:
            points = points * np.array(frame, dtype=np.float64)
        if len(points) == 25:
            keypoints = from_body25(points, scores, frame)
        else:
            present = scores > 0
            keypoints = Keypoints(np.where(present[:, None], points, np.nan), scores, frame)
        keypoints = into_frame(keypoints, where)
        people.append(keypoints if given is None else keypoints.resize(given))
    return people


def main_person(people: Sequence[Keypoints]) -> int:
    """The index of the main subject among ``people``: the largest (area of the box around its joints), and
    of equally large ones the nearest the centre of the image. Summed confidence would pick a small,
    sharply detected passer-by over a large subject whose legs are cut off."""

    def size_and_distance(person: Keypoints) -> tuple[float, float]:
        points = person.xy[person.present]
        if not len(points):
            return 0.0, math.inf
        width, height = np.ptp(points, axis=0) + 1
        centre = (points.min(axis=0) + points.max(axis=0)) / 2
        return float(width * height), float(np.hypot(*(centre - np.array(person.image_size) / 2)))

    measured = [size_and_distance(person) for person in people]
    return min(range(len(people)), key=lambda index: (-measured[index][0], measured[index][1]))


def write_openpose_json(path: PathLike, people: Keypoints | Sequence[Keypoints]) -> Path:
    """Write COCO-18 OpenPose JSON (with ControlNet's canvas size, so the frame is not lost)."""
    if isinstance(people, Keypoints):
        people = [people]
    if not people or len({person.image_size for person in people}) != 1:
        raise ValueError("write_openpose_json needs at least one pose, all of the same image size")
    document = {
        "version": 1.3,
        "canvas_width": people[0].width,
        "canvas_height": people[0].height,
        "people": [{"pose_keypoints_2d": _openpose_triples(person)} for person in people],
    }
    path = Path(path)
    with atomic_write(path) as file:
        json.dump(document, file)
    return path


def _openpose_triples(keypoints: Keypoints) -> list[float]:
    triples = np.concatenate([np.nan_to_num(keypoints.xy, nan=0.0), keypoints.confidence[:, None]], axis=1)
    return [float(v) for v in triples.reshape(-1)]


def _frame(file_size: Size | None, image_size: Size | None, path: Path) -> Size:
    if file_size is None and image_size is None:
        raise PoseFileError(f"{path}: the file does not record the image size; give it (image_size / --image-size)")
    return frame_checked(file_size if file_size is not None else check_size(image_size), str(path))
