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
from diffusers import AutoencoderKL
from transformers import Dinov2Model

from ..data.canvas import CanvasLayout, CanvasPairs
from ..data.embeddings import cached_embeddings, collate_vectors
from ..errors import PcdmsError
from ..io import atomic_folder
from ..models.encoders import CLIPImageProcessor, image_features, load_local_model
from ..models.inpaint import INPAINT_CHANGES, SD21_BASE_UNET, InpaintModel
from ..pipelines.inpaint import InpaintPipeline, official_sampling_scheduler, sd_training_scheduler
from .config import DataConfig, InpaintConfig
from .data import open_training_data

WEIGHT_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class InpaintTask:
    """Stage 2 for the shared loop."""

    name = "inpaint"

    def __init__(self, config: InpaintConfig, data: DataConfig, output_dir: str | Path, mixed_precision: str = "no"):
        self.config = config
        dataset = open_training_data(data)
        self.vae_folder = Path(config.vae or Path(config.stable_diffusion) / "vae")
        self.vae = load_local_model(AutoencoderKL, self.vae_folder, "VAE").eval().requires_grad_(False)
        self.dinov2 = load_local_model(Dinov2Model, config.dinov2, "DINOv2 encoder").eval().requires_grad_(False)
        self.model = build_inpaint(config)
        check_components(self.model, self.vae, self.dinov2)
        self.vae_scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        levels = len(self.model.unet.config.block_out_channels)
        self.layout = CanvasLayout(*config.size, multiple=self.vae_scale * 2 ** (levels - 1))

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
        self.scheduler = sd_training_scheduler()
        self.weight_dtype = WEIGHT_DTYPES[mixed_precision]

    def collate(self, items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return collate_vectors(items)

    def latents(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A draw from the VAE posterior (as the official training does), scaled, in float32."""
        posterior = self.vae.encode(images.to(self.weight_dtype)).latent_dist
        noise = torch.randn(posterior.mean.shape, generator=generator).to(posterior.mean)
        return (posterior.mean + posterior.std * noise).float() * self.vae.config.scaling_factor

    def loss(self, model, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        config, device = self.config, batch["canvas"].device
        if self.vae.device != device:
            self.vae.to(device, self.weight_dtype)
            self.dinov2.to(device, self.weight_dtype)
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
        noise = torch.randn(latents.shape, generator=generator)
        noise += config.noise_offset * torch.randn((size, latents.shape[1], 1, 1), generator=generator)
        timesteps = torch.randint(0, self.scheduler.config.num_train_timesteps, (size,), generator=generator)
        noise, timesteps = noise.to(device), timesteps.to(device)
        noisy = self.scheduler.add_noise(latents, noise, timesteps)
        mask = self.layout.latent_mask(self.vae_scale).to(device).expand(size, -1, -1, -1)
        sample = torch.cat([noisy, mask, masked_latents], dim=1)
        predicted = model(sample, timesteps, features, batch["pose"], target_embeds)
        return F.mse_loss(predicted.float(), noise)

    def save(self, model: InpaintModel, folder: Path) -> None:
        """The stage-2 pipeline folder, with the frozen VAE and DINOv2 re-read in their stored precision."""
        vae = load_local_model(AutoencoderKL, self.vae_folder, "VAE")
        dinov2 = load_local_model(Dinov2Model, self.config.dinov2, "DINOv2 encoder")
        with atomic_folder(folder) as temporary:
            InpaintPipeline(vae, dinov2, model, official_sampling_scheduler()).save_pretrained(temporary)


def build_inpaint(config: InpaintConfig) -> InpaintModel:
    """The stage-2 model to train: a saved one to continue, or a new one (optionally from SD 2.1-base).
    Its ``resolution`` becomes the run's half size, the size its pipeline samples at by default."""
    if config.pretrained:
        folder = Path(config.pretrained)
        if (folder / "inpaint" / "config.json").is_file():  # a pipeline folder, such as a run's output
            folder = folder / "inpaint"
        return load_local_model(InpaintModel, folder, "stage-2 model", resolution=list(config.size))
    architecture = {**config.architecture, "resolution": list(config.size)}
    try:
        if config.stable_diffusion:
            return InpaintModel.from_stable_diffusion(config.stable_diffusion, **architecture)
        unet = {**SD21_BASE_UNET, **INPAINT_CHANGES, **architecture.pop("unet_config", {})}
        return InpaintModel(unet_config=unet, **architecture)
    except (TypeError, ValueError) as error:
        raise PcdmsError(f"inpaint.architecture: {error}") from None


def check_components(model: InpaintModel, vae: AutoencoderKL, dinov2: Dinov2Model) -> None:
    """One line naming the mismatch, instead of a shape error deep inside the first step."""
    latent_channels = vae.config.latent_channels
    vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
    problems = []
    if model.unet.config.in_channels != 2 * latent_channels + 1:
        problems.append(
            f"the UNet takes {model.unet.config.in_channels} input channels, the VAE's latents need "
            f"{2 * latent_channels + 1} (twice {latent_channels} and the mask)"
        )
    if model.pose_scale != vae_scale:
        problems.append(f"the pose encoder scales by 1/{model.pose_scale}, the VAE by 1/{vae_scale}")
    if dinov2.config.hidden_size != model.config.image_feature_dim:
        problems.append(
            f"DINOv2 gives {dinov2.config.hidden_size}-d tokens, the model takes {model.config.image_feature_dim}-d"
        )
    if problems:
        raise PcdmsError("the stage-2 model does not fit its encoders: " + "; ".join(problems))
