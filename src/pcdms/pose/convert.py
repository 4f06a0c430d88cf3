"""Conversions from other body layouts to the 18-point OpenPose layout.

Each takes a detector's raw arrays, so any detector plugs in: MediaPipe's 33 landmarks, COCO's 17
keypoints (RTMPose, ViTPose, DWPose's body part), COCO-WholeBody's 133 (DWPose, as the official
PCDMs code used), and OpenPose's BODY_25. The neck, which only OpenPose has, is the midpoint of the
shoulders, present when both are, with the smaller of their two confidences.
"""

from __future__ import annotations

import numpy as np

from .keypoints import NUM_KEYPOINTS, Keypoints, Size

NECK = 1
SHOULDERS = (2, 5)  # right and left shoulder in the 18-point layout

# For each of the 18 joints, its index in the other layout (-1: the neck, made from the shoulders).
# MediaPipe Pose: 0 nose, 2 left eye, 5 right eye, 7 left ear, 8 right ear, 11/12 left/right shoulder,
# 13/14 elbows, 15/16 wrists, 23/24 hips, 25/26 knees, 27/28 ankles ("left" is the person's left).
FROM_MEDIAPIPE = (0, -1, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)
# COCO-17: 0 nose, 1/2 left/right eye, 3/4 ears, 5/6 shoulders, 7/8 elbows, 9/10 wrists, 11/12 hips,
# 13/14 knees, 15/16 ankles. COCO-WholeBody's first 17 points are the same.
FROM_COCO17 = (0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
# OpenPose BODY_25 is the 18-point layout with a mid-hip (8) inserted and 6 foot points appended.
FROM_BODY25 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)


def _gather(xy: np.ndarray, score: np.ndarray, order: tuple[int, ...], present: np.ndarray) -> tuple:
    picked_xy = np.full((NUM_KEYPOINTS, 2), np.nan)
    picked_score = np.zeros(NUM_KEYPOINTS)
    for joint, source in enumerate(order):
        if source >= 0 and present[source]:
            picked_xy[joint] = xy[source]
            picked_score[joint] = score[source]
    return picked_xy, picked_score


def _add_neck(xy: np.ndarray, score: np.ndarray) -> None:
    right, left = SHOULDERS
    if score[right] > 0 and score[left] > 0:
        xy[NECK] = (xy[right] + xy[left]) / 2
        score[NECK] = min(score[right], score[left])


def _checked(points: np.ndarray, scores: np.ndarray, count: int, layout: str) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(points, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if points.shape != (count, 2) or scores.shape != (count,):
        raise ValueError(
            f"{layout} needs {count} points of (x, y) and {count} scores, "
            f"got arrays of shape {points.shape} and {scores.shape}"
        )
    if not (np.isfinite(points).all() and np.isfinite(scores).all()):
        raise ValueError(f"{layout} points or scores contain NaN or infinite numbers")
    return points, np.clip(scores, 0.0, 1.0)


def from_coco17(points: np.ndarray, scores: np.ndarray, image_size: Size, min_score: float = 0.3) -> Keypoints:
    """COCO-17 keypoints (pixels) and scores to our layout; joints scoring below ``min_score`` are missing.

    0.3 is the threshold the official PCDMs pose script applies to DWPose. Scores above 1, which some
    detectors emit, count as 1.
    """
    points, scores = _checked(points, scores, 17, "COCO-17")
    xy, score = _gather(points, scores, FROM_COCO17, scores >= max(min_score, 1e-9))
    _add_neck(xy, score)
    return Keypoints(xy, score, image_size)


def from_coco_wholebody(points: np.ndarray, scores: np.ndarray, image_size: Size, min_score: float = 0.3) -> Keypoints:
    """COCO-WholeBody's 133 keypoints (DWPose's output) to our layout: its first 17 are COCO-17's."""
    points, scores = _checked(points, scores, 133, "COCO-WholeBody")
    return from_coco17(points[:17], scores[:17], image_size, min_score)


def from_body25(points: np.ndarray, scores: np.ndarray, image_size: Size) -> Keypoints:
    """OpenPose BODY_25 to the 18-point layout; a score of 0 is OpenPose's mark for a missing joint."""
    points, scores = _checked(points, scores, 25, "BODY_25")
    xy, score = _gather(points, scores, FROM_BODY25, scores > 0)
    return Keypoints(xy, score, image_size)


def from_mediapipe(landmarks: np.ndarray, image_size: Size, min_visibility: float = 0.5) -> Keypoints:
    """MediaPipe Pose's 33 landmarks to our layout.

    ``landmarks`` is (33, 3): x and y as fractions of the image width and height (MediaPipe's
    normalised coordinates) and the landmark's visibility. Joints less visible than
    ``min_visibility``, or that MediaPipe places outside the image, are missing; the confidence of the
    others is their visibility.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (33, 3):
        raise ValueError(f"MediaPipe Pose needs 33 landmarks of (x, y, visibility), got shape {landmarks.shape}")
    if not np.isfinite(landmarks).all():
        raise ValueError("MediaPipe landmarks contain NaN or infinite numbers")
    fractions, visibility = landmarks[:, :2], np.clip(landmarks[:, 2], 0.0, 1.0)
    inside = ((fractions >= 0) & (fractions <= 1)).all(axis=1)
    pixels = fractions * np.array(image_size) - 0.5
    present = inside & (visibility >= max(min_visibility, 1e-9))
    xy, score = _gather(pixels, visibility, FROM_MEDIAPIPE, present)
    _add_neck(xy, score)
    return Keypoints(xy, score, image_size)
