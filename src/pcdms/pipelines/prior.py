"""Stage-1 sampling: from a source CLIP embedding and two poses to the target's CLIP embedding.

The sampler is the official one (spec 1.8): Kandinsky 2.2's UnCLIP scheduler (squaredcos_cap_v2 betas,
x0 prediction, fixed_small_log variance, x0 clipped to [-10, 10] in the normalised space), 20 steps
from t = 999 to 0 with each step told its previous timestep, no guidance by default.

Guidance, off in the official test, works here (the official branch breaks on its own inputs). The
unconditional branch shows the prior what training showed it for a dropped condition: the CLIP
embedding of an all-zero pixel tensor for the source image, zeros for a pose. By default only the
source image is dropped: training dropped it alone one time in ten, so that estimate is well
trained, and the target pose stays in both branches so guidance strengthens appearance, not pose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

import torch
from diffusers import DiffusionPipeline, UnCLIPScheduler
from diffusers.utils import BaseOutput
from tqdm.auto import tqdm

from ..data.embeddings import PriorPairs
from ..models.prior import PosePriorTransformer
from .common import (
    STAGE_TITLES,
    Generators,
    StepEndCallback,
    initial_latents,
    load_pipeline,
    pair_generators,
    step_callback,
)

GUIDANCE_DROPS = ("source_image", "source_pose", "target_pose")


def load_prior_pipeline(folder: str | os.PathLike) -> PriorPipeline:
    """A saved :class:`PriorPipeline` (a training run's ``model`` folder), from local files only."""
    return load_pipeline(PriorPipeline, folder, "stage-1 pipeline")


def unclip_scheduler() -> UnCLIPScheduler:
    """The scheduler of the Kandinsky 2.2 prior, which the official stage-1 sampler uses."""
    return UnCLIPScheduler(
        num_train_timesteps=1000,
        variance_type="fixed_small_log",
        clip_sample=True,
        clip_sample_range=10.0,
        prediction_type="sample",
    )


@dataclass
class PriorOutput(BaseOutput):
    image_embeds: torch.Tensor  # (batch, embedding_dim), de-normalised: a CLIP image embedding


class PriorPipeline(DiffusionPipeline):
    """Stage 1 on its own: ``prior`` and its ``scheduler``."""

    model_cpu_offload_seq = "prior"
    stage = "prior"
    # The tensors a callback_on_step_end can read and replace (diffusers' name for the list).
    _callback_tensor_inputs: ClassVar[list[str]] = ["latents"]

    def __init__(self, prior: PosePriorTransformer, scheduler: UnCLIPScheduler):
        super().__init__()
        self.register_modules(prior=prior, scheduler=scheduler)

    @property
    def stage_title(self) -> str:
        return STAGE_TITLES[self.stage]

    def latents_shape(self, pairs: int) -> tuple[int, int]:
        """The shape of the starting noise (``latents=``) for ``pairs`` pairs: (pairs, embedding_dim)."""
        return (pairs, self.prior.config.embedding_dim)

    @torch.no_grad()
    def __call__(
        self,
        source_embeds: torch.Tensor,
        source_pose,
        target_pose,
        num_inference_steps: int = 20,
        guidance_scale: float = 0.0,
        null_embeds: torch.Tensor | None = None,
        guidance_drops: tuple[str, ...] = ("source_image",),
        generator: Generators = None,
        latents: torch.Tensor | None = None,
        callback_on_step_end: StepEndCallback | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> PriorOutput:
        """Sample target embeddings for a batch of pairs.

        ``source_embeds``: (batch, embedding_dim) CLIP embeddings of the source images. Poses:
        Keypoints (one or a list), or (batch, 36) tensors already in the prior's convention.
        Guidance is on when ``guidance_scale > 1``; dropping the source image needs ``null_embeds``
        (``ClipImageEncoder.null_embeds()``). ``generator``: one, or a list with one per pair so that
        each pair's sample depends only on its own generator, not on the rest of the batch; it draws the
        starting noise, then the UnCLIP scheduler's noise at each step but the last.

        ``latents``: the starting noise instead of the generator's draw, standard normal, (batch,
        embedding_dim) (:meth:`latents_shape`), in the prior's normalised embedding space; the generator
        still draws the scheduler's noise. ``callback_on_step_end(pipeline, step, timestep,
        callback_kwargs)``: called after each step (0 to ``num_inference_steps`` - 1) with the tensors named
        by ``callback_on_step_end_tensor_inputs`` (default and only choice: ``["latents"]``, normalised); a
        returned dict's "latents" replaces them, as in diffusers. The output is an embedding, not an image,
        so this pipeline takes no ``output_type``.

        Raises ValueError for batches of different sizes, fewer than 2 steps, guidance without what it
        drops or a generator list that is not one per pair; PcdmsError for latents of the wrong shape or an
        unknown callback tensor name.
        """
        prior = self.prior
        source_embeds = source_embeds.to(prior.device, prior.dtype).reshape(-1, prior.config.embedding_dim)
        source_pose, target_pose = prior.pose_tensor(source_pose), prior.pose_tensor(target_pose)
        batch = source_embeds.shape[0]
        if not source_pose.shape[0] == target_pose.shape[0] == batch:
            raise ValueError(
                f"batch sizes differ: {batch} source embeddings, {source_pose.shape[0]} source poses, "
                f"{target_pose.shape[0]} target poses"
            )
        if num_inference_steps < 2:
            raise ValueError(f"the UnCLIP sampler needs at least 2 steps, got {num_inference_steps}")
        generator = pair_generators(generator, batch)
        callback = step_callback(callback_on_step_end, callback_on_step_end_tensor_inputs, self._callback_tensor_inputs)
        guided = guidance_scale > 1.0
        if guided:
            source_embeds, source_pose, target_pose = self._with_unconditional(
                source_embeds, source_pose, target_pose, null_embeds, guidance_drops
            )
        self.scheduler.set_timesteps(num_inference_steps, device=prior.device)
        timesteps = self.scheduler.timesteps
        latents = initial_latents(
            self.latents_shape(batch), generator, prior.device, prior.dtype, latents, self.stage_title
        )
        latents = latents * self.scheduler.init_noise_sigma
        for index, timestep in enumerate(self.progress_bar(timesteps)):
            model_input = torch.cat([latents, latents]) if guided else latents
            predicted = prior(model_input, timestep, source_embeds, source_pose, target_pose)
            if guided:
                unconditional, conditional = predicted.chunk(2)
                predicted = unconditional + guidance_scale * (conditional - unconditional)
            previous = timesteps[index + 1] if index + 1 < len(timesteps) else None
            latents = self.scheduler.step(
                predicted, timestep, latents, prev_timestep=previous, generator=generator
            ).prev_sample
            if callback is not None:
                latents = callback(self, index, timestep, latents)
        return PriorOutput(image_embeds=prior.denormalize(latents))

    def _with_unconditional(self, source_embeds, source_pose, target_pose, null_embeds, drops):
        """Each input doubled: the unconditional half first, then the conditional one."""
        unknown = set(drops) - set(GUIDANCE_DROPS)
        if unknown or not drops:
            raise ValueError(f"guidance_drops must be a non-empty subset of {GUIDANCE_DROPS}, got {drops}")
        if "source_image" in drops:
            if null_embeds is None:
                raise ValueError(
                    "guidance that drops the source image needs null_embeds (ClipImageEncoder.null_embeds())"
                )
            dropped_embeds = null_embeds.to(source_embeds).reshape(1, -1).expand_as(source_embeds)
        else:
            dropped_embeds = source_embeds
        dropped_source_pose = torch.zeros_like(source_pose) if "source_pose" in drops else source_pose
        dropped_target_pose = torch.zeros_like(target_pose) if "target_pose" in drops else target_pose
        return (
            torch.cat([dropped_embeds, source_embeds]),
            torch.cat([dropped_source_pose, source_pose]),
            torch.cat([dropped_target_pose, target_pose]),
        )


def sample_pairs(
    pipeline: PriorPipeline,
    pairs: PriorPairs,
    batch_size: int = 64,
    seed: int = 42,
    progress: bool = False,
    **sampling,
) -> torch.Tensor:
    """Target embeddings (pairs, embedding_dim) for every pair of ``pairs``, in batches, seeded.

    ``sampling`` goes to the pipeline call (``num_inference_steps``, ``guidance_scale``, ``null_embeds``).
    """
    generator = torch.Generator(pipeline.prior.device).manual_seed(seed)
    results = []
    for start in tqdm(range(0, len(pairs), batch_size), desc="stage 1", unit="batch", disable=not progress):
        batch = pairs.batch(list(range(start, min(start + batch_size, len(pairs)))))
        output = pipeline(
            batch["source_embeds"], batch["source_pose"], batch["target_pose"], generator=generator, **sampling
        )
        results.append(output.image_embeds.float().cpu())
    return torch.cat(results)
