"""Pose-transfer datasets in the layouts users hold, checked before training."""

from .dataset import Pair, PoseTransferDataset, ValidationReport
from .layouts import (
    LAYOUTS,
    AnnotatedPairsDataset,
    PcdmsReleaseDataset,
    available_splits,
    detect_layout,
    open_dataset,
    read_pairs_csv,
    read_pairs_json,
)
from .prepare import PrepareSummary, write_pose_files

__all__ = [
    "LAYOUTS",
    "AnnotatedPairsDataset",
    "Pair",
    "PcdmsReleaseDataset",
    "PoseTransferDataset",
    "PrepareSummary",
    "ValidationReport",
    "available_splits",
    "detect_layout",
    "open_dataset",
    "read_pairs_csv",
    "read_pairs_json",
    "write_pose_files",
]
