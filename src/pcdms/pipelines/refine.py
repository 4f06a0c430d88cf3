"""Stage-3 sampling: the target image again, from noise, with stage 2's coarse image as a guide.

The sampler is the official one (spec 3): UniPC over 20 steps with the Stable Diffusion 2.1-base
noise schedule, classifier-free guidance 2.0, the coarse image's latents drawn from the VAE
posterior with the seeded generator and concatenated to the noisy latents at every step.

The unconditional branch of guidance (:meth:`RefinePipeline.unconditional`) is the official test
code's: zeros for the cross-attention context *and* zeros for the coarse image's latents.

Guidance rescale is off. The official test script passes ``guidance_rescale=2.0`` (its guidance
scale, given to the wrong argument), which extrapolates past the rescaled prediction instead of
mixing it in; ``guidance_rescale`` is here to reproduce that on purpose, not by default.

``strength`` below 1 is this project's addition (the official sampler always starts from noise): it
starts from the coarse image's latents partly noised, as diffusers' image-to-image pipelines do. A
refiner too small or too briefly trained to redraw the whole image from noise (the bundled street
model's) then keeps stage 2's layout and pose and restores detail.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, UniPCMultistepScheduler
from diffusers.utils import BaseOutput
from PIL import Image
from transformers import Dinov2Model

from ..data.canvas import CanvasLayout, image_tensor
from ..errors import PcdmsError
from ..io import to_rgb
from ..models.inception_encoders import InceptionTokenEncoder
from ..models.refine import RefineModel
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


@dataclass
class RefineOutput(BaseOutput):
    """``images``: the refined images, one per coarse image and image, in order: PIL images, a (batch,
    height, width, 3) float32 array in [0, 1] ("np") or a (batch, 3, height, width) float32 tensor in [0, 1]
    ("pt")."""

    images: ImageOutput


class RefinePipeline(UNetStagePipeline):
    """Stage 3 on its own: the VAE, DINOv2 (``image_encoder``), the stage-3 model and a scheduler."""

    model_cpu_offload_seq = "image_encoder->refine->vae"
    stage = "refine"

    def __init__(
        self,
        vae: AutoencoderKL,
        image_encoder: Dinov2Model | InceptionTokenEncoder,
        refine: RefineModel,
        scheduler: UniPCMultistepScheduler,
    ):
        super().__init__()
        self.register_modules(vae=vae, image_encoder=image_encoder, refine=refine, scheduler=scheduler)

    @property
    def denoiser(self) -> RefineModel:
        return self.refine

    def latents_shape(self, images: int, width: int | None = None, height: int | None = None) -> tuple[int, ...]:
        """The shape of the starting noise (``latents=``) for ``images`` images (coarse images x images per
        pair) of ``width`` x ``height`` (default: the training size): (images, latent channels, H / f, W / f),
        H and W the sides padded as the UNet needs (:class:`~pcdms.data.canvas.CanvasLayout`) and f the VAE's
        scale factor (8 for SD's VAE)."""
        padded_width, padded_height = self.layout(width, height).padded_size
        factor = self.vae_scale_factor
        return (images, self.refine.latent_channels, padded_height // factor, padded_width // factor)

    def unconditional(self, context: torch.Tensor, coarse_latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs of guidance's unconditional branch (spec 3): zero context, zero coarse latents."""
        return torch.zeros_like(context), torch.zeros_like(coarse_latents)

    def coarse_pixels(self, coarse_image, layout: CanvasLayout) -> torch.Tensor:
        """Coarse images (PIL, or a (batch, 3, h, w) tensor in [0, 1]) at the layout's size, padded, in [-1, 1]."""
        if isinstance(coarse_image, torch.Tensor):
            pixels = coarse_image.float() * 2 - 1
            if pixels.shape[-2:] != (layout.height, layout.width):
                pixels = F.interpolate(pixels, (layout.height, layout.width), mode="bicubic", antialias=True)
            return layout.pad(pixels)
        return torch.stack([image_tensor(layout.place_image(image)) for image in as_list(coarse_image)])

    @torch.no_grad()
    def __call__(
        self,
        source_image: Image.Image | list[Image.Image],
        coarse_image: Image.Image | list[Image.Image] | torch.Tensor,
        *,
        width: int | None = None,
        height: int | None = None,
        num_inference_steps: int = 20,
        guidance_scale: float = 2.0,
        guidance_rescale: float = 0.0,
        strength: float = 1.0,
        num_images_per_pair: int = 1,
        generator: Generators = None,
        image_features: torch.Tensor | None = None,
        latents: torch.Tensor | None = None,
        callback_on_step_end: StepEndCallback | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        output_type: str = "pil",
        guidance_interval: tuple[float, float] | None = None,
        feature_reuse: int | None = None,
    ) -> RefineOutput:
        """Refine each coarse image, with its source image's appearance.

        ``coarse_image``: stage 2's outputs, PIL images or a (batch, 3, h, w) tensor in [0, 1].
        ``width`` x ``height``: the output size in pixels (default: the model's training size; official
        512x512). Guidance is on above 1; ``guidance_rescale`` is off by default (see the module
        docstring). ``strength`` in (0, 1]: where sampling starts; 1 (official) from pure noise, below 1
        from the coarse image's latents noised to that fraction of the schedule, running only the last
        ``int(num_inference_steps x strength)`` steps, at least one (diffusers' image-to-image convention; SDEdit, Meng et
        al. 2022): the coarse image's layout is kept and stage 3 restores its detail. ``generator``: one, or a list with one per coarse image so that each image's
        refinements depend only on its own generator, not on the rest of the batch; it draws the coarse
        images' VAE latents, then the starting noise. ``image_features``: the sources' DINOv2 tokens if
        already computed (stage 2 computed them).

        ``latents``: the starting noise instead of the generator's draw, standard normal, of shape
        :meth:`latents_shape` (coarse images x ``num_images_per_pair``, 4, H / 8, W / 8 for SD's VAE).
        ``callback_on_step_end(pipeline, step, timestep, callback_kwargs)``: called after each sampling step
        (step 0 to ``num_inference_steps`` - 1) with the tensors named by ``callback_on_step_end_tensor_inputs``
        (default and only choice: ``["latents"]``); a returned dict's "latents" replaces the latents.

        ``output_type``: "pil" (PIL images), "np" (a (batch, height, width, 3) float32 array in [0, 1]) or
        "pt" (a (batch, 3, height, width) float32 tensor in [0, 1]).

        Acceleration (off by default; see :mod:`pcdms.pipelines.presets`): ``guidance_interval`` (low, high) in
        [0, 1] guides only the steps whose timestep over the schedule's length lies in it (the others run the
        conditional branch alone); ``feature_reuse`` N above 1 runs the UNet's deep blocks on every N-th step
        only and reuses their outputs between (:mod:`pcdms.pipelines.feature_reuse`).

        Raises ValueError for batches of different sizes, an unknown output type or a generator list that is
        not one per coarse image; PcdmsError for latents of the wrong shape, an unknown callback tensor name, or a
        strength outside (0, 1].
        """
        check_output_type(output_type)
        if not 0 < strength <= 1:
            raise PcdmsError(f"stage 3 (refine): strength must be in (0, 1], got {strength}")
        callback = step_callback(callback_on_step_end, callback_on_step_end_tensor_inputs, self._callback_tensor_inputs)
        layout = self.layout(width, height)
        device, dtype = self._execution_device, self.refine.dtype
        if image_features is None:
            image_features = self.encode_images([to_rgb(image) for image in as_list(source_image)])
        coarse = self.coarse_pixels(coarse_image, layout).to(device, self.vae.dtype)
        if coarse.shape[0] != image_features.shape[0]:
            raise ValueError(f"batch sizes differ: {image_features.shape[0]} sources, {coarse.shape[0]} coarse images")
        guided = guidance_scale > 1.0
        pair_generator = pair_generators(generator, coarse.shape[0])
        image_generator = image_generators(generator, coarse.shape[0], num_images_per_pair)

        context = self.refine.condition(image_features.to(device))
        coarse_latents = self.vae.encode(coarse).latent_dist.sample(pair_generator) * self.vae.config.scaling_factor
        context, coarse_latents = (x.repeat_interleave(num_images_per_pair, dim=0) for x in (context, coarse_latents))
        batch, coarse_latents = context.shape[0], coarse_latents.to(dtype)
        start = coarse_latents
        if guided:
            null_context, null_latents = self.unconditional(context, coarse_latents)
            context, coarse_latents = torch.cat([null_context, context]), torch.cat([null_latents, coarse_latents])

        latents = self.sample_latents(
            (batch, self.refine.latent_channels, *coarse_latents.shape[2:]),
            num_inference_steps,
            image_generator,
            guidance_scale,
            lambda noisy, timestep: self.refine.denoise(  # both branches, or the conditional one alone
                torch.cat([noisy, conditional_rows(coarse_latents, len(noisy))], dim=1),
                timestep,
                conditional_rows(context, len(noisy)),
            ),
            guidance_rescale,
            latents=latents,
            callback=callback,
            start=start,
            strength=strength,
            guide_step=guidance_interval_steps(guidance_interval, self.scheduler.config.num_train_timesteps),
            feature_reuse=feature_reuse,
        )
        return RefineOutput(images=self.decoded_output(latents, layout.crop, output_type))


def load_refine_pipeline(folder: str | os.PathLike, **kwargs) -> RefinePipeline:
    """A saved :class:`RefinePipeline` (a training run's ``model`` folder), from local files only."""
    return load_pipeline(RefinePipeline, folder, "stage-3 pipeline", **kwargs)
