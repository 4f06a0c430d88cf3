"""Stage 1: the pose-conditioned diffusion prior.

A transformer over six tokens predicts the (normalised) CLIP image embedding of the target image
from the source image's CLIP embedding and the source and target poses. The tokens, in the order
the official weights expect, each ``inner_dim`` wide, plus a learnt positional embedding:

    source pose, target pose, source image, timestep, noisy target embedding, read-out token

Attention is bidirectional over all six (the official code builds a causal mask but never applies
it) and the prediction is read from the last token. Parameter names are the official ones, so the
authors' checkpoints load strictly (:meth:`PosePriorTransformer.from_official`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

from ..checkpoints import load_official_state_dict, load_strict
from ..pose.keypoints import Keypoints
from ..pose.vector import OFFICIAL, PoseConvention, pose_vector

NUM_TOKENS = 6
POSE_VECTOR_SIZE = 36


class PoseMLP(nn.Module):
    """36 pose numbers to one embedding: Linear, GELU, LayerNorm, Linear, LayerNorm (official ``MLP``)."""

    def __init__(self, hidden_dim: int, out_dim: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(POSE_VECTOR_SIZE, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.LayerNorm(hidden_dim),
            nn.Linear(hidden_dim, out_dim),
            nn.Dropout(dropout),
            nn.LayerNorm(out_dim),
        )

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        return self.net(pose)


class PosePriorTransformer(ModelMixin, ConfigMixin):
    """The stage-1 prior. The defaults are the official size: 20 blocks of width 2048, 1024-d embeddings.

    ``clip_mean`` and ``clip_std`` are the scalar normalisation of the target embedding (the model
    works on ``(embedding - clip_mean) / clip_std``); ``pose_convention`` is how poses become its 36
    input numbers (pcdms.pose.vector).
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        num_attention_heads: int = 32,
        attention_head_dim: int = 64,
        num_layers: int = 20,
        embedding_dim: int = 1024,
        pose_hidden_dim: int = 512,
        dropout: float = 0.0,
        clip_mean: float = -0.016,
        clip_std: float = 0.415,
        pose_convention: dict[str, Any] | None = None,
    ):
        super().__init__()
        inner_dim = num_attention_heads * attention_head_dim
        PoseConvention.from_dict(pose_convention or OFFICIAL.to_dict())  # refuse a bad convention now
        self.pose_encoder = PoseMLP(pose_hidden_dim, embedding_dim, dropout)  # source pose
        self.pose_encoder1 = PoseMLP(pose_hidden_dim, embedding_dim, dropout)  # target pose
        self.time_proj = Timesteps(inner_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(inner_dim, inner_dim)
        self.proj_in = nn.Linear(embedding_dim, inner_dim)
        self.embedding_proj = nn.Linear(embedding_dim, inner_dim)
        self.encoder_hidden_states_proj = nn.Linear(embedding_dim, inner_dim)
        self.encoder_hidden_states_proj1 = nn.Linear(embedding_dim, inner_dim)
        self.positional_embedding = nn.Parameter(torch.zeros(1, NUM_TOKENS, inner_dim))
        self.prd_embedding = nn.Parameter(torch.zeros(1, 1, inner_dim))
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(
                inner_dim,
                num_attention_heads,
                attention_head_dim,
                dropout=dropout,
                activation_fn="gelu",
                attention_bias=True,
            )
            for _ in range(num_layers)
        )
        self.norm_out = nn.LayerNorm(inner_dim)
        self.proj_to_clip_embeddings = nn.Linear(inner_dim, embedding_dim)
        self.gradient_checkpointing = False

    @property
    def pose_convention(self) -> PoseConvention:
        return PoseConvention.from_dict(self.config.pose_convention or OFFICIAL.to_dict())

    def forward(
        self,
        noisy_embeds: torch.Tensor,
        timestep: torch.Tensor | int,
        source_embeds: torch.Tensor,
        source_pose: torch.Tensor,
        target_pose: torch.Tensor,
    ) -> torch.Tensor:
        """Predict the clean normalised target embedding, (batch, embedding_dim).

        Embeddings are (batch, embedding_dim), poses (batch, 36), in the model's pose convention; a
        middle axis of length 1, as the official code passes them, is accepted too.
        """
        noisy_embeds, source_embeds, source_pose, target_pose = (
            tensor.reshape(tensor.shape[0], 1, tensor.shape[-1])
            for tensor in (noisy_embeds, source_embeds, source_pose, target_pose)
        )
        batch = noisy_embeds.shape[0]
        timesteps = torch.as_tensor(timestep, device=noisy_embeds.device).reshape(-1).expand(batch)
        time_tokens = self.time_embedding(self.time_proj(timesteps).to(self.dtype))[:, None]
        hidden = torch.cat(
            [
                self.encoder_hidden_states_proj(self.pose_encoder(source_pose)),
                self.encoder_hidden_states_proj1(self.pose_encoder1(target_pose)),
                self.embedding_proj(source_embeds),
                time_tokens,
                self.proj_in(noisy_embeds),
                self.prd_embedding.to(noisy_embeds.dtype).expand(batch, -1, -1),
            ],
            dim=1,
        )
        hidden = hidden + self.positional_embedding.to(hidden.dtype)
        for block in self.transformer_blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hidden = self._gradient_checkpointing_func(block, hidden)
            else:
                hidden = block(hidden)
        return self.proj_to_clip_embeddings(self.norm_out(hidden)[:, -1])

    def normalize(self, embeds: torch.Tensor) -> torch.Tensor:
        return (embeds - self.config.clip_mean) / self.config.clip_std

    def denormalize(self, embeds: torch.Tensor) -> torch.Tensor:
        return embeds * self.config.clip_std + self.config.clip_mean

    def pose_tensor(self, poses: Keypoints | list[Keypoints] | torch.Tensor | np.ndarray) -> torch.Tensor:
        """Poses as the (batch, 36) input, converted to this model's convention; tensors pass unchanged."""
        if isinstance(poses, Keypoints):
            poses = [poses]
        if isinstance(poses, list):
            poses = np.stack([pose_vector(pose, self.pose_convention) for pose in poses])
        poses = torch.as_tensor(poses, dtype=self.dtype, device=self.device)
        if poses.shape[-1] != POSE_VECTOR_SIZE:
            raise ValueError(f"a pose input has {POSE_VECTOR_SIZE} numbers, got a tensor of shape {tuple(poses.shape)}")
        return poses.reshape(-1, POSE_VECTOR_SIZE)

    @classmethod
    def from_official(cls, checkpoint: str | os.PathLike, **config: Any) -> PosePriorTransformer:
        """The prior with the authors' stage-1 weights (``mp_rank_00_model_states.pt`` or its folder),
        loaded strictly. Their poses are in the ``pcdms-official`` convention. The size is the official
        one unless ``config`` changes it (tests use small models in the official layout)."""
        model = cls(pose_convention=OFFICIAL.to_dict(), **config)
        load_strict(model, load_official_state_dict(checkpoint), checkpoint, expected_stage="prior")
        return model
