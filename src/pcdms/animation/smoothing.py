"""Temporal smoothing of keypoint tracks with the One-Euro filter.

The One-Euro filter (Casiez, Roussel and Vogel, "1€ Filter: A Simple Speed-based Low-pass Filter for
Noisy Input in Interactive Systems", CHI 2012) is a low-pass filter whose cutoff rises with the
signal's speed: a joint that stands still is smoothed hard (detector jitter removed), a joint that
moves fast is followed closely (little lag). Each coordinate of each joint is filtered on its own.

Coordinates are filtered in units of the frame's height, so the parameters mean the same at any
resolution: ``min_cutoff`` (Hz) is the cutoff at rest (lower: smoother, more lag when slow),
``beta`` (per frame height per second) how fast the cutoff rises with speed (higher: less lag when
fast), ``d_cutoff`` (Hz) the cutoff of the speed estimate. ``min_cutoff`` = ``d_cutoff`` = 1 Hz is
the paper's starting point; ``beta`` = 3 was chosen on synthetic tracks at 10 fps (the street video's
rate; ``tests/test_smoothing.py``): the frame-to-frame jitter of a still joint with detector-like
noise (0.5% of the frame height) drops about threefold, a steady motion lags by under a frame, and a
1 Hz swing (a walking step) keeps about 80% of its amplitude.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..pose.keypoints import Keypoints


@dataclass(frozen=True)
class OneEuroSettings:
    """The filter's parameters; see the module's docstring for their units and meaning."""

    min_cutoff: float = 1.0
    beta: float = 3.0
    d_cutoff: float = 1.0

    def __post_init__(self):
        if self.min_cutoff <= 0 or self.d_cutoff <= 0 or self.beta < 0:
            raise ValueError("min_cutoff and d_cutoff must be positive and beta at least 0")


def _alpha(cutoff: float, period: float) -> float:
    """The exponential smoothing factor of a first-order low-pass filter at ``cutoff`` Hz, sampled every
    ``period`` seconds (the paper's equation 4)."""
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / period)


def one_euro(values: np.ndarray, fps: float, settings: OneEuroSettings = OneEuroSettings()) -> np.ndarray:
    """One signal filtered: ``values`` (frames,) with NaN where the signal is missing.

    A missing sample stays missing and does not move the filter; the next present one is filtered over
    the whole time since the last, so the filter catches up after a gap. Returns an array like ``values``.
    """
    out = np.full(len(values), np.nan)
    last_value = last_speed = None
    last_frame = 0
    for frame, value in enumerate(values):
        if np.isnan(value):
            continue
        if last_value is None:
            out[frame], last_value, last_speed, last_frame = value, value, 0.0, frame
            continue
        period = (frame - last_frame) / fps
        speed = (value - last_value) / period
        speed = last_speed + _alpha(settings.d_cutoff, period) * (speed - last_speed)
        cutoff = settings.min_cutoff + settings.beta * abs(speed)
        value = last_value + _alpha(cutoff, period) * (value - last_value)
        out[frame], last_value, last_speed, last_frame = value, value, speed, frame
    return out


def smooth_poses(
    poses: Sequence[Keypoints], fps: float, settings: OneEuroSettings = OneEuroSettings()
) -> list[Keypoints]:
    """The poses of consecutive frames (one frame size), each joint's x and y One-Euro filtered over time.

    ``fps``: the frames per second (the filter's time base). A joint missing in a frame stays missing
    there; confidences are kept. Raises ValueError for poses of different frame sizes or ``fps`` <= 0.
    """
    if not poses:
        return []
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    sizes = {pose.image_size for pose in poses}
    if len(sizes) > 1:
        raise ValueError(f"poses of one frame size are smoothed together, got {sorted(sizes)}")
    unit = float(poses[0].height)  # filtered in frame heights: parameters independent of the resolution
    tracks = np.stack([pose.xy for pose in poses]) / unit  # (frames, joints, 2)
    smoothed = np.empty_like(tracks)
    for joint in range(tracks.shape[1]):
        for axis in range(2):
            smoothed[:, joint, axis] = one_euro(tracks[:, joint, axis], fps, settings)
    return [pose._replace(xy=xy * unit) for pose, xy in zip(poses, smoothed, strict=True)]
