"""Training configuration files (YAML), read into dataclasses that name every bad setting.

A file has the stage it trains, where the data and output are, and one section per concern::

    stage: prior
    output_dir: runs/prior
    seed: 0
    data: {root: ..., split: train}
    training: {...}     # the shared loop: steps, batch, optimiser, precision, checkpoints, logging
    prior: {...}        # the stage's own section (prior, inpaint, refine): its model (a folder to
                        # continue from, or a new one's architecture), encoders and diffusion settings

Relative paths are taken from the directory the command runs in.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from diffusers.optimization import SchedulerType

from ..errors import PcdmsError
from ..pose.vector import CONVENTIONS

STAGES = ("vae", "prior", "inpaint", "refine")


@dataclass
class DataConfig:
    root: str = ""
    split: str = "train"
    layout: str = "auto"
    images: str | None = None
    # Pairs with a missing or unreadable image or pose: "error" stops before training, "skip" drops them.
    unusable_pairs: str = "error"


@dataclass
class TrainingConfig:
    """The shared loop's settings; the defaults are the official stage-1 ones where they apply."""

    max_steps: int = 100_000
    batch_size: int = 128  # per device
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-5
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    lr_scheduler: str = "constant"  # any of diffusers.optimization.get_scheduler's names
    warmup_steps: int = 0
    max_grad_norm: float = 10.0
    mixed_precision: str = "no"  # "no", "fp16" or "bf16"
    gradient_checkpointing: bool = False
    ema_decay: float | None = None  # keep an exponential moving average of the weights, saved as the model
    checkpoint_every: int = 5_000
    checkpoints_to_keep: int = 3
    log_every: int = 50
    report_to: str = "none"  # "none" or "tensorboard"
    num_workers: int = 0


@dataclass
class PriorConfig:
    """Stage 1: the prior to train and its diffusion settings (spec 1.2, 1.5, 1.6)."""

    image_encoder: str = ""  # a local CLIP vision folder (CLIPVisionModelWithProjection)
    pretrained: str | None = None  # a prior folder (diffusers format) to continue from
    kandinsky: str | None = None  # or a local Kandinsky 2.2 prior folder to initialise a new prior from
    architecture: dict[str, Any] = field(default_factory=dict)  # PosePriorTransformer arguments of a new prior
    # The scalar normalisation of a new prior's target embedding: numbers, or "auto" for the mean and
    # standard deviation of the training set's embeddings (official: -0.016 and 0.415).
    clip_mean: float | str = -0.016
    clip_std: float | str = 0.415
    pose_convention: str = "fraction"  # of a new prior; see pcdms.pose.vector
    noise_offset: float = 0.1
    drop_source_image: float = 0.1
    drop_source_pose: float = 0.1
    drop_target_pose: float = 0.1
    embedding_batch_size: int = 64  # images per batch when the CLIP embeddings are computed (once, then cached)


@dataclass
class InpaintConfig:
    """Stage 2: the model to train, its frozen encoders and its diffusion settings (spec 2.1-2.4)."""

    dinov2: str = ""  # a local DINOv2 folder (Dinov2Model; official: facebook/dinov2-giant)
    clip: str = ""  # a local CLIP vision folder giving the target's embedding (the stage-1 encoder)
    vae: str = ""  # a local AutoencoderKL folder (default: the vae/ of stable_diffusion)
    pretrained: str | None = None  # a stage-2 model or pipeline folder to continue from
    stable_diffusion: str | None = None  # or a local SD 2.1-base folder to initialise a new model from
    architecture: dict[str, Any] = field(default_factory=dict)  # InpaintModel arguments of a new model
    size: list[int] = field(default_factory=lambda: [512, 512])  # width, height of one half of the canvas
    noise_offset: float = 0.1
    drop_image_features: float = 0.1  # the source's DINOv2 input becomes zeros
    drop_target_embedding: float = 0.1  # the target's CLIP input becomes zeros
    embedding_batch_size: int = 64  # images per batch when the CLIP embeddings are computed (once, then cached)


@dataclass
class RefineConfig:
    """Stage 3: the refining model to train, its frozen encoders and its diffusion settings (spec 3)."""

    dinov2: str = ""  # a local DINOv2 folder (Dinov2Model; official: facebook/dinov2-giant)
    vae: str = ""  # a local AutoencoderKL folder (default: the vae/ of stable_diffusion)
    pretrained: str | None = None  # a stage-3 model or pipeline folder to continue from
    stable_diffusion: str | None = None  # or a local SD 2.1-base folder to initialise a new model from
    architecture: dict[str, Any] = field(default_factory=dict)  # RefineModel arguments of a new model
    size: list[int] = field(default_factory=lambda: [512, 512])  # width, height of the images
    # Stage 2's outputs for the training pairs, {source}_to_{target}.png (pcdms sample inpaint --split train).
    coarse_images: str = ""
    noise_offset: float = 0.1
    drop_coarse_image: float = 0.1  # the coarse image's pixels become zeros (the source is never dropped)


@dataclass
class VaeConfig:
    """A small VAE for models that do not use Stable Diffusion's (the bundled street model's)."""

    pretrained: str | None = None  # a VAE folder (AutoencoderKL) to continue from
    architecture: dict[str, Any] = field(default_factory=dict)  # AutoencoderKL arguments of a new VAE
    size: list[int] = field(default_factory=lambda: [64, 128])  # width, height the images are resized to
    kl_weight: float = 1e-6
    scaling_factor: float | str = "auto"  # "auto": 1 / the standard deviation of the training latents


@dataclass
class RunConfig:
    stage: str = ""
    output_dir: str = ""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    vae: VaeConfig | None = None
    prior: PriorConfig | None = None
    inpaint: InpaintConfig | None = None
    refine: RefineConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _convert(value: Any, kind: Any, where: str) -> Any:
    """``value`` checked against the annotation ``kind``; YAML's 1e-4 (a string to it) becomes a float."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (option for option in options if option is not type(None)):
            try:
                return _convert(value, option, where)
            except PcdmsError as error:
                errors.append(str(error))
        raise PcdmsError(errors[0])
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise PcdmsError(f"{where}: expected a list, got {value!r}")
        return [_convert(item, typing.get_args(kind)[0], where) for item in value]
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise PcdmsError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise PcdmsError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PcdmsError(f"{where}: expected a whole number, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool):
            raise PcdmsError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise PcdmsError(f"{where}: expected a number, got {value!r}") from None
    if kind is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise PcdmsError(f"{where}: expected text, got {value!r}")
        return str(value)
    raise TypeError(f"unsupported setting type {kind!r}")


def _build(cls, values: Any, where: str):
    """``cls`` from a mapping; ``where`` is ``"file: section"`` for messages."""
    if not isinstance(values, dict):
        raise PcdmsError(f"{where}: expected a mapping of settings, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    arguments = {}
    for key, value in values.items():
        if key not in hints:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(names)}"
            raise PcdmsError(f"{where}: unknown setting {key!r}{hint}")
        arguments[key] = _convert(value, hints[key], f"{where}.{key}" if ": " in where else f"{where}: {key}")
    return cls(**arguments)


def load_config(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a training config; ``overrides`` (``{"training.max_steps": 10}``) win over the file."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise PcdmsError(f"{path}: no such file") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise PcdmsError(f"{path}: not valid YAML{where}") from None
    if not isinstance(values, dict):
        raise PcdmsError(f"{path}: expected a mapping of settings at the top")
    for dotted, value in (overrides or {}).items():
        section = values
        *parents, name = dotted.split(".")
        for parent in parents:
            section = section.setdefault(parent, {})
        section[name] = value
    config = _build(RunConfig, values, str(path))
    if config.stage not in STAGES:
        raise PcdmsError(f"{path}: stage must be one of {', '.join(STAGES)}, got {config.stage!r}")
    if getattr(config, config.stage) is None:
        raise PcdmsError(f"{path}: a {config.stage} run needs a '{config.stage}:' section")
    for name, value in (("output_dir", config.output_dir), ("data.root", config.data.root)):
        if not value:
            raise PcdmsError(f"{path}: {name} is not set")
    _check_values(config, path)
    return config


def _check_values(config: RunConfig, path: Path) -> None:
    choices = [
        ("data.unusable_pairs", config.data.unusable_pairs, ("error", "skip")),
        ("training.mixed_precision", config.training.mixed_precision, ("no", "fp16", "bf16")),
        ("training.report_to", config.training.report_to, ("none", "tensorboard")),
        ("training.lr_scheduler", config.training.lr_scheduler, tuple(type.value for type in SchedulerType)),
    ]
    positive = [
        ("training.max_steps", config.training.max_steps),
        ("training.batch_size", config.training.batch_size),
        ("training.gradient_accumulation_steps", config.training.gradient_accumulation_steps),
        ("training.checkpoint_every", config.training.checkpoint_every),
        ("training.log_every", config.training.log_every),
    ]
    probabilities = []
    if config.vae is not None:
        vae = config.vae
        if isinstance(vae.scaling_factor, str):
            choices.append(("vae.scaling_factor", vae.scaling_factor, ("auto",)))
        if len(vae.size) != 2 or min(vae.size) < 1:
            raise PcdmsError(f"{path}: vae.size is [width, height], got {vae.size}")
    if config.prior is not None:
        prior = config.prior
        choices.append(("prior.pose_convention", prior.pose_convention, tuple(CONVENTIONS)))
        choices += [
            (f"prior.{name}", value, ("auto",))
            for name, value in (("clip_mean", prior.clip_mean), ("clip_std", prior.clip_std))
            if isinstance(value, str)
        ]
        probabilities += [
            (f"prior.{name}", getattr(prior, name))
            for name in ("drop_source_image", "drop_source_pose", "drop_target_pose")
        ]
        if not prior.image_encoder:
            raise PcdmsError(f"{path}: prior.image_encoder is not set (a local CLIP vision folder)")
    if config.inpaint is not None:
        inpaint = config.inpaint
        probabilities += [
            (f"inpaint.{name}", getattr(inpaint, name)) for name in ("drop_image_features", "drop_target_embedding")
        ]
        if not inpaint.dinov2:
            raise PcdmsError(f"{path}: inpaint.dinov2 is not set (a local DINOv2 folder)")
        if not inpaint.vae and not inpaint.stable_diffusion:
            raise PcdmsError(f"{path}: inpaint.vae is not set (a local AutoencoderKL folder, or set stable_diffusion)")
        if len(inpaint.size) != 2 or min(inpaint.size) < 1:
            raise PcdmsError(f"{path}: inpaint.size is [width, height] of one half, got {inpaint.size}")
    if config.refine is not None:
        refine = config.refine
        probabilities.append(("refine.drop_coarse_image", refine.drop_coarse_image))
        if not refine.dinov2:
            raise PcdmsError(f"{path}: refine.dinov2 is not set (a local DINOv2 folder)")
        if not refine.vae and not refine.stable_diffusion:
            raise PcdmsError(f"{path}: refine.vae is not set (a local AutoencoderKL folder, or set stable_diffusion)")
        if not refine.coarse_images:
            raise PcdmsError(
                f"{path}: refine.coarse_images is not set (the folder of stage 2's images of the training pairs)"
            )
        if len(refine.size) != 2 or min(refine.size) < 1:
            raise PcdmsError(f"{path}: refine.size is [width, height], got {refine.size}")
    for name, value, allowed in choices:
        if value not in allowed:
            raise PcdmsError(f"{path}: {name} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    for name, value in positive:
        if value < 1:
            raise PcdmsError(f"{path}: {name} must be at least 1, got {value}")
    for name, value in probabilities:
        if not 0 <= value <= 1:
            raise PcdmsError(f"{path}: {name} is a probability, between 0 and 1, got {value}")
