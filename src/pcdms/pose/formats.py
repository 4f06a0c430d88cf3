"""Reading and writing poses in the formats users hold.

- OpenPose JSON (``people[i].pose_keypoints_2d``), COCO-18 or BODY_25, missing joints ``0 0 0``.
- The DeepFashion / Market-1501 annotation CSV of PATN, PIDM, NTED and CFLD:
  ``name: [y0, ..., y17]: [x0, ..., x17]`` under the header ``name:keypoints_y:keypoints_x``, -1 for
  a missing joint.
- The PCDMs pose txt: 18 lines of ``x y``, in a pose convention (pcdms.pose.vector).
- pcdms' own JSON, which names every joint and records the image size and confidences.

Readers check what they read and raise :class:`PoseFileError` naming the file (and line) and the
problem. Writers write atomically.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PoseFileError
from ..io import atomic_write
from .convert import from_body25
from .keypoints import KEYPOINT_NAMES, NUM_KEYPOINTS, Keypoints, Size, check_size
from .vector import OFFICIAL, PoseConvention, keypoints_from_vector, pose_vector

PathLike = str | os.PathLike
POSE_JSON_FORMAT = "pcdms-pose"
ANNOTATION_HEADER = "name:keypoints_y:keypoints_x"
# Joints may sit up to this many pixels outside the image; farther means the numbers are wrong.
FRAME_MARGIN = 1.0


def _read_text(path: Path) -> str:
    if not path.exists():
        raise PoseFileError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PoseFileError(f"{path}: not a text file") from None
    except OSError as error:
        raise PoseFileError(f"{path}: cannot read ({error.strerror})") from None


def _read_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise PoseFileError(
            f"{path}: invalid JSON at line {error.lineno}, column {error.colno} ({error.msg}); is the file truncated?"
        ) from None


def _check_in_frame(keypoints: Keypoints, where: str) -> Keypoints:
    outside = np.flatnonzero(keypoints.outside_frame(FRAME_MARGIN))
    if outside.size:
        index = outside[0]
        x, y = keypoints.xy[index]
        width, height = keypoints.image_size
        raise PoseFileError(
            f"{where}: {KEYPOINT_NAMES[index]} at ({x:g}, {y:g}) lies outside the {width}x{height} image"
        )
    return keypoints


def _finite_numbers(values: Any, count: int, where: str, what: str) -> np.ndarray:
    if not isinstance(values, list) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise PoseFileError(f"{where}: {what} must be a list of numbers")
    if len(values) != count:
        raise PoseFileError(f"{where}: {what} has {len(values)} numbers, expected {count}")
    array = np.array(values, dtype=np.float64)
    if not np.isfinite(array).all():
        raise PoseFileError(f"{where}: {what} contains NaN or infinite numbers")
    return array


def _frame(file_size: Size | None, image_size: Size | None, path: Path) -> Size:
    if file_size is None and image_size is None:
        raise PoseFileError(f"{path}: the file does not record the image size; give it (image_size / --image-size)")
    return file_size if file_size is not None else check_size(image_size)


# OpenPose JSON ------------------------------------------------------------------------------------


def read_openpose_json(path: PathLike, image_size: Size | None = None) -> list[Keypoints]:
    """Every person in an OpenPose JSON file, in the frame of ``image_size``.

    The coordinates are in the frame of the file's ``canvas_width`` x ``canvas_height`` where it has
    them (ControlNet-style files), else in ``image_size``; given both, poses are rescaled to
    ``image_size``. Confidences above 1 count as 1.
    """
    path = Path(path)
    return _openpose_people(_read_json(path), path, image_size)


def _openpose_people(data: Any, path: Path, image_size: Size | None) -> list[Keypoints]:
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise PoseFileError(f"{path}: not an OpenPose file (no 'people' list)")
    canvas = None
    if "canvas_width" in data or "canvas_height" in data:
        try:
            canvas = check_size((data.get("canvas_width"), data.get("canvas_height")))
        except (TypeError, ValueError):
            raise PoseFileError(f"{path}: canvas_width and canvas_height must be positive integers") from None
    frame = _frame(canvas, image_size, path)
    people = []
    for number, person in enumerate(data["people"]):
        where = f"{path}: person {number}"
        values = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
        if values is None:
            raise PoseFileError(f"{where} has no pose_keypoints_2d")
        count = len(values) if isinstance(values, list) else 0
        if count not in (3 * NUM_KEYPOINTS, 3 * 25):
            raise PoseFileError(
                f"{where}: pose_keypoints_2d has {count} numbers; expected 54 (COCO-18) or 75 (BODY_25)"
            )
        triples = _finite_numbers(values, count, where, "pose_keypoints_2d").reshape(-1, 3)
        if (triples[:, 2] < 0).any():
            raise PoseFileError(f"{where}: negative confidence")
        points, scores = triples[:, :2], np.minimum(triples[:, 2], 1.0)
        if len(triples) == 25:
            keypoints = from_body25(points, scores, frame)
        else:
            present = scores > 0
            keypoints = Keypoints(np.where(present[:, None], points, np.nan), scores, frame)
        keypoints = _check_in_frame(keypoints, where)
        people.append(keypoints if image_size is None else keypoints.resize(image_size))
    return people


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


# DeepFashion / Market-1501 annotation CSV ---------------------------------------------------------


def read_annotation_csv(path: PathLike, image_size: Size) -> dict[str, Keypoints]:
    """``{image name: keypoints}`` from an annotation CSV whose coordinates are in an ``image_size`` frame.

    DeepFashion's (PATN / CFLD) are in a 176x256 frame, Market-1501's in 64x128.
    """
    path = Path(path)
    image_size = check_size(image_size)
    lines = _read_text(path).splitlines()
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
            columns.append(_finite_numbers(values, NUM_KEYPOINTS, where, axis))
        ys, xs = columns
        missing_x, missing_y = xs == -1, ys == -1
        if (missing_x != missing_y).any():
            index = int(np.flatnonzero(missing_x != missing_y)[0])
            raise PoseFileError(f"{where}: {KEYPOINT_NAMES[index]} has only one coordinate equal to -1")
        xy = np.where(missing_x[:, None], np.nan, np.stack([xs, ys], axis=1))
        keypoints = _check_in_frame(Keypoints(xy, np.where(missing_x, 0.0, 1.0), image_size), where)
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


# PCDMs pose txt -----------------------------------------------------------------------------------


def read_pcdms_txt(path: PathLike, image_size: Size, convention: PoseConvention | str = OFFICIAL) -> Keypoints:
    """A PCDMs pose txt (18 lines of ``x y`` in ``convention``), in the frame of an image of ``image_size``."""
    path = Path(path)
    return _vector_to_keypoints(read_pcdms_txt_vector(path), image_size, convention, path)


def read_pcdms_txt_vector(path: PathLike) -> np.ndarray:
    """The 36 raw numbers of a PCDMs pose txt, exactly as the official code feeds them to the prior."""
    path = Path(path)
    rows = _read_text(path).splitlines()
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


# pcdms' own JSON ----------------------------------------------------------------------------------


def pose_to_dict(keypoints: Keypoints) -> dict[str, Any]:
    joints = {}
    for name, (x, y), confidence, present in zip(
        KEYPOINT_NAMES, keypoints.xy, keypoints.confidence, keypoints.present, strict=True
    ):
        joints[name] = [float(x), float(y), float(confidence)] if present else None
    return {"format": POSE_JSON_FORMAT, "version": 1, "image_size": list(keypoints.image_size), "keypoints": joints}


def pose_from_dict(data: Any, where: str) -> Keypoints:
    if not isinstance(data, dict) or data.get("format") != POSE_JSON_FORMAT:
        raise PoseFileError(f"{where}: not a pcdms pose (its 'format' must be {POSE_JSON_FORMAT!r})")
    if data.get("version") != 1:
        raise PoseFileError(f"{where}: pose format version {data.get('version')!r} is not supported (expected 1)")
    try:
        image_size = check_size(data.get("image_size") or ())
    except (TypeError, ValueError):
        raise PoseFileError(f"{where}: image_size must be [width, height] in pixels") from None
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
        x, y, score = _finite_numbers(joints[name], 3, where, name)
        if not 0 < score <= 1:
            raise PoseFileError(
                f"{where}: {name} has confidence {score:g}, outside (0, 1]; use null for a missing joint"
            )
        xy[index], confidence[index] = (x, y), score
    return _check_in_frame(Keypoints(xy, confidence, image_size), where)


def read_pose_json(path: PathLike) -> Keypoints:
    path = Path(path)
    return pose_from_dict(_read_json(path), str(path))


def write_pose_json(path: PathLike, keypoints: Keypoints) -> Path:
    path = Path(path)
    with atomic_write(path) as file:
        json.dump(pose_to_dict(keypoints), file, indent=2)
        file.write("\n")
    return path


# Any pose file ------------------------------------------------------------------------------------

POSE_FILE_KINDS = "pcdms pose JSON, OpenPose JSON or PCDMs pose txt"


def load_pose(path: PathLike, image_size: Size | None = None, convention: PoseConvention | str = OFFICIAL) -> Keypoints:
    """Read a single pose from any pose file, in the frame of ``image_size`` (default: the file's own).

    For an OpenPose file with several people, the person with the highest total confidence is taken.
    A PCDMs txt is read in ``convention`` and needs ``image_size``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        if image_size is None:
            raise PoseFileError(f"{path}: a PCDMs pose txt does not record the image size; give it (--image-size)")
        return read_pcdms_txt(path, image_size, convention)
    if suffix != ".json":
        raise PoseFileError(f"{path}: unknown pose file type {path.suffix!r}; expected {POSE_FILE_KINDS}")
    data = _read_json(path)
    if isinstance(data, dict) and data.get("format") == POSE_JSON_FORMAT:
        keypoints = pose_from_dict(data, str(path))
        return keypoints if image_size is None else keypoints.resize(image_size)
    if isinstance(data, dict) and "people" in data:
        people = _openpose_people(data, path, image_size)
        if not people:
            raise PoseFileError(f"{path}: the OpenPose file lists no person")
        return max(people, key=lambda person: person.confidence.sum())
    raise PoseFileError(f"{path}: neither a pcdms pose JSON nor an OpenPose JSON")


def save_pose(path: PathLike, keypoints: Keypoints, convention: PoseConvention | str = OFFICIAL) -> Path:
    """Write a pose as pcdms JSON (``.json``) or as a PCDMs txt in ``convention`` (``.txt``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return write_pose_json(path, keypoints)
    if suffix == ".txt":
        return write_pcdms_txt(path, keypoints, convention)
    raise PoseFileError(f"{path}: cannot write a pose as {path.suffix!r}; use .json or .txt")
