"""Driving poses: the pose of each frame of a video, of a folder of pose files or images, or of one file
holding a sequence; frames with no person filled from their neighbours.

A sequence file is pcdms' JSON ``{"format": "pcdms-pose-sequence", "version": 1, "fps": 10, "frames":
[pose or null, ...]}`` (each pose as pcdms' pose JSON writes it), or a JSON list of OpenPose frames
(``[{"people": [...]}, ...]``, as ComfyUI writes a batch), of which the main person of each is taken.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import NoPersonError, PcdmsError, PcdmsWarning, PoseFileError
from ..io import atomic_write
from ..pose.keypoints import MIN_POSE_JOINTS, Keypoints
from ..pose.openpose import main_person, openpose_people
from ..pose.pose_json import pose_from_dict, pose_to_dict
from ..pose.reading import read_json
from .video import VIDEO_SUFFIXES, read_video

SEQUENCE_FORMAT = "pcdms-pose-sequence"
POSE_SUFFIXES = (".json", ".txt")
# Driving frames kept for the side-by-side video are shrunk to this height: a long video stays small in memory.
KEPT_HEIGHT = 256


@dataclass
class Driving:
    """The driving poses, one per frame, in the driving frame (``poses[0].image_size``); ``filled``: the
    frames (from 0) with no usable person, whose poses were interpolated from their neighbours; ``fps``: the
    video's or the sequence file's frame rate (None: not recorded); ``images``: the driving frames, shrunk
    (None for pose files)."""

    path: Path
    poses: list[Keypoints]
    filled: list[int] = field(default_factory=list)
    fps: float | None = None
    images: list[Image.Image] | None = None


def read_driving(
    path: str | os.PathLike, extractor=None, max_frames: int | None = None, progress: bool = False
) -> Driving:
    """The driving poses of ``path``: a video file (each frame's pose found by ``extractor``, default
    MediaPipe), a folder of pose files (pcdms or OpenPose JSON) or images (pose maps, or photos whose pose
    is extracted), sorted by name with numbers in order, or a sequence file. ``max_frames``: only the first N.

    Frames where nobody (or a pose of fewer than 8 joints) is found are filled from their neighbours and
    listed in ``filled``. Raises PcdmsError naming ``path`` (or the file in it) for a missing path, a file
    that is neither a video nor a pose sequence, an empty folder, unreadable pose files, frames of different
    sizes, or no person in any frame. Warns (PcdmsWarning, one line) of the frames it filled.
    """
    path = Path(path)
    if max_frames is not None and max_frames < 1:
        raise PcdmsError(f"max_frames must be at least 1, got {max_frames}")
    if path.is_dir():
        read = _read_folder(path, extractor, max_frames, progress)
        found, images, fps = [pose for pose, _ in read], _kept([image for _, image in read]), None
    elif not path.exists():
        raise PcdmsError(f"{path}: no such file or folder")
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        found, images, fps = _read_video(path, extractor, max_frames, progress)
    elif path.suffix.lower() == ".json":
        found, fps = read_pose_sequence(path)
        found, images = found[:max_frames], None
    else:
        raise PcdmsError(
            f"{path}: not a video ({', '.join(VIDEO_SUFFIXES)}), a pose sequence (.json) or a folder of poses"
        )
    poses, filled = fill_missing(found, path)
    if filled:
        frames = ", ".join(str(index + 1) for index in filled[:10]) + (" ..." if len(filled) > 10 else "")
        warnings.warn(
            f"{path}: no person found in {len(filled)} of {len(poses)} frames ({frames}); filled from their neighbours",
            PcdmsWarning,
            stacklevel=2,
        )
    return Driving(path, poses, filled, fps, images)


def _kept(images: list[Image.Image | None]) -> list[Image.Image] | None:
    return images if images and all(image is not None for image in images) else None


def _shrunk(image: Image.Image) -> Image.Image:
    if image.height <= KEPT_HEIGHT:
        return image
    return image.resize((max(1, round(image.width * KEPT_HEIGHT / image.height)), KEPT_HEIGHT), Image.BILINEAR)


def _usable(pose: Keypoints) -> Keypoints | None:
    return pose if pose.present.sum() >= MIN_POSE_JOINTS else None


def _read_video(path: Path, extractor, max_frames, progress) -> tuple[list, list, float]:
    from tqdm.auto import tqdm

    from ..pose.extract import extract_pose

    frames, fps, count = read_video(path, max_frames)
    poses, images = [], []
    for frame in tqdm(frames, total=count or None, desc="driving poses", unit="frame", disable=not progress):
        try:
            poses.append(_usable(extract_pose(frame, extractor)))
        except NoPersonError:
            poses.append(None)
        images.append(_shrunk(frame))
    if not poses:
        raise PcdmsError(f"{path}: the video has no frames")
    return poses, images, fps


def _natural_key(path: Path) -> list:
    """frame_2 before frame_10: numbers in names compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _read_folder(path: Path, extractor, max_frames, progress) -> list[tuple[Keypoints | None, Image.Image | None]]:
    from tqdm.auto import tqdm

    from ..io import load_image
    from ..pose.inputs import as_keypoints

    image_suffixes = set(Image.registered_extensions())
    files = sorted(
        (
            file
            for file in path.iterdir()
            if file.is_file()
            and not file.name.startswith(".")
            and file.suffix.lower() in (*POSE_SUFFIXES, *image_suffixes)
        ),
        key=_natural_key,
    )[:max_frames]
    if not files:
        raise PcdmsError(f"{path}: no pose files (.json, .txt) or images in this folder")
    found = []
    for file in tqdm(files, desc="driving poses", unit="frame", disable=not progress):
        image = load_image(file) if file.suffix.lower() in image_suffixes else None
        try:
            pose = as_keypoints(image if image is not None else file, where=str(file), extractor=extractor)
            found.append((_usable(pose), None if image is None else _shrunk(image)))
        except NoPersonError:
            found.append((None, None if image is None else _shrunk(image)))
    return found


def fill_missing(poses: list[Keypoints | None], path: Path) -> tuple[list[Keypoints], list[int]]:
    """``poses`` with each None (a frame with no usable person) replaced by the linear interpolation of the
    nearest frames before and after that have one (joint by joint; a joint present on one side only is
    copied from it); at the ends, the nearest frame's pose. Returns the poses and the filled frames' indices.
    Raises PcdmsError naming ``path`` when no frame has a person, or frames differ in size."""
    present = [index for index, pose in enumerate(poses) if pose is not None]
    if not present:
        raise NoPersonError(f"{path}: no person found in any of its {len(poses)} frames")
    size = poses[present[0]].image_size
    for index in present:
        if poses[index].image_size != size:
            width, height = poses[index].image_size
            raise PcdmsError(f"{path}: frame {index + 1} is {width}x{height}, the first {size[0]}x{size[1]}")
    filled, out = [], list(poses)
    for index, pose in enumerate(poses):
        if pose is not None:
            continue
        before = max((p for p in present if p < index), default=None)
        after = min((p for p in present if p > index), default=None)
        if before is None or after is None:
            out[index] = poses[after if before is None else before]
        else:
            out[index] = _between(poses[before], poses[after], (index - before) / (after - before))
        filled.append(index)
    return out, filled


def _between(first: Keypoints, second: Keypoints, fraction: float) -> Keypoints:
    both = first.present & second.present
    xy = np.where(first.present[:, None], first.xy, second.xy)  # a joint on one side only: copied
    confidence = np.where(first.present, first.confidence, second.confidence)
    xy[both] = first.xy[both] * (1 - fraction) + second.xy[both] * fraction
    confidence[both] = first.confidence[both] * (1 - fraction) + second.confidence[both] * fraction
    return Keypoints(xy, confidence, first.image_size)


def read_pose_sequence(path: str | os.PathLike) -> tuple[list[Keypoints | None], float | None]:
    """The poses of a sequence file (None for a frame without a person) and its frame rate (None when not
    recorded). A single pose file (pcdms or OpenPose JSON) is a sequence of one. Raises PoseFileError naming
    the file (and frame)."""
    path = Path(path)
    data = read_json(path)
    if isinstance(data, dict) and data.get("format") == SEQUENCE_FORMAT:
        frames, fps = data.get("frames"), data.get("fps")
        if not isinstance(frames, list) or not frames:
            raise PoseFileError(f"{path}: 'frames' must be a non-empty list of poses (or null)")
        if fps is not None and (not isinstance(fps, int | float) or isinstance(fps, bool) or not fps > 0):
            raise PoseFileError(f"{path}: 'fps' must be a positive number")
        where = [f"{path}: frame {number + 1}" for number in range(len(frames))]
        poses = [None if frame is None else pose_from_dict(frame, at) for frame, at in zip(frames, where, strict=True)]
        return [None if pose is None else _usable(pose) for pose in poses], fps
    if isinstance(data, dict) and data.get("format") == "pcdms-pose":
        return [_usable(pose_from_dict(data, str(path)))], None
    if isinstance(data, dict) and "people" in data:
        data = [data]
    if isinstance(data, list) and data and all(isinstance(frame, dict) and "people" in frame for frame in data):
        poses = []
        for number, frame in enumerate(data):
            people = openpose_people(frame, Path(f"{path}: frame {number + 1}"), None)
            poses.append(_usable(people[main_person(people)]) if people else None)
        return poses, None
    raise PoseFileError(f"{path}: not a pose sequence (pcdms' {SEQUENCE_FORMAT!r} JSON or a list of OpenPose frames)")


def write_pose_sequence(path: str | os.PathLike, poses: list[Keypoints | None], fps: float | None = None) -> Path:
    """Write ``poses`` (None: a frame without a person) as pcdms' sequence JSON, atomically."""
    document = {
        "format": SEQUENCE_FORMAT,
        "version": 1,
        "fps": fps,
        "frames": [None if pose is None else pose_to_dict(pose) for pose in poses],
    }
    path = Path(path)
    with atomic_write(path) as file:
        json.dump(document, file)
        file.write("\n")
    return path
