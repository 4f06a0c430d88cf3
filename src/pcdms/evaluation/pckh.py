"""Pose accuracy: PCKh between the target pose and the pose found on the generated image.

The definition of the pose-transfer literature (PATN, CVPR 2019, ``calPCKH_*.py``): the head box is
the bounding box of the target's nose, neck, eyes and ears (at least two of them present); a joint
is right when the detected joint lies closer than ``alpha`` (0.5) times the box's width
horizontally and its height vertically to the target's. PCKh is right joints over the target's
present joints, summed over every scored pair; a pair whose target has no head box is not scored,
and a generated image on which nobody is found scores no right joint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..pose.keypoints import KEYPOINT_NAMES

HEAD_JOINTS = tuple(
    KEYPOINT_NAMES.index(name) for name in ("nose", "neck", "right_eye", "left_eye", "right_ear", "left_ear")
)
ALPHA = 0.5


def head_box(target: np.ndarray) -> tuple[float, float] | None:
    head = target[list(HEAD_JOINTS)]
    head = head[~np.isnan(head[:, 0])]
    if len(head) < 2:
        return None
    width, height = head.max(0) - head.min(0)
    return float(width), float(height)


@dataclass
class PCKh:
    right: int = 0
    joints: int = 0
    pairs: int = 0
    no_head: int = 0  # target without a head box: not scored
    nobody_found: int = 0  # scored pairs whose generated image showed nobody to the extractor

    def add(self, target: np.ndarray, detected: np.ndarray | None) -> None:
        """One pair: the target's and the detected (x, y) in the same frame (NaN rows: missing)."""
        box = head_box(target)
        if box is None:
            self.no_head += 1
            return
        present = ~np.isnan(target[:, 0])
        self.pairs += 1
        self.joints += int(present.sum())
        if detected is None:
            self.nobody_found += 1
            return
        distance = np.abs(detected - target)
        with np.errstate(invalid="ignore"):  # missing joints compare False
            right = (distance[:, 0] < ALPHA * box[0]) & (distance[:, 1] < ALPHA * box[1])
        self.right += int(right.sum())

    @property
    def value(self) -> float:
        return self.right / self.joints if self.joints else float("nan")
