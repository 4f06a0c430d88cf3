"""Retargeting: a driving skeleton moved and scaled onto the source person's body.

A tall driver must not stretch a short source, and a driver standing at the left of its video must
not pull the source out of its photo. The driving pose is rebuilt along the kinematic tree of the
18-joint layout (the neck is the root; every limb of :data:`~pcdms.pose.keypoints.LIMBS` goes from
parent to child): each bone keeps the driver's direction, and its length is scaled by the ratio of
the source's length of that bone to the driver's (its reference length: in one pose, its own; over
a sequence, the median over the frames, so that a bone foreshortened in one frame stays shorter
there). The root is placed on the source's neck for the reference (first) frame and moves as the
driver's, scaled by the body ratio. The result is in the source photo's frame; a skeleton that would
leave the frame is shifted back into it, and what still sticks out is cut at the edge.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..pose.keypoints import LIMBS, NUM_KEYPOINTS, Keypoints

ROOT = 1  # the neck: every limb chain starts there
# The bones in tree order (a parent is always placed before its children): LIMBS lists them so.
BONES = LIMBS


def bone_lengths(pose: Keypoints) -> np.ndarray:
    """(len(BONES),) pixel lengths of the bones, NaN where a joint is missing."""
    xy = pose.xy
    return np.array([np.linalg.norm(xy[child] - xy[parent]) for parent, child in BONES])


def reference_lengths(poses: Sequence[Keypoints]) -> np.ndarray:
    """Each bone's median length over ``poses`` (NaN where never present): the driver's usual proportions."""
    lengths = np.stack([bone_lengths(pose) for pose in poses])
    present = ~np.isnan(lengths)
    medians = np.full(len(BONES), np.nan)
    for bone in range(len(BONES)):
        if present[:, bone].any():
            medians[bone] = np.median(lengths[present[:, bone], bone])
    return medians


def _extent(pose: Keypoints) -> float:
    """The height of the box around the present joints, at least a pixel."""
    points = pose.xy[pose.present]
    return max(1.0, float(np.ptp(points[:, 1]))) if len(points) else 1.0


def _body_scale(source: Keypoints, poses: Sequence[Keypoints], reference: np.ndarray) -> float:
    """The source's size over the driver's: the median of the bones' length ratios (robust to one bad bone),
    or where they share no bone, the ratio of the heights of their joints' boxes."""
    ratios = bone_lengths(source) / reference
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    if len(ratios):
        return float(np.median(ratios))
    return _extent(source) / float(np.median([_extent(pose) for pose in poses]))


def _anchor(pose: Keypoints) -> np.ndarray:
    """The neck, or the mean of the present joints where the neck is missing."""
    return pose.xy[ROOT] if pose.present[ROOT] else pose.xy[pose.present].mean(axis=0)


def retarget_sequence(source: Keypoints, poses: Sequence[Keypoints]) -> list[Keypoints]:
    """The driving ``poses`` (consecutive frames, one frame size) retargeted onto ``source`` (the source photo's
    pose, in its frame): bone lengths in the source's proportions, the first frame's root on the source's
    neck, the motion of the root scaled alike. Returns keypoints in ``source.image_size``, with the drivers'
    joints present and confidences. Raises ValueError for an empty sequence or a source without joints.
    """
    if not poses:
        raise ValueError("no driving poses to retarget")
    if not source.present.any():
        raise ValueError("the source pose has no joints to retarget onto")
    reference = reference_lengths(poses)
    bone_scale = bone_lengths(source) / reference
    body = _body_scale(source, poses, reference)
    bone_scale = np.where(np.isfinite(bone_scale) & (bone_scale > 0), bone_scale, body)
    origin, target = _anchor(poses[0]), _anchor(source)
    return [_retarget_one(pose, source.image_size, bone_scale, body, origin, target) for pose in poses]


def retarget_pose(source: Keypoints, pose: Keypoints) -> Keypoints:
    """One driving ``pose`` retargeted onto ``source``: its bones get the source's lengths exactly (where the
    source has the bone), its neck the source's neck. See :func:`retarget_sequence`."""
    return retarget_sequence(source, [pose])[0]


def _retarget_one(pose, size, bone_scale, body, origin, target) -> Keypoints:
    def placed_globally(point: np.ndarray) -> np.ndarray:
        return target + (point - origin) * body

    xy = np.full((NUM_KEYPOINTS, 2), np.nan)
    present = pose.present
    if present[ROOT]:
        xy[ROOT] = placed_globally(pose.xy[ROOT])
    for bone, (parent, child) in enumerate(BONES):
        if not present[child]:
            continue
        if present[parent] and not np.isnan(xy[parent, 0]):
            xy[child] = xy[parent] + (pose.xy[child] - pose.xy[parent]) * bone_scale[bone]
        else:  # the chain is broken above: place the joint by the body's scale alone
            xy[child] = placed_globally(pose.xy[child])
    for joint in np.flatnonzero(present & np.isnan(xy[:, 0])):  # joints of no bone (none in this layout)
        xy[joint] = placed_globally(pose.xy[joint])
    return Keypoints(_into_frame(xy, size), pose.confidence, size)


def _into_frame(xy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``xy`` shifted, as a whole, so the skeleton lies inside the frame where it fits; then cut at the edges."""
    high = np.array(size, dtype=np.float64) - 1
    low_corner, high_corner = np.nanmin(xy, axis=0), np.nanmax(xy, axis=0)
    shift = np.maximum(0.0, -low_corner) - np.maximum(0.0, high_corner - high)  # one side only when it fits
    return np.clip(xy + shift, 0.0, high)
