"""Stage 2: the inpainting UNet that paints the target person into the right half of a canvas.

The UNet is diffusers' ``UNet2DConditionModel`` as Stable Diffusion 2.1-base builds it, with nine
input channels (noisy latents, mask, masked-image latents) and a projection class embedding. Three
conditions reach it (spec 2.3):

- the poses: a ControlNet-style encoder turns the [source | target] pose canvas into features that
  are *added to the output of the UNet's first convolution* (not ControlNet residuals);
- the source's appearance: DINOv2 tokens, projected to the cross-attention width;
- the target's global CLIP embedding, used twice: as one more cross-attention token and as the
  class label, whose embedding is added to the timestep embedding.

The module names are the official ones (``unet``, ``pose_proj``, ``image_proj_model_p``), so the
authors' checkpoints load strictly, and the UNet is diffusers' own: the pose features enter through
a forward hook on ``unet.conv_in`` for the duration of one call, no UNet code is copied.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from diffusers import ConfigMixin, ModelMixin, UNet2DConditionModel
from diffusers.configuration_utils import register_to_config
from diffusers.models.controlnets.controlnet import ControlNetConditioningEmbedding

from ..checkpoints import detect_stage, load_official_state_dict, load_strict
from ..errors import PcdmsError
from .sd import (
    SD21_BASE_UNET,
    ImageProjection,
    encoder_mismatches,
    initialise_from_stable_diffusion,
    plain_config,
    stable_diffusion_unet_config,
    vae_scale_factor,
)

# What stage 2 changes (spec 2.1): [noisy latents 4, mask 1, masked-image latents 4] in, and the
# target's CLIP embedding as a projected class label.
INPAINT_CHANGES = {"in_channels": 9, "class_embed_type": "projection", "projection_class_embeddings_input_dim": 1024}
# The lite stage-2-only checkpoint (PCDMs_ckpt.pt) has no class embedding and no target embedding.
LITE_CHANGES = {"in_channels": 9, "class_embed_type": None, "projection_class_embeddings_input_dim": None}


@contextmanager
def added_after_conv_in(unet: UNet2DConditionModel, features: torch.Tensor) -> Iterator[None]:
    """While inside, the UNet's first convolution returns ``conv_in(sample) + features``."""
    handle = unet.conv_in.register_forward_hook(lambda module, inputs, output: output + features)
    try:
        yield
    finally:
        handle.remove()


class InpaintModel(ModelMixin, ConfigMixin):
    """The stage-2 denoiser. The defaults build the official size: SD 2.1-base's UNet with nine input
    channels and a 1024-d projection class embedding, DINOv2-giant (1536-d) tokens, 512x512 halves.

    ``unet_config`` is the ``UNet2DConditionModel`` configuration (SD 2.1-base's with the stage-2 changes
    by default); ``resolution`` is the (width, height) of one half of the canvas the model was
    trained at, what the pipeline uses unless told otherwise.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        unet_config: dict[str, Any] | None = None,
        image_feature_dim: int = 1536,
        image_proj_hidden_dim: int = 768,
        pose_block_channels: tuple[int, ...] = (16, 32, 96, 256),
        resolution: tuple[int, int] = (512, 512),
    ):
        super().__init__()
        self.unet = UNet2DConditionModel(**(unet_config or {**SD21_BASE_UNET, **INPAINT_CHANGES}))
        self.register_to_config(unet_config=plain_config(self.unet))  # in full, whatever was left default
        width = self.unet.config.cross_attention_dim
        if self.uses_target_embedding and self.unet.config.projection_class_embeddings_input_dim != width:
            raise ValueError(
                "the target embedding is also a cross-attention token, so projection_class_embeddings_input_dim "
                f"({self.unet.config.projection_class_embeddings_input_dim}) must equal cross_attention_dim ({width})"
            )
        self.image_proj_model_p = ImageProjection(image_feature_dim, image_proj_hidden_dim, width)
        self.pose_proj = ControlNetConditioningEmbedding(
            conditioning_embedding_channels=self.unet.config.block_out_channels[0],
            conditioning_channels=3,
            block_out_channels=tuple(pose_block_channels),
        )

    @property
    def uses_target_embedding(self) -> bool:
        """False for the lite model, which sees only the source's image features and the poses."""
        return self.unet.config.class_embed_type is not None

    @property
    def pose_scale(self) -> int:
        """How many pose-map pixels make one side of a pose feature (8 for the official encoder)."""
        return 2 ** (len(self.config.pose_block_channels) - 1)

    def check_encoders(self, vae, dinov2) -> None:
        """One line naming what keeps this model from working with ``vae`` and ``dinov2``, instead of a shape
        error deep inside the first step."""
        latent_channels = vae.config.latent_channels
        vae_scale = vae_scale_factor(vae)
        problems = encoder_mismatches(self, vae, dinov2, latent_channels + 1, f"twice {latent_channels} and the mask")
        if self.pose_scale != vae_scale:
            problems.append(f"the pose encoder scales by 1/{self.pose_scale}, the VAE by 1/{vae_scale}")
        if problems:
            raise PcdmsError("the stage-2 model does not fit its encoders: " + "; ".join(problems))

    def condition(
        self, image_features: torch.Tensor, target_embeds: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The cross-attention context and the class labels: projected image tokens followed by the
        target embedding as one more token (257 + 1 = 258 tokens at full size), and that embedding again."""
        context = self.image_proj_model_p(image_features.to(self.dtype))
        if not self.uses_target_embedding:
            return context, None
        if target_embeds is None:
            raise ValueError("this stage-2 model needs the target's CLIP embedding (target_embeds)")
        target_embeds = target_embeds.to(context.device, context.dtype).reshape(context.shape[0], -1)
        return torch.cat([context, target_embeds[:, None]], dim=1), target_embeds

    def encode_pose(self, pose_canvas: torch.Tensor) -> torch.Tensor:
        """Pose canvas (batch, 3, H, W) in [-1, 1] to features (batch, channels, H/8, W/8)."""
        return self.pose_proj(pose_canvas.to(self.dtype))

    def denoise(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int,
        context: torch.Tensor,
        class_labels: torch.Tensor | None,
        pose_features: torch.Tensor,
    ) -> torch.Tensor:
        """The UNet's noise prediction for prepared conditions (what the sampler calls every step)."""
        with added_after_conv_in(self.unet, pose_features):
            return self.unet(sample, timestep, encoder_hidden_states=context, class_labels=class_labels).sample

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int,
        image_features: torch.Tensor,
        pose_canvas: torch.Tensor,
        target_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Noise prediction (batch, 4, h, w) for the UNet input ``sample`` (batch, 9, h, w): noisy
        latents, mask and masked-image latents; ``image_features`` are the source's image-encoder
        tokens, ``pose_canvas`` the [source | target] pose maps, ``target_embeds`` (batch, D)."""
        context, class_labels = self.condition(image_features, target_embeds)
        return self.denoise(sample, timestep, context, class_labels, self.encode_pose(pose_canvas))

    @classmethod
    def from_official(cls, checkpoint: str | os.PathLike, **config: Any) -> InpaintModel:
        """The model with the authors' stage-2 weights, loaded strictly: the DeepSpeed
        ``mp_rank_00_model_states.pt`` (or its folder), or the lite ``PCDMs_ckpt.pt``, recognised by its
        keys (``image_proj_model.*`` and no class embedding). ``config`` replaces the official size
        (tests use small models in the official layout)."""
        state = load_official_state_dict(checkpoint)
        lite = detect_stage(state) == "inpaint-lite"
        if lite:
            state = {key.replace("image_proj_model.", "image_proj_model_p.", 1): value for key, value in state.items()}
        unet = {**(config.pop("unet_config", None) or SD21_BASE_UNET), **(LITE_CHANGES if lite else INPAINT_CHANGES)}
        if not lite:
            unet["projection_class_embeddings_input_dim"] = unet["cross_attention_dim"]
        model = cls(unet_config=unet, **config)
        load_strict(model, state, checkpoint, expected_stage="inpaint")
        return model

    @classmethod
    def from_stable_diffusion(cls, folder: str | os.PathLike, **config: Any) -> InpaintModel:
        """A new model initialised from a local Stable Diffusion 2.1-base folder as the official code does:
        every UNet weight of SD whose shape fits is loaded; the nine-channel ``conv_in.weight`` (its bias
        is SD's) and the class embedding are freshly initialised, as are the pose encoder and projection."""
        sd_config = stable_diffusion_unet_config(folder)
        changes = {**INPAINT_CHANGES, "projection_class_embeddings_input_dim": sd_config["cross_attention_dim"]}
        model = cls(unet_config={**sd_config, **changes, **config.pop("unet_config", {})}, **config)
        initialise_from_stable_diffusion(model.unet, folder, "stage-2")
        return model
