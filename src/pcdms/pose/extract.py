"""Pose extraction from photos.

An extractor is any callable that takes a PIL image and returns the :class:`Keypoints` of the main
person in it, or raises :class:`NoPersonError`. The default, MediaPipe's Pose model (the optional
``pose`` extra), runs offline on a CPU. Another detector plugs in by name, as
``package.module:factory``, or by registering ``factory`` under the entry-point group
``pcdms.pose_extractors``; :mod:`pcdms.pose.convert` turns its output (COCO-17, DWPose's
COCO-WholeBody, BODY_25) into keypoints.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from ..errors import NoPersonError, PcdmsError
from ..io import load_image, save_image
from .convert import from_mediapipe
from .keypoints import Keypoints
from .pose_json import write_pose_json
from .render import draw_overlay, render_pose

ENTRY_POINT_GROUP = "pcdms.pose_extractors"
DEFAULT_EXTRACTOR = "mediapipe"
# Fewer joints than this is not a usable pose (MediaPipe sometimes "finds" a face in a texture).
MIN_JOINTS = 4


class PoseExtractor(Protocol):
    def __call__(self, image: Image.Image) -> Keypoints:
        """The pose of the main person in ``image``; raises NoPersonError when there is none."""
        ...


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """MediaPipe's C++ side logs its set-up chatter straight to file descriptor 2; hide it."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class MediaPipeExtractor:
    """MediaPipe Pose (the full model, ``model_complexity=1``, whose weights ship inside the wheel).

    It finds one person per image: the most prominent. The legacy Pose solution tracks a single person and
    reports nothing about others, so a photo of several people cannot be flagged (docs/pose-toolkit.md says so).
    Landmarks less visible than ``min_visibility`` are missing joints.
    """

    def __init__(self, min_detection_confidence: float = 0.5, min_visibility: float = 0.5):
        try:
            with _native_stderr_silenced():
                from mediapipe.python.solutions import pose as mediapipe_pose
        except ImportError:
            raise PcdmsError(
                "pose extraction needs MediaPipe, an optional dependency: pip install -e '.[pose]' in the pcdms clone"
            ) from None
        self._solution = mediapipe_pose
        self.min_detection_confidence = min_detection_confidence
        self.min_visibility = min_visibility
        # Built on first use: a MediaPipe graph that is made but never run still logs when it is torn down.
        self._model = None

    def __call__(self, image: Image.Image) -> Keypoints:
        with _native_stderr_silenced():
            if self._model is None:
                self._model = self._solution.Pose(
                    static_image_mode=True, model_complexity=1, min_detection_confidence=self.min_detection_confidence
                )
            result = self._model.process(np.asarray(image.convert("RGB")))
        if result.pose_landmarks is None:
            raise NoPersonError("no person found")
        landmarks = np.array([(mark.x, mark.y, mark.visibility) for mark in result.pose_landmarks.landmark])
        keypoints = from_mediapipe(landmarks, image.size, self.min_visibility)
        if keypoints.present.sum() < MIN_JOINTS:
            raise NoPersonError(f"no person found (only {int(keypoints.present.sum())} body joints visible)")
        return keypoints

    def close(self) -> None:
        if self._model is not None:
            with _native_stderr_silenced():
                self._model.close()
            self._model = None


def get_extractor(name: str = DEFAULT_EXTRACTOR) -> PoseExtractor:
    """An extractor by name: ``mediapipe``, a registered entry point, or ``package.module:factory``."""
    if name == DEFAULT_EXTRACTOR:
        return MediaPipeExtractor()
    registered = {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}
    if name in registered:
        return registered[name].load()()
    if ":" not in name:
        known = ", ".join([DEFAULT_EXTRACTOR, *sorted(registered)])
        raise PcdmsError(f"unknown pose extractor {name!r}; known: {known}, or give 'package.module:factory'")
    module_name, _, factory_name = name.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as error:
        raise PcdmsError(f"pose extractor {name!r} cannot be loaded: {error}") from None
    return factory()


@functools.lru_cache(maxsize=1)
def _default_extractor() -> PoseExtractor:
    return get_extractor()


def extract_pose(image: Image.Image | str | os.PathLike, extractor: PoseExtractor | None = None) -> Keypoints:
    """The pose of the main person in an image (or image file), by default with MediaPipe."""
    if isinstance(image, Image.Image):
        return (extractor or _default_extractor())(image)
    return read_and_extract(image, extractor)[1]


def read_and_extract(path: str | os.PathLike, extractor: PoseExtractor | None = None) -> tuple[Image.Image, Keypoints]:
    """Load an image file and find its pose; every error names the file."""
    image = load_image(path)
    try:
        return image, (extractor or _default_extractor())(image)
    except NoPersonError as error:
        raise NoPersonError(f"{path}: {error}") from None


def write_extraction(image: Image.Image, keypoints: Keypoints, out_dir: str | os.PathLike, stem: str) -> dict:
    """Write ``{stem}.json`` (the pose), ``{stem}_pose.png`` (the pose map) and ``{stem}_overlay.png``."""
    out_dir = Path(out_dir)
    return {
        "pose": write_pose_json(out_dir / f"{stem}.json", keypoints),
        "pose_map": save_image(render_pose(keypoints), out_dir / f"{stem}_pose.png"),
        "overlay": save_image(draw_overlay(image, keypoints), out_dir / f"{stem}_overlay.png"),
    }
