"""Pose maps in the style of the OpenPose drawer that ControlNet and the official PCDMs code use.

Black background; each of the 17 limbs a filled ellipse, ``stick_width`` pixels in half-width, in its
colour at 60 % intensity, drawn in limb order; then each joint a filled disc of ``joint_radius``
pixels in full colour. The geometry repeats the drawer's integer arithmetic (truncated centre, length
and angle; OpenCV's ellipse polygon with its float sine table and round-half-even), so maps drawn
from integer keypoints match OpenCV's to a few edge pixels. Missing joints, and limbs touching them,
are not drawn.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from .keypoints import LIMBS, Keypoints, Size

if TYPE_CHECKING:  # torch only where a tensor is made: the pose commands start without it
    import torch

# The 18 OpenPose colours: limb i and joint i use COLORS[i].
COLORS = (
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
    (85, 0, 255),
    (170, 0, 255),
    (255, 0, 255),
    (255, 0, 170),
    (255, 0, 85),
)
LIMB_INTENSITY = 0.6
LIMB_COLORS = tuple(tuple(int(channel * LIMB_INTENSITY) for channel in color) for color in COLORS)

# OpenCV's table: sin of whole degrees 0..450 in float32 (cos(a) is read as sin(450 - a) = sin(90 + a)).
_SIN_TABLE = np.sin(np.deg2rad(np.arange(451))).astype(np.float32).astype(np.float64)


def _ellipse_polygon(center: tuple[int, int], axes: tuple[int, int], angle: int) -> list[tuple[int, int]]:
    """The points of OpenCV's ``ellipse2Poly(center, axes, angle, 0, 360, 1)``."""
    angle %= 360
    cos_angle, sin_angle = _SIN_TABLE[450 - angle], _SIN_TABLE[angle]
    degrees = np.arange(361)
    x = axes[0] * _SIN_TABLE[450 - degrees]
    y = axes[1] * _SIN_TABLE[degrees]
    points = np.rint(
        np.stack([center[0] + x * cos_angle - y * sin_angle, center[1] + x * sin_angle + y * cos_angle], axis=1)
    ).astype(np.int64)
    keep = np.ones(len(points), dtype=bool)
    keep[1:] = (points[1:] != points[:-1]).any(axis=1)
    return [(int(px), int(py)) for px, py in points[keep]]


def _fill_disc(pixels: np.ndarray, center: tuple[int, int], radius: int, color: tuple[int, int, int]) -> None:
    """Paint the pixels within ``radius`` of ``center`` (OpenCV's filled circle)."""
    height, width = pixels.shape[:2]
    left, right = max(center[0] - radius, 0), min(center[0] + radius + 1, width)
    top, bottom = max(center[1] - radius, 0), min(center[1] + radius + 1, height)
    if left >= right or top >= bottom:
        return
    columns = np.arange(left, right) - center[0]
    rows = np.arange(top, bottom) - center[1]
    inside = rows[:, None] ** 2 + columns[None, :] ** 2 <= radius * radius
    pixels[top:bottom, left:right][inside] = color


def render_pose(
    keypoints: Keypoints,
    size: Size | None = None,
    *,
    stick_width: int = 4,
    joint_radius: int = 4,
    min_confidence: float = 0.0,
) -> Image.Image:
    """Draw a pose map (RGB) of ``size`` (default: the keypoints' image size).

    Keypoints are scaled to ``size`` when it differs from their image size. Joints less confident
    than ``min_confidence`` are left out.
    """
    if stick_width < 1 or joint_radius < 0:
        raise ValueError("stick_width must be at least 1 and joint_radius at least 0")
    if size is not None and tuple(size) != keypoints.image_size:
        keypoints = keypoints.resize(size)
    visible = keypoints.present & (keypoints.confidence >= min_confidence)
    canvas = Image.new("RGB", keypoints.image_size)
    draw = ImageDraw.Draw(canvas)
    xy = keypoints.xy
    for limb, (start, end) in enumerate(LIMBS):
        if not (visible[start] and visible[end]):
            continue
        (x0, y0), (x1, y1) = xy[start], xy[end]
        length = math.hypot(x0 - x1, y0 - y1)
        angle = math.degrees(math.atan2(y0 - y1, x0 - x1))
        center = (int((x0 + x1) / 2), int((y0 + y1) / 2))
        polygon = _ellipse_polygon(center, (int(length / 2), stick_width), int(angle))
        draw.polygon(polygon, fill=LIMB_COLORS[limb])
    pixels = np.array(canvas)
    for joint in np.flatnonzero(visible):
        center = (int(xy[joint, 0]), int(xy[joint, 1]))
        _fill_disc(pixels, center, joint_radius, COLORS[joint])
    return Image.fromarray(pixels)


def pose_map_tensor(keypoints: Keypoints, size: Size | None = None, **render_kwargs) -> torch.Tensor:
    """The pose map as a float32 tensor (3, height, width) in [-1, 1], as the stage-2 pose encoder reads it."""
    import torch

    pixels = torch.from_numpy(np.array(render_pose(keypoints, size, **render_kwargs)))
    return pixels.permute(2, 0, 1).float() / 127.5 - 1.0


def draw_overlay(image: Image.Image, keypoints: Keypoints, dim: float = 0.5, **render_kwargs) -> Image.Image:
    """The pose map drawn over a dimmed copy of ``image``, to check that a skeleton sits on the body."""
    pose_map = render_pose(keypoints, image.size, **render_kwargs)
    darker = Image.eval(image.convert("RGB"), lambda value: int(value * (1 - dim)))
    drawn = Image.fromarray((np.array(pose_map).max(axis=2) > 0).astype(np.uint8) * 255)
    return Image.composite(pose_map, darker, drawn)
