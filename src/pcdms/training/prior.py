"""Training stage 1: what the shared loop needs to train the pose-conditioned prior.

Per pair the prior sees four vectors: the CLIP embeddings of the source and target images and the
two 36-number poses. The CLIP encoder is frozen, so every image's embedding is computed once and
cached (``output_dir/cache``); training then touches only the prior. The diffusion set-up is the
official one (spec 1.5, 1.6): DDPM with squaredcos_cap_v2 betas over 1000 steps, x0 prediction of
the normalised target embedding, MSE, noise offset, and condition drops (the source image becomes
the embedding of an all-zero pixel tensor, a pose becomes zeros), each independently.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import PartialState
from diffusers import DDPMScheduler

from ..checkpoints import load_matching, read_diffusers_weights
from ..data.embeddings import PriorPairs, cached_embeddings, collate_vectors
from ..errors import PcdmsError
from ..io import atomic_folder
from ..models.encoders import load_local_model
from ..models.prior import PosePriorTransformer
from ..pipelines.prior import PriorPipeline, unclip_scheduler
from ..pose.vector import get_convention
from .config import DataConfig, PriorConfig
from .data import open_training_data


def training_scheduler() -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="sample")


class PriorTask:
    """Stage 1 for the shared loop."""

    name = "prior"

    def __init__(self, config: PriorConfig, data: DataConfig, output_dir: str | Path):
        self.config = config
        dataset = open_training_data(data)
        state = PartialState()
        # One process computes the cache, the others read it; the random state is left as it was, so a
        # new model's initial weights do not depend on whether the cache was already there.
        with state.main_process_first(), torch.random.fork_rng(devices=[]):
            embeds, self.null_embeds = cached_embeddings(
                dataset,
                Path(config.image_encoder),
                Path(output_dir) / "cache",
                config.embedding_batch_size,
                state.device,
            )
        self.model = build_prior(config, torch.stack(list(embeds.values())))
        self.dataset = PriorPairs(dataset, embeds, self.model.pose_convention)
        self.scheduler = training_scheduler()

    def collate(self, items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return collate_vectors(items)

    def loss(self, model, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        config, prior = self.config, self._unwrapped(model)
        target = prior.normalize(batch["target_embeds"].float())
        size, device = target.shape[0], target.device
        # All randomness is drawn on the CPU from the micro-batch's generator, then moved.
        noise = torch.randn(target.shape, generator=generator)
        noise += config.noise_offset * torch.randn((size, 1), generator=generator)
        timesteps = torch.randint(0, self.scheduler.config.num_train_timesteps, (size,), generator=generator)
        drops = torch.rand((3, size, 1), generator=generator) < torch.tensor(
            [config.drop_source_image, config.drop_source_pose, config.drop_target_pose]
        ).reshape(3, 1, 1)
        noise, timesteps, drops = noise.to(device), timesteps.to(device), drops.to(device)
        noisy = self.scheduler.add_noise(target, noise, timesteps)
        source_embeds = torch.where(drops[0], self.null_embeds.to(device), batch["source_embeds"])
        source_pose = torch.where(drops[1], 0.0, batch["source_pose"])
        target_pose = torch.where(drops[2], 0.0, batch["target_pose"])
        predicted = model(noisy, timesteps, source_embeds, source_pose, target_pose)
        return F.mse_loss(predicted.float(), target)

    @staticmethod
    def _unwrapped(model) -> PosePriorTransformer:
        return getattr(model, "module", model)

    def save(self, model: PosePriorTransformer, folder: Path) -> None:
        with atomic_folder(folder) as temporary:
            PriorPipeline(prior=model, scheduler=unclip_scheduler()).save_pretrained(temporary)


def build_prior(config: PriorConfig, embeds: torch.Tensor) -> PosePriorTransformer:
    """The prior to train: a saved one to continue, or a new one (optionally from Kandinsky 2.2)."""
    embedding_dim = embeds.shape[1]
    if config.pretrained:
        folder = Path(config.pretrained)
        if (folder / "prior" / "config.json").is_file():  # a PriorPipeline folder, such as a run's output
            folder = folder / "prior"
        model = load_local_model(PosePriorTransformer, folder, "stage-1 prior")
        if model.config.embedding_dim != embedding_dim:
            raise PcdmsError(
                f"{folder}: the prior takes {model.config.embedding_dim}-d embeddings, the image encoder gives {embedding_dim}-d"
            )
        return model
    architecture = dict(config.architecture)
    if architecture.setdefault("embedding_dim", embedding_dim) != embedding_dim:
        raise PcdmsError(
            f"prior.architecture.embedding_dim is {architecture['embedding_dim']}, but the image encoder "
            f"gives {embedding_dim}-d embeddings"
        )
    clip_mean = embeds.mean().item() if config.clip_mean == "auto" else float(config.clip_mean)
    clip_std = embeds.std().item() if config.clip_std == "auto" else float(config.clip_std)
    try:
        model = PosePriorTransformer(
            **architecture,
            clip_mean=clip_mean,
            clip_std=clip_std,
            pose_convention=get_convention(config.pose_convention).to_dict(),
        )
    except TypeError as error:
        raise PcdmsError(f"prior.architecture: {error}") from None
    if config.kandinsky:
        report = load_matching(model, read_diffusers_weights(config.kandinsky, subfolder="prior"))
        print(f"initialised from the Kandinsky 2.2 prior at {config.kandinsky}: {report.summary()}")
    return model
