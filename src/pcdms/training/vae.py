"""Training a small VAE: the latent space of a model that cannot use Stable Diffusion's own.

Stable Diffusion's VAE is 84 M parameters and needs the hub; a model small enough to ship with the
package (the bundled street model) or to train on a CPU needs its own, fitted to its images. It is
diffusers' ``AutoencoderKL`` trained as a plain VAE: reconstruction MSE plus a small KL term, on
every image of the split's pairs, flipped left-right half of the time. The saved VAE's scaling
factor makes its latents' standard deviation 1 over the training images, as SD's 0.18215 does for
SD's, so the diffusion schedules of stages 2 and 3 apply unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from PIL import Image

from ..data.canvas import image_tensor
from ..data.embeddings import collate_vectors
from ..errors import PcdmsError
from ..io import atomic_folder, load_image
from ..models.encoders import load_local_model
from .config import DataConfig, VaeConfig
from .data import open_training_data

# Images encoded to measure the latents' spread for the scaling factor.
SCALING_SAMPLE = 512


class ImageSet(torch.utils.data.Dataset):
    """Every image of a split's pairs, once, as (3, height, width) tensors in [-1, 1] at ``size``."""

    def __init__(self, paths: list[Path], size: tuple[int, int]):
        self.paths, self.size = paths, tuple(size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = load_image(self.paths[index])
        if image.size != self.size:
            image = image.resize(self.size, Image.Resampling.BICUBIC)
        return {"image": image_tensor(image)}


class VaeTask:
    """The VAE for the shared loop."""

    name = "vae"

    def __init__(self, config: VaeConfig, data: DataConfig):
        self.config = config
        dataset = open_training_data(data)
        self.dataset = ImageSet([dataset.image_path(name) for name in dataset.image_names()], config.size)
        self.model = build_vae(config)

    def collate(self, items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return collate_vectors(items)

    def loss(self, model, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        images = batch["image"]
        flips = (torch.rand(images.shape[0], generator=generator) < 0.5).to(images.device)
        images = torch.where(flips.reshape(-1, 1, 1, 1), images.flip(-1), images)
        posterior = model.encode(images).latent_dist
        noise = torch.randn(posterior.mean.shape, generator=generator).to(posterior.mean)
        reconstruction = model.decode(posterior.mean + posterior.std * noise).sample
        return F.mse_loss(reconstruction.float(), images) + self.config.kl_weight * posterior.kl().mean()

    @torch.no_grad()
    def save(self, model: AutoencoderKL, folder: Path) -> None:
        model.eval()
        scaling = self.config.scaling_factor
        if scaling == "auto":
            step = max(1, len(self.dataset) // SCALING_SAMPLE)
            images = torch.stack([self.dataset[index]["image"] for index in range(0, len(self.dataset), step)])
            latents = torch.cat([model.encode(batch).latent_dist.mean for batch in images.split(64)])
            scaling = round(1.0 / latents.std().item(), 5)
        model.register_to_config(scaling_factor=float(scaling))
        with atomic_folder(folder) as temporary:
            model.save_pretrained(temporary)


def build_vae(config: VaeConfig) -> AutoencoderKL:
    """A saved VAE to continue from, or a new one of ``config.architecture``."""
    if config.pretrained:
        return load_local_model(AutoencoderKL, config.pretrained, "VAE")
    try:
        return AutoencoderKL(**config.architecture)
    except (TypeError, ValueError) as error:
        raise PcdmsError(f"vae.architecture: {error}") from None
