"""The 18-point OpenPose/COCO body layout and the keypoint type every part of pcdms uses.

Coordinates are pixels of one image whose size, ``image_size = (width, height)``, travels with them.
They follow the OpenCV/OpenPose convention: the centre of the top-left pixel is (0, 0), so a point on
pixel column ``i`` has ``x == i``. A missing joint is explicit: its coordinates are NaN and its
confidence is 0. A present joint has a confidence in (0, 1]; formats without one give 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import TooFewJointsError

KEYPOINT_NAMES = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)

# The 17 limbs the OpenPose drawer connects, as (joint, joint), in drawing and colour order.
LIMBS = (
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
)

# MIRROR[i] is the joint that joint i becomes in a mirrored image: right and left swap sides.
MIRROR = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)

Size = tuple[int, int]

# The fewest joints a pose must have to pose a person: with fewer, the pose map says too little about the body
# and the model invents the rest. One rule for every entry point: generation's target and source poses (command
# line, Python API, web page), dataset validation and prepare-poses.
MIN_POSE_JOINTS = 8


def check_enough_joints(keypoints: Keypoints, where: str, minimum: int = MIN_POSE_JOINTS) -> Keypoints:
    """``keypoints`` unchanged when at least ``minimum`` of the 18 joints are present.

    Raises :class:`~pcdms.errors.TooFewJointsError` naming ``where`` (the file, or "the target pose") otherwise.
    """
    present = int(keypoints.present.sum())
    if present < minimum:
        raise TooFewJointsError(
            f"{where}: a pose with {present} of {NUM_KEYPOINTS} joints is too few to pose a person (at least {minimum})"
        )
    return keypoints


def check_size(size: Sequence[int], what: str = "image_size") -> Size:
    if len(size) != 2 or any(int(side) != side or side <= 0 for side in size):
        raise ValueError(f"{what} must be two positive integers (width, height), got {tuple(size)}")
    return int(size[0]), int(size[1])


@dataclass(frozen=True, eq=False)
class Keypoints:
    """One person's 18 body joints in the pixel frame of an image of ``image_size`` (width, height)."""

    xy: np.ndarray
    confidence: np.ndarray
    image_size: Size

    def __post_init__(self):
        xy = np.array(self.xy, dtype=np.float64)
        confidence = np.array(self.confidence, dtype=np.float64)
        if xy.shape != (NUM_KEYPOINTS, 2):
            raise ValueError(f"expected {NUM_KEYPOINTS} points of (x, y), got an array of shape {xy.shape}")
        if confidence.shape != (NUM_KEYPOINTS,):
            raise ValueError(f"expected {NUM_KEYPOINTS} confidences, got an array of shape {confidence.shape}")
        missing = np.isnan(xy).any(axis=1)
        if np.isinf(xy).any():
            raise ValueError("keypoint coordinates must be finite (NaN marks a missing joint)")
        if np.isnan(confidence).any() or (confidence < 0).any() or (confidence > 1).any():
            raise ValueError("keypoint confidences must lie in [0, 1]")
        if (confidence[~missing] == 0).any():
            raise ValueError("a present joint has confidence 0; mark a missing joint with NaN coordinates")
        xy[missing] = np.nan
        confidence[missing] = 0.0
        xy.flags.writeable = False
        confidence.flags.writeable = False
        object.__setattr__(self, "xy", xy)
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "image_size", check_size(self.image_size))

    @classmethod
    def empty(cls, image_size: Size) -> Keypoints:
        """No joint present."""
        return cls(np.full((NUM_KEYPOINTS, 2), np.nan), np.zeros(NUM_KEYPOINTS), image_size)

    @classmethod
    def from_named(cls, points: Mapping[str, Sequence[float]], image_size: Size) -> Keypoints:
        """Build from ``{"nose": (x, y), "neck": (x, y, confidence), ...}``; unnamed joints are missing."""
        unknown = set(points) - set(KEYPOINT_NAMES)
        if unknown:
            raise ValueError(f"unknown joint names {sorted(unknown)}; the names are {KEYPOINT_NAMES}")
        xy = np.full((NUM_KEYPOINTS, 2), np.nan)
        confidence = np.zeros(NUM_KEYPOINTS)
        for name, point in points.items():
            index = KEYPOINT_NAMES.index(name)
            xy[index] = point[:2]
            confidence[index] = point[2] if len(point) > 2 else 1.0
        return cls(xy, confidence, image_size)

    @property
    def present(self) -> np.ndarray:
        """Boolean mask of the joints that are there."""
        return ~np.isnan(self.xy[:, 0])

    @property
    def width(self) -> int:
        return self.image_size[0]

    @property
    def height(self) -> int:
        return self.image_size[1]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Keypoints):
            return NotImplemented
        return (
            self.image_size == other.image_size
            and np.array_equal(self.xy, other.xy, equal_nan=True)
            and np.array_equal(self.confidence, other.confidence)
        )

    __hash__ = None

    def allclose(self, other: Keypoints, atol: float = 1e-6) -> bool:
        """Same size, same joints present, coordinates and confidences within ``atol``."""
        return (
            self.image_size == other.image_size
            and np.array_equal(self.present, other.present)
            and np.allclose(self.xy, other.xy, atol=atol, rtol=0, equal_nan=True)
            and np.allclose(self.confidence, other.confidence, atol=atol, rtol=0)
        )

    def __repr__(self) -> str:
        return f"Keypoints({int(self.present.sum())}/{NUM_KEYPOINTS} joints, image_size={self.image_size})"

    def outside_frame(self, margin: float = 0.0) -> np.ndarray:
        """Mask of present joints that lie more than ``margin`` pixels outside the image."""
        low, high = -0.5 - margin, np.array(self.image_size) - 0.5 + margin
        with np.errstate(invalid="ignore"):
            return self.present & ((self.xy < low) | (self.xy > high)).any(axis=1)

    def _replace(self, xy=None, confidence=None, image_size=None) -> Keypoints:
        return Keypoints(
            self.xy if xy is None else xy,
            self.confidence if confidence is None else confidence,
            self.image_size if image_size is None else image_size,
        )

    def drop(self, mask: np.ndarray) -> Keypoints:
        """Mark the joints selected by ``mask`` as missing."""
        xy = self.xy.copy()
        xy[np.asarray(mask, dtype=bool)] = np.nan
        return self._replace(xy=xy)

    def threshold(self, min_confidence: float) -> Keypoints:
        """Mark joints with a confidence below ``min_confidence`` as missing."""
        return self.drop(self.confidence < min_confidence)

    # Geometry. Each method gives the keypoints of the image that the matching operation in
    # pcdms.pose.transforms produces, so image and keypoints stay aligned.

    def resize(self, size: Size) -> Keypoints:
        """Keypoints of the image resized (stretched if need be) to ``size``: pixel centres map to pixel centres."""
        size = check_size(size, "size")
        scale = np.array(size, dtype=np.float64) / np.array(self.image_size)
        return self._replace(xy=(self.xy + 0.5) * scale - 0.5, image_size=size)

    def pad(self, left: int, top: int, right: int = 0, bottom: int = 0) -> Keypoints:
        """Keypoints of the image with borders added on each side."""
        if min(left, top, right, bottom) < 0:
            raise ValueError("padding must be non-negative; use crop to cut an image")
        size = (self.width + left + right, self.height + top + bottom)
        return self._replace(xy=self.xy + (left, top), image_size=size)

    def crop(self, box: Sequence[int]) -> Keypoints:
        """Keypoints of ``image.crop(box)``, box = (left, top, right, bottom); joints cut off become missing."""
        left, top, right, bottom = (int(v) for v in box)
        cropped = self._replace(xy=self.xy - (left, top), image_size=(right - left, bottom - top))
        return cropped.drop(cropped.outside_frame())

    def hflip(self) -> Keypoints:
        """Keypoints of the mirrored image: x is reflected and left and right joints swap."""
        xy = self.xy.copy()
        xy[:, 0] = self.width - 1 - xy[:, 0]
        return self._replace(xy=xy[list(MIRROR)], confidence=self.confidence[list(MIRROR)])

    def letterbox(self, size: Size) -> Keypoints:
        """Keypoints of the image scaled to fit inside ``size`` and padded, centred, to exactly ``size``."""
        size = check_size(size, "size")
        inner, (left, top, right, bottom) = letterbox_geometry(self.image_size, size)
        return self.resize(inner).pad(left, top, right, bottom)


def letterbox_geometry(image_size: Size, size: Size) -> tuple[Size, tuple[int, int, int, int]]:
    """The scaled size and the (left, top, right, bottom) padding that letterbox ``image_size`` into ``size``."""
    scale = min(size[0] / image_size[0], size[1] / image_size[1])
    inner = (max(1, round(image_size[0] * scale)), max(1, round(image_size[1] * scale)))
    left, top = (size[0] - inner[0]) // 2, (size[1] - inner[1]) // 2
    return inner, (left, top, size[0] - inner[0] - left, size[1] - inner[1] - top)
