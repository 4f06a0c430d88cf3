"""The web page's animation handler, without Gradio: a person's photo and an uploaded clip in, a video out.

The page (``pcdms serve``) limits the clip's length: only its first :data:`MAX_PAGE_FRAMES` frames are
animated, and the message says so. Each request writes into a folder of its own, so two visitors never
share frames.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import PcdmsError, PcdmsWarning
from ..pose.keypoints import Keypoints
from .animate import AnimationSettings
from .driving import read_driving
from .make import make_animation
from .smoothing import OneEuroSettings

MAX_PAGE_FRAMES = 48  # about 5 s at 10 fps: a few minutes on a CPU with the bundled model


@dataclass
class PageAnimation:
    """The video written, and one line for the page: frames, rate, what was cut or filled."""

    video: Path
    message: str


def animate_upload(
    pipeline,
    person: str | os.PathLike | None,
    clip: str | os.PathLike | None,
    folder: str | os.PathLike,
    *,
    source_pose: Keypoints | None = None,
    smoothing: bool = True,
    retarget: bool = True,
    side_by_side: bool = False,
    seed: int = 42,
    max_frames: int = MAX_PAGE_FRAMES,
    extractor=None,
    on_frame: Callable[[int, int], None] | None = None,
) -> PageAnimation:
    """Animate the photo ``person`` with the clip ``clip`` (a video or a GIF; its first ``max_frames``
    frames) into ``folder``/animation.mp4. ``source_pose``: the photo's pose when known (a bundled example's),
    else extracted. ``on_frame(done, total)`` follows the frames (a progress bar).
    Raises PcdmsError (one line, naming the upload) for a missing photo or clip, a clip that is not a video,
    nobody in the photo or in any frame of the clip."""
    if not person:
        raise PcdmsError("choose a photo of the person first")
    if not clip:
        raise PcdmsError("upload a short clip of someone moving")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PcdmsWarning)
        driving = read_driving(clip, extractor, max_frames + 1)
    notes = [str(warning.message).split(": ", 1)[-1] for warning in caught if warning.category is PcdmsWarning]
    if len(driving.poses) > max_frames:  # read one more than the limit to know the clip was longer
        driving.poses, driving.images = driving.poses[:max_frames], (driving.images or [])[:max_frames] or None
        driving.filled = [index for index in driving.filled if index < max_frames]
        notes.insert(0, f"the clip is longer than {max_frames} frames: its first {max_frames} are animated")
    animation = make_animation(
        pipeline,
        person,
        driving,
        Path(folder) / "animation.mp4",
        source_pose=source_pose,
        smoothing=OneEuroSettings() if smoothing else None,
        retarget=retarget,
        settings=AnimationSettings(seed=seed),
        with_driving=side_by_side,
        extractor=extractor,
        progress=False,
        on_frame=on_frame,
    )
    message = f"{len(animation.frames)} frames at {animation.fps:g} fps"
    return PageAnimation(animation.out, "; ".join([message, *notes]))
