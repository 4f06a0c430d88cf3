"""Stage 3: the refining UNet that restores the texture and detail of stage 2's coarse image.

A plain Stable Diffusion 2.1-base ``UNet2DConditionModel`` with eight input channels: the noisy
latents of the target and the VAE latents of the coarse image, concatenated (spec 3). No canvas, no
mask, no pose, no class embedding: the coarse image already holds the pose, and the source's
appearance comes through cross-attention, as DINOv2 tokens projected by its own
``image_proj_model_p`` (the same shape as stage 2's, separate weights). The official names are
kept (``unet``, ``image_proj_model_p``), so the authors' checkpoint loads strictly.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from diffusers import ConfigMixin, ModelMixin, UNet2DConditionModel
from diffusers.configuration_utils import register_to_config

from ..checkpoints import load_official_state_dict, load_strict
from ..errors import PcdmsError
from .sd import (
    SD21_BASE_UNET,
    ImageProjection,
    encoder_mismatches,
    initialise_from_stable_diffusion,
    plain_config,
    stable_diffusion_unet_config,
)

# What stage 3 changes: [noisy latents 4, coarse-image latents 4] in.
REFINE_CHANGES = {"in_channels": 8, "class_embed_type": None}


class RefineModel(ModelMixin, ConfigMixin):
    """The stage-3 denoiser. The defaults build the official size: SD 2.1-base's UNet with eight input
    channels, DINOv2-giant (1536-d) tokens, 512x512 images.

    ``unet_config`` is the ``UNet2DConditionModel`` configuration; ``resolution`` is the (width, height)
    the model was trained at, what the pipeline uses unless told otherwise.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        unet_config: dict[str, Any] | None = None,
        image_feature_dim: int = 1536,
        image_proj_hidden_dim: int = 768,
        resolution: tuple[int, int] = (512, 512),
    ):
        super().__init__()
        self.unet = UNet2DConditionModel(**(unet_config or {**SD21_BASE_UNET, **REFINE_CHANGES}))
        self.register_to_config(unet_config=plain_config(self.unet))  # in full, whatever was left default
        self.image_proj_model_p = ImageProjection(
            image_feature_dim, image_proj_hidden_dim, self.unet.config.cross_attention_dim
        )

    @property
    def latent_channels(self) -> int:
        return self.unet.config.in_channels // 2

    def check_encoders(self, vae, dinov2) -> None:
        """One line naming what keeps this model from working with ``vae`` and ``dinov2``, instead of a shape
        error deep inside the first step."""
        latent_channels = vae.config.latent_channels
        inputs = f"twice {latent_channels}: the noisy latents and the coarse image's"
        problems = encoder_mismatches(self, vae, dinov2, latent_channels, inputs)
        if problems:
            raise PcdmsError("the stage-3 model does not fit its encoders: " + "; ".join(problems))

    def condition(self, image_features: torch.Tensor) -> torch.Tensor:
        """The cross-attention context: the source's projected image tokens (batch, 257, width)."""
        return self.image_proj_model_p(image_features.to(self.dtype))

    def denoise(self, sample: torch.Tensor, timestep: torch.Tensor | int, context: torch.Tensor) -> torch.Tensor:
        """The UNet's noise prediction for a prepared context (what the sampler calls every step)."""
        return self.unet(sample, timestep, encoder_hidden_states=context).sample

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | int, image_features: torch.Tensor) -> torch.Tensor:
        """Noise prediction (batch, 4, h, w) for ``sample`` (batch, 8, h, w): the noisy latents and the
        coarse image's latents; ``image_features`` are the source's image-encoder tokens."""
        return self.denoise(sample, timestep, self.condition(image_features))

    @classmethod
    def from_official(cls, checkpoint: str | os.PathLike, **config: Any) -> RefineModel:
        """The model with the authors' stage-3 weights (``mp_rank_00_model_states.pt`` or its folder),
        loaded strictly. ``config`` replaces the official size (tests use small models in the official
        layout)."""
        state = load_official_state_dict(checkpoint)
        unet = {**(config.pop("unet_config", None) or SD21_BASE_UNET), **REFINE_CHANGES}
        model = cls(unet_config=unet, **config)
        load_strict(model, state, checkpoint, expected_stage="refine")
        return model

    @classmethod
    def from_stable_diffusion(cls, folder: str | os.PathLike, **config: Any) -> RefineModel:
        """A new model initialised from a local Stable Diffusion 2.1-base folder as the official code does:
        every UNet weight whose shape fits is loaded; the eight-channel ``conv_in.weight`` (its bias is
        SD's) and the projection are freshly initialised."""
        unet = {**stable_diffusion_unet_config(folder), **REFINE_CHANGES, **config.pop("unet_config", {})}
        model = cls(unet_config=unet, **config)
        initialise_from_stable_diffusion(model.unet, folder, "stage-3")
        return model
