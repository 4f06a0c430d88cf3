"""Training stage 3: what the shared loop needs to train the refining UNet.

Per pair the model sees the target (its VAE latents are the diffusion target), stage 2's coarse
image of it (its VAE latents are concatenated to the noisy ones) and the source's DINOv2 tokens
through cross-attention. The coarse images are stage 2's outputs for the *training* pairs, written
beforehand (``pcdms sample inpaint --split train``), as the official recipe does. The VAE and DINOv2
are frozen and run in each step, in the run's mixed precision.

The diffusion set-up is the official one (spec 3): SD 2.1-base's noise schedule, epsilon prediction,
MSE, noise offset, both latents drawn from the VAE posterior, and a condition drop that zeroes the
coarse image's *pixels* (so the model sees the latents of a mid-grey image). The source's features
are never dropped, whatever the official code's comment says.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.dataset import PoseTransferDataset
from ..data.refine import RefinePairs, coarse_images_command, missing_coarse_images, pair_image_name
from ..errors import PcdmsError
from ..models.encoders import CLIPImageProcessor, image_features
from ..models.refine import REFINE_CHANGES, RefineModel
from ..pipelines.refine import RefinePipeline
from .config import DataConfig, RefineConfig
from .data import open_training_data
from .latent import LatentTask, build_model


class RefineTask(LatentTask):
    """Stage 3 for the shared loop."""

    name = "refine"
    pipeline_class = RefinePipeline

    def __init__(self, config: RefineConfig, data: DataConfig, mixed_precision: str = "no"):
        dataset = training_pairs(config, data)
        super().__init__(config, mixed_precision)
        self.model = build_refine(config)
        self.model.check_encoders(self.vae, self.dinov2)
        self.layout = self.padded_layout(self.model)
        self.dataset = RefinePairs(dataset, self.layout, CLIPImageProcessor(), config.coarse_images)

    def loss(self, model, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        device = batch["target"].device
        self.frozen_to(device)
        size = batch["target"].shape[0]
        # All randomness is drawn on the CPU from the micro-batch's generator, then moved.
        drops = (torch.rand(size, generator=generator) < self.config.drop_coarse_image).to(device)
        with torch.no_grad():
            latents = self.latents(batch["target"], generator)
            coarse = torch.where(drops.reshape(-1, 1, 1, 1), 0.0, batch["coarse"])
            coarse_latents = self.latents(coarse, generator)
            features = image_features(self.dinov2, batch["pixels"])
        noise, timesteps, noisy = self.noised(latents, generator)
        predicted = model(torch.cat([noisy, coarse_latents], dim=1), timesteps, features)
        return F.mse_loss(predicted.float(), noise)


def training_pairs(config: RefineConfig, data: DataConfig) -> PoseTransferDataset:
    """The training split, checked before any model loads: pairs without a coarse image stop the run in
    one line that says how to write them, or are dropped where ``data.unusable_pairs`` is skip."""
    dataset = open_training_data(data)
    missing = missing_coarse_images(dataset, config.coarse_images)
    if not missing:
        return dataset
    command = coarse_images_command(data.root, data.split, config.coarse_images, data.layout, data.images)
    line = (
        f"refine.coarse_images: {len(missing)} of {len(dataset)} training pairs have no stage-2 image "
        f"(first: {Path(config.coarse_images) / pair_image_name(*dataset.pairs[missing[0]])}); "
        f"write them with: {command}"
    )
    if data.unusable_pairs == "error" or len(missing) == len(dataset):
        raise PcdmsError(line)
    print(f"skipping pairs without a coarse image: {line}")
    return dataset.subset(sorted(set(range(len(dataset))) - set(missing)))


def build_refine(config: RefineConfig) -> RefineModel:
    """The stage-3 model to train (see :func:`build_model`)."""
    return build_model(RefineModel, REFINE_CHANGES, config, "refine", "stage-3 model")
