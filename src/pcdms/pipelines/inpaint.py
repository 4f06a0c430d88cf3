"""Stage-2 sampling: paint the target person into the right half of a [source | black] canvas.

The sampler is the official one (spec 2.5): UniPC over 20 steps with the Stable Diffusion 2.1-base
noise schedule, classifier-free guidance 2.0, masked-image latents drawn from the VAE posterior with
the seeded generator, and the right half cropped from the decoded canvas. Any diffusers scheduler
can replace UniPC (``pipeline.scheduler = DDIMScheduler.from_config(pipeline.scheduler.config)``).

The unconditional branch of guidance is chosen in one place, :meth:`InpaintPipeline.unconditional`:
the official test code's literal zeros for the cross-attention context and the class label; for the
lite model, the official demo's projection of all-zero image features. Pose, mask and masked
image are the same in both branches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UniPCMultistepScheduler
from diffusers.utils import BaseOutput
from PIL import Image
from transformers import Dinov2Model

from ..io import to_rgb
from ..models.inception_encoders import InceptionTokenEncoder
from ..models.inpaint import InpaintModel
from ..pose.keypoints import Keypoints
from .common import (
    Generators,
    ImageOutput,
    StepEndCallback,
    UNetStagePipeline,
    as_list,
    check_output_type,
    conditional_rows,
    guidance_interval_steps,
    image_generators,
    load_pipeline,
    pair_generators,
    step_callback,
)

# Stable Diffusion 2.1-base's noise schedule, which stages 2 and 3 keep.
SD_SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "steps_offset": 1,
}


def sd_training_scheduler() -> DDPMScheduler:
    return DDPMScheduler(**SD_SCHEDULE, clip_sample=False)


def official_sampling_scheduler() -> UniPCMultistepScheduler:
    """UniPC as the official code built it (diffusers 0.24 defaults over SD 2.1-base's schedule).

    diffusers 0.28 changed UniPC's last step to reach sigma 0; "sigma_min" keeps the step the
    authors' diffusers took.
    """
    return UniPCMultistepScheduler(**SD_SCHEDULE, timestep_spacing="linspace", final_sigmas_type="sigma_min")


@dataclass
class InpaintOutput(BaseOutput):
    """``images``: the generated target halves, one per pair and image, pair-major: PIL images, a (batch,
    height, width, 3) float32 array in [0, 1] ("np") or a (batch, 3, height, width) float32 tensor in [0, 1]
    ("pt")."""

    images: ImageOutput


class InpaintPipeline(UNetStagePipeline):
    """Stage 2 on its own: the VAE, DINOv2 (``image_encoder``), the stage-2 model and a scheduler."""

    model_cpu_offload_seq = "image_encoder->inpaint->vae"
    stage = "inpaint"

    def __init__(
        self,
        vae: AutoencoderKL,
        image_encoder: Dinov2Model | InceptionTokenEncoder,
        inpaint: InpaintModel,
        scheduler: UniPCMultistepScheduler,
    ):
        super().__init__()
        self.register_modules(vae=vae, image_encoder=image_encoder, inpaint=inpaint, scheduler=scheduler)

    @property
    def denoiser(self) -> InpaintModel:
        return self.inpaint

    def latents_shape(self, images: int, width: int | None = None, height: int | None = None) -> tuple[int, ...]:
        """The shape of the starting noise (``latents=``) for ``images`` images (pairs x images per pair) of
        ``width`` x ``height`` (default: the training size): (images, latent channels, H / f, 2 W / f), the
        whole [source | target] canvas in latents, H and W each side padded as the UNet needs
        (:class:`~pcdms.data.canvas.CanvasLayout`) and f the VAE's scale factor (8 for SD's VAE)."""
        mask = self.layout(width, height).latent_mask(self.vae_scale_factor)
        return (images, self.vae.config.latent_channels, *mask.shape[2:])

    def unconditional(
        self, context: torch.Tensor, class_labels: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The conditions of guidance's unconditional branch (spec 2.5): zeros, as the official test code
        feeds; the lite model gets the projection of zero image features, as the official demo does."""
        if class_labels is None:
            features = torch.zeros(
                *context.shape[:2], self.inpaint.config.image_feature_dim, device=context.device, dtype=context.dtype
            )
            return self.inpaint.image_proj_model_p(features), None
        return torch.zeros_like(context), torch.zeros_like(class_labels)

    @torch.no_grad()
    def __call__(
        self,
        source_image: Image.Image | list[Image.Image],
        source_pose: Keypoints | list[Keypoints],
        target_pose: Keypoints | list[Keypoints],
        target_embeds: torch.Tensor | None = None,
        *,
        width: int | None = None,
        height: int | None = None,
        num_inference_steps: int = 20,
        guidance_scale: float = 2.0,
        num_images_per_pair: int = 1,
        generator: Generators = None,
        image_features: torch.Tensor | None = None,
        latents: torch.Tensor | None = None,
        callback_on_step_end: StepEndCallback | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        output_type: str = "pil",
        guidance_interval: tuple[float, float] | None = None,
        feature_reuse: int | None = None,
    ) -> InpaintOutput:
        """Generate the target half for each (source image, source pose, target pose).

        ``target_embeds`` (batch, D): the target's CLIP image embedding, from stage 1 or, for a
        training pair, the real target's (not needed by the lite model). ``width`` x ``height``: the
        size of one half and of the output, in pixels (default: the model's training size; the official
        one is 512x512; for example 352x512 keeps DeepFashion's aspect). Guidance is on above 1.
        ``generator``: one, or a list with one per pair so that each pair's images depend only on its
        own generator, not on the rest of the batch; it draws the masked canvas's VAE latents, then the
        starting noise. ``image_features``: the sources' DINOv2 tokens if already computed.

        ``latents``: the starting noise instead of the generator's draw, standard normal, of shape
        :meth:`latents_shape` (pairs x ``num_images_per_pair``, 4, H / 8, 2 W / 8 for SD's VAE), pair-major;
        the same latents for every frame of an animation give frames that differ only by their poses.
        ``callback_on_step_end(pipeline, step, timestep, callback_kwargs)``: called after each sampling step
        (step 0 to ``num_inference_steps`` - 1) with ``callback_kwargs`` holding the tensors named by
        ``callback_on_step_end_tensor_inputs`` (default and only choice: ``["latents"]``); a returned dict's
        "latents" replaces the latents, as in diffusers.

        ``output_type``: "pil" (PIL images), "np" (a (batch, height, width, 3) float32 array in [0, 1]) or
        "pt" (a (batch, 3, height, width) float32 tensor in [0, 1]); batch = pairs x ``num_images_per_pair``.

        Acceleration (off by default; see :mod:`pcdms.pipelines.presets`): ``guidance_interval`` (low, high) in
        [0, 1] guides only the steps whose timestep over the schedule's length lies in it (the others run the
        conditional branch alone); ``feature_reuse`` N above 1 runs the UNet's deep blocks on every N-th step
        only and reuses their outputs between (:mod:`pcdms.pipelines.feature_reuse`).

        Raises ValueError for batches of different sizes, an unknown output type or a generator list that is
        not one per pair; PcdmsError for latents of the wrong shape or an unknown callback tensor name.
        """
        sources = [to_rgb(image) for image in as_list(source_image)]
        source_poses, target_poses = as_list(source_pose), as_list(target_pose)
        if not len(sources) == len(source_poses) == len(target_poses):
            raise ValueError(
                f"batch sizes differ: {len(sources)} source images, {len(source_poses)} source poses, "
                f"{len(target_poses)} target poses"
            )
        check_output_type(output_type)
        callback = step_callback(callback_on_step_end, callback_on_step_end_tensor_inputs, self._callback_tensor_inputs)
        device, dtype = self._execution_device, self.inpaint.dtype
        layout = self.layout(width, height)
        guided = guidance_scale > 1.0
        pair_generator = pair_generators(generator, len(sources))
        image_generator = image_generators(generator, len(sources), num_images_per_pair)

        if image_features is None:
            image_features = self.encode_images(sources)
        context, class_labels = self.inpaint.condition(image_features.to(device), target_embeds)
        masked = torch.stack([layout.image_canvas(image, None) for image in sources]).to(device, self.vae.dtype)
        masked_latents = self.vae.encode(masked).latent_dist.sample(pair_generator) * self.vae.config.scaling_factor
        pose_features = self.inpaint.encode_pose(
            torch.stack([layout.pose_canvas(s, t) for s, t in zip(source_poses, target_poses, strict=True)]).to(device)
        )
        mask = layout.latent_mask(self.vae_scale_factor).to(device, dtype)

        def per_sample(tensor):
            return None if tensor is None else tensor.repeat_interleave(num_images_per_pair, dim=0)

        context, class_labels, masked_latents, pose_features = map(
            per_sample, (context, class_labels, masked_latents, pose_features)
        )
        batch = context.shape[0]
        mask, masked_latents = mask.expand(batch, -1, -1, -1), masked_latents.to(dtype)
        if guided:
            null_context, null_labels = self.unconditional(context, class_labels)
            context = torch.cat([null_context, context])
            class_labels = None if class_labels is None else torch.cat([null_labels, class_labels])
            mask, masked_latents, pose_features = (torch.cat([x, x]) for x in (mask, masked_latents, pose_features))

        def predict_noise(noisy: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
            rows = noisy.shape[0]  # both branches, or the conditional one alone on a step without guidance
            mask_, masked_, context_, labels_, pose_ = (
                conditional_rows(x, rows) for x in (mask, masked_latents, context, class_labels, pose_features)
            )
            return self.inpaint.denoise(torch.cat([noisy, mask_, masked_], dim=1), timestep, context_, labels_, pose_)

        latents = self.sample_latents(
            (batch, self.vae.config.latent_channels, *mask.shape[2:]),
            num_inference_steps,
            image_generator,
            guidance_scale,
            predict_noise,
            latents=latents,
            callback=callback,
            guide_step=guidance_interval_steps(guidance_interval, self.scheduler.config.num_train_timesteps),
            feature_reuse=feature_reuse,
        )
        return InpaintOutput(images=self.decoded_output(latents, layout.crop_target, output_type))


def load_inpaint_pipeline(folder: str | os.PathLike, **kwargs) -> InpaintPipeline:
    """A saved :class:`InpaintPipeline` (a training run's ``model`` folder), from local files only."""
    return load_pipeline(InpaintPipeline, folder, "stage-2 pipeline", **kwargs)
