"""What the stage pipelines share: loading from local folders, scheduler calls, decoding and output."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from diffusers import AutoencoderKL, DiffusionPipeline
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import deprecation_utils
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from ..checkpoints import check_pipeline_folder
from ..data.canvas import CanvasLayout
from ..errors import PcdmsError
from ..models.encoders import CLIPImageProcessor, clip_pixels, image_features, load_local_model
from ..models.sd import side_multiple, vae_scale_factor
from .feature_reuse import reusing_features

# diffusers renamed from_pretrained's ``torch_dtype`` to ``dtype`` (the old name now warns); pass the name
# the installed version reads.
DTYPE_KEYWORD = "dtype" if hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE") else "torch_dtype"


def load_pipeline(pipeline_class, folder: str | os.PathLike, what: str, dtype: torch.dtype | None = None, **kwargs):
    """A saved pipeline from local files only, with one-line errors, its weights in ``dtype`` (default:
    float32); ``kwargs`` go to ``from_pretrained`` (components to replace). A component whose config is
    of another class, or whose weights do not have the sizes its config gives, is named with its
    config file before anything loads (:func:`pcdms.checkpoints.check_pipeline_folder`)."""
    if dtype is not None:
        kwargs[DTYPE_KEYWORD] = dtype
    if (Path(folder) / "model_index.json").is_file():  # else load_local_model names the folder
        check_pipeline_folder(pipeline_class, folder, skip=kwargs)
    return load_local_model(pipeline_class, folder, what, marker="model_index.json", **kwargs)


# Each stage's key (in PCDMsPipeline's per-stage arguments: generator, latents) and how messages name it.
STAGE_TITLES = {"prior": "stage 1 (prior)", "inpaint": "stage 2 (inpaint)", "refine": "stage 3 (refine)"}


class UNetStagePipeline(DiffusionPipeline):
    """What the stage-2 and stage-3 pipelines share: a VAE, DINOv2 (``image_encoder``) and a UNet stage
    model, which each names ``denoiser``."""

    denoiser: torch.nn.Module
    stage: str  # "inpaint" or "refine", a key of STAGE_TITLES
    # The tensors a callback_on_step_end can read and replace (diffusers' name for the list).
    _callback_tensor_inputs: ClassVar[list[str]] = ["latents"]

    @property
    def stage_title(self) -> str:
        return STAGE_TITLES[self.stage]

    @functools.cached_property
    def processor(self) -> CLIPImageProcessor:
        return CLIPImageProcessor()

    @property
    def vae_scale_factor(self) -> int:
        return vae_scale_factor(self.vae)

    def layout(self, width: int | None = None, height: int | None = None) -> CanvasLayout:
        """Images (stage 2: each half of the canvas) of ``width`` x ``height`` (default: the size the model
        was trained at), padded to sides that every level of the UNet can halve."""
        default_width, default_height = self.denoiser.config.resolution
        return CanvasLayout(
            width or default_width, height or default_height, side_multiple(self.vae, self.denoiser.unet)
        )

    def encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        """The source images' DINOv2 tokens (batch, 257, hidden)."""
        return image_features(self.image_encoder, clip_pixels(images, self.processor))

    def sample_latents(
        self,
        shape: tuple[int, ...],
        num_inference_steps: int,
        generator: Generators,
        guidance_scale: float,
        predict_noise,
        guidance_rescale: float = 0.0,
        latents: torch.Tensor | None = None,
        callback: StepCallback | None = None,
        start: torch.Tensor | None = None,
        strength: float = 1.0,
        guide_step: GuideStep | None = None,
        feature_reuse: int | None = None,
    ) -> torch.Tensor:
        """The sampler's loop from noise of ``shape`` (``latents``, or drawn from ``generator``):
        ``predict_noise(noisy, timestep)`` is given the scaled latents, twice over when guidance is on
        (above 1; the unconditional half first), and returns the denoiser's noise prediction; ``callback``
        runs after each step. With ``strength`` below 1 the loop starts from ``start`` (clean latents of
        ``shape``) noised to the level of its first step and runs only the last ``int(steps x strength)``
        steps (at least one), as diffusers' image-to-image pipelines do; 1 starts from pure noise. ``guide_step(step, timestep)``
        says whether a step is guided (default: every step, when guidance is on): an unguided step gives
        ``predict_noise`` the latents once, which must then predict with its conditions' second (conditional)
        half. ``feature_reuse`` N above 1 runs the UNet's deep blocks on every N-th step only
        (:func:`~pcdms.pipelines.feature_reuse.reusing_features`)."""
        device = self._execution_device
        guided = guidance_scale > 1.0
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        noise = initial_latents(shape, generator, device, self.denoiser.dtype, latents, self.stage_title)
        timesteps = self.scheduler.timesteps
        if strength < 1.0:
            timesteps = partial_timesteps(self.scheduler, num_inference_steps, strength)
            latents = self.scheduler.add_noise(start.to(noise.dtype), noise, timesteps[:1].repeat(shape[0]))
        else:
            latents = noise * self.scheduler.init_noise_sigma
        extra = step_arguments(self.scheduler, generator)
        # Decided before the loop, on a host copy of the timesteps: a test of a GPU timestep inside the loop would
        # wait for every step's kernels to finish before the next step's could be queued.
        guides = [guided and (guide_step is None or guide_step(step, t)) for step, t in enumerate(timesteps.cpu())]
        with reusing_features(self.denoiser.unet, feature_reuse):
            for step, (timestep, guide) in enumerate(zip(self.progress_bar(timesteps), guides, strict=True)):
                noisy = self.scheduler.scale_model_input(latents, timestep)
                noise = predict_noise(torch.cat([noisy, noisy]) if guide else noisy, timestep)
                if guide:
                    unconditional, conditional = noise.chunk(2)
                    noise = unconditional + guidance_scale * (conditional - unconditional)
                    if guidance_rescale > 0:
                        noise = rescale_guided_noise(noise, conditional, guidance_rescale)
                latents = self.scheduler.step(noise, timestep, latents, **extra).prev_sample
                if callback is not None:
                    latents = callback(self, step, timestep, latents)
        return latents

    def decoded_output(self, latents: torch.Tensor, crop, output_type: str) -> ImageOutput:
        """The latents decoded and cut by ``crop`` (the layout's), in ``output_type`` (:func:`format_images`)."""
        images = crop(decode(self.vae, latents))
        self.maybe_free_model_hooks()
        return to_pil(images) if output_type == "pil" else format_images((images.clamp(-1, 1) + 1) / 2, output_type)


def partial_timesteps(scheduler, num_inference_steps: int, strength: float) -> torch.Tensor:
    """The last ``int(num_inference_steps x strength)`` of the scheduler's timesteps (set already), at least one
    (so that few steps and a low strength still sample), the scheduler told where they begin."""
    steps = min(max(int(num_inference_steps * strength), 1), num_inference_steps)
    begin = (num_inference_steps - steps) * scheduler.order
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    return scheduler.timesteps[begin:]


# One generator for the whole batch, or one per pair so that a pair's draws do not depend on its batch.
Generators = torch.Generator | list[torch.Generator] | None

# Whether a sampling step is guided: (step index from 0, timestep) -> bool.
GuideStep = Callable[[int, torch.Tensor], bool]


def guidance_interval_steps(interval: tuple[float, float] | None, num_train_timesteps: int) -> GuideStep | None:
    """Guidance in a limited interval of noise levels (Kynkaanniemi et al., "Applying Guidance in a Limited
    Interval Improves Sample and Distribution Quality in Diffusion Models", NeurIPS 2024): a step is guided when
    its timestep over ``num_train_timesteps`` lies in ``interval`` = (low, high), both in [0, 1] (1: pure noise,
    0: the clean image). None: every step. Raises PcdmsError for an interval outside [0, 1] or empty."""
    if interval is None:
        return None
    low, high = check_guidance_interval(interval)
    return lambda step, timestep: low <= float(timestep) / num_train_timesteps <= high


def check_guidance_interval(interval) -> tuple[float, float]:
    """``interval`` as (low, high) with 0 <= low < high <= 1; PcdmsError in one line otherwise."""
    try:
        low, high = (float(bound) for bound in interval)
    except (TypeError, ValueError):
        raise PcdmsError(f"guidance_interval: two numbers (low, high) in [0, 1], got {interval!r}") from None
    if not 0 <= low < high <= 1:
        raise PcdmsError(f"guidance_interval: (low, high) with 0 <= low < high <= 1, got {interval!r}")
    return low, high


def conditional_rows(tensor: torch.Tensor | None, rows: int) -> torch.Tensor | None:
    """The last ``rows`` rows of a condition: all of it on a guided step (the batch doubled, unconditional half
    first), its conditional half on a step without guidance (:meth:`UNetStagePipeline.sample_latents`)."""
    return None if tensor is None else tensor[-rows:]


def pair_generators(generator: Generators, pairs: int) -> Generators:
    """``generator`` for draws made once per pair: a list must hold exactly one generator per pair."""
    if isinstance(generator, list | tuple):
        if len(generator) != pairs:
            raise ValueError(f"{len(generator)} generators for {pairs} pairs: pass one generator, or one per pair")
        return list(generator)
    return generator


def image_generators(generator: Generators, pairs: int, num_images_per_pair: int) -> Generators:
    """``generator`` for draws made once per image, pair-major as ``repeat_interleave`` orders them: each
    pair's generator repeated ``num_images_per_pair`` times (a single generator as is)."""
    generator = pair_generators(generator, pairs)
    if isinstance(generator, list):
        return [own for own in generator for _ in range(num_images_per_pair)]
    return generator


def rescale_guided_noise(guided: torch.Tensor, conditional: torch.Tensor, factor: float) -> torch.Tensor:
    """Guidance rescale (Lin et al. 2024, "Common diffusion noise schedules are flawed", eq. 15-16): the
    guided prediction scaled to the conditional one's standard deviation, mixed in by ``factor``."""
    dims = list(range(1, guided.ndim))
    rescaled = guided * (conditional.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True))
    return factor * rescaled + (1 - factor) * guided


def step_arguments(scheduler, generator: Generators) -> dict:
    """The generator(s) for schedulers whose step draws noise (DDPM, Euler ancestral, ...)."""
    return {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}


def decode(vae: AutoencoderKL, latents: torch.Tensor) -> torch.Tensor:
    """Latents to images in [-1, 1]; a half-precision VAE that overflows is retried in float32, and a
    result that is still not finite is an error, never a black image."""
    images = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample
    if not torch.isfinite(images).all() and vae.dtype != torch.float32:
        images = vae.float().decode(latents.float() / vae.config.scaling_factor).sample
    if not torch.isfinite(images).all():
        raise PcdmsError("the decoded image holds NaN or infinite values (a diverged sample or broken weights)")
    return images.float()


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """Images (batch, 3, H, W) in [-1, 1] as PIL images."""
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(array) for array in pixels]


# What a pipeline returns for images: PIL images, a (batch, height, width, 3) float32 array in [0, 1], or a
# (batch, 3, height, width) float32 tensor in [0, 1] (diffusers' output types "pil", "np", "pt").
ImageOutput = list[Image.Image] | np.ndarray | torch.Tensor
OUTPUT_TYPES = ("pil", "np", "pt")


def check_output_type(output_type: str) -> None:
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")


def format_images(images: torch.Tensor, output_type: str) -> ImageOutput:
    """Images (batch, 3, H, W) in [0, 1] as ``output_type`` asks: "pt" as they are, "np" as diffusers gives
    them (batch, H, W, 3) float32 on the CPU, "pil" as 8-bit images (each value * 255, rounded)."""
    if output_type == "pt":
        return images
    if output_type == "np":
        return VaeImageProcessor.pt_to_numpy(images)
    return to_pil(images * 2 - 1)


def initial_latents(
    shape: tuple[int, ...], generator: Generators, device, dtype: torch.dtype, latents: torch.Tensor | None, what: str
) -> torch.Tensor:
    """A sampler's starting noise of ``shape``: ``latents`` when given (standard normal noise, before the
    scheduler's ``init_noise_sigma`` scales it, as in diffusers), else drawn from ``generator``. Latents of
    another shape raise PcdmsError."""
    if latents is None:
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype)
    if not isinstance(latents, torch.Tensor) or tuple(latents.shape) != tuple(shape):
        given = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
        raise PcdmsError(f"latents for {what}: got shape {given}, expected {tuple(shape)}")
    return latents.to(device=device, dtype=dtype)


# callback_on_step_end(pipeline, step, timestep, callback_kwargs) -> dict | None, as in diffusers.
StepEndCallback = Callable[..., dict | None] | PipelineCallback | MultiPipelineCallbacks
# What a sampling loop calls after each step: (pipeline, step, timestep, latents) -> latents.
StepCallback = Callable[[DiffusionPipeline, int, torch.Tensor, torch.Tensor], torch.Tensor]


def step_callback(
    callback_on_step_end: StepEndCallback | None, tensor_inputs: list[str] | None, allowed: list[str]
) -> StepCallback | None:
    """diffusers' ``callback_on_step_end`` convention as one function for a sampling loop: the callback gets
    (pipeline, step index from 0, timestep, {name: tensor} for each of ``tensor_inputs``) and may return a dict
    whose "latents" replaces the latents (returning None changes nothing). A diffusers ``PipelineCallback``
    brings its own ``tensor_inputs``. Names outside ``allowed`` raise PcdmsError."""
    if callback_on_step_end is None:
        return None
    if isinstance(callback_on_step_end, PipelineCallback | MultiPipelineCallbacks):
        tensor_inputs = callback_on_step_end.tensor_inputs
    tensor_inputs = list(tensor_inputs if tensor_inputs is not None else ["latents"])
    unknown = [name for name in tensor_inputs if name not in allowed]
    if unknown:
        raise PcdmsError(f"callback_on_step_end_tensor_inputs: {unknown} are not among {allowed}")

    def call(pipeline, step: int, timestep: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        tensors = {"latents": latents}
        returned = callback_on_step_end(pipeline, step, timestep, {name: tensors[name] for name in tensor_inputs})
        return (returned or {}).get("latents", latents)

    return call


def as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]
