"""Fréchet Inception distance: feature statistics, the distance, and a cache of the real set's statistics.

The official evaluation cached the real set's statistics as ``{w}_{h}_statistics.npz`` inside the
image folder, keyed by the folder alone: after the folder's images or the network changed, it
silently reused stale numbers. Here the cache key is a hash of every image's bytes together with
every setting that changes the features (network weights, size, resizing, dropped remainder).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import atomic_write


@dataclass(frozen=True)
class FeatureStatistics:
    mean: np.ndarray
    covariance: np.ndarray
    count: int

    @classmethod
    def of(cls, features: np.ndarray) -> FeatureStatistics:
        features = np.asarray(features, dtype=np.float64)
        if len(features) < 2:
            raise ValueError(f"FID needs at least 2 images per set, got {len(features)}")
        return cls(features.mean(0), np.cov(features, rowvar=False), len(features))


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(values.clip(min=0))) @ vectors.T


def frechet_distance(first: FeatureStatistics, second: FeatureStatistics) -> float:
    """||mu1 - mu2||² + tr(S1 + S2 - 2 (S1 S2)^½).

    tr((S1 S2)^½) is taken as the sum of the square roots of the eigenvalues of S1^½ S2 S1^½, a
    symmetric positive semi-definite matrix with the same spectrum as S1 S2: no complex square
    root, and no failure on the singular covariances of small sets.
    """
    root = _symmetric_sqrt(first.covariance)
    product_spectrum = np.linalg.eigvalsh(root @ second.covariance @ root).clip(min=0)
    difference = first.mean - second.mean
    distance = (
        difference @ difference
        + np.trace(first.covariance)
        + np.trace(second.covariance)
        - 2 * np.sqrt(product_spectrum).sum()
    )
    return max(0.0, float(distance))  # a squared distance: below 0 only by rounding


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pcdms" / "fid"


def content_key(paths: Sequence[Path], settings: dict) -> str:
    """A hash of the files' bytes (in any order, under any names) and of ``settings``."""
    file_hashes = sorted(hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in paths)
    payload = json.dumps({"files": file_hashes, "settings": settings}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


class StatisticsCache:
    """Statistics stored as ``{key}.npz`` beside a ``{key}.json`` that says what they are of."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def load(self, key: str) -> FeatureStatistics | None:
        path = self.path(key)
        if not path.is_file():
            return None
        with np.load(path) as stored:
            return FeatureStatistics(stored["mean"], stored["covariance"], int(stored["count"]))

    def save(self, key: str, statistics: FeatureStatistics, description: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path(key), "wb") as file:
            np.savez(file, mean=statistics.mean, covariance=statistics.covariance, count=statistics.count)
        with atomic_write(self.folder / f"{key}.json") as file:
            json.dump(description, file, indent=2)
