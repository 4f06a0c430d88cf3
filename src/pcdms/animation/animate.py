"""Generation over the frames of an animation: one source person in each driving pose.

Every frame starts from the same noise (one draw per stage, ``latents=``, repeated over a batch) and the
same per-frame seeds, and gets the same encodings of the source (its DINOv2 tokens and CLIP embedding, computed
once per animation by ``pipeline.encode_sources``), so frames differ only by their poses and a still pose gives a
still picture.
Frames are generated in batches and written to a frame folder as they are done (``000000.png``, ...,
with ``animation.json`` recording the settings and each frame's pose); a rerun with the same settings
reuses the frames whose pose has not changed, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import PcdmsError
from ..io import atomic_write, load_image, save_image
from ..pose.keypoints import Keypoints
from ..pose.render import render_pose

MANIFEST = "animation.json"
MANIFEST_FORMAT = "pcdms-animation"
STAGE_NAMES = ("prior", "inpaint", "refine")


@dataclass(frozen=True)
class AnimationSettings:
    """How each frame is sampled: the seed of the shared noise and of each frame's generators, the steps and
    guidance of the stages given ({stage: value}; a stage left out gets the pipeline's default), the frame the
    model works at (None: its training size), the frames per batch, and the sampling preset (None: the model's
    own settings; pcdms.pipelines.presets)."""

    seed: int = 42
    steps: dict = field(default_factory=dict)
    guidance: dict = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    batch_size: int = 4
    preset: str | None = None


@dataclass
class AnimationFrames:
    """The frame files in order; how many were generated in this run and how many reused; the seconds
    spent generating (model time, per generated frame: ``seconds / generated``)."""

    paths: list[Path]
    generated: int = 0
    reused: int = 0
    seconds: float = 0.0


def pose_digest(pose: Keypoints) -> str:
    """A short fingerprint of a pose (its coordinates, confidences and frame), to tell a changed frame."""
    digest = hashlib.sha256(np.nan_to_num(pose.xy, nan=-1.0).round(4).tobytes())
    digest.update(pose.confidence.round(4).tobytes())
    digest.update(repr(pose.image_size).encode())
    return digest.hexdigest()[:16]


def image_digest(image: Image.Image) -> str:
    return hashlib.sha256(np.asarray(image.convert("RGB")).tobytes()).hexdigest()[:16]


def initial_noise(pipeline, settings: AnimationSettings) -> dict:
    """One draw of each running stage's starting noise for one frame (standard normal, seeded by
    ``settings.seed``): {stage: tensor of ``pipeline.latents_shapes()[stage]``}."""
    import torch

    shapes = pipeline.latents_shapes(1, 1, settings.width, settings.height)
    if not pipeline.inpaint.uses_target_embedding:  # stage 1 does not run for such a model
        shapes.pop("prior", None)
    return {
        stage: torch.randn(shape, generator=torch.Generator().manual_seed(settings.seed + number))
        for number, (stage, shape) in enumerate(shapes.items())
    }


def _manifest(folder: Path, header: dict) -> dict:
    """The frame folder's record, checked against this run's settings; a new one for a new folder."""
    path = folder / MANIFEST
    if not path.is_file():
        if any(folder.glob("[0-9]" * 6 + ".png")):
            raise PcdmsError(f"{folder}: holds frames without {MANIFEST}; choose an empty folder")
        return {**header, "frames": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PcdmsError(f"{path}: not an animation record; delete the folder or choose another") from None
    recorded = {key: manifest.get(key) for key in header}
    if recorded != header:
        changed = ", ".join(key for key in header if recorded[key] != header[key])
        raise PcdmsError(
            f"{folder}: holds frames of another animation (different {changed}); delete it or choose another folder"
        )
    return manifest


def animate_frames(
    pipeline,
    source: Image.Image,
    poses: Sequence[Keypoints],
    folder: str | Path,
    source_pose: Keypoints | None = None,
    settings: AnimationSettings = AnimationSettings(),
    model_name: str = "",
    progress: bool = True,
    on_frame: Callable[[int, int], None] | None = None,
) -> AnimationFrames:
    """The source person (an RGB PIL image) in each of ``poses`` (the target poses, in the source's frame or
    any frame the pipeline fits), written to ``folder`` as ``000000.png``, ... (the pipeline's output size:
    the model's frame cut back to the source's aspect). ``source_pose``: default, extracted from ``source``.
    Frames already in ``folder`` for the same source, model, settings and pose are reused. ``on_frame(done,
    total)`` is called after each batch (for a progress display). Raises PcdmsError for a folder holding
    another animation, a source with nobody in it, and whatever the pipeline refuses (one line)."""
    from tqdm.auto import tqdm

    from ..bundled import stage_generators
    from ..pose.extract import extract_pose

    if settings.batch_size < 1:
        raise PcdmsError(f"the batch size must be at least 1, got {settings.batch_size}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = source.convert("RGB")
    source_pose = source_pose if source_pose is not None else extract_pose(source)
    header = {
        "format": MANIFEST_FORMAT,
        "model": model_name,
        "source": image_digest(source),
        "source_pose": pose_digest(source_pose),
        "settings": json.loads(json.dumps(recorded_settings(settings))),
        # What the pipeline samples with where the settings leave it to the model (a retrained model may change it).
        "model_sampling": json.loads(json.dumps(getattr(pipeline, "sampling_defaults", None))),
    }
    manifest = _manifest(folder, header)
    paths = [folder / f"{index:06d}.png" for index in range(len(poses))]
    digests = [pose_digest(pose) for pose in poses]
    todo = [
        index
        for index, path in enumerate(paths)
        if not (path.is_file() and manifest["frames"].get(path.name) == digests[index])
    ]
    result = AnimationFrames(paths, reused=len(paths) - len(todo))
    noise = initial_noise(pipeline, settings)
    encodings = source_encodings(pipeline, source, settings) if todo else {}
    seeds = dict.fromkeys(STAGE_NAMES, settings.seed)
    arguments = {f"{stage}_steps": steps for stage, steps in settings.steps.items()}
    arguments |= {f"{stage}_guidance": guidance for stage, guidance in settings.guidance.items()}
    bar = tqdm(total=len(paths), initial=result.reused, desc="frames", unit="frame", disable=not progress)
    if on_frame is not None:
        on_frame(result.reused, len(paths))
    with bar:
        for start in range(0, len(todo), settings.batch_size):
            batch = todo[start : start + settings.batch_size]
            count = len(batch)
            began = time.perf_counter()
            output = pipeline(
                [source] * count,
                [poses[index] for index in batch],
                [source_pose] * count,
                width=settings.width,
                height=settings.height,
                generator=stage_generators(seeds, count, pipeline.device),
                latents=repeated(noise, count),
                **repeated(encodings, count),
                **arguments,
                preset=settings.preset,
            )
            result.seconds += time.perf_counter() - began
            for index, image in zip(batch, output.images, strict=True):
                save_image(image, paths[index])
                manifest["frames"][paths[index].name] = digests[index]
            with atomic_write(folder / MANIFEST) as file:  # after the frames: a recorded frame is on disk
                json.dump(manifest, file, indent=1)
            result.generated += count
            bar.update(count)
            if on_frame is not None:
                on_frame(result.reused + result.generated, len(paths))
    return result


def recorded_settings(settings: AnimationSettings) -> dict:
    """The settings a frame folder records: a preset only when one is used, so that folders made before presets
    existed still resume."""
    recorded = asdict(settings)
    if recorded["preset"] is None:
        del recorded["preset"]
    return recorded


def source_encodings(pipeline, source: Image.Image, settings: AnimationSettings) -> dict:
    """The source's encodings for every frame, computed once (``pipeline.encode_sources`` at the frame the
    frames are made at): {"image_features": (1, tokens, hidden), "source_embeds": (1, D)}; a pipeline without
    stage 1 has no "source_embeds"."""
    encodings = pipeline.encode_sources(source, settings.width, settings.height)
    return {name: tensor for name, tensor in encodings.items() if tensor is not None}


def repeated(tensors: dict, count: int) -> dict:
    """Each (1, ...) tensor of ``tensors`` as ``count`` copies along the first dimension: one per frame of a batch."""
    return {name: tensor.expand(count, *tensor.shape[1:]).clone() for name, tensor in tensors.items()}


def side_by_side(result: Image.Image, pose: Keypoints, driving: Image.Image | None = None) -> Image.Image:
    """[driving frame | rendered pose | result], each scaled to the result's height: the pose as the model
    got it (letterboxed into the result's aspect when drawn in another frame)."""
    width, height = result.size
    if pose.image_size != (width, height):
        aspect_frame = (round(pose.height * width / height), pose.height)
        fitted = pose if pose.width * height == pose.height * width else pose.letterbox(aspect_frame)
        pose = fitted.resize((width, height))
    panels = [render_pose(pose, joint_radius=2, stick_width=2), result.convert("RGB")]
    if driving is not None:
        scaled = (max(1, round(driving.width * height / driving.height)), height)
        panels.insert(0, driving.convert("RGB").resize(scaled, Image.BILINEAR))
    canvas = Image.new("RGB", (sum(panel.width for panel in panels), height))
    left = 0
    for panel in panels:
        canvas.paste(panel, (left, 0))
        left += panel.width
    return canvas


def load_frames(paths: Sequence[Path]) -> list[Image.Image]:
    return [load_image(path) for path in paths]
