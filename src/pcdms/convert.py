"""Whole-pipeline folders: from the authors' released checkpoints, or from this project's training runs.

The authors released one DeepSpeed checkpoint per stage (``mp_rank_00_model_states.pt``, weights only,
no architecture) and the lite stage-2-only ``PCDMs_ckpt.pt``. Everything else comes from public
models the user keeps locally: Stable Diffusion 2.1-base (its VAE, and its UNet configuration, which
stages 2 and 3 widen), DINOv2-giant, and OpenCLIP ViT-H/14 as exported for IP-Adapter (the stage-1
image encoder). The sizes that the checkpoints fix but those folders do not (the prior's width and
depth, the projections' hidden width, the pose encoder's channels) are read from the checkpoints'
shapes, so nothing is guessed and a mismatched folder is named before any weight is copied.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UnCLIPScheduler
from diffusers.utils import logging as diffusers_logging
from transformers import CLIPVisionModelWithProjection, Dinov2Model

from .checkpoints import OFFICIAL_FILE, STAGE_NAMES, WRAPPER_PREFIX, detect_stage, load_official_state_dict
from .errors import PcdmsError
from .io import atomic_folder
from .models.encoders import load_clip_vision, load_local_model
from .models.inpaint import InpaintModel
from .models.prior import PosePriorTransformer
from .models.refine import RefineModel
from .models.sd import stable_diffusion_unet_config
from .pipelines.inpaint import official_sampling_scheduler
from .pipelines.pcdms import PCDMsPipeline
from .pipelines.prior import unclip_scheduler

# The official prior's attention heads are 64 wide (32 of them over its 2048 channels); a checkpoint
# records the width, not the split.
PRIOR_HEAD_DIM = 64


def _checkpoint(path: str | os.PathLike, stage: str) -> dict[str, torch.Tensor]:
    """An official checkpoint's weights, refused at once when they belong to another stage."""
    path = Path(path) / OFFICIAL_FILE if Path(path).is_dir() else Path(path)
    state = load_official_state_dict(path)
    found = detect_stage(state)
    accepted = ("inpaint", "inpaint-lite") if stage == "inpaint" else (stage,)
    if found not in accepted:
        what = f"a {STAGE_NAMES[found]} checkpoint" if found else "not a PCDMs checkpoint of any stage"
        wrapped = [key for key in state if key.startswith(WRAPPER_PREFIX)]
        if not found and wrapped:  # the prefix is stripped only when every key has it
            what += f" ({len(wrapped)} of its {len(state)} keys carry a wrapper's {WRAPPER_PREFIX!r} prefix)"
        raise PcdmsError(
            f"{path}: given as the {STAGE_NAMES[stage]} checkpoint, but it is {what} (keys like {next(iter(state))!r})"
        )
    return state


def prior_architecture(state: dict[str, torch.Tensor]) -> dict:
    """The :class:`PosePriorTransformer` size of an official stage-1 checkpoint, from its shapes."""
    inner = state["positional_embedding"].shape[-1]
    blocks = {int(match.group(1)) for key in state if (match := re.match(r"transformer_blocks\.(\d+)\.", key))}
    head_dim = PRIOR_HEAD_DIM if inner % PRIOR_HEAD_DIM == 0 else inner
    return {
        "num_attention_heads": inner // head_dim,
        "attention_head_dim": head_dim,
        "num_layers": len(blocks),
        "embedding_dim": state["proj_to_clip_embeddings.weight"].shape[0],
        "pose_hidden_dim": state["pose_encoder.net.0.weight"].shape[0],
    }


def projection_architecture(state: dict[str, torch.Tensor]) -> dict:
    """The DINOv2 projection's sizes (either official prefix) of a stage-2 or stage-3 checkpoint."""
    first = next(value for key, value in state.items() if re.match(r"image_proj_model(_p)?\.net\.0\.weight$", key))
    return {"image_feature_dim": first.shape[1], "image_proj_hidden_dim": first.shape[0]}


def pose_channels(state: dict[str, torch.Tensor]) -> list[int]:
    """The pose encoder's block channels: its first convolution's, then each downsampling convolution's."""
    channels = [state["pose_proj.conv_in.weight"].shape[0]]
    index = 1
    while f"pose_proj.blocks.{index}.weight" in state:
        channels.append(state[f"pose_proj.blocks.{index}.weight"].shape[0])
        index += 2
    return channels


def check_pipeline(pipeline: PCDMsPipeline) -> None:
    """Every component fits the next one, or one line naming the mismatches (of the first part that does not fit)."""
    for model in (pipeline.inpaint, pipeline.refine):
        if model is not None:
            model.check_encoders(pipeline.vae, pipeline.image_encoder)
    problems = []
    if pipeline.prior is not None:
        embedding = pipeline.prior.config.embedding_dim
        if pipeline.clip_encoder is not None and pipeline.clip_encoder.config.projection_dim != embedding:
            problems.append(
                f"CLIP gives {pipeline.clip_encoder.config.projection_dim}-d embeddings, the prior takes {embedding}-d"
            )
        class_width = pipeline.inpaint.unet.config.projection_class_embeddings_input_dim
        if class_width is not None and class_width != embedding:
            problems.append(f"the prior gives {embedding}-d embeddings, the stage-2 model takes {class_width}-d")
    if problems:
        raise PcdmsError("the pipeline's parts do not fit: " + "; ".join(problems))


def save_pipeline(pipeline: PCDMsPipeline, out: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
    """Check and write ``pipeline`` as a folder, all at once or not at all."""
    check_pipeline(pipeline)
    if dtype is not None:
        verbosity = diffusers_logging.get_verbosity()
        diffusers_logging.set_verbosity_error()  # no module of these models must stay float32, so say nothing
        try:
            pipeline.to(dtype=dtype)
        finally:
            diffusers_logging.set_verbosity(verbosity)
    with atomic_folder(out) as temporary:
        pipeline.save_pretrained(temporary)
    return Path(out)


def convert_official(
    out: str | os.PathLike,
    *,
    inpaint: str | os.PathLike,
    stable_diffusion: str | os.PathLike,
    dinov2: str | os.PathLike,
    prior: str | os.PathLike | None = None,
    refine: str | os.PathLike | None = None,
    clip: str | os.PathLike | None = None,
    kandinsky: str | os.PathLike | None = None,
    dtype: torch.dtype | None = torch.float16,
) -> Path:
    """A :class:`PCDMsPipeline` folder from the authors' checkpoints and local public models.

    ``inpaint``: the stage-2 checkpoint, or the lite ``PCDMs_ckpt.pt`` (then no prior, CLIP or refiner
    is used). ``prior`` and ``clip`` (the IP-Adapter ``image_encoder`` folder) are needed with the full
    stage 2; ``refine`` is optional (without it the pipeline stops after stage 2). ``kandinsky``: a
    Kandinsky 2.2 prior folder whose scheduler to use; the built-in copy of its settings otherwise.
    ``dtype``: the precision written (the authors trained in fp16).
    """
    inpaint_state = _checkpoint(inpaint, "inpaint")
    lite = detect_stage(inpaint_state) == "inpaint-lite"
    if not lite and (prior is None or clip is None):
        raise PcdmsError(f"{inpaint}: the full stage-2 model needs the stage-1 checkpoint (--prior) and CLIP (--clip)")
    if lite and (prior or refine):
        raise PcdmsError(
            f"{inpaint}: the lite stage-2 model (PCDMs_ckpt.pt) runs alone; leave out --prior and --refine"
        )
    unet_config = stable_diffusion_unet_config(stable_diffusion)
    vae = load_local_model(AutoencoderKL, Path(stable_diffusion) / "vae", "Stable Diffusion VAE")
    image_encoder = load_local_model(Dinov2Model, dinov2, "DINOv2 encoder")
    size = {"resolution": (512, 512)}  # the official models' size: 512x512 images
    components = {
        "inpaint": InpaintModel.from_official(
            inpaint,
            unet_config=unet_config,
            pose_block_channels=pose_channels(inpaint_state),
            **projection_architecture(inpaint_state),
            **size,
        ),
        "inpaint_scheduler": official_sampling_scheduler(),
    }
    del inpaint_state
    if prior is not None:
        components["prior"] = PosePriorTransformer.from_official(
            prior, **prior_architecture(_checkpoint(prior, "prior"))
        )
        components["prior_scheduler"] = (
            unclip_scheduler()
            if kandinsky is None
            else load_local_model(
                UnCLIPScheduler,
                kandinsky,
                "Kandinsky 2.2 prior scheduler",
                marker="scheduler/scheduler_config.json",
                subfolder="scheduler",
            )
        )
    if clip is not None and not lite:
        components["clip_encoder"] = load_local_model(CLIPVisionModelWithProjection, clip, "CLIP vision encoder")
    if refine is not None:
        refine_state = _checkpoint(refine, "refine")
        components["refine"] = RefineModel.from_official(
            refine, unet_config=unet_config, **projection_architecture(refine_state), **size
        )
        components["refine_scheduler"] = official_sampling_scheduler()
    pipeline = PCDMsPipeline(vae=vae, image_encoder=image_encoder, **components)
    return save_pipeline(pipeline, out, dtype)


def assemble_trained(
    out: str | os.PathLike,
    *,
    inpaint: str | os.PathLike,
    prior: str | os.PathLike | None = None,
    refine: str | os.PathLike | None = None,
    clip: str | os.PathLike | None = None,
    sampling: dict | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """A :class:`PCDMsPipeline` folder from this project's training runs: their ``model`` folders (stage
    pipelines), and the CLIP folder stages 1 and 2 were trained with. Stages 2 and 3 must share their VAE
    and DINOv2, as they do when trained with the same files. ``sampling``: the settings the model samples
    best with, recorded in its model_index.json (:mod:`pcdms.pipelines.settings`; invalid ones raise
    PcdmsError). ``dtype``: the precision written (None: as trained); loading casts to the one asked for."""
    from .pipelines.inpaint import load_inpaint_pipeline
    from .pipelines.prior import load_prior_pipeline
    from .pipelines.refine import load_refine_pipeline

    stage2 = load_inpaint_pipeline(inpaint)
    components = {"inpaint": stage2.inpaint, "inpaint_scheduler": stage2.scheduler}
    if stage2.inpaint.uses_target_embedding:
        if prior is None or clip is None:
            raise PcdmsError(
                f"{inpaint}: this stage-2 model needs a stage-1 model (--prior) and its CLIP folder (--clip)"
            )
        stage1 = load_prior_pipeline(prior)
        components.update(
            prior=stage1.prior,
            prior_scheduler=stage1.scheduler,
            clip_encoder=load_clip_vision(clip),
        )
    if refine is not None:
        stage3 = load_refine_pipeline(refine)
        for name in ("vae", "image_encoder"):
            if not _same_weights(getattr(stage2, name), getattr(stage3, name)):
                raise PcdmsError(
                    f"{refine}: its {name} differs from the stage-2 model's ({inpaint}); train both with the same one"
                )
        components.update(refine=stage3.refine, refine_scheduler=stage3.scheduler)
    pipeline = PCDMsPipeline(vae=stage2.vae, image_encoder=stage2.image_encoder, sampling=sampling, **components)
    return save_pipeline(pipeline, out, dtype)


def _same_weights(first: torch.nn.Module, second: torch.nn.Module) -> bool:
    one, two = first.state_dict(), second.state_dict()
    return one.keys() == two.keys() and all(torch.equal(one[key], two[key]) for key in one)
