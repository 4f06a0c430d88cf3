"""Sampling one stage over a whole dataset split (``pcdms sample STAGE --data``): each stage's module writes
one file per pair, skips the pairs already written (so an interrupted run resumes), and prints how close the
samples come to the real targets beside what copying the source would score."""

from __future__ import annotations


def batches(total: int, step: int, description: str):
    """``range(0, total, step)`` with a progress bar, shown when there is more than one batch."""
    from tqdm.auto import tqdm

    return tqdm(range(0, total, step), desc=description, unit="batch", disable=total <= step)


def pair_file_name(source: str, target: str, suffix: str) -> str:
    """``{source stem}_to_{target stem}{suffix}``, the name of a pair's output."""
    from pathlib import Path

    return f"{Path(source).stem}_to_{Path(target).stem}{suffix}"
