"""``pcdms evaluate``: a folder of generated images scored against the ground truth under a protocol.

Every pair is scored (one generated image per pair); a folder written by ``pcdms generate --best-of``
is labelled an oracle selection in the table and the JSON, because choosing the sample closest to
the ground truth uses the answer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..errors import NoPersonError, PcdmsError
from ..io import atomic_write, load_image
from .fid import FeatureStatistics, StatisticsCache, content_key, frechet_distance
from .pckh import PCKh
from .protocol import (
    FID_BATCH,
    LPIPS_BATCH,
    PROTOCOLS,
    Protocol,
    get_protocol,
    image_files,
    pair_with_ground_truth,
    read_for_protocol,
    resize_for_protocol,
)
from .ssim import psnr, ssim
from .strips import generated_panel

GENERATION_MANIFEST = "pcdms-generate.json"
# Images whose aspect ratio is this far from the evaluation size's are stretched by the resize; said.
ASPECT_TOLERANCE = 0.05
# Metric name, whether higher is better, and how it is printed.
METRICS = {
    "ssim": ("SSIM", True, "{:.4f}"),
    "psnr": ("PSNR", True, "{:.3f}"),
    "lpips": ("LPIPS", False, "{:.4f}"),
    "fid": ("FID", False, "{:.3f}"),
    "pckh": ("PCKh", True, "{:.4f}"),
}


@dataclass
class EvaluationReport:
    protocol: dict
    pairs: int
    metrics: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    oracle: dict | None = None
    layouts: dict[str, int] = field(default_factory=dict)  # strip layout applied: how many images

    def note_layout(self, layout) -> None:
        key = layout.describe()
        self.layouts[key] = self.layouts.get(key, 0) + 1

    def as_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "pairs": self.pairs,
            "metrics": self.metrics,
            "notes": self.notes,
            "skipped": self.skipped,
            "warnings": self.warnings,
            "oracle_selection": self.oracle,
            "strip_layouts": self.layouts,
        }

    def table(self) -> str:
        size = self.protocol["size"]
        lines = []
        if self.oracle:
            lines.append(f"ORACLE SELECTION: {self.oracle['label']}; not comparable to one-sample results")
        lines.append(f"{self.pairs} pairs, protocol {self.protocol['protocol']} at {size} (width x height)")
        lines += [
            f"  cropped to the generated panel: {count} strips of {layout}" for layout, count in self.layouts.items()
        ]
        for key, (name, higher, style) in METRICS.items():
            if key in self.metrics:
                arrow = "higher is better" if higher else "lower is better"
                lines.append(
                    f"  {name:<6} {style.format(self.metrics[key]):>9}   {arrow:<16}  {self.notes.get(key, '')}"
                )
            elif key in self.skipped:
                lines.append(f"  {name:<6} {'-':>9}   {self.skipped[key]}")
        lines += [f"warning: {text}" for text in self.warnings]
        return "\n".join(lines)


def read_generation_manifest(folder: Path) -> dict | None:
    path = folder / GENERATION_MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PcdmsError(f"{path}: not the JSON that pcdms generate writes ({error})") from None
    if not isinstance(manifest, dict):
        raise PcdmsError(f"{path}: not the JSON that pcdms generate writes (an object of settings)")
    return manifest


def is_stretched(size: tuple[int, int], protocol: Protocol) -> bool:
    width, height = size
    return abs(width / height / (protocol.width / protocol.height) - 1) > ASPECT_TOLERANCE


def as_array(features) -> np.ndarray:
    return features.detach().double().cpu().numpy() if torch.is_tensor(features) else np.asarray(features, np.float64)


def batches(items: Sequence, size: int) -> list[Sequence]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def scored_count(count: int, batch: int, drop_last: bool) -> int:
    """How many of ``count`` items a metric scores: all, or the official scripts' whole batches."""
    return count - count % batch if drop_last and count >= batch else count


def real_statistics(
    real: Path, protocol: Protocol, inception, cache: StatisticsCache | None, device, batch_size: int, progress: bool
) -> tuple[FeatureStatistics, bool]:
    files = image_files(real, "the real images for FID")
    settings = {
        "network": inception.digest,
        "size": [protocol.height, protocol.width],
        "resize": protocol.resize,
        "drop_last": protocol.drop_last,
    }
    key = content_key(files, settings) if cache else None
    cached = cache.load(key) if cache else None
    if cached is not None:
        return cached, True
    files = files[: scored_count(len(files), FID_BATCH, protocol.drop_last)]
    if len(files) < 2:
        raise PcdmsError(f"{real}: FID needs at least 2 real images, found {len(files)}")
    features = []
    for chunk in tqdm(batches(files, batch_size), desc="real images", unit="batch", disable=not progress):
        images = torch.stack([read_for_protocol(path, protocol) for path in chunk]).to(device)
        features.append(as_array(inception(images)))
    statistics = FeatureStatistics.of(np.concatenate(features))
    if cache:
        description = {"folder": str(real.resolve()), "images": len(files), "network": inception.source, **settings}
        cache.save(key, statistics, description)
    return statistics, False


def evaluate(
    generated: str | os.PathLike,
    ground_truth: str | os.PathLike,
    protocol: Protocol | str = "pcdms",
    *,
    real: str | os.PathLike | None = None,
    inception=None,
    lpips=None,
    pose_extractor: Callable | None = None,
    cache: StatisticsCache | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
    progress: bool = True,
) -> EvaluationReport:
    """Score every generated image of the folder ``generated`` against its ground truth in ``ground_truth``.

    Each generated image is paired with the ground-truth image its name gives (``SOURCE_to_TARGET.png``
    and the other methods' names: :func:`~pcdms.evaluation.protocol.pair_with_ground_truth`).
    ``protocol``: a :class:`~pcdms.evaluation.protocol.Protocol`, or the name of one at DeepFashion's 176x256
    ("pcdms", the official scripts' settings; "cfld"); another size: ``get_protocol("pcdms", "352x512")``.
    The networks are optional, each metric whose network is missing is skipped and the report says why:
    ``inception``, the FID feature network (:func:`~pcdms.evaluation.inception.load_inception`), with
    ``real``, the folder of training images FID compares with (their statistics kept in ``cache``);
    ``lpips``, an LPIPS network (:func:`~pcdms.evaluation.lpips.load_lpips`); ``pose_extractor``, for
    PCKh (for example ``get_extractor("mediapipe")``), run on both the ground truth and the generated image.

    Returns an :class:`EvaluationReport`: ``metrics`` holds "ssim" and "psnr" always ([0, 1] images, PSNR in
    dB), "lpips", "fid" and "pckh" (a fraction of joints, 0 to 1) when their networks are given;
    ``table()`` prints it as ``pcdms evaluate`` does. Raises PcdmsError (one line) for a missing or empty
    folder, a generated image with no ground truth, an unknown protocol or unreadable images.
    """
    if isinstance(protocol, str):
        if protocol not in PROTOCOLS:
            raise PcdmsError(f"unknown evaluation protocol {protocol!r}: one of {', '.join(PROTOCOLS)}")
        protocol = get_protocol(protocol)
    generated, ground_truth = Path(generated), Path(ground_truth)
    real = None if real is None else Path(real)
    pairs = pair_with_ground_truth(
        image_files(generated, "generated images"), image_files(ground_truth, "ground truth")
    )
    report = EvaluationReport(protocol.settings(), len(pairs))
    manifest = read_generation_manifest(generated)
    if manifest and manifest.get("best_of", 1) > 1:
        report.oracle = {
            "best_of": manifest["best_of"],
            "label": f"best of {manifest['best_of']} samples per pair, chosen by SSIM to the ground truth",
        }
    lpips_count = scored_count(len(pairs), LPIPS_BATCH, protocol.drop_last)
    fid_count = scored_count(len(pairs), FID_BATCH, protocol.drop_last)
    ssims, psnrs, distances, features, stretched, flat = [], [], [], [], [], []
    accuracy = PCKh() if pose_extractor is not None else None
    position = 0
    for chunk in tqdm(batches(pairs, batch_size), desc="pairs", unit="batch", disable=not progress):
        truth_images = [load_image(pair.ground_truth) for pair in chunk]
        generated_images = []
        for pair, truth in zip(chunk, truth_images, strict=True):
            # Other methods' released strips: the generated panel alone is scored (or the strip refused).
            image, layout = generated_panel(load_image(pair.generated), pair.generated, truth.size)
            generated_images.append(image)
            if layout is not None:
                report.note_layout(layout)
        stretched += [
            f"{pair.generated.name} ({image.width}x{image.height})"
            for pair, image in zip(chunk, generated_images, strict=True)
            if is_stretched(image.size, protocol)
        ]
        if accuracy is not None:
            for truth, image in zip(truth_images, generated_images, strict=True):
                add_pose_pair(accuracy, pose_extractor, truth, image, protocol)
        predictions = torch.stack([resize_for_protocol(image, protocol) for image in generated_images]).to(device)
        targets = torch.stack([resize_for_protocol(image, protocol) for image in truth_images]).to(device)
        ssims.append(ssim(predictions, targets, sigma=protocol.ssim_sigma, data_range=protocol.ssim_data_range))
        ranges = predictions.flatten(1).amax(1) - predictions.flatten(1).amin(1)
        flat += [pair.generated.name for pair, extent in zip(chunk, ranges.tolist(), strict=True) if extent == 0]
        psnrs.append(psnr(predictions, targets))
        kept = max(0, min(len(chunk), lpips_count - position))
        if lpips is not None and kept:
            distances.append(lpips(predictions[:kept], targets[:kept], normalize=protocol.lpips_normalize).cpu())
        kept = max(0, min(len(chunk), fid_count - position))
        if inception is not None and real is not None and kept:
            features.append(as_array(inception(predictions[:kept])))
        position += len(chunk)
    if stretched:
        report.warnings.append(
            f"{len(stretched)} generated images are not {protocol.width}x{protocol.height}-shaped (width x height) "
            f"and were stretched to it (first: {stretched[0]})"
        )
    if flat and protocol.ssim_data_range is None:
        report.warnings.append(
            f"{len(flat)} generated images are flat (one colour: {', '.join(flat[:3])}{', ...' if len(flat) > 3 else ''}"
            "); the protocol's SSIM data range, the prediction's max - min, is 0 for them, so their SSIM uses the "
            "nominal range 1, scikit-image's default"
        )

    report.metrics["ssim"] = torch.cat(ssims).mean().item()
    report.notes["ssim"] = f"Gaussian sigma {protocol.ssim_sigma}, data range {report.protocol['ssim_data_range']}"
    report.metrics["psnr"] = torch.cat(psnrs).mean().item()
    report.notes["psnr"] = "data range 1"
    if lpips is None:
        report.skipped["lpips"] = "skipped: needs --alexnet FILE (torchvision's AlexNet weights)"
    else:
        report.metrics["lpips"] = torch.cat(distances).double().mean().item()
        report.notes["lpips"] = f"AlexNet v0.1, inputs {report.protocol['lpips_inputs']}, {lpips_count} pairs"
    if real is None or inception is None:
        report.skipped["fid"] = "skipped: needs --real DIR (the training images)"
    elif fid_count < 2:
        report.skipped["fid"] = "skipped: needs at least 2 generated images"
    else:
        real_stats, from_cache = real_statistics(real, protocol, inception, cache, device, batch_size, progress)
        report.metrics["fid"] = frechet_distance(real_stats, FeatureStatistics.of(np.concatenate(features)))
        if inception.kind != "imagenet":
            report.warnings.append(
                f"FID with the {inception.source}, not the torchvision ImageNet Inception-v3 of the PCDMs and CFLD "
                "papers: compare it only with FIDs computed with the same network"
            )
        report.notes["fid"] = (
            f"{fid_count} generated vs {real_stats.count} real images{' (cached)' if from_cache else ''}; "
            f"{inception.source}"
        )
    if accuracy is None:
        report.skipped["pckh"] = (
            "skipped: no pose extractor (the pose extra: pip install -e '.[pose]' in the pcdms clone)"
        )
    else:
        report.metrics["pckh"] = accuracy.value
        report.notes["pckh"] = (
            f"alpha 0.5, {accuracy.pairs} pairs scored, {accuracy.no_head} not (no head found in the ground truth); "
            f"nobody found on {accuracy.nobody_found} generated images"
        )
        if accuracy.pairs == 0:
            del report.metrics["pckh"]
            report.skipped["pckh"] = "no ground-truth image had a detectable head: PCKh undefined"
    return report


def add_pose_pair(accuracy: PCKh, extractor: Callable, truth: Image.Image, generated: Image.Image, protocol) -> None:
    """One pair's PCKh, with the target pose read from the ground-truth image by the same extractor as the
    generated one's, so the extractor's own bias is on both sides."""
    size = (protocol.width, protocol.height)

    def detect(image: Image.Image) -> np.ndarray | None:
        try:
            return extractor(image).resize(size).xy
        except NoPersonError:
            return None

    target = detect(truth)
    if target is None:
        accuracy.no_head += 1
    else:
        accuracy.add(target, detect(generated))


def write_report(report: EvaluationReport, path: Path) -> None:
    with atomic_write(path) as file:
        json.dump(report.as_dict(), file, indent=2)
        file.write("\n")
