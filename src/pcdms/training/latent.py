"""What training stages 2 and 3 share: a UNet denoising VAE latents, with a frozen VAE and DINOv2.

Both stages draw their latents from the VAE posterior and noise them with SD 2.1-base's schedule
(epsilon prediction, noise offset), build the model to train the same way (continue a saved one, or
a new one, optionally from SD 2.1-base), and save a stage pipeline of the VAE, DINOv2, the model and
the official sampler. The frozen networks run once per image, before training: their posteriors'
means and standard deviations and the encoder's tokens are cached on disk (:mod:`.frozen_cache`),
and each step only draws from the cached posteriors with the micro-batch's generator.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from diffusers import AutoencoderKL

from ..data.canvas import CanvasLayout
from ..data.dataset import PoseTransferDataset
from ..data.embeddings import collate_vectors
from ..errors import PcdmsError
from ..io import atomic_folder, load_image
from ..models.encoders import CLIPImageProcessor, clip_pixels, image_features, load_dinov2, load_local_model
from ..models.sd import SD21_BASE_UNET, side_multiple, vae_scale_factor
from ..pipelines.inpaint import official_sampling_scheduler, sd_training_scheduler
from .frozen_cache import cached_outputs, folder_digest

CACHE_BATCH = 32  # images a call while filling the cache


class LatentTask:
    """The shared half of a UNet stage's task; a stage sets ``model``, ``dataset`` and ``loss``."""

    pipeline_class: type

    def __init__(self, config):
        self.config = config
        self.vae_folder = Path(config.vae or Path(config.stable_diffusion) / "vae")
        self.vae = load_local_model(AutoencoderKL, self.vae_folder, "VAE").eval().requires_grad_(False)
        self.dinov2 = load_dinov2(config.dinov2).eval().requires_grad_(False)
        self.vae_scale = vae_scale_factor(self.vae)
        self.scheduler = sd_training_scheduler()

    def padded_layout(self, model) -> CanvasLayout:
        """The run's image size, padded to sides every level of ``model``'s UNet can halve."""
        return CanvasLayout(*self.config.size, multiple=side_multiple(self.vae, model.unet))

    def collate(self, items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return collate_vectors(items)

    def cached_posteriors(
        self, cache_file: Path, keys: list[str], images: Callable[[list[int]], torch.Tensor], what: str
    ) -> torch.Tensor:
        """(len(keys), 2 * latent channels, h, w): the VAE posterior's mean and standard deviation of each image,
        ``keys`` naming their content and ``images(positions)`` giving them (batch, 3, H, W) in [-1, 1]; kept
        in ``cache_file``, which holds this one set of images."""

        def encode(positions: list[int]) -> torch.Tensor:
            posterior = self.vae.encode(images(positions).to(self.vae.device)).latent_dist
            return torch.cat([posterior.mean, posterior.std], dim=1)

        return self._cached(cache_file, self.vae_folder, keys, encode, what)

    def cached_tokens(
        self, cache_file: Path, keys: list[str], pixels: Callable[[list[int]], torch.Tensor], what: str
    ) -> torch.Tensor:
        """(len(keys), tokens, hidden): DINOv2's tokens of encoder pixels (:func:`clip_pixels`) ``pixels`` gives,
        kept in ``cache_file``."""
        return self._cached(
            cache_file,
            Path(self.config.dinov2),
            keys,
            lambda positions: image_features(self.dinov2, pixels(positions)),
            what,
        )

    def source_tokens(
        self, cache: Path, dataset: PoseTransferDataset, sources: list[str], digest: dict[str, str]
    ) -> torch.Tensor:
        """(len(sources), tokens, hidden): DINOv2's tokens of each source image, cached in ``cache`` by its
        content digest (``digest``: image name to SHA-256 of its file)."""
        return self.cached_tokens(
            cache / "dinov2-tokens.safetensors",
            [f"tokens {digest[name]}" for name in sources],
            lambda positions: clip_pixels(
                [load_image(dataset.image_path(sources[index])) for index in positions], CLIPImageProcessor()
            ),
            "DINOv2 tokens",
        )

    @property
    def placement(self) -> str:
        """What a placed image's content depends on besides its file: part of its cache keys."""
        return f"{self.layout.size} {self.layout.padded_size}"

    def _cached(self, path: Path, network: Path, keys: list[str], compute, what: str) -> torch.Tensor:
        # One process computes, the others read its file; the computation leaves the random state alone.
        state = PartialState()
        self.vae.to(state.device)
        self.dinov2.to(state.device)
        with state.main_process_first(), torch.random.fork_rng(devices=[]):
            return cached_outputs(path, folder_digest(network), keys, compute, CACHE_BATCH, what)

    @functools.cached_property
    def null_tokens(self) -> torch.Tensor:
        """(tokens, hidden): DINOv2's tokens of all-zero pixels, what a dropped image shows the model."""
        size = self.dinov2.config.image_size
        with torch.no_grad():
            return image_features(self.dinov2, torch.zeros(1, 3, size, size))[0].float().cpu()

    def latents(self, posteriors: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A draw from cached VAE posteriors (batch, 2C, h, w), as the official training draws, scaled."""
        mean, std = posteriors.chunk(2, dim=1)
        noise = torch.randn(mean.shape, generator=generator).to(mean)
        return (mean + std * noise) * self.vae.config.scaling_factor

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
        dinov2 = load_dinov2(self.config.dinov2)
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
