"""The settings of a training run: one dataclass per section of a training config file (YAML).

A file has the stage it trains, where the data and output are, and one section per concern::

    stage: prior
    output_dir: runs/prior
    seed: 0
    data: {root: ..., split: train}
    training: {...}     # the shared loop: steps, batch, optimiser, precision, checkpoints, logging
    prior: {...}        # the stage's own section (prior, inpaint, refine): its model (a folder to
                        # continue from, or a new one's architecture), encoders and diffusion settings

Relative paths are taken from the directory the command runs in. :func:`pcdms.training.config_file.load_config`
reads a file into these classes, naming every bad setting.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

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
