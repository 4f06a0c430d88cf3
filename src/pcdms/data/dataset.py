"""Pose-transfer pairs: two images of one person, each with its pose, and checking a dataset up front."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm.auto import tqdm

from ..errors import DatasetError, PcdmsError, TooFewJointsError
from ..io import load_image
from ..pose.keypoints import Keypoints, Size


@dataclass(frozen=True)
class Pair:
    """A source image and a target image of the same person, with their poses in their own pixel frames."""

    source_image: Image.Image
    target_image: Image.Image
    source_pose: Keypoints
    target_pose: Keypoints
    source_name: str
    target_name: str


@dataclass
class ValidationReport:
    """What a dataset lacks, found before training starts rather than mid-epoch.

    Unreadable items are recorded as ``"name: reason"``.
    """

    dataset: str
    num_pairs: int
    num_images: int
    missing_images: list[str] = field(default_factory=list)
    unreadable_images: list[str] = field(default_factory=list)
    missing_poses: list[str] = field(default_factory=list)
    unreadable_poses: list[str] = field(default_factory=list)
    few_joint_poses: list[str] = field(default_factory=list)
    unusable_pairs: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unusable_pairs

    def _sections(self) -> tuple[tuple[str, list[str]], ...]:
        return (
            ("images missing", self.missing_images),
            ("images unreadable", self.unreadable_images),
            ("poses missing", self.missing_poses),
            ("poses unreadable", self.unreadable_poses),
            ("poses with too few joints", self.few_joint_poses),
        )

    def error_line(self) -> str:
        problems = [f"{len(items)} {label} (first: {items[0]})" for label, items in self._sections() if items]
        return f"{self.dataset}: {len(self.unusable_pairs)} of {self.num_pairs} pairs are unusable: " + "; ".join(
            problems
        )

    def summary(self, examples: int = 5) -> str:
        lines = [
            self.dataset,
            f"  pairs: {self.num_pairs} ({self.num_pairs - len(self.unusable_pairs)} usable)",
            f"  images: {self.num_images}",
        ]
        for label, items in self._sections():
            lines.append(f"  {label}: {len(items)}")
            lines.extend(f"    {item}" for item in items[:examples])
            if len(items) > examples:
                lines.append(f"    ... and {len(items) - examples} more")
        return "\n".join(lines)

    def raise_if_unusable(self) -> None:
        if not self.ok:
            raise DatasetError(self.error_line())


class PoseTransferDataset:
    """One split of a pose-transfer dataset: a list of (source, target) image names with their poses.

    Items are :class:`Pair` objects, or whatever ``transform(pair)`` makes of them. Subclasses say
    where images live and how a pose is read. A map-style dataset (``__getitem__`` and ``__len__``), which
    torch's DataLoader takes as it is; it does not subclass torch's Dataset so that checking a dataset
    (``pcdms data validate``) starts without importing torch.
    """

    description = "dataset"

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        image_dir: str | os.PathLike,
        pairs: Sequence[tuple[str, str]],
        transform: Callable[[Pair], Any] | None = None,
    ):
        self.root = Path(root)
        self.split = split
        self.image_dir = Path(image_dir)
        self.pairs = list(pairs)
        self.transform = transform

    def __repr__(self) -> str:
        return f"{self.description} {self.split} split at {self.root} ({len(self.pairs)} pairs)"

    def __len__(self) -> int:
        return len(self.pairs)

    def image_path(self, name: str) -> Path:
        return self.image_dir / name

    def image_names(self) -> list[str]:
        """Every image the pairs use, once, in order of first use."""
        return list(dict.fromkeys(name for pair in self.pairs for name in pair))

    def has_pose(self, name: str) -> bool:
        raise NotImplementedError

    def check_pose(self, name: str) -> None:
        """Read and check the pose of ``name`` without its image; raise PcdmsError if it is bad, and
        TooFewJointsError if it has fewer joints than pcdms.pose.MIN_POSE_JOINTS (the rule of every entry point)."""
        raise NotImplementedError

    def pose(self, name: str, size: Size) -> Keypoints:
        """The pose of image ``name`` in the frame of that image, whose size is ``size``."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> Any:
        source_name, target_name = self.pairs[index]
        source_image = load_image(self.image_path(source_name))
        target_image = load_image(self.image_path(target_name))
        pair = Pair(
            source_image=source_image,
            target_image=target_image,
            source_pose=self.pose(source_name, source_image.size),
            target_pose=self.pose(target_name, target_image.size),
            source_name=source_name,
            target_name=target_name,
        )
        return pair if self.transform is None else self.transform(pair)

    def subset(self, indices: Sequence[int]) -> PoseTransferDataset:
        """The same dataset restricted to the pairs at ``indices``."""
        clone = copy.copy(self)
        clone.pairs = [self.pairs[index] for index in indices]
        return clone

    def validate(self, check_images: bool = False, progress: bool = False) -> ValidationReport:
        """Count missing or unreadable images and poses, poses with too few joints to pose a person
        (pcdms.pose.MIN_POSE_JOINTS), and the pairs they make unusable.

        Images are checked for existence, or, with ``check_images``, decoded in full (slower, but it
        catches the truncated files an interrupted download or unzip leaves).
        """
        names = self.image_names()
        report = ValidationReport(repr(self), num_pairs=len(self.pairs), num_images=len(names))
        bad = set()
        for name in tqdm(names, desc="checking", unit="image", disable=not progress):
            path = self.image_path(name)
            if not path.is_file():
                report.missing_images.append(str(path))
                bad.add(name)
            elif check_images:
                try:
                    load_image(path)
                except PcdmsError as error:
                    report.unreadable_images.append(str(error))
                    bad.add(name)
            if not self.has_pose(name):
                report.missing_poses.append(name)
                bad.add(name)
                continue
            try:
                self.check_pose(name)
            except TooFewJointsError as error:
                report.few_joint_poses.append(str(error))
                bad.add(name)
            except PcdmsError as error:
                report.unreadable_poses.append(str(error))
                bad.add(name)
        report.unusable_pairs = [i for i, pair in enumerate(self.pairs) if pair[0] in bad or pair[1] in bad]
        return report

    def usable(self, report: ValidationReport | None = None) -> PoseTransferDataset:
        """The dataset without the pairs that validation found unusable."""
        report = report or self.validate()
        dropped = set(report.unusable_pairs)
        return self.subset([i for i in range(len(self.pairs)) if i not in dropped])
