"""What the two UNet stages (2 and 3) share: Stable Diffusion 2.1-base's UNet, initialisation from a
local SD folder, and the projection of DINOv2 tokens to the UNet's cross-attention width."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from diffusers import ConfigMixin, UNet2DConditionModel
from torch import nn

from ..checkpoints import load_matching, read_diffusers_weights
from ..errors import PcdmsError

# Stable Diffusion 2.1-base's UNet (stabilityai/stable-diffusion-2-1-base, unet/config.json). Its
# "attention_head_dim" holds head counts (a diffusers naming quirk): 5, 10, 20, 20 heads of 64.
SD21_BASE_UNET = {
    "act_fn": "silu",
    "attention_head_dim": [5, 10, 20, 20],
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 1024,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "dual_cross_attention": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "use_linear_projection": True,
}


class ImageProjection(nn.Module):
    """Image-encoder tokens to the UNet's cross-attention width (official ``ImageProjModel_p``):
    Linear, GELU, Dropout, LayerNorm, Linear, Dropout."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(0.0),
            nn.LayerNorm(hidden_dim),
            nn.Linear(hidden_dim, out_dim),
            nn.Dropout(0.0),
        )

    def forward(self, features):
        return self.net(features)


def plain_config(model: ConfigMixin) -> dict[str, Any]:
    """A model's configuration as plain values, without diffusers' bookkeeping keys."""
    return {key: value for key, value in dict(model.config).items() if not key.startswith("_")}


def stable_diffusion_unet_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The UNet configuration of a local Stable Diffusion folder (``unet/config.json``)."""
    config_file = Path(folder) / "unet" / "config.json"
    if not config_file.is_file():
        raise PcdmsError(f"{folder}: not a Stable Diffusion folder (no unet/config.json)")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as error:
        raise PcdmsError(f"{config_file}: unreadable ({error})") from None
    return {key: value for key, value in config.items() if not key.startswith("_")}


def initialise_from_stable_diffusion(unet: UNet2DConditionModel, folder: str | os.PathLike, stage: str) -> None:
    """Copy every weight of SD's UNet whose name and shape fit (what ``ignore_mismatched_sizes`` did in the
    official code: the widened ``conv_in.weight`` and new embeddings stay fresh, ``conv_in.bias`` is SD's)."""
    report = load_matching(unet, read_diffusers_weights(folder, subfolder="unet"))
    print(f"{stage} UNet initialised from {folder}: {report.summary()}")


def vae_scale_factor(vae: ConfigMixin) -> int:
    """How many image pixels one latent covers along a side (8 for SD's VAE)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def side_multiple(vae: ConfigMixin, unet: UNet2DConditionModel) -> int:
    """What image sides must be a multiple of for every level of ``unet`` to halve ``vae``'s latents."""
    return vae_scale_factor(vae) * 2 ** (len(unet.config.block_out_channels) - 1)


def encoder_mismatches(model, vae: ConfigMixin, dinov2, condition_channels: int, inputs: str) -> list[str]:
    """What keeps a stage-2 or stage-3 ``model`` from working with ``vae`` and ``dinov2``: its UNet takes the
    noisy latents and ``condition_channels`` more (``inputs`` says which) and predicts latents; its
    projection takes DINOv2's tokens."""
    latent_channels = vae.config.latent_channels
    unet = model.unet.config
    problems = []
    if unet.in_channels != latent_channels + condition_channels:
        problems.append(
            f"the UNet takes {unet.in_channels} input channels, the VAE's latents need "
            f"{latent_channels + condition_channels} ({inputs})"
        )
    if unet.out_channels != latent_channels:
        problems.append(f"the UNet predicts {unet.out_channels} channels, the VAE's latents have {latent_channels}")
    if dinov2.config.hidden_size != model.config.image_feature_dim:
        problems.append(
            f"DINOv2 gives {dinov2.config.hidden_size}-d tokens, the model takes {model.config.image_feature_dim}-d"
        )
    return problems
