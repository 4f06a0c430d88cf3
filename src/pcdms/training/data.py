"""The training split of a run's dataset, checked before any training starts."""

from __future__ import annotations

from ..data import PoseTransferDataset, open_dataset
from ..errors import PcdmsError
from .config import DataConfig


def open_training_data(config: DataConfig) -> PoseTransferDataset:
    """The training split, checked: unusable pairs stop the run, or are dropped if the config says so."""
    dataset = open_dataset(config.root, config.split, config.layout, config.images)
    report = dataset.validate()
    if report.ok:
        return dataset
    if config.unusable_pairs == "error":
        raise PcdmsError(report.error_line() + " (set data.unusable_pairs: skip to train without them)")
    print(f"skipping unusable pairs: {report.error_line()}")
    return dataset.usable(report)
