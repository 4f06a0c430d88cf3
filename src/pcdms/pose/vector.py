"""The 36-number pose vector that the stage-1 prior reads, and the coordinate convention behind it.

The prior sees raw numbers: x0, y0, x1, y1, ... for the 18 joints in layout order. Which numbers
depends on a convention, and a prior trained on one convention is wrong on another, so every prior
records its convention and every pose is converted to it (project decision 3):

- ``pcdms-official``: pixels of a 256x256 frame into which the image is letterboxed (scaled to fit
  and padded, centred): a DeepFashion 176x256 image gets 40 pixels each side, so x includes that
  offset. Missing joints are ``-1 -1``. This is what the official ``normalized_pose_txt`` files appear
  to hold (evidence: sample files shipped by FPDM, which took its poses from PCDMs); the authors never
  documented it.
- ``fraction``: continuous coordinates divided by the image's own width and height, so the same
  point of the body gives the same numbers at any resolution; 0 and 1 are the image borders.
  Missing joints are ``-1 -1``. Models trained with pcdms use this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .keypoints import KEYPOINT_NAMES, NUM_KEYPOINTS, Keypoints, Size, check_size, letterbox_geometry

UNITS = ("pixel", "fraction")


@dataclass(frozen=True)
class PoseConvention:
    """How a pose becomes the prior's 36 numbers."""

    name: str
    frame: Size | None  # letterbox the image into this (width, height) first; None keeps its own frame
    unit: str  # "pixel", or "fraction" of the frame's width and height
    missing: float = -1.0  # both numbers of a missing joint

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {self.unit!r}")
        if self.frame is not None:
            object.__setattr__(self, "frame", check_size(self.frame, "frame"))

    def frame_for(self, image_size: Size) -> Size:
        return image_size if self.frame is None else self.frame

    def value_range(self, frame: Size) -> tuple[np.ndarray, np.ndarray]:
        """The (x, y) range a joint inside ``frame`` can take, with one pixel of tolerance."""
        if self.unit == "fraction":
            return -1 / np.array(frame), 1 + 1 / np.array(frame)
        return np.array([-1.5, -1.5]), np.array(frame) + 0.5

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "frame": None if self.frame is None else list(self.frame),
            "unit": self.unit,
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PoseConvention:
        frame = data.get("frame")
        return cls(
            name=data["name"],
            frame=None if frame is None else tuple(frame),
            unit=data["unit"],
            missing=float(data.get("missing", -1.0)),
        )


OFFICIAL = PoseConvention("pcdms-official", frame=(256, 256), unit="pixel")
FRACTION = PoseConvention("fraction", frame=None, unit="fraction")
CONVENTIONS = {convention.name: convention for convention in (OFFICIAL, FRACTION)}


def get_convention(name: str | PoseConvention) -> PoseConvention:
    if isinstance(name, PoseConvention):
        return name
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ValueError(f"unknown pose convention {name!r}; known: {', '.join(CONVENTIONS)}") from None


def pose_vector(keypoints: Keypoints, convention: PoseConvention | str) -> np.ndarray:
    """The 36 numbers x0, y0, ..., x17, y17 of ``keypoints`` in ``convention``.

    The vector carries no confidences: a joint is either there or ``convention.missing``.
    """
    convention = get_convention(convention)
    if convention.frame is not None:
        keypoints = keypoints.letterbox(convention.frame)
    xy = keypoints.xy
    if convention.unit == "fraction":
        xy = (xy + 0.5) / np.array(keypoints.image_size)
    xy = np.where(keypoints.present[:, None], xy, convention.missing)
    return xy.reshape(-1)


def keypoints_from_vector(vector: np.ndarray, image_size: Size, convention: PoseConvention | str) -> Keypoints:
    """Invert :func:`pose_vector`: the keypoints, in the frame of an image of ``image_size``.

    Raises ValueError for a vector of the wrong length, non-finite numbers, a joint with only one
    coordinate marked missing, or a joint outside the convention's frame.
    """
    convention = get_convention(convention)
    image_size = check_size(image_size)
    values = np.asarray(vector, dtype=np.float64).reshape(-1)
    if values.size != 2 * NUM_KEYPOINTS:
        raise ValueError(f"expected {2 * NUM_KEYPOINTS} numbers ({NUM_KEYPOINTS} points), got {values.size}")
    if not np.isfinite(values).all():
        raise ValueError("the pose contains NaN or infinite numbers")
    xy = values.reshape(NUM_KEYPOINTS, 2)
    is_missing = xy == convention.missing
    half_missing = np.flatnonzero(is_missing.any(axis=1) & ~is_missing.all(axis=1))
    if half_missing.size:
        index = half_missing[0]
        raise ValueError(
            f"point {index} ({KEYPOINT_NAMES[index]}) has only one coordinate equal to {convention.missing:g}"
        )
    missing = is_missing.all(axis=1)
    frame = convention.frame_for(image_size)
    low, high = convention.value_range(frame)
    outside = np.flatnonzero(~missing & ((xy < low) | (xy > high)).any(axis=1))
    if outside.size:
        index = outside[0]
        x, y = xy[index]
        raise ValueError(
            f"point {index} ({KEYPOINT_NAMES[index]}) at ({x:g}, {y:g}) lies outside the {frame[0]}x{frame[1]} frame of "
            f"convention {convention.name!r}"
        )
    if convention.unit == "fraction":
        xy = xy * np.array(frame) - 0.5
    xy = np.where(missing[:, None], np.nan, xy)
    confidence = np.where(missing, 0.0, 1.0)
    if convention.frame is None:
        return Keypoints(xy, confidence, image_size)
    inner, (left, top, _, _) = letterbox_geometry(image_size, frame)
    return Keypoints(xy - (left, top), confidence, inner).resize(image_size)
