"""The ``street`` dataset: Market-1501-style person crops and pairs cut from a fixed-camera video.

Built from the walking-people video that Debian's ``opencv-doc`` package ships
(``examples/data/vtest.avi``, 795 frames of 768x576 at 10 fps; OpenCV's samples, Apache-2.0/BSD), so
that a real-photo benchmark exists without downloading anything:

1. people are found by background subtraction (the camera never moves: the background is the
   per-pixel median of the video), as upright foreground blobs;
2. they are tracked from frame to frame by box overlap, and a track is one person;
3. each detection is cropped at Market-1501's 128x64 (height x width), centred on the person;
4. the pose extractor reads the body in a wider crop around it (MediaPipe misses people cropped
   tight), and a crop is kept only if its skeleton is reliable: enough joints, both shoulders and
   both hips;
5. the video is split in time, the first part for training and the last for testing, with a gap
   between them, so that no test frame (nor a frame next to one) is seen in training;
6. pairs join crops of one track, at least half a second apart and in visibly different poses.

It writes the Market-1501 layout (``{train,test}/``, ``market-annotation-{split}.csv``,
``market-pairs-{split}.csv``), so it goes through the same readers as the real datasets, and
``street.json`` with the settings and the counts.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import NoPersonError, PcdmsError
from ..io import atomic_folder, save_image
from ..pose.annotation_csv import write_annotation_csv
from ..pose.keypoints import KEYPOINT_NAMES, Keypoints

DEBIAN_VIDEO = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
CROP_SIZE = (64, 128)  # width, height: Market-1501's
EXTRACTION_HEIGHT = 256  # the wide crop is read at this height
REQUIRED_JOINTS = tuple(
    KEYPOINT_NAMES.index(name) for name in ("right_shoulder", "left_shoulder", "right_hip", "left_hip")
)

Box = tuple[int, int, int, int]  # x, y, width, height in the frame


@dataclass(frozen=True)
class StreetSettings:
    every: int = 1  # use every n-th frame
    max_frames: int | None = None
    foreground_threshold: int = 40  # largest channel difference from the background, 0-255
    min_height: int = 50  # pixels of the frame: smaller people are too blurry at 128 pixels high
    aspect: tuple[float, float] = (1.6, 4.5)  # height / width of one upright person (groups are wider)
    tight_margin: float = 1.15  # crop height / person height
    context_margin: float = 1.6  # the crop the pose is read in
    min_track: int = 5  # detections; shorter tracks are noise or people passing the frame edge
    min_joints: int = 12
    test_fraction: float = 0.2
    gap_frames: int = 20  # between the last training frame and the first test frame
    min_frame_distance: int = 5  # between the two crops of a pair
    min_pose_change: float = 0.04  # mean joint displacement between the two crops, over the crop height
    max_colour_change: float = 60  # of the torso's and the thighs' mean colours, 0-255: catches swapped tracks
    pairs_per_image: int = 4
    max_test_pairs: int = 400
    seed: int = 0


@dataclass
class Crop:
    track: int
    frame: int
    image: Image.Image
    pose: Keypoints

    @property
    def name(self) -> str:
        return f"{self.track:04d}_c1s1_{self.frame:06d}_00.jpg"

    @functools.cached_property
    def appearance(self) -> np.ndarray:
        """Mean colours of the torso (shoulders to hips) and of the thighs (hips down by the torso's
        length, clipped to the image): what tells two people of one track apart when tracking swapped them."""
        pixels = np.asarray(self.image, dtype=np.float64)
        joints = self.pose.xy[list(REQUIRED_JOINTS)]
        left, right = sorted(joints[:, 0])[0], sorted(joints[:, 0])[-1]
        shoulders, hips = joints[:2, 1].mean(), joints[2:, 1].mean()
        columns = slice(int(left), max(int(left) + 2, int(np.ceil(right))))
        torso = pixels[int(shoulders) : max(int(shoulders) + 2, int(hips)), columns]
        thighs = pixels[min(int(hips), CROP_SIZE[1] - 2) : max(int(hips) + 2, int(hips + hips - shoulders)), columns]
        return np.concatenate([torso.reshape(-1, 3).mean(0), thighs.reshape(-1, 3).mean(0)])


@dataclass
class StreetSummary:
    frames: int
    detections: int
    tracks: int
    crops: dict[str, int] = field(default_factory=dict)
    pairs: dict[str, int] = field(default_factory=dict)
    people: dict[str, int] = field(default_factory=dict)
    split_frame: int = 0


def _cv2():
    try:
        import cv2
    except ImportError:
        raise PcdmsError(
            "building the street dataset needs OpenCV: pip install -e '.[pose]' in the pcdms clone"
        ) from None
    return cv2


def read_video(path: Path, every: int = 1, max_frames: int | None = None) -> list[tuple[int, np.ndarray]]:
    """(frame number, RGB frame) of every ``every``-th frame."""
    cv2 = _cv2()
    if not path.is_file():
        raise PcdmsError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    frames, number = [], 0
    while max_frames is None or number < max_frames:
        ok, frame = capture.read()
        if not ok:
            break
        if number % every == 0:
            frames.append((number, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
        number += 1
    capture.release()
    if len(frames) < 2:
        raise PcdmsError(f"{path}: not a video OpenCV can read, or fewer than 2 frames")
    return frames


def median_background(frames: list[np.ndarray], samples: int = 50) -> np.ndarray:
    chosen = frames[:: max(1, len(frames) // samples)]
    return np.median(np.stack(chosen), axis=0).astype(np.uint8)


def detect_people(frame: np.ndarray, background: np.ndarray, settings: StreetSettings) -> list[Box]:
    """Upright foreground blobs of at least ``min_height`` pixels."""
    cv2 = _cv2()
    difference = np.abs(frame.astype(np.int16) - background.astype(np.int16)).max(axis=2)
    mask = (difference > settings.foreground_threshold).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    # Tall closing: joins a body that a thin pole or a dark belt splits, without joining neighbours.
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((9, 5), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    low, high = settings.aspect
    people = [(int(x), int(y), int(w), int(h)) for x, y, w, h, _ in stats[1:] if h >= settings.min_height]
    return [box for box in people if low <= box[3] / box[2] <= high and isolated(box, people)]


def isolated(box: Box, others: list[Box], margin: float = 0.3) -> bool:
    """No other blob within ``margin`` of the box's size: where people pass each other, a tracker can swap
    them, so those frames are left out and the tracks break there."""
    x, y, w, h = box
    grown = (round(x - margin * w), round(y - margin * h), round(w * (1 + 2 * margin)), round(h * (1 + 2 * margin)))
    return not any(other != box and overlap(grown, other) > 0 for other in others)


def overlap(first: Box, second: Box) -> float:
    """Intersection over union of two boxes."""
    x0, y0 = max(first[0], second[0]), max(first[1], second[1])
    x1 = min(first[0] + first[2], second[0] + second[2])
    y1 = min(first[1] + first[3], second[1] + second[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (first[2] * first[3] + second[2] * second[3] - inter)


def same_person(first: Box, second: Box, min_overlap: float) -> float:
    """How well ``second`` continues ``first``: their overlap, or 0 if it is too small or the height jumps (a
    blob that merged with or split from another person's is not the same person's)."""
    if not 0.8 <= second[3] / first[3] <= 1.25:
        return 0.0
    score = overlap(first, second)
    return score if score >= min_overlap else 0.0


def track(
    detections: list[tuple[int, list[Box]]], min_overlap: float = 0.3, patience: int = 2
) -> list[list[tuple[int, Box]]]:
    """Greedy frame-to-frame tracking: each box joins the live track whose last box continues best.

    A track not seen for more than ``patience`` frames ends; two tracks never share a box, so people
    who cross keep their own tracks or end them (never swap silently into one).
    """
    tracks: list[list[tuple[int, Box]]] = []
    live: list[int] = []
    for position, (_, boxes) in enumerate(detections):
        live = [index for index in live if position - tracks[index][-1][0] <= patience]
        candidates = sorted(
            (
                (same_person(tracks[index][-1][1], box, min_overlap), index, number)
                for index in live
                for number, box in enumerate(boxes)
            ),
            reverse=True,
        )
        taken_tracks, taken_boxes = set(), set()
        for score, index, number in candidates:
            if score == 0:
                break
            if index in taken_tracks or number in taken_boxes:
                continue
            tracks[index].append((position, boxes[number]))
            taken_tracks.add(index)
            taken_boxes.add(number)
        for number, box in enumerate(boxes):
            if number not in taken_boxes:
                tracks.append([(position, box)])
                live.append(len(tracks) - 1)
    return tracks


def _padded_box(box: Box, margin: float, aspect: float) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a box ``margin`` times the person's height, ``aspect`` = height / width,
    centred on the person."""
    x, y, w, h = box
    height = h * margin
    width = height / aspect
    cx, cy = x + w / 2, y + h / 2
    left, top = round(cx - width / 2), round(cy - height / 2)
    return left, top, left + round(width), top + round(height)


def padded_frame(frame: np.ndarray) -> tuple[Image.Image, int]:
    """The frame with its edges repeated a frame's height outwards (crops of people at the edge stay whole),
    and that border."""
    border = frame.shape[0]
    return Image.fromarray(np.pad(frame, ((border, border), (border, border), (0, 0)), mode="edge")), border


def crop_person(
    padded: Image.Image,
    border: int,
    box: Box,
    extractor: Callable[[Image.Image], Keypoints],
    settings: StreetSettings,
) -> tuple[Image.Image, Keypoints] | None:
    """The 64x128 crop of one detection (a box of the frame that ``padded_frame`` padded) and its pose, or None
    if the skeleton is not reliable."""
    aspect = CROP_SIZE[1] / CROP_SIZE[0]
    tight = [side + border for side in _padded_box(box, settings.tight_margin, aspect)]
    context = [side + border for side in _padded_box(box, settings.context_margin, aspect)]
    wide = padded.crop(context)
    try:
        pose = extractor(wide.resize((EXTRACTION_HEIGHT // 2, EXTRACTION_HEIGHT), Image.Resampling.BICUBIC))
    except NoPersonError:
        return None
    inside = (tight[0] - context[0], tight[1] - context[1], tight[2] - context[0], tight[3] - context[1])
    pose = pose.resize(wide.size).crop(inside).resize(CROP_SIZE)
    present = pose.present
    if present.sum() < settings.min_joints or not present[list(REQUIRED_JOINTS)].all():
        return None
    # The skeleton must be the centred, full-height person of the crop, not a neighbour the extractor preferred.
    centre = pose.xy[list(REQUIRED_JOINTS), 0].mean() / CROP_SIZE[0]
    extent = np.ptp(pose.xy[present, 1]) / CROP_SIZE[1]
    if not 0.3 <= centre <= 0.7 or extent < 0.6:
        return None
    image = padded.crop(tight).resize(CROP_SIZE, Image.Resampling.LANCZOS)
    return image, pose


def pose_change(first: Keypoints, second: Keypoints) -> float:
    both = first.present & second.present
    distance = np.linalg.norm(first.xy[both] - second.xy[both], axis=1)
    return float(distance.mean() / CROP_SIZE[1]) if both.any() else 0.0


def make_pairs(
    crops: list[Crop], settings: StreetSettings, per_image: int, rng: np.random.Generator
) -> list[tuple[str, str]]:
    """Up to ``per_image`` targets for each crop: crops of its track far enough in time and in pose."""
    by_track: dict[int, list[Crop]] = {}
    for crop in crops:
        by_track.setdefault(crop.track, []).append(crop)
    pairs = []
    for members in by_track.values():
        for source in members:
            targets = [
                target
                for target in members
                if abs(target.frame - source.frame) >= settings.min_frame_distance
                and pose_change(source.pose, target.pose) >= settings.min_pose_change
                and np.abs(source.appearance - target.appearance).max() <= settings.max_colour_change
            ]
            chosen = rng.choice(len(targets), size=min(per_image, len(targets)), replace=False) if targets else []
            pairs += [(source.name, targets[index].name) for index in sorted(chosen)]
    return pairs


def street_crops(
    video: Path, extractor: Callable[[Image.Image], Keypoints], settings: StreetSettings, progress: bool = True
) -> tuple[list[Crop], StreetSummary]:
    from tqdm.auto import tqdm

    frames = read_video(video, settings.every, settings.max_frames)
    background = median_background([frame for _, frame in frames])
    detections = [(number, detect_people(frame, background, settings)) for number, frame in frames]
    tracks = [found for found in track(detections) if len(found) >= settings.min_track]
    summary = StreetSummary(len(frames), sum(len(boxes) for _, boxes in detections), len(tracks))
    crops = []
    # Frame by frame, so that each frame is padded once for all the people in it.
    work = sorted((position, identity, box) for identity, found in enumerate(tracks, 1) for position, box in found)
    padded_at = functools.lru_cache(maxsize=1)(lambda position: padded_frame(frames[position][1]))
    for position, identity, box in tqdm(work, desc="people", unit="crop", disable=not progress):
        found = crop_person(*padded_at(position), box, extractor, settings)
        if found is not None:
            crops.append(Crop(identity, frames[position][0], *found))
    return sorted(crops, key=lambda crop: (crop.track, crop.frame)), summary


def split_crops(crops: list[Crop], last_frame: int, settings: StreetSettings) -> tuple[dict[str, list[Crop]], int]:
    split_frame = round(last_frame * (1 - settings.test_fraction))
    return {
        "train": [crop for crop in crops if crop.frame < split_frame - settings.gap_frames],
        "test": [crop for crop in crops if crop.frame >= split_frame],
    }, split_frame


def build_street_dataset(
    out: str | os.PathLike,
    video: str | os.PathLike = DEBIAN_VIDEO,
    extractor: Callable[[Image.Image], Keypoints] | None = None,
    settings: StreetSettings | None = None,
    progress: bool = True,
) -> StreetSummary:
    """Write the street dataset to ``out`` (replaced only when complete)."""
    from ..pose import get_extractor

    settings = settings or StreetSettings()
    video = Path(video)
    crops, summary = street_crops(video, extractor or get_extractor(), settings, progress)
    last_frame = max((crop.frame for crop in crops), default=0)
    splits, summary.split_frame = split_crops(crops, last_frame, settings)
    rng = np.random.default_rng(settings.seed)
    with atomic_folder(out) as folder:
        for split, members in splits.items():
            if not members:
                raise PcdmsError(f"{video}: no reliable person crops for the {split} split; try more frames")
            for crop in members:
                save_image(crop.image, folder / split / crop.name)
            write_annotation_csv(folder / f"market-annotation-{split}.csv", {crop.name: crop.pose for crop in members})
            pairs = make_pairs(members, settings, settings.pairs_per_image, rng)
            if split == "test" and len(pairs) > settings.max_test_pairs:
                pairs = [
                    pairs[index] for index in sorted(rng.choice(len(pairs), settings.max_test_pairs, replace=False))
                ]
            (folder / f"market-pairs-{split}.csv").write_text("from,to\n" + "".join(f"{s},{t}\n" for s, t in pairs))
            summary.crops[split], summary.pairs[split] = len(members), len(pairs)
            summary.people[split] = len({crop.track for crop in members})
        description = {"video": video.name, "settings": asdict(settings), "counts": asdict(summary)}
        (folder / "street.json").write_text(json.dumps(description, indent=2) + "\n")
    return summary
