"""Training stage 3: what the shared loop needs to train the refining UNet.

Per pair the model sees the target (its VAE latents are the diffusion target), stage 2's coarse
image of it (its VAE latents are concatenated to the noisy ones) and the source's DINOv2 tokens
through cross-attention. The coarse images are stage 2's outputs for the *training* pairs, written
beforehand (``pcdms sample inpaint --split train``), as the official recipe does. The VAE and DINOv2
are frozen and run once per image before training: the posteriors of the targets and of the coarse
images and the sources' tokens are cached in ``output_dir/cache``.

The diffusion set-up is the official one (spec 3): SD 2.1-base's noise schedule, epsilon prediction,
MSE, noise offset, both latents drawn from the VAE posterior, and a condition drop that zeroes the
coarse image's *pixels* (so the model sees the latents of a mid-grey image). The source's features
are never dropped, whatever the official code's comment says.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from ..data.canvas import image_tensor
from ..data.dataset import PoseTransferDataset
from ..data.refine import coarse_images_command, missing_coarse_images, pair_image_name
from ..errors import PcdmsError
from ..io import load_image
from ..models.refine import REFINE_CHANGES, RefineModel
from ..pipelines.refine import RefinePipeline
from .config import DataConfig, RefineConfig
from .data import open_training_data
from .frozen_cache import file_digest
from .latent import LatentTask, build_model


class RefineTask(LatentTask):
    """Stage 3 for the shared loop."""

    name = "refine"
    pipeline_class = RefinePipeline

    def __init__(self, config: RefineConfig, data: DataConfig, output_dir: str | Path):
        dataset = training_pairs(config, data)
        super().__init__(config)
        self.model = build_refine(config)
        self.model.check_encoders(self.vae, self.dinov2)
        self.layout = self.padded_layout(self.model)
        self.dataset = self.frozen_pairs(dataset, Path(output_dir) / "cache")

    def frozen_pairs(self, dataset: PoseTransferDataset, cache: Path) -> TensorDataset:
        """Per pair the posteriors of the target and of its coarse image and the source's tokens, from the
        cache (filled where it lacks an entry)."""
        layout, folder = self.layout, Path(self.config.coarse_images)
        coarse_paths = [folder / pair_image_name(*pair) for pair in dataset.pairs]
        targets = list(dict.fromkeys(target for _, target in dataset.pairs))
        sources = list(dict.fromkeys(source for source, _ in dataset.pairs))
        digest = {name: file_digest(dataset.image_path(name)) for name in set(targets) | set(sources)}

        def placed(paths: list[Path]) -> torch.Tensor:
            return torch.stack([image_tensor(layout.place_image(load_image(path))) for path in paths])

        place = self.placement
        target_posteriors = self.cached_posteriors(
            cache / "vae-targets.safetensors",
            [f"image {place} {digest[name]}" for name in targets],
            lambda positions: placed([dataset.image_path(targets[index]) for index in positions]),
            "VAE: targets",
        )
        coarse_posteriors = self.cached_posteriors(
            cache / "vae-coarse-images.safetensors",
            [f"image {place} {file_digest(path)}" for path in coarse_paths],
            lambda positions: placed([coarse_paths[index] for index in positions]),
            "VAE: coarse images",
        )
        self.tokens = self.source_tokens(cache, dataset, sources, digest)
        target_index = {name: index for index, name in enumerate(targets)}
        source_index = {name: index for index, name in enumerate(sources)}
        return TensorDataset(
            target_posteriors[[target_index[target] for _, target in dataset.pairs]],
            coarse_posteriors,
            torch.tensor([source_index[source] for source, _ in dataset.pairs]),
        )

    def collate(self, items: list[tuple[torch.Tensor, ...]]) -> dict[str, torch.Tensor]:
        target, coarse, source = (torch.stack(column) for column in zip(*items, strict=True))
        return {"target": target, "coarse": coarse, "tokens": self.tokens[source]}

    def to(self, device: torch.device) -> None:
        self.tokens = self.tokens.to(device)  # a batch's tokens are gathered where the model trains

    @functools.cached_property
    def zero_image_posterior(self) -> torch.Tensor:
        """(1, 2C, h, w): the posterior of all-zero pixels (mid-grey), what a dropped coarse image becomes."""
        width, height = self.layout.padded_size
        with torch.no_grad():
            posterior = self.vae.to("cpu").encode(torch.zeros(1, 3, height, width)).latent_dist
        return torch.cat([posterior.mean, posterior.std], dim=1)

    def loss(self, model, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        device = batch["target"].device
        size = batch["target"].shape[0]
        # All randomness is drawn on the CPU from the micro-batch's generator, then moved.
        drops = (torch.rand(size, generator=generator) < self.config.drop_coarse_image).to(device)
        latents = self.latents(batch["target"], generator)
        coarse = torch.where(drops.reshape(-1, 1, 1, 1), self.zero_image_posterior.to(device), batch["coarse"])
        coarse_latents = self.latents(coarse, generator)
        noise, timesteps, noisy = self.noised(latents, generator)
        predicted = model(torch.cat([noisy, coarse_latents], dim=1), timesteps, batch["tokens"].to(device))
        return F.mse_loss(predicted.float(), noise)


def training_pairs(config: RefineConfig, data: DataConfig) -> PoseTransferDataset:
    """The training split, checked before any model loads: pairs without a coarse image stop the run in
    one line that says how to write them, or are dropped where ``data.unusable_pairs`` is skip."""
    dataset = open_training_data(data)
    missing = missing_coarse_images(dataset, config.coarse_images)
    if not missing:
        return dataset
    command = coarse_images_command(data.root, data.split, config.coarse_images, data.layout, data.images)
    line = (
        f"refine.coarse_images: {len(missing)} of {len(dataset)} training pairs have no stage-2 image "
        f"(first: {Path(config.coarse_images) / pair_image_name(*dataset.pairs[missing[0]])}); "
        f"write them with: {command}"
    )
    if data.unusable_pairs == "error" or len(missing) == len(dataset):
        raise PcdmsError(line)
    print(f"skipping pairs without a coarse image: {line}")
    return dataset.subset(sorted(set(range(len(dataset))) - set(missing)))


def build_refine(config: RefineConfig) -> RefineModel:
    """The stage-3 model to train (see :func:`build_model`)."""
    return build_model(RefineModel, REFINE_CHANGES, config, "refine", "stage-3 model")
