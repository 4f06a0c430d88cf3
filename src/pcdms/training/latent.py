"""What training stages 2 and 3 share: a UNet denoising VAE latents, with a frozen VAE and DINOv2.

Both stages draw their latents from the VAE posterior and noise them with SD 2.1-base's schedule
(epsilon prediction, noise offset), run the frozen encoders in the run's mixed precision, build the
model to train the same way (continue a saved one, or a new one, optionally from SD 2.1-base), and
save a stage pipeline of the VAE, DINOv2, the model and the official sampler.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL
from transformers import Dinov2Model

from ..data.canvas import CanvasLayout
from ..data.embeddings import collate_vectors
from ..errors import PcdmsError
from ..io import atomic_folder
from ..models.encoders import load_local_model
from ..models.sd import SD21_BASE_UNET, side_multiple, vae_scale_factor
from ..pipelines.inpaint import official_sampling_scheduler, sd_training_scheduler

WEIGHT_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class LatentTask:
    """The shared half of a UNet stage's task; a stage sets ``model``, ``dataset`` and ``loss``."""

    pipeline_class: type

    def __init__(self, config, mixed_precision: str):
        self.config = config
        self.vae_folder = Path(config.vae or Path(config.stable_diffusion) / "vae")
        self.vae = load_local_model(AutoencoderKL, self.vae_folder, "VAE").eval().requires_grad_(False)
        self.dinov2 = load_local_model(Dinov2Model, config.dinov2, "DINOv2 encoder").eval().requires_grad_(False)
        self.vae_scale = vae_scale_factor(self.vae)
        self.scheduler = sd_training_scheduler()
        self.weight_dtype = WEIGHT_DTYPES[mixed_precision]

    def padded_layout(self, model) -> CanvasLayout:
        """The run's image size, padded to sides every level of ``model``'s UNet can halve."""
        return CanvasLayout(*self.config.size, multiple=side_multiple(self.vae, model.unet))

    def collate(self, items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return collate_vectors(items)

    def frozen_to(self, device: torch.device) -> None:
        """The frozen encoders on the batch's device, in the run's precision (moved once, lazily)."""
        if self.vae.device != device:
            self.vae.to(device, self.weight_dtype)
            self.dinov2.to(device, self.weight_dtype)

    def latents(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A draw from the VAE posterior (as the official training does), scaled, in float32."""
        posterior = self.vae.encode(images.to(self.weight_dtype)).latent_dist
        noise = torch.randn(posterior.mean.shape, generator=generator).to(posterior.mean)
        return (posterior.mean + posterior.std * noise).float() * self.vae.config.scaling_factor

    def noised(self, latents: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """(noise, timesteps, noisy latents): the noise with its offset and the timesteps drawn on the CPU
        from the micro-batch's generator, then moved to the latents' device."""
        size, channels = latents.shape[:2]
        noise = torch.randn(latents.shape, generator=generator)
        noise += self.config.noise_offset * torch.randn((size, channels, 1, 1), generator=generator)
        timesteps = torch.randint(0, self.scheduler.config.num_train_timesteps, (size,), generator=generator)
        noise, timesteps = noise.to(latents.device), timesteps.to(latents.device)
        return noise, timesteps, self.scheduler.add_noise(latents, noise, timesteps)

    def save(self, model, folder: Path) -> None:
        """The stage's pipeline folder, with the frozen VAE and DINOv2 re-read in their stored precision."""
        vae = load_local_model(AutoencoderKL, self.vae_folder, "VAE")
        dinov2 = load_local_model(Dinov2Model, self.config.dinov2, "DINOv2 encoder")
        with atomic_folder(folder) as temporary:
            self.pipeline_class(vae, dinov2, model, official_sampling_scheduler()).save_pretrained(temporary)


def build_model(model_class, changes: dict[str, Any], config, section: str, what: str):
    """The model to train: a saved one to continue (a model folder, or a pipeline folder holding one as
    ``section``), or a new one, optionally initialised from SD 2.1-base. Its ``resolution`` becomes the
    run's size, the size its pipeline samples at by default; it is given at construction because
    diffusers' ``from_config`` drops values registered later."""
    if config.pretrained:
        folder = Path(config.pretrained)
        if (folder / section / "config.json").is_file():  # a pipeline folder, such as a run's output
            folder = folder / section
        return load_local_model(model_class, folder, what, resolution=list(config.size))
    architecture = {**config.architecture, "resolution": list(config.size)}
    try:
        if config.stable_diffusion:
            return model_class.from_stable_diffusion(config.stable_diffusion, **architecture)
        unet = {**SD21_BASE_UNET, **changes, **architecture.pop("unet_config", {})}
        return model_class(unet_config=unet, **architecture)
    except (TypeError, ValueError) as error:
        raise PcdmsError(f"{section}.architecture: {error}") from None
