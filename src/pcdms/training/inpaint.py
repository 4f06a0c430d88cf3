"""Training stage 2: what the shared loop needs to train the inpainting UNet.

Per pair the model sees the [source | target] canvas (its VAE latents are the diffusion target),
the [source | black] canvas and the mask, the two pose maps, the source's DINOv2 tokens and the
target's CLIP embedding. The VAE, DINOv2 and CLIP are frozen and run once per image before training:
the canvas posteriors (per pair), the [source | black] posteriors and the tokens (per source image)
and the CLIP embeddings are cached in ``output_dir/cache``, the pose maps drawn once in memory.
The diffusion set-up is the official one (spec 2.4): SD 2.1-base's noise schedule, epsilon
prediction, MSE over the whole canvas, noise offset, and the condition drops on the encoders'
*pixel* inputs (the source's DINOv2 pixels, the target's CLIP pixels: a dropped input gives the
tokens or embedding of all-zero pixels) that pose and masked image never see.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import PartialState
from torch.utils.data import Dataset

from ..data.dataset import PoseTransferDataset
from ..data.embeddings import cached_embeddings
from ..errors import PcdmsError
from ..io import image_size, load_image
from ..models.inpaint import INPAINT_CHANGES, InpaintModel
from ..pipelines.inpaint import InpaintPipeline
from ..pose.render import render_pose
from .config import DataConfig, InpaintConfig
from .data import open_training_data
from .frozen_cache import file_digest
from .latent import LatentTask, build_model


class InpaintTask(LatentTask):
    """Stage 2 for the shared loop."""

    name = "inpaint"
    pipeline_class = InpaintPipeline

    def __init__(self, config: InpaintConfig, data: DataConfig, output_dir: str | Path):
        super().__init__(config)
        dataset = open_training_data(data)
        self.model = build_inpaint(config)
        self.model.check_encoders(self.vae, self.dinov2)
        self.layout = self.padded_layout(self.model)
        cache = Path(output_dir) / "cache"

        embeds, self.null_embeds = None, None
        if self.model.uses_target_embedding:
            if not config.clip:
                raise PcdmsError("inpaint.clip is not set (a local CLIP vision folder for the target embedding)")
            state = PartialState()
            # As in stage 1: one process computes the cache, and the random state is left alone.
            with state.main_process_first(), torch.random.fork_rng(devices=[]):
                embeds, self.null_embeds = cached_embeddings(
                    dataset, Path(config.clip), cache, config.embedding_batch_size, state.device
                )
            width = self.model.unet.config.projection_class_embeddings_input_dim
            if self.null_embeds.shape[0] != width:
                raise PcdmsError(
                    f"{config.clip}: gives {self.null_embeds.shape[0]}-d embeddings, the stage-2 model takes {width}-d"
                )
        self.dataset = self.frozen_pairs(dataset, cache, embeds)

    def frozen_pairs(
        self, dataset: PoseTransferDataset, cache: Path, embeds: dict[str, torch.Tensor] | None
    ) -> FrozenCanvasPairs:
        """The pairs as the frozen networks see them, from the cache (filled where it lacks an entry)."""
        layout = self.layout
        names = dataset.image_names()
        position = {name: index for index, name in enumerate(names)}
        digest = {name: file_digest(dataset.image_path(name)) for name in names}
        sources = list(dict.fromkeys(source for source, _ in dataset.pairs))
        source_position = {name: index for index, name in enumerate(sources)}

        def image(name: str):
            return load_image(dataset.image_path(name))

        def canvases(positions: list[int]) -> torch.Tensor:
            pairs = [dataset.pairs[index] for index in positions]
            return torch.stack([layout.image_canvas(image(source), image(target)) for source, target in pairs])

        def masked(positions: list[int]) -> torch.Tensor:
            return torch.stack([layout.image_canvas(image(sources[index]), None) for index in positions])

        place = self.placement
        canvas = self.cached_posteriors(
            cache / "vae-canvases.safetensors",
            [f"canvas {place} {digest[s]} {digest[t]}" for s, t in dataset.pairs],
            canvases,
            "VAE: canvases",
        )
        masked_canvas = self.cached_posteriors(
            cache / "vae-masked-canvases.safetensors",
            [f"masked canvas {place} {digest[name]}" for name in sources],
            masked,
            "VAE: masked canvases",
        )
        tokens = self.source_tokens(cache, dataset, sources, digest)
        # Drawn in memory, where a pose map is a few kilobytes: no file to go stale when the drawing changes.
        pose_maps = torch.from_numpy(
            np.stack(
                [
                    np.array(render_pose(layout.place_pose(dataset.pose(name, image_size(dataset.image_path(name))))))
                    for name in names
                ]
            )
        ).permute(0, 3, 1, 2)
        return FrozenCanvasPairs(
            canvas=canvas,
            masked=masked_canvas,
            tokens=tokens,
            pose_maps=pose_maps,
            sources=torch.tensor([source_position[source] for source, _ in dataset.pairs]),
            poses=torch.tensor([(position[source], position[target]) for source, target in dataset.pairs]),
            target_embeds=None if embeds is None else torch.stack([embeds[target] for _, target in dataset.pairs]),
        )

    def collate(self, items: list[int]) -> dict[str, torch.Tensor]:
        return self.dataset.batch(items)

    def to(self, device: torch.device) -> None:
        self.dataset.to(device)

    def loss(self, model, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        config, device = self.config, batch["canvas"].device
        size = batch["canvas"].shape[0]
        # All randomness is drawn on the CPU from the micro-batch's generator, then moved.
        drops = torch.rand((2, size), generator=generator) < torch.tensor(
            [config.drop_image_features, config.drop_target_embedding]
        ).reshape(2, 1)
        drops = drops.to(device)
        latents = self.latents(batch["canvas"], generator)
        masked_latents = self.latents(batch["masked"], generator)
        features = torch.where(drops[0].reshape(-1, 1, 1), self.null_tokens.to(device), batch["tokens"])
        target_embeds = None
        if self.null_embeds is not None:
            target_embeds = torch.where(drops[1].reshape(-1, 1), self.null_embeds.to(device), batch["target_embeds"])
        noise, timesteps, noisy = self.noised(latents, generator)
        mask = self.layout.latent_mask(self.vae_scale).to(device).expand(size, -1, -1, -1)
        sample = torch.cat([noisy, mask, masked_latents], dim=1)
        predicted = model(sample, timesteps, features, batch["pose"], target_embeds)
        return F.mse_loss(predicted.float(), noise)


class FrozenCanvasPairs(Dataset):
    """Stage 2's pairs from cached tensors: per pair the VAE posterior (mean and std) of the [source | target]
    canvas and the target's CLIP embedding; by source image the posterior of [source | black] and the
    DINOv2 tokens; by image the pose map (uint8), put side by side as the pose canvas in [-1, 1].

    An item is the pair's position; :meth:`batch` gathers a batch's tensors with one indexing per tensor,
    on the device they are kept on (:meth:`to`), instead of stacking copies of every pair's tensors on the
    CPU: 90 MB a batch of 128 at the bundled model's size, mostly the tokens, which bound its GPU training."""

    def __init__(self, *, canvas, masked, tokens, pose_maps, sources, poses, target_embeds=None):
        self.canvas, self.masked, self.tokens, self.pose_maps = canvas, masked, tokens, pose_maps
        self.sources, self.poses, self.target_embeds = sources, poses, target_embeds

    def __len__(self) -> int:
        return len(self.canvas)

    def __getitem__(self, index: int) -> int:
        return index

    def batch(self, indices: list[int]) -> dict[str, torch.Tensor]:
        index = torch.tensor(indices)
        source, poses = self.sources[index], self.poses[index]
        pose_maps = torch.cat([self.pose_maps[poses[:, 0]], self.pose_maps[poses[:, 1]]], dim=3)
        batch = {
            "canvas": self.canvas[index],
            "masked": self.masked[source],
            "tokens": self.tokens[source],
            "pose": pose_maps.float() / 127.5 - 1.0,
        }
        if self.target_embeds is not None:
            batch["target_embeds"] = self.target_embeds[index]
        return batch

    def to(self, device: torch.device) -> FrozenCanvasPairs:
        """Keep the tensors on ``device`` (the training GPU), so that batches are gathered there."""
        for name in ("canvas", "masked", "tokens", "pose_maps", "target_embeds"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name).to(device))
        return self


def build_inpaint(config: InpaintConfig) -> InpaintModel:
    """The stage-2 model to train (see :func:`build_model`)."""
    return build_model(InpaintModel, INPAINT_CHANGES, config, "inpaint", "stage-2 model")
