"""Writing the pose files a dataset lacks: the pose maps and pose txt files the official code reads.

The PCDMs release ships no pose maps (official issue #14), and users of their own data have no way
to make the pose txt files (issue #20). For every image of a dataset this writes, under the names the
official scripts open:

- ``openpose_all_img/{stem}_pose.jpg``: the pose map, drawn at the image's size (or a given one);
- ``normalized_pose_txt/{stem}.txt``: the pose in the official convention.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import PcdmsError
from ..io import image_size, save_image
from ..pose.keypoints import Size, check_enough_joints
from ..pose.pcdms_txt import write_pcdms_txt
from ..pose.render import render_pose
from ..pose.vector import OFFICIAL
from .dataset import PoseTransferDataset

POSE_MAP_DIR = "openpose_all_img"
POSE_TXT_DIR = "normalized_pose_txt"


@dataclass
class PrepareSummary:
    written: int = 0
    already_there: int = 0
    failed: list[str] = field(default_factory=list)  # "name: reason" for images skipped


def write_pose_files(
    dataset: PoseTransferDataset,
    out_dir: str | os.PathLike,
    size: Size | None = None,
    map_format: str = "jpg",
    overwrite: bool = False,
    progress: bool = False,
) -> PrepareSummary:
    """Write the pose map and pose txt of every image of ``dataset`` under ``out_dir``.

    Files already there are kept unless ``overwrite``, so an interrupted run resumes. Images without
    a usable pose (unreadable, or fewer joints than pcdms.pose.MIN_POSE_JOINTS) are counted in ``failed``,
    not fatal, and get no files.
    """
    out_dir = Path(out_dir)
    summary = PrepareSummary()
    for name in tqdm(dataset.image_names(), desc="pose files", unit="image", disable=not progress):
        stem = Path(name).stem
        map_path = out_dir / POSE_MAP_DIR / f"{stem}_pose.{map_format}"
        txt_path = out_dir / POSE_TXT_DIR / f"{stem}.txt"
        if not overwrite and map_path.exists() and txt_path.exists():
            summary.already_there += 1
            continue
        try:
            keypoints = dataset.pose(name, image_size(dataset.image_path(name)))
        except PcdmsError as error:
            summary.failed.append(f"{name}: {error}")
            continue
        try:  # no empty (or all but empty) pose map: the same joint rule as generation and validation
            check_enough_joints(keypoints, name)
        except PcdmsError as error:
            summary.failed.append(str(error))
            continue
        save_image(render_pose(keypoints, size), map_path)
        write_pcdms_txt(txt_path, keypoints, OFFICIAL)
        summary.written += 1
    return summary
