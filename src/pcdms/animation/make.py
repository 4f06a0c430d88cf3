"""An animation from files to a video: read the driving poses, smooth them, retarget them onto the source,
generate the frames (resumably), write the video. ``pcdms animate``, the web page and the benchmark go
through :func:`make_animation`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..errors import NoPersonError, PcdmsError
from ..pose.keypoints import Keypoints, check_enough_joints
from .animate import AnimationSettings, animate_frames, load_frames, side_by_side
from .driving import Driving, read_driving
from .retarget import retarget_sequence
from .smoothing import OneEuroSettings, smooth_poses
from .video import VIDEO_SUFFIXES, WRITABLE_SUFFIXES, write_video

DEFAULT_FPS = 10.0  # for driving poses that do not record a frame rate (folders, sequence files)
SMOOTHING = OneEuroSettings()
SETTINGS = AnimationSettings()


@dataclass
class Animation:
    """What :func:`make_animation` made: ``out`` (the video, or the frame folder), ``frames`` (the frame
    files), the driving frames that were ``filled`` from their neighbours (from 0), the ``fps`` written,
    the target ``poses`` the model got, and the frames ``generated`` and ``reused`` and the ``seconds``
    spent generating."""

    out: Path
    frames: list[Path]
    filled: list[int]
    fps: float
    poses: list[Keypoints] = field(repr=False, default_factory=list)
    generated: int = 0
    reused: int = 0
    seconds: float = 0.0


def model_identity(folder: str | os.PathLike) -> str:
    """A pipeline folder named with a fingerprint of its files (names, sizes, times): frames of a model since
    retrained in place are not reused."""
    import hashlib

    folder = Path(folder)
    digest = hashlib.sha256()
    for file in sorted(path for path in folder.rglob("*") if path.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return f"{folder} ({digest.hexdigest()[:12]})"


def frames_folder(out: Path) -> Path:
    """Where the frames of ``out`` go: ``out`` itself for a folder, ``OUT_frames/`` beside a video."""
    return out.with_name(f"{out.stem}_frames") if out.suffix.lower() in WRITABLE_SUFFIXES else out


def target_poses(
    driving: Driving,
    source_pose: Keypoints,
    smoothing: OneEuroSettings | None = SMOOTHING,
    retarget: bool = True,
    fps: float | None = None,
) -> list[Keypoints]:
    """The poses the model gets: the driving poses, One-Euro smoothed (``smoothing``; None: not) at the
    driving rate (``fps`` when the driving poses record none), then retargeted onto ``source_pose`` (its
    frame: the source photo's) unless ``retarget`` is False (then in the driving frame)."""
    poses = driving.poses
    if smoothing is not None and len(poses) > 1:
        poses = smooth_poses(poses, driving.fps or fps or DEFAULT_FPS, smoothing)
    return retarget_sequence(source_pose, poses) if retarget else list(poses)


def make_animation(
    pipeline,
    source: str | os.PathLike | Image.Image,
    driving: str | os.PathLike | Driving,
    out: str | os.PathLike,
    *,
    source_pose: Keypoints | None = None,
    smoothing: OneEuroSettings | None = SMOOTHING,
    retarget: bool = True,
    settings: AnimationSettings = SETTINGS,
    fps: float | None = None,
    max_frames: int | None = None,
    with_driving: bool = False,
    model_name: str = "",
    extractor=None,
    progress: bool = True,
    on_frame: Callable[[int, int], None] | None = None,
) -> Animation:
    """The person of ``source`` (a photo file or an RGB image) moving as ``driving`` does (a video, a folder
    of poses or images, a sequence file; see :func:`~pcdms.animation.driving.read_driving`), written to
    ``out``: an ``.mp4`` or ``.gif`` (its frames kept in ``OUT_frames/`` for a rerun to resume), or a folder of
    frames. ``fps``: the video's rate (default: the driving video's, else 10). ``with_driving``: each video
    frame is [driving frame | rendered pose | result]. Raises PcdmsError (one line, naming the file) for bad
    inputs: see read_driving; a source photo with nobody in it; ``fps`` or ``max_frames`` below 1.
    """
    from ..io import load_image
    from ..pose.extract import extract_pose

    if fps is not None and not fps > 0:
        raise PcdmsError(f"the frame rate must be positive, got {fps}")
    out = Path(out)
    if out.suffix.lower() in VIDEO_SUFFIXES and out.suffix.lower() not in WRITABLE_SUFFIXES:
        raise PcdmsError(f"{out}: an animation is written as .mp4, .gif or a folder of frames")
    source_name = str(source) if not isinstance(source, Image.Image) else "the source image"
    image = source.convert("RGB") if isinstance(source, Image.Image) else load_image(source)
    if source_pose is None:
        try:
            source_pose = extract_pose(image, extractor)
        except NoPersonError as error:
            raise NoPersonError(f"{source_name}: {error}") from None
    check_enough_joints(source_pose, source_name)
    if not isinstance(driving, Driving):
        driving = read_driving(driving, extractor, max_frames, progress)
    poses = target_poses(driving, source_pose, smoothing, retarget, fps)
    frames = animate_frames(
        pipeline, image, poses, frames_folder(out), source_pose, settings, model_name, progress, on_frame
    )
    rate = fps or driving.fps or DEFAULT_FPS
    if out.suffix.lower() in WRITABLE_SUFFIXES:
        pictures = load_frames(frames.paths)
        if with_driving:
            images = driving.images or [None] * len(pictures)
            pictures = [side_by_side(*each) for each in zip(pictures, poses, images, strict=True)]
        write_video(out, pictures, rate)
    return Animation(out, frames.paths, driving.filled, rate, poses, frames.generated, frames.reused, frames.seconds)
