"""The dataset layouts users hold, and telling which one a folder is.

- ``pcdms``: the processed DeepFashion the PCDMs authors released: ``all_data_png/`` (or
  ``train_all_png/``, the name their training code expects), ``{split}_data.json`` listing
  ``{"source_image": "img1.jpg", "target_image": ...}`` pairs (the code reads ``img1.png``), and
  ``normalized_pose_txt/`` with one PCDMs pose txt per image.
- ``deepfashion``: the PATN layout that PIDM, NTED, DPTN and CFLD use:
  ``fasion-resize-pairs-{split}.csv`` (``from,to``), ``fasion-resize-annotation-{split}.csv``
  (keypoints in a 176x256 frame; the "fashion" spelling is accepted too) and the images in
  ``{split}_highres/`` (CFLD) or ``{split}/`` (PATN).
- ``market``: Market-1501 in the same form, ``market-pairs-{split}.csv`` and
  ``market-annotation-{split}.csv`` (keypoints in a 64x128 frame), images in ``{split}/`` or
  ``bounding_box_{split}/``.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import DatasetError, PcdmsError, PoseFileError
from ..pose.annotation_csv import read_annotation_csv
from ..pose.keypoints import Keypoints, Size, check_enough_joints
from ..pose.pcdms_txt import read_pcdms_txt, read_pcdms_txt_vector
from ..pose.vector import OFFICIAL, keypoints_from_vector
from .dataset import Pair, PoseTransferDataset

DEEPFASHION_ANNOTATION_SIZE = (176, 256)
MARKET_ANNOTATION_SIZE = (64, 128)
LAYOUTS = ("pcdms", "deepfashion", "market")


def read_pairs_csv(path: str | os.PathLike) -> list[tuple[str, str]]:
    """(source, target) image names from a pairs CSV with ``from`` and ``to`` columns."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file))
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"{path}: not a CSV file ({error})") from None
    header = [column.strip() for column in rows[0]] if rows else []
    if "from" not in header or "to" not in header:
        raise DatasetError(f"{path}: a pairs CSV needs a header with 'from' and 'to' columns")
    source_column, target_column = header.index("from"), header.index("to")
    pairs = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header) or not row[source_column].strip() or not row[target_column].strip():
            raise DatasetError(f"{path}, line {number}: expected {len(header)} columns with both image names")
        pairs.append((row[source_column].strip(), row[target_column].strip()))
    return pairs


def read_pairs_json(path: str | os.PathLike) -> list[tuple[str, str]]:
    """(source, target) image names from a PCDMs ``{split}_data.json``."""
    path = Path(path)
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"{path}: not valid JSON ({error}); is the file truncated?") from None
    if not isinstance(items, list):
        raise DatasetError(f"{path}: expected a list of {{'source_image', 'target_image'}} objects")
    pairs = []
    for index, item in enumerate(items):
        names = [item.get(key) if isinstance(item, dict) else None for key in ("source_image", "target_image")]
        if not all(isinstance(name, str) and name for name in names):
            raise DatasetError(f"{path}: item {index} lacks a 'source_image' or 'target_image' name")
        pairs.append((names[0], names[1]))
    return pairs


class AnnotatedPairsDataset(PoseTransferDataset):
    """A pairs CSV, an annotation CSV and an image folder: DeepFashion or Market-1501 in the PATN layout.

    Annotations are in a fixed frame (``annotation_size``) and are scaled to each image's own size,
    so high-resolution images (CFLD's ``train_highres``) get their poses right.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        image_dir: str | os.PathLike,
        pairs_csv: str | os.PathLike,
        annotation_csv: str | os.PathLike,
        annotation_size: Size,
        description: str,
        transform: Callable[[Pair], Any] | None = None,
    ):
        self.description = description
        self.annotation_csv = Path(annotation_csv)
        try:
            self.annotations = read_annotation_csv(annotation_csv, annotation_size)
        except PoseFileError as error:
            raise DatasetError(str(error)) from None
        super().__init__(root, split, image_dir, read_pairs_csv(pairs_csv), transform)

    def has_pose(self, name: str) -> bool:
        return name in self.annotations

    def check_pose(self, name: str) -> None:
        """Annotations were all read and checked when the dataset was opened; here, the joint count
        (an all -1 row, no joint detected, is no pose)."""
        check_enough_joints(self.annotations[name], f"{self.annotation_csv}: {name}")

    def pose(self, name: str, size: Size) -> Keypoints:
        try:
            return self.annotations[name].resize(size)
        except KeyError:
            raise DatasetError(f"{self.annotation_csv}: no annotation for {name}") from None


class PcdmsReleaseDataset(PoseTransferDataset):
    """The processed DeepFashion of the PCDMs release; its pose txt files are in the official convention."""

    description = "PCDMs release"

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        image_dir: str | os.PathLike | None = None,
        pose_dir: str | os.PathLike | None = None,
        transform: Callable[[Pair], Any] | None = None,
    ):
        root = Path(root)
        image_dir = Path(image_dir) if image_dir else _first_dir(root, ("all_data_png", "train_all_png"))
        self.pose_dir = Path(pose_dir) if pose_dir else root / "normalized_pose_txt"
        if not self.pose_dir.is_dir():
            hint = " (unzip normalized_pose_txt.zip there)" if (root / "normalized_pose_txt.zip").exists() else ""
            raise DatasetError(f"{self.pose_dir}: pose folder not found{hint}")
        super().__init__(root, split, image_dir, read_pairs_json(root / f"{split}_data.json"), transform)

    def image_path(self, name: str) -> Path:
        # The release lists .jpg names for files that are stored as .png.
        return self.image_dir / re.sub(r"\.jpg$", ".png", name)

    def pose_path(self, name: str) -> Path | None:
        """``{stem}.txt``, the name the official code opens; else ``pose_coordinate{N}.txt`` for ``img{N}``,
        the name the release's zip is documented with."""
        stem = Path(name).stem
        candidates = [self.pose_dir / f"{stem}.txt"]
        numbered = re.fullmatch(r"img(\d+)", stem)
        if numbered:
            candidates.append(self.pose_dir / f"pose_coordinate{numbered.group(1)}.txt")
        return next((path for path in candidates if path.is_file()), None)

    def has_pose(self, name: str) -> bool:
        return self.pose_path(name) is not None

    def check_pose(self, name: str) -> None:
        path = self.pose_path(name)
        try:
            keypoints = keypoints_from_vector(read_pcdms_txt_vector(path), OFFICIAL.frame, OFFICIAL)
        except ValueError as error:
            raise PoseFileError(f"{path}: {error}") from None
        check_enough_joints(keypoints, str(path))

    def pose(self, name: str, size: Size) -> Keypoints:
        path = self.pose_path(name)
        if path is None:
            raise DatasetError(f"{self.pose_dir}: no pose file for {name}")
        return read_pcdms_txt(path, size, OFFICIAL)


def _first_dir(root: Path, names: Sequence[str]) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    tried = ", ".join(f"{name}/" for name in names)
    raise DatasetError(f"{root}: no image folder found (looked for {tried}); name it with --images")


def _first_file(root: Path, names: Sequence[str]) -> Path | None:
    return next((root / name for name in names if (root / name).is_file()), None)


def _csv_files(root: Path, layout: str, split: str) -> tuple[Path | None, Path | None]:
    prefixes = ("fasion-resize", "fashion-resize") if layout == "deepfashion" else ("market",)
    pairs = _first_file(root, [f"{prefix}-pairs-{split}.csv" for prefix in prefixes])
    annotations = _first_file(root, [f"{prefix}-annotation-{split}.csv" for prefix in prefixes])
    return pairs, annotations


def detect_layout(root: str | os.PathLike, split: str) -> str:
    """Which of :data:`LAYOUTS` the folder ``root`` holds for ``split``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    found = []
    if (root / f"{split}_data.json").is_file():
        found.append("pcdms")
    for layout in ("deepfashion", "market"):
        if _csv_files(root, layout, split)[0] is not None:
            found.append(layout)
    if len(found) == 1:
        return found[0]
    if found:
        raise DatasetError(f"{root}: holds several layouts ({', '.join(found)}); choose one with --layout")
    raise DatasetError(
        f"{root}: no {split} split of a known layout: expected {split}_data.json (PCDMs release), "
        f"fasion-resize-pairs-{split}.csv (DeepFashion) or market-pairs-{split}.csv (Market-1501)"
    )


def available_splits(
    root: str | os.PathLike, layout: str = "auto", splits: Sequence[str] = ("train", "test")
) -> list[str]:
    """Which of ``splits`` the folder holds (in ``layout``); an error if none."""
    found = []
    for split in splits:
        try:
            if layout in ("auto", detect_layout(root, split)):
                found.append(split)
        except DatasetError:
            continue
    if not found:
        detect_layout(root, splits[0])  # raises, saying what was looked for
        raise DatasetError(f"{root}: no {' or '.join(splits)} split in the {layout} layout")
    return found


def open_dataset(
    root: str | os.PathLike,
    split: str = "train",
    layout: str = "auto",
    image_dir: str | os.PathLike | None = None,
    transform: Callable[[Pair], Any] | None = None,
) -> PoseTransferDataset:
    """Open one split of a dataset folder in any supported layout (``auto`` tells them apart)."""
    root = Path(root)
    layout = detect_layout(root, split) if layout == "auto" else layout
    if layout == "pcdms":
        return PcdmsReleaseDataset(root, split, image_dir=image_dir, transform=transform)
    if layout not in LAYOUTS:
        raise PcdmsError(f"unknown dataset layout {layout!r}; known: auto, {', '.join(LAYOUTS)}")
    pairs_csv, annotation_csv = _csv_files(root, layout, split)
    if pairs_csv is None or annotation_csv is None:
        raise DatasetError(f"{root}: the {layout} layout needs both a pairs CSV and an annotation CSV for {split}")
    if layout == "deepfashion":
        size, folders, description = DEEPFASHION_ANNOTATION_SIZE, (f"{split}_highres", split), "DeepFashion"
    else:
        size, folders, description = MARKET_ANNOTATION_SIZE, (split, f"bounding_box_{split}"), "Market-1501"
    image_dir = Path(image_dir) if image_dir else _first_dir(root, folders)
    return AnnotatedPairsDataset(root, split, image_dir, pairs_csv, annotation_csv, size, description, transform)
