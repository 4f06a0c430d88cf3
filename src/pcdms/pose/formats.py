"""Reading and writing a pose in any of the formats users hold: the format picked by suffix and content.

One module per format, each with its reader and writer:

- :mod:`pcdms.pose.openpose`: OpenPose JSON (OpenPose, ControlNet editors, ComfyUI's DWPose), any number of
  people, of which :func:`load_pose` takes one;
- :mod:`pcdms.pose.annotation_csv`: the DeepFashion / Market-1501 annotation CSV of PATN, PIDM, NTED and CFLD
  (many images in one file, so not read here);
- :mod:`pcdms.pose.pcdms_txt`: the PCDMs pose txt, 18 lines of ``x y`` in a pose convention;
- :mod:`pcdms.pose.pose_json`: pcdms' own JSON, which names every joint and records the image size;

and :mod:`pcdms.pose.reading`, what their readers share. Readers check what they read and raise
:class:`PoseFileError` naming the file (and line) and the problem; writers write atomically.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import PcdmsWarning, PoseFileError
from .keypoints import Keypoints, Size, check_size
from .openpose import main_person, openpose_people
from .pcdms_txt import read_pcdms_txt, write_pcdms_txt
from .pose_json import POSE_JSON_FORMAT, pose_from_dict, write_pose_json
from .reading import PathLike, frame_checked, read_json
from .vector import OFFICIAL, PoseConvention

POSE_FILE_KINDS = "pcdms pose JSON, OpenPose JSON or PCDMs pose txt"


def load_pose(
    path: PathLike,
    image_size: Size | None = None,
    convention: PoseConvention | str = OFFICIAL,
    person: int | None = None,
) -> Keypoints:
    """Read a single pose from any pose file, in the frame of ``image_size`` (default: the file's own).

    For an OpenPose file with several people, ``person`` is the index of the one to take (0 is the
    first listed); by default the main subject (:func:`~pcdms.pose.openpose.main_person`: the largest, then the most central),
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
    data = read_json(path)
    if isinstance(data, dict) and data.get("format") == POSE_JSON_FORMAT:
        keypoints = pose_from_dict(data, str(path))
        if image_size is not None:
            keypoints = keypoints.resize(frame_checked(check_size(image_size), str(path)))
        return _single_person(keypoints, person, path)
    if isinstance(data, dict | list) and ("people" in data if isinstance(data, dict) else data):
        people = openpose_people(data, path, image_size)
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
