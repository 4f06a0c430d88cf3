"""A pose given in whatever form a user holds it: keypoints, a pose file, a pose image or a photo.

An image is a pose map when it looks like one (:func:`is_pose_map`): its keypoints are read back from
the drawing. Any other image is a photo, whose pose the extractor finds.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from ..errors import NoPersonError, PcdmsError
from ..io import load_image
from .extract import PoseExtractor, extract_pose
from .formats import load_pose
from .keypoints import Keypoints, Size
from .pose_map import is_pose_map, read_pose_map

PoseInput = Keypoints | str | os.PathLike | Image.Image


def as_keypoints(
    pose: PoseInput,
    image_size: Size | None = None,
    extractor: PoseExtractor | None = None,
    where: str | None = None,
    person: int | None = None,
) -> Keypoints:
    """The keypoints of ``pose``: keypoints as they are, a pose file, a pose image or a photo (file or PIL image).

    A file is an image when Pillow knows its suffix, otherwise a pose file read by :func:`load_pose`
    in the frame of ``image_size`` (which a PCDMs txt needs). An image's pose is in the image's own
    frame; a photo's is found by ``extractor`` (default: MediaPipe). ``person``: the index of the person
    to take from an OpenPose file listing several (default: the main subject, see :func:`load_pose`).
    Errors about an image name ``where`` (default: its file, or "pose image"); those about a file name the
    file. Raises :class:`~pcdms.errors.PcdmsError`.
    """
    if isinstance(pose, Keypoints):
        return pose
    if isinstance(pose, Image.Image):
        return _from_image(pose, extractor, where or "pose image")
    if not isinstance(pose, str | os.PathLike):
        raise TypeError(f"a pose is Keypoints, a file path or a PIL image, not {type(pose).__name__}")
    path = Path(pose)
    if path.suffix.lower() in Image.registered_extensions():
        if person not in (None, 0):
            raise PcdmsError(f"{path}: a person index picks one of the people of an OpenPose file, not of an image")
        return _from_image(load_image(path), extractor, where or str(path))
    return load_pose(path, image_size=image_size, person=person)


def _from_image(image: Image.Image, extractor: PoseExtractor | None, where: str) -> Keypoints:
    if is_pose_map(image):
        return read_pose_map(image, where=where)
    try:
        return extract_pose(image, extractor)
    except NoPersonError as error:
        raise NoPersonError(f"{where}: {error}") from None
