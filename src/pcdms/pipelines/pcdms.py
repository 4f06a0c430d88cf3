"""The whole of PCDMs in one call: from a photo of a person and a target pose to that person in that pose.

The paper's three stages, in order, with everything passed in memory (the official code chains them
through .npy and .png files):

1. prior: the source's CLIP embedding and the two poses give the target's CLIP embedding;
2. inpaint: the [source | blank] canvas, the pose maps, the source's DINOv2 tokens and that
   embedding give a coarse target image;
3. refine: the coarse image and the same DINOv2 tokens (computed once) give the final image.

Each stage is its own pipeline (:class:`PriorPipeline`, :class:`InpaintPipeline`,
:class:`RefinePipeline`) built over this pipeline's components, so the three samplers are the ones
that run when a stage is used alone. The lite stage-2-only model of the official demo has no prior,
no CLIP encoder and no refiner: those components are optional.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

import torch
from diffusers import AutoencoderKL, DiffusionPipeline, UnCLIPScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from PIL import Image
from transformers import CLIPVisionModelWithProjection, Dinov2Model

from ..bundled import model_folder
from ..errors import NoPersonError, PcdmsError
from ..models.encoders import ClipImageEncoder
from ..models.inception_encoders import InceptionClipEncoder, InceptionTokenEncoder
from ..models.inpaint import InpaintModel
from ..models.prior import PosePriorTransformer
from ..models.refine import RefineModel
from ..pose import Keypoints, as_keypoints, check_enough_joints, extract_pose
from .common import (
    STAGE_TITLES,
    Generators,
    ImageOutput,
    StepEndCallback,
    as_list,
    check_output_type,
    image_generators,
    load_pipeline,
    pair_generators,
    step_callback,
)
from .framing import fit_to_model, framed_output
from .inpaint import InpaintPipeline
from .inputs import STAGES, check_images_per_pair, checked_source, name_in_batch
from .precomputed import check_source_encodings, checked_latents, encode_sources
from .presets import Preset, get_preset, preset_defaults
from .prior import PriorPipeline
from .refine import RefinePipeline
from .settings import check_folder_sampling, checked_sampling, resolved_sampling


@dataclass
class PCDMsOutput(BaseOutput):
    """``images``: the final images, pairs x images per pair, pair-major: PIL images, a (batch, height,
    width, 3) float32 array in [0, 1] ("np") or a (batch, 3, height, width) float32 tensor in [0, 1] ("pt").
    On request, the intermediates: ``target_embeds`` (pairs, D), the target CLIP embeddings stage 2 used,
    and ``coarse_images``, stage 2's images (in the output type)."""

    images: ImageOutput
    target_embeds: torch.Tensor | None = None
    coarse_images: ImageOutput | None = None


# The starting noise of one stage, or of each stage by name ("prior", "inpaint", "refine").
Latents = torch.Tensor | dict[str, torch.Tensor]


PoseInput = Keypoints | str | os.PathLike | Image.Image


class PCDMsPipeline(DiffusionPipeline):
    """The three stages over shared components: one VAE, DINOv2 (``image_encoder``) for stages 2 and 3,
    CLIP's vision tower (``clip_encoder``) for stage 1, the three denoisers and their schedulers."""

    model_cpu_offload_seq = "clip_encoder->prior->image_encoder->inpaint->refine->vae"
    _optional_components: ClassVar[list[str]] = [
        "clip_encoder",
        "prior",
        "prior_scheduler",
        "refine",
        "refine_scheduler",
    ]

    def __init__(
        self,
        vae: AutoencoderKL,
        image_encoder: Dinov2Model | InceptionTokenEncoder,
        inpaint: InpaintModel,
        inpaint_scheduler: SchedulerMixin,
        clip_encoder: CLIPVisionModelWithProjection | InceptionClipEncoder | None = None,
        prior: PosePriorTransformer | None = None,
        prior_scheduler: UnCLIPScheduler | None = None,
        refine: RefineModel | None = None,
        refine_scheduler: SchedulerMixin | None = None,
        sampling: dict | None = None,
    ):
        super().__init__()
        self.register_modules(
            vae=vae,
            image_encoder=image_encoder,
            inpaint=inpaint,
            inpaint_scheduler=inpaint_scheduler,
            clip_encoder=clip_encoder,
            prior=prior,
            prior_scheduler=prior_scheduler,
            refine=refine,
            refine_scheduler=refine_scheduler,
        )
        # Saved in model_index.json, so a model folder carries the settings it samples best with.
        self.register_to_config(sampling=checked_sampling(sampling, "the pipeline's sampling settings") or None)

    @property
    def sampling_defaults(self) -> dict:
        """The settings a call uses for those it leaves out: the model's recommended ones (``sampling`` in its
        model_index.json), else the official ones (:data:`~pcdms.pipelines.settings.OFFICIAL_SAMPLING`)."""
        return resolved_sampling(self.config.sampling)

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages this pipeline can run: all three, or stage 2 alone for the lite model."""
        if not self.inpaint.uses_target_embedding:
            return ("inpaint",)
        return ("prior", "inpaint", "refine") if self.refine is not None else ("prior", "inpaint")

    def stage_pipeline(self, stage: str) -> PriorPipeline | InpaintPipeline | RefinePipeline:
        """One stage as its own pipeline, sharing this pipeline's components and progress-bar settings."""
        if stage == "prior":
            pipeline = PriorPipeline(self.prior, self.prior_scheduler)
        elif stage == "inpaint":
            pipeline = InpaintPipeline(self.vae, self.image_encoder, self.inpaint, self.inpaint_scheduler)
        else:
            pipeline = RefinePipeline(self.vae, self.image_encoder, self.refine, self.refine_scheduler)
        pipeline.set_progress_bar_config(**{"desc": STAGE_TITLES[stage], **getattr(self, "_progress_bar_config", {})})
        return pipeline

    def frame(self, width: int | None = None, height: int | None = None) -> tuple[int, int]:
        """The size (width, height) in pixels the model works at: the one asked for, else stage 2's training size."""
        trained_width, trained_height = self.inpaint.config.resolution
        return width or trained_width, height or trained_height

    def latents_shapes(
        self, pairs: int = 1, num_images_per_pair: int = 1, width: int | None = None, height: int | None = None
    ) -> dict[str, tuple[int, ...]]:
        """The shape of each stage's starting noise (``latents=``), for the stages of :attr:`stages`, for
        ``pairs`` pairs at ``width`` x ``height`` (the frame, default: stage 2's training size):
        "prior": (pairs, D), D the CLIP embedding size; "inpaint": (pairs x images, 4, H / 8, 2 W / 8), the
        [source | target] canvas; "refine": (pairs x images, 4, H / 8, W / 8); H and W are the frame's sides
        padded to what the UNets take, 8 the scale factor of SD's VAE (see each stage's ``latents_shape``)."""
        frame = self.frame(width, height)
        images = pairs * num_images_per_pair
        shapes = {}
        for stage in self.stages:
            if getattr(self, stage) is None:  # a stage-1 pipeline without its prior: nothing to shape
                continue
            pipeline = self.stage_pipeline(stage)
            shapes[stage] = (
                pipeline.latents_shape(pairs) if stage == "prior" else pipeline.latents_shape(images, *frame)
            )
        return shapes

    @torch.no_grad()
    def encode_sources(
        self, source_image: Image.Image | list[Image.Image], width: int | None = None, height: int | None = None
    ) -> dict[str, torch.Tensor | None]:
        """What every call computes from its source photos, computed once to give many calls (the frames of an
        animation): ``{"image_features": the DINOv2 tokens (pairs, tokens, hidden), "source_embeds": the CLIP
        image embeddings (pairs, D), None for a pipeline without stage 1}``, to pass on as
        ``pipeline(source_image, pose, **encodings)`` with the same sources and the same ``width`` and ``height``.
        Each source is encoded as a call at that frame gives it to the model: padded to the frame's aspect
        (:mod:`~pcdms.pipelines.framing`), so a call given these encodings makes the images it would make
        computing them. Raises PcdmsError for a source too small or unreadable."""
        sources = [checked_source(image, number, source_image) for number, image in enumerate(as_list(source_image))]
        return encode_sources(self, sources, self.frame(width, height))

    @torch.no_grad()
    def __call__(
        self,
        source_image: Image.Image | list[Image.Image],
        target_pose: PoseInput | list[PoseInput],
        source_pose: PoseInput | list[PoseInput] | None = None,
        *,
        target_embeds: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
        source_embeds: torch.Tensor | None = None,
        width: int | None = None,
        height: int | None = None,
        prior_steps: int | None = None,
        prior_guidance: float | None = None,
        inpaint_steps: int | None = None,
        inpaint_guidance: float | None = None,
        refine_steps: int | None = None,
        refine_guidance: float | None = None,
        refine_strength: float | None = None,
        refine_guidance_rescale: float = 0.0,
        preset: str | Preset | None = None,
        num_images_per_pair: int = 1,
        generator: Generators | dict[str, Generators] = None,
        stop_after: str | None = None,
        return_intermediates: bool = False,
        latents: Latents | None = None,
        callback_on_step_end: StepEndCallback | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        output_type: str = "pil",
    ) -> PCDMsOutput:
        """Each source person in the target pose.

        Poses: :class:`Keypoints`, pose files (pcdms or OpenPose JSON, PCDMs txt), rendered pose images,
        or photos whose pose is extracted; ``source_pose`` defaults to the pose extracted from the source
        image. A pose with fewer than :data:`pcdms.pose.MIN_POSE_JOINTS` (8) of the 18 joints is refused
        (:class:`~pcdms.errors.TooFewJointsError`, as everywhere in pcdms); a source image is read as
        :func:`pcdms.io.to_rgb` reads any mode and must be at least 16 pixels a side.
        ``target_embeds`` (pairs, D): skip stage 1 and use these target CLIP embeddings (for example
        the real target's). ``image_features`` (pairs, tokens, hidden) and ``source_embeds`` (pairs, D): the
        sources' DINOv2 tokens and CLIP image embeddings from :meth:`encode_sources` (of the same sources at the
        same frame), instead of computing them. ``width`` x ``height``: the frame the model works at (default: the
        size the stage-2 model was trained at; any size works). A source photo of another aspect is padded
        to the frame's aspect and the result cut back, so each output keeps its source's aspect (see
        :mod:`pcdms.pipelines.framing`); the target pose is fitted into the source's frame without
        stretching. Fewer steps than a stage takes (:data:`~pcdms.pipelines.inputs.MIN_STEPS`) or fewer
        than one image per pair raise PcdmsError. Steps and guidance are per stage, and stage 3's
        ``refine_strength`` in (0, 1] says where it starts (see :class:`RefinePipeline`); a setting left out
        (None) takes the model's recommended one, else the official one (:attr:`sampling_defaults`; official:
        stage 1 unguided, stages 2 and 3 at 2.0, UniPC 20 steps, stage 3 from pure noise).
        ``preset``: a named set of settings, "official", "fast" or "fastest", or a
        :class:`~pcdms.pipelines.presets.Preset`: its sampler, steps, guidance interval and feature reuse for
        stages 2 and 3 (see :mod:`pcdms.pipelines.presets`); the settings given here still win over the
        preset's, and those neither sets are the model's. None (default): the model's own settings.
        ``generator``: one generator for all stages, or one per stage (``{"prior": g1, "inpaint": g2,
        "refine": g3}``), so that a stage's result depends only on its inputs and its seed; each may be a
        list with one generator per pair, so that a pair's images do not depend on the rest of the batch.
        ``stop_after``: "inpaint" returns stage 2's images (default: the pipeline's last stage).
        ``return_intermediates``: also return the target embeddings and the coarse images.

        ``latents``: the starting noise of each stage that runs instead of its generator's draw, standard
        normal: a dict such as ``{"prior": t1, "inpaint": t2, "refine": t3}`` (a stage left out draws its
        own), or one tensor when a single stage runs (the lite model; or ``target_embeds`` given and
        ``stop_after="inpaint"``). Shapes: :meth:`latents_shapes` (for the bundled and official models,
        "prior" (pairs, D), "inpaint" (pairs x images, 4, H / 8, 2 W / 8), "refine" (pairs x images, 4,
        H / 8, W / 8), H x W the frame padded as the UNets need). Frames of an animation given the same
        latents and generators differ only by their poses. The generators still draw what else is random:
        stage 1's scheduler noise, stages 2 and 3's VAE latents of the source canvas and the coarse image.
        ``callback_on_step_end(pipeline, step, timestep, callback_kwargs)``: called after each sampling step
        of each stage, with that stage's pipeline (its ``stage`` is "prior", "inpaint" or "refine"), the
        step within the stage (from 0), and the tensors named by ``callback_on_step_end_tensor_inputs``
        (default and only choice: ``["latents"]``); a returned dict's "latents" replaces them, as in diffusers.

        ``output_type``: "pil" (PIL images), "np" (a (batch, height, width, 3) float32 array in [0, 1]) or
        "pt" (a (batch, 3, height, width) float32 tensor in [0, 1]); "np" and "pt" need every output of one
        size (sources of one aspect). Values agree across the three: a PIL pixel is the "pt" value x 255,
        rounded.

        Raises PcdmsError (one line) for unreadable or too small inputs, poses with too few joints, too few
        steps, a stage the pipeline lacks, latents of the wrong shape or for a stage that does not run, and
        ``image_features`` or ``source_embeds`` of the wrong shape;
        ValueError for batches of different sizes, an unknown ``stop_after`` or ``output_type``, and a
        generator list that is not one per pair.
        """
        stop_after = stop_after or self.stages[-1]
        if stop_after not in STAGES[1:]:
            raise ValueError(f"stop_after must be 'inpaint' or 'refine', got {stop_after!r}")
        check_output_type(output_type)
        step_callback(callback_on_step_end, callback_on_step_end_tensor_inputs, ["latents"])  # checked before any stage
        if stop_after == "refine" and self.refine is None:
            raise PcdmsError("this pipeline has no stage 3 (refine); call it with stop_after='inpaint'")
        sources = [checked_source(image, number, source_image) for number, image in enumerate(as_list(source_image))]
        target_poses = checked_poses(target_pose, "target pose")
        if source_pose is None:
            source_poses = [
                checked_poses(image, name_in_batch("source image", number, len(sources)), extract=True)[0]
                for number, image in enumerate(sources)
            ]
        else:
            source_poses = checked_poses(source_pose, "source pose")
        if not len(sources) == len(source_poses) == len(target_poses):
            raise ValueError(
                f"batch sizes differ: {len(sources)} source images, {len(source_poses)} source poses, "
                f"{len(target_poses)} target poses"
            )
        chosen = get_preset(preset)
        settings = resolved_sampling(
            preset_defaults(self.config.sampling, chosen),
            prior_steps=prior_steps,
            prior_guidance=prior_guidance,
            inpaint_steps=inpaint_steps,
            inpaint_guidance=inpaint_guidance,
            refine_steps=refine_steps,
            refine_guidance=refine_guidance,
            refine_strength=refine_strength,
        )
        # The model's and the preset's settings were checked where they were made; the call's own only here.
        settings = checked_sampling(settings, type(self).__name__)
        check_images_per_pair(num_images_per_pair)
        frame = self.frame(width, height)
        fitted = [fit_to_model(*pair, frame) for pair in zip(sources, source_poses, target_poses, strict=True)]
        sources = [pair.source for pair in fitted]
        source_poses = [pair.source_pose for pair in fitted]
        target_poses = [pair.target_pose for pair in fitted]
        boxes = [pair.box for pair in fitted]

        def generator_for(stage: str) -> Generators:
            given = generator.get(stage) if isinstance(generator, dict) else generator
            # Stage 3 refines each of stage 2's images on its own: a pair's generator serves all its images.
            if stage == "refine":
                return image_generators(given, len(sources), num_images_per_pair)
            return pair_generators(given, len(sources))

        generators = {stage: generator_for(stage) for stage in STAGES}  # lengths checked before any stage runs
        running = tuple(
            stage
            for stage in STAGES
            if stage == "inpaint"
            or (stage == "prior" and self.inpaint.uses_target_embedding and target_embeds is None)
            or (stage == "refine" and stop_after == "refine")
        )
        stage_latents = checked_latents(self, latents, running, len(sources), num_images_per_pair, frame)
        check_source_encodings(self, image_features, source_embeds, len(sources))
        stage_arguments = {
            "callback_on_step_end": callback_on_step_end,
            "callback_on_step_end_tensor_inputs": callback_on_step_end_tensor_inputs,
        }

        def preset_stage(stage: str) -> tuple[InpaintPipeline | RefinePipeline, dict]:
            """A UNet stage's pipeline for this call, with the preset's sampler, and the preset's arguments."""
            pipeline = self.stage_pipeline(stage)
            return pipeline, ({} if chosen is None else chosen.stage_pipeline(pipeline, stage))

        if self.inpaint.uses_target_embedding and target_embeds is None:
            if self.prior is None or self.clip_encoder is None:
                raise PcdmsError("this pipeline has no stage 1 (prior and clip_encoder): pass target_embeds")
            clip = ClipImageEncoder(self.clip_encoder)
            target_embeds = self.stage_pipeline("prior")(
                clip.encode(sources) if source_embeds is None else source_embeds,
                source_poses,
                target_poses,
                num_inference_steps=settings["prior_steps"],
                guidance_scale=settings["prior_guidance"],
                null_embeds=clip.null_embeds() if settings["prior_guidance"] > 1 else None,
                generator=generators["prior"],
                latents=stage_latents.get("prior"),
                **stage_arguments,
            ).image_embeds
        elif not self.inpaint.uses_target_embedding:
            target_embeds = None

        inpaint, inpaint_preset = preset_stage("inpaint")
        features = inpaint.encode_images(sources) if image_features is None else image_features  # for stages 2 and 3
        coarse = inpaint(
            sources,
            source_poses,
            target_poses,
            target_embeds,
            width=width,
            height=height,
            num_inference_steps=settings["inpaint_steps"],
            guidance_scale=settings["inpaint_guidance"],
            num_images_per_pair=num_images_per_pair,
            generator=generators["inpaint"],
            image_features=features,
            latents=stage_latents.get("inpaint"),
            **stage_arguments,
            **inpaint_preset,
            output_type="pt",
        ).images
        images = coarse
        if stop_after == "refine":
            refine, refine_preset = preset_stage("refine")
            images = refine(
                None,
                coarse,
                width=coarse.shape[-1],
                height=coarse.shape[-2],
                num_inference_steps=settings["refine_steps"],
                guidance_scale=settings["refine_guidance"],
                guidance_rescale=refine_guidance_rescale,
                strength=settings["refine_strength"],
                generator=generators["refine"],
                image_features=features.repeat_interleave(num_images_per_pair, dim=0),
                latents=stage_latents.get("refine"),
                **stage_arguments,
                **refine_preset,
                output_type="pt",
            ).images

        def as_output(pictures: torch.Tensor) -> ImageOutput:
            return framed_output(pictures, boxes, num_images_per_pair, output_type)

        if not return_intermediates:
            return PCDMsOutput(images=as_output(images))
        embeds = None if target_embeds is None else target_embeds.float().cpu()
        return PCDMsOutput(images=as_output(images), target_embeds=embeds, coarse_images=as_output(coarse))


def checked_poses(poses, role: str, extract: bool = False) -> list[Keypoints]:
    """Each pose as keypoints (a photo's extracted when ``extract``), refused with too few joints: the rule of
    every entry point (pcdms.pose.check_enough_joints). Messages name the file, or the role and place in the batch."""
    poses = as_list(poses)
    checked = []
    for number, pose in enumerate(poses):
        where = str(pose) if isinstance(pose, str | os.PathLike) else name_in_batch(role, number, len(poses))
        try:
            keypoints = extract_pose(pose) if extract else as_keypoints(pose, where=where)
        except NoPersonError as error:
            raise NoPersonError(f"{where}: {error}") from None
        checked.append(check_enough_joints(keypoints, where))
    return checked


def load_pcdms_pipeline(folder: str | os.PathLike, **kwargs) -> PCDMsPipeline:
    """A saved :class:`PCDMsPipeline` (from ``pcdms convert``), or a bundled model by name
    (``"pcdms-street"``), from local files only; ``kwargs`` go to ``from_pretrained`` (``dtype``: the
    weights' precision, default float32; components to replace). Recommended sampling settings that are
    not valid raise PcdmsError naming the folder's model_index.json."""
    folder = model_folder(folder)
    check_folder_sampling(folder)
    return load_pipeline(PCDMsPipeline, folder, "PCDMs pipeline", **kwargs)
