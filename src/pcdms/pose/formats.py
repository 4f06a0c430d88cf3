"""Reading and writing poses in the formats users hold.

- OpenPose JSON (``people[i].pose_keypoints_2d``), COCO-18 or BODY_25, missing joints ``0 0 0``, as
  OpenPose, ControlNet editors and ComfyUI's DWPose write it: flat ``x y c`` triples or ``x y`` pairs
  (no confidences), lists of points, coordinates in pixels or in fractions of the canvas
  (``--keypoint_scale 3``, ComfyUI), one frame or a list of one frame, any number of people.
- The DeepFashion / Market-1501 annotation CSV of PATN, PIDM, NTED and CFLD:
  ``name: [y0, ..., y17]: [x0, ..., x17]`` under the header ``name:keypoints_y:keypoints_x``, -1 for
  a missing joint.
- The PCDMs pose txt: 18 lines of ``x y``, in a pose convention (pcdms.pose.vector).
- pcdms' own JSON, which names every joint and records the image size and confidences.

Readers check what they read and raise :class:`PoseFileError` naming the file (and line) and the
problem. Joints up to a tenth of the frame outside it are moved onto its edge (with a warning); farther
out, the numbers are wrong and the file is refused. Frames above the image limits of :mod:`pcdms.io`
are refused before anything is drawn. Writers write atomically.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PcdmsError, PcdmsWarning, PoseFileError
from ..io import atomic_write, check_frame_size
from .convert import from_body25
from .keypoints import KEYPOINT_NAMES, NUM_KEYPOINTS, Keypoints, Size, check_size
from .vector import OFFICIAL, PoseConvention, keypoints_from_vector, pose_vector

PathLike = str | os.PathLike
POSE_JSON_FORMAT = "pcdms-pose"
ANNOTATION_HEADER = "name:keypoints_y:keypoints_x"
# Detectors place a joint a little outside the image when the body is cut by its edge (DWPose does; editors
# let a joint be dragged past the border). Up to this share of the frame's side, such a joint is moved onto
# the edge; farther means the numbers are wrong (another frame, another unit) and the file is refused.
FRAME_MARGIN_SHARE = 0.1
# The most nested a pose JSON may be: the deepest real one (a list of frames of people of points) is 5 deep.
MAX_JSON_DEPTH = 32


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


def _into_frame(keypoints: Keypoints, where: str) -> Keypoints:
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


def _frame_checked(size: Size, where: str) -> Size:
    try:
        check_frame_size(size, where)
    except PcdmsError as error:
        raise PoseFileError(str(error)) from None
    return size


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
    return _frame_checked(file_size if file_size is not None else check_size(image_size), str(path))


# OpenPose JSON ------------------------------------------------------------------------------------


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
    return _openpose_people(_read_json(path), path, image_size)


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
    numbers = _finite_numbers(values, count, where, "pose_keypoints_2d")
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


def _openpose_people(data: Any, path: Path, image_size: Size | None) -> list[Keypoints]:
    data = _openpose_document(data, path)
    canvas = None
    if "canvas_width" in data or "canvas_height" in data:
        try:
            canvas = check_size((data.get("canvas_width"), data.get("canvas_height")))
        except (TypeError, ValueError):
            raise PoseFileError(f"{path}: canvas_width and canvas_height must be positive integers") from None
        canvas = _frame_checked(canvas, str(path))
    given = None if image_size is None else _frame_checked(check_size(image_size), str(path))
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
        keypoints = _into_frame(keypoints, where)
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
        keypoints = _into_frame(Keypoints(xy, np.where(missing_x, 0.0, 1.0), image_size), where)
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
    _frame_checked(image_size, where)
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
    present = ~np.isnan(xy[:, 0])
    if present.sum() > 1 and np.nanmax(xy) <= 1 and max(image_size) > 2:
        raise PoseFileError(
            f"{where}: every joint lies within a pixel of the corner; a pcdms pose holds pixels, not fractions "
            "of the image (multiply by image_size)"
        )
    return _into_frame(Keypoints(xy, confidence, image_size), where)


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


def load_pose(
    path: PathLike,
    image_size: Size | None = None,
    convention: PoseConvention | str = OFFICIAL,
    person: int | None = None,
) -> Keypoints:
    """Read a single pose from any pose file, in the frame of ``image_size`` (default: the file's own).

    For an OpenPose file with several people, ``person`` is the index of the one to take (0 is the
    first listed); by default the main subject (:func:`main_person`: the largest, then the most central),
    with a :class:`~pcdms.errors.PcdmsWarning` saying which was taken. A PCDMs txt is read in
    ``convention`` and needs ``image_size``. Raises :class:`PoseFileError` naming the file.
    """
    path = Path(path)
    if person is not None and (isinstance(person, bool) or not isinstance(person, int) or person < 0):
        raise PoseFileError(f"{path}: person must be an index 0, 1, ..., got {person!r}")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        if image_size is None:
            raise PoseFileError(f"{path}: a PCDMs pose txt does not record the image size; give it (--image-size)")
        return _single_person(read_pcdms_txt(path, image_size, convention), person, path)
    if suffix != ".json":
        raise PoseFileError(f"{path}: unknown pose file type {path.suffix!r}; expected {POSE_FILE_KINDS}")
    data = _read_json(path)
    if isinstance(data, dict) and data.get("format") == POSE_JSON_FORMAT:
        keypoints = pose_from_dict(data, str(path))
        if image_size is not None:
            keypoints = keypoints.resize(_frame_checked(check_size(image_size), str(path)))
        return _single_person(keypoints, person, path)
    if isinstance(data, dict | list) and ("people" in data if isinstance(data, dict) else data):
        people = _openpose_people(data, path, image_size)
        return _choose_person(people, person, path)
    raise PoseFileError(f"{path}: neither a pcdms pose JSON nor an OpenPose JSON")


def _single_person(keypoints: Keypoints, person: int | None, path: Path) -> Keypoints:
    if person not in (None, 0):
        raise PoseFileError(f"{path}: holds one person; there is no person {person} (the first is 0)")
    return keypoints


def _choose_person(people: list[Keypoints], person: int | None, path: Path) -> Keypoints:
    if not people:
        raise PoseFileError(f"{path}: the OpenPose file lists no person")
    if person is not None:
        if person >= len(people):
            raise PoseFileError(f"{path}: no person {person}; the file lists {len(people)} (0 to {len(people) - 1})")
        return people[person]
    chosen = main_person(people)
    if len(people) > 1:
        warnings.warn(
            f"{path}: {len(people)} people; took person {chosen} ({int(people[chosen].present.sum())} joints), "
            "the largest; choose another by its index (--person / person=)",
            PcdmsWarning,
            stacklevel=3,
        )
    return people[chosen]


def save_pose(path: PathLike, keypoints: Keypoints, convention: PoseConvention | str = OFFICIAL) -> Path:
    """Write a pose as pcdms JSON (``.json``) or as a PCDMs txt in ``convention`` (``.txt``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return write_pose_json(path, keypoints)
    if suffix == ".txt":
        return write_pcdms_txt(path, keypoints, convention)
    raise PoseFileError(f"{path}: cannot write a pose as {path.suffix!r}; use .json or .txt")
