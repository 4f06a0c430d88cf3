"""Training stage 2: what the shared loop needs to train the inpainting UNet.

Per pair the model sees the [source | target] canvas (its VAE latents are the diffusion target),
the [source | black] canvas and the mask, the two pose maps, the source's DINOv2 tokens and the
target's CLIP embedding. The VAE, DINOv2 and CLIP are frozen: CLIP embeddings are computed once and
cached (``output_dir/cache``); the VAE and DINOv2 run in each step, in the run's mixed precision.
The diffusion set-up is the official one (spec 2.4): SD 2.1-base's noise schedule, epsilon
prediction, MSE over the whole canvas, noise offset, and the condition drops on the encoders'
*pixel* inputs (the source's DINOv2 pixels, the target's CLIP pixels) that pose and masked image
never see.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import PartialState

from ..data.canvas import CanvasPairs
from ..data.embeddings import cached_embeddings
from ..errors import PcdmsError
from ..models.encoders import CLIPImageProcessor, image_features
from ..models.inpaint import INPAINT_CHANGES, InpaintModel
from ..pipelines.inpaint import InpaintPipeline
from .config import DataConfig, InpaintConfig
from .data import open_training_data
from .latent import LatentTask, build_model


class InpaintTask(LatentTask):
    """Stage 2 for the shared loop."""

    name = "inpaint"
    pipeline_class = InpaintPipeline

    def __init__(self, config: InpaintConfig, data: DataConfig, output_dir: str | Path, mixed_precision: str = "no"):
        super().__init__(config, mixed_precision)
        dataset = open_training_data(data)
        self.model = build_inpaint(config)
        self.model.check_encoders(self.vae, self.dinov2)
        self.layout = self.padded_layout(self.model)

        embeds, self.null_embeds = None, None
        if self.model.uses_target_embedding:
            if not config.clip:
                raise PcdmsError("inpaint.clip is not set (a local CLIP vision folder for the target embedding)")
            state = PartialState()
            # As in stage 1: one process computes the cache, and the random state is left alone.
            with state.main_process_first(), torch.random.fork_rng(devices=[]):
                embeds, self.null_embeds = cached_embeddings(
                    dataset, Path(config.clip), Path(output_dir) / "cache", config.embedding_batch_size, state.device
                )
            width = self.model.unet.config.projection_class_embeddings_input_dim
            if self.null_embeds.shape[0] != width:
                raise PcdmsError(
                    f"{config.clip}: gives {self.null_embeds.shape[0]}-d embeddings, the stage-2 model takes {width}-d"
                )
        self.dataset = CanvasPairs(dataset, self.layout, CLIPImageProcessor(), embeds)

    def loss(self, model, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        config, device = self.config, batch["canvas"].device
        self.frozen_to(device)
        size = batch["canvas"].shape[0]
        # All randomness is drawn on the CPU from the micro-batch's generator, then moved.
        drops = torch.rand((2, size), generator=generator) < torch.tensor(
            [config.drop_image_features, config.drop_target_embedding]
        ).reshape(2, 1)
        drops = drops.to(device)
        with torch.no_grad():
            latents = self.latents(batch["canvas"], generator)
            masked_latents = self.latents(batch["masked"], generator)
            pixels = torch.where(drops[0].reshape(-1, 1, 1, 1), 0.0, batch["pixels"])
            features = image_features(self.dinov2, pixels)
        target_embeds = None
        if self.null_embeds is not None:
            target_embeds = torch.where(drops[1].reshape(-1, 1), self.null_embeds.to(device), batch["target_embeds"])
        noise, timesteps, noisy = self.noised(latents, generator)
        mask = self.layout.latent_mask(self.vae_scale).to(device).expand(size, -1, -1, -1)
        sample = torch.cat([noisy, mask, masked_latents], dim=1)
        predicted = model(sample, timesteps, features, batch["pose"], target_embeds)
        return F.mse_loss(predicted.float(), noise)


def build_inpaint(config: InpaintConfig) -> InpaintModel:
    """The stage-2 model to train (see :func:`build_model`)."""
    return build_model(InpaintModel, INPAINT_CHANGES, config, "inpaint", "stage-2 model")
