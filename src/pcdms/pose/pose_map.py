"""Reading the keypoints back from a rendered pose map (render_pose, OpenPose, DWPose, controlnet_aux).

Such a map is drawn on black in the 18 OpenPose colours: the limbs first at 60 % intensity, then each
joint as a disc in full colour, in joint order, so a later disc may hide part of an earlier one;
DWPose and OpenPose may then draw hands and a face on top. Every pixel takes the nearest of the 35
palette colours or black (or none, when none is near), and each joint is the disc of its colour that
best explains the map: the disc covering the most pixels of the joint's colour and the fewest that
must lie outside it, those drawn before it (background, limbs, earlier joints). Later joints, hands
and faces count for nothing either way, so a half-hidden disc is still centred where it was drawn,
and a thin hand line in a joint's colour never makes a disc. Of several candidate discs of one
colour (a knee and a blue hand point), the one that ends its limbs wins. The disc radius is measured
on the map, so resized maps read as well.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from PIL import Image

from ..errors import PoseFileError
from .extract import MIN_JOINTS
from .keypoints import LIMBS, NUM_KEYPOINTS, Keypoints
from .render import COLORS, LIMB_COLORS

# Pixel classes: 0..17 a joint's full colour, LIMB + k limb k's 60 % colour, BLACK, UNKNOWN (no palette colour near).
LIMB = NUM_KEYPOINTS
BLACK = LIMB + len(LIMBS)
UNKNOWN = BLACK + 1
_REFERENCES = np.array([*COLORS, *LIMB_COLORS, (0, 0, 0)], dtype=np.float32)
# The limb classes that end at each joint.
_JOINT_LIMBS = tuple(
    [LIMB + limb for limb, ends in enumerate(LIMBS) if joint in ends] for joint in range(NUM_KEYPOINTS)
)

# Darker than this is background: JPEG ringing on black stays below it, a 60 % limb (153) is far above.
BLACK_LEVEL = 48
# Palette colours lie 51 or more apart (two neighbouring limb colours), yet JPEG's halved chroma moves
# the edge pixels of a small saturated disc further, so the nearest colour decides and this bound only
# turns away colours no drawer uses (white face points, grey, skin).
COLOR_TOLERANCE = 80.0
# Disc centres are tried at this many steps per pixel.
SUBPIXEL = 4
# A joint needs a disc of which at least this share is explained by its colour: a disc 2 px from a later
# one still shows about 30 % of itself; JPEG specks, hand lines and the blend JPEG makes where two discs
# meet (which can take a third joint's colour) explain less.
MIN_DISC_SHARE = 0.25
# Limb tips fill a tenth to a quarter of the ring just outside a joint's disc; weighed so, they let a
# knee half blurred away by JPEG outrank a hand point of the same blue and size drawn whole.
LIMB_TIP_WEIGHT = 3.0

# is_pose_map looks at a copy no larger than this: plenty to judge by, and cheap for large photos.
MAP_SIDE = 512
# A pose map is mostly background; its other pixels are mostly palette colours, of several hues.
MAP_MIN_BLACK = 0.5
MAP_MIN_PALETTE = 0.6
MAP_PALETTE_TOLERANCE = 40.0
MAP_MIN_HUES = 3
MAP_MIN_HUE_PIXELS = 4
_CHUNK = 1 << 16


def _classify(pixels: np.ndarray, tolerance: float = COLOR_TOLERANCE) -> np.ndarray:
    """The class of each pixel of an (H, W, 3) array: its joint colour, limb colour, BLACK or UNKNOWN."""
    classes = np.full(pixels.shape[:2], BLACK, dtype=np.int8)
    flat_classes, flat_pixels = classes.reshape(-1), pixels.reshape(-1, 3)
    lit = np.flatnonzero(pixels.max(axis=2) > BLACK_LEVEL)
    for start in range(0, lit.size, _CHUNK):  # chunks bound the memory of the distance table
        chosen = lit[start : start + _CHUNK]
        distances = ((flat_pixels[chosen, None, :].astype(np.float32) - _REFERENCES) ** 2).sum(axis=2)
        nearest = distances.argmin(axis=1)
        nearest[distances[np.arange(chosen.size), nearest] > tolerance**2] = UNKNOWN
        flat_classes[chosen] = nearest
    return classes


def is_pose_map(image: Image.Image) -> bool:
    """Whether ``image`` is an OpenPose-style pose map (a coloured skeleton on black) rather than a photo."""
    image = image.convert("RGB")
    if max(image.size) > MAP_SIDE:
        # Nearest-neighbour sampling keeps the palette colours exact.
        scale = MAP_SIDE / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.NEAREST)
    pixels = np.asarray(image)
    if (pixels.max(axis=2) > BLACK_LEVEL).mean() > 1 - MAP_MIN_BLACK:
        return False
    classes = _classify(pixels, MAP_PALETTE_TOLERANCE)
    coloured = classes[classes != BLACK]
    if coloured.size == 0 or (coloured < BLACK).mean() < MAP_MIN_PALETTE:
        return False
    palette = coloured[coloured < BLACK]
    hues = np.where(palette >= LIMB, palette - LIMB, palette)  # limb k is drawn in joint k's hue
    return int((np.bincount(hues, minlength=NUM_KEYPOINTS) >= MAP_MIN_HUE_PIXELS).sum()) >= MAP_MIN_HUES


def _blobs(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Rows and columns of the joint-coloured pixels, and the indexes of each blob among them: the
    pixels of one joint colour connected through 8-neighbours of that colour."""
    rows, cols = np.nonzero(classes < LIMB)
    index = np.full(classes.shape, -1, dtype=np.int64)
    index[rows, cols] = np.arange(rows.size)
    height, width = classes.shape
    first, second = [], []
    for d_row, d_col in ((0, 1), (1, -1), (1, 0), (1, 1)):
        n_rows, n_cols = rows + d_row, cols + d_col
        inside = np.flatnonzero((n_rows < height) & (n_cols >= 0) & (n_cols < width))
        neighbour = index[n_rows[inside], n_cols[inside]]
        same = (neighbour >= 0) & (classes[n_rows[inside], n_cols[inside]] == classes[rows[inside], cols[inside]])
        first.append(inside[same])
        second.append(neighbour[same])
    first, second = np.concatenate(first), np.concatenate(second)
    # Every pixel takes the smallest label among its neighbours, then jumps along the chain of labels.
    labels = np.arange(rows.size)
    while True:
        updated = labels.copy()
        np.minimum.at(updated, first, labels[second])
        np.minimum.at(updated, second, labels[first])
        updated = updated[updated]
        if np.array_equal(updated, labels):
            break
        labels = updated
    order = np.argsort(labels, kind="stable")
    return rows, cols, np.split(order, np.flatnonzero(np.diff(labels[order])) + 1) if rows.size else []


def _best_disc(evidence: np.ndarray, radius: float) -> tuple[float, float]:
    """(x, y) of the disc of ``radius`` whose area covers the most ``evidence`` (+1, 0 or -1 a pixel).

    Centres are tried SUBPIXEL times per pixel at once (a correlation by FFT); where several score
    within a small area of the best, as in a disc drawn larger than ``radius``, their mean is taken.
    """
    fine = np.kron(evidence, np.ones((SUBPIXEL, SUBPIXEL), dtype=np.float32))
    reach = math.ceil(radius * SUBPIXEL)
    offsets = np.arange(-reach, reach + 1)
    kernel = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= (radius * SUBPIXEL) ** 2).astype(np.float32)
    shape = (fine.shape[0] + 2 * reach, fine.shape[1] + 2 * reach)
    correlation = np.fft.irfft2(np.fft.rfft2(fine, shape) * np.fft.rfft2(kernel, shape), shape)
    score = correlation[reach : reach + fine.shape[0], reach : reach + fine.shape[1]] / SUBPIXEL**2
    fine_rows, fine_cols = np.nonzero(score >= score.max() - 0.25)
    # Step s of pixel p lies at p - 1/2 + (s + 1/2) / SUBPIXEL.
    x, y = ((fine_index.mean() + 0.5) / SUBPIXEL - 0.5 for fine_index in (fine_cols, fine_rows))
    return x, y


class _Disc(NamedTuple):
    score: int  # pixels of the joint's colour inside, less those it cannot cover
    rank: float  # the score, weighed by what lies just outside
    x: float
    y: float


def _fit_joint(classes: np.ndarray, joint: int, rows: np.ndarray, cols: np.ndarray, radius: float) -> _Disc:
    """The best disc of ``joint`` over one blob of its colour."""
    margin = math.ceil(radius) + 2
    top, left = max(int(rows.min()) - margin, 0), max(int(cols.min()) - margin, 0)
    patch = classes[top : rows.max() + margin + 1, left : cols.max() + margin + 1]
    own = patch == joint
    # The disc cannot cover what was drawn before it; later joints, hands and faces may cover it.
    drawn_before = ((patch >= LIMB) & (patch <= BLACK)) | (patch < joint)
    x, y = _best_disc(own.astype(np.float32) - drawn_before, radius)
    patch_rows, patch_cols = np.ogrid[: patch.shape[0], : patch.shape[1]]
    distance = np.hypot(patch_cols - x, patch_rows - y)
    inside, ring = distance <= radius, (distance > radius + 1) & (distance <= radius + 3)
    # The score forgives a darker rim of the joint's own hue: JPEG or resizing blurs a disc's edge so,
    # most of all a blue or red one (little luma), though it may be the limb of that hue.
    rim = patch == LIMB + joint
    score = int(own[inside].sum()) - int((drawn_before & ~rim)[inside].sum())
    # Just outside a joint's disc show the tips of its limbs and hardly any of its own colour; a hand
    # point in a joint's colour, or a disc fitted inside a cluster of them, shows the opposite.
    limb_tips = float(np.isin(patch[ring], _JOINT_LIMBS[joint]).mean())
    rank = score * (1 + LIMB_TIP_WEIGHT * limb_tips - float(own[ring].mean()))
    return _Disc(score, rank, left + x, top + y)


def read_pose_map(image: Image.Image, min_joints: int = MIN_JOINTS, where: str = "pose image") -> Keypoints:
    """The 18 keypoints drawn in an OpenPose-style pose map, in the frame of the map.

    A joint without a disc of its colour is missing, as is one mostly hidden under later joints'
    discs (in a JPEG, whose blur eats thin slivers, even half hidden). JPEG can also blend the touching
    discs of joints k - 1 and k + 1 into joint k's colour, which on rare occasions passes for joint k.
    With several people in the map, each joint is the best-drawn disc of its colour.

    Raises :class:`PoseFileError`, naming ``where``, when fewer than ``min_joints`` joints are found.
    The default is the rule of extraction from photos, 4: fewer is no usable pose, and while a patch
    of a palette colour in some other picture may pass for a joint or two, hardly for four.
    """
    classes = _classify(np.asarray(image.convert("RGB")))
    rows, cols, blobs = _blobs(classes)
    blob_joint = [int(classes[rows[blob[0]], cols[blob[0]]]) for blob in blobs]
    xy = np.full((NUM_KEYPOINTS, 2), np.nan)
    if blobs:
        # The drawn disc radius, from the median area of each joint colour's largest blob: the median
        # passes over half-hidden discs and clusters of hand points alike.
        largest = {}
        for blob, joint in zip(blobs, blob_joint, strict=True):
            largest[joint] = max(largest.get(joint, 0), blob.size)
        radius = math.sqrt(float(np.median(list(largest.values()))) / math.pi)
        min_score = MIN_DISC_SHARE * math.pi * radius**2
        for joint in range(NUM_KEYPOINTS):
            fits = [
                _fit_joint(classes, joint, rows[blob], cols[blob], radius)
                for blob, of in zip(blobs, blob_joint, strict=True)
                if of == joint and blob.size >= min_score
            ]
            fits = [fit for fit in fits if fit.score >= min_score]
            if fits:
                best = max(fits, key=lambda fit: fit.rank)
                xy[joint] = best.x, best.y
    found = int((~np.isnan(xy[:, 0])).sum())
    if found < min_joints:
        raise PoseFileError(
            f"{where}: only {found} of {NUM_KEYPOINTS} joints found in the pose map, {min_joints} needed"
        )
    # Drawers truncate coordinates to whole pixels, so a disc on pixel c stands for a joint anywhere in
    # [c, c + 1): the middle is the best guess, and its disc is drawn on c again. A disc cut by the
    # border may seem centred a little beyond it.
    xy = np.clip(xy + 0.5, -0.5, np.array(image.size) - 0.5)
    return Keypoints(xy, np.where(np.isnan(xy[:, 0]), 0.0, 1.0), image.size)
