"""What a :class:`~pcdms.pipelines.pcdms.PCDMsPipeline` call may be given instead of computing or drawing it:
each stage's starting noise (``latents=``) and the sources' encodings (``image_features=``, ``source_embeds=``),
both checked before any stage runs.

The encodings are those of the source *as the model gets it*: padded to the frame's aspect
(:func:`~pcdms.pipelines.framing.padded_source`). :func:`encode_sources` frames the sources as a call at the
same frame does, so its encodings given to that call give the same images as the call computing them.
"""

from __future__ import annotations

import weakref

import torch
from PIL import Image
from transformers import Dinov2Model

from ..errors import PcdmsError
from ..models.encoders import ClipImageEncoder
from .common import STAGE_TITLES
from .framing import padded_source


def encode_sources(pipeline, sources: list[Image.Image], frame: tuple[int, int]) -> dict[str, torch.Tensor | None]:
    """The encodings of ``sources`` (checked RGB photos) framed at ``frame`` (width, height): "image_features",
    the DINOv2 tokens (pairs, tokens, hidden) that stages 2 and 3 use, and "source_embeds", the CLIP image
    embeddings (pairs, D) that stage 1 uses (None for a pipeline without stage 1)."""
    padded = [padded_source(image, frame) for image in sources]
    embeds = None
    if pipeline.inpaint.uses_target_embedding and pipeline.clip_encoder is not None:
        embeds = ClipImageEncoder(pipeline.clip_encoder).encode(padded)
    features = pipeline.stage_pipeline("inpaint").encode_images(padded)
    return {"image_features": features, "source_embeds": embeds}


# Per image encoder that is not DINOv2 (the bundled model's Inception): its (tokens, hidden), found by encoding once.
_PROBED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def feature_shape(pipeline) -> tuple[int, int]:
    """(tokens, hidden) of one source's image features: DINOv2's class token and patch tokens of the 224x224
    pixels every source is cut to (257 for patch 14), or what another encoder gives for one image."""
    encoder = pipeline.image_encoder
    processor = pipeline.stage_pipeline("inpaint").processor
    side = processor.crop_size["height"], processor.crop_size["width"]
    if isinstance(encoder, Dinov2Model):
        patch = encoder.config.patch_size
        return (side[0] // patch) * (side[1] // patch) + 1, encoder.config.hidden_size
    if encoder not in _PROBED:
        with torch.no_grad():
            tokens = encoder(pixel_values=torch.zeros(1, 3, *side, device=encoder.device, dtype=encoder.dtype))
        _PROBED[encoder] = tuple(tokens.last_hidden_state.shape[1:])
    return _PROBED[encoder]


def embedding_size(pipeline) -> int | None:
    """D of the CLIP image embeddings stage 1 takes; None for a pipeline without stage 1."""
    if pipeline.prior is not None:
        return pipeline.prior.config.embedding_dim
    return None if pipeline.clip_encoder is None else pipeline.clip_encoder.config.projection_dim


def check_source_encodings(
    pipeline, image_features: torch.Tensor | None, source_embeds: torch.Tensor | None, pairs: int
) -> None:
    """PcdmsError, in one line, for ``image_features`` that are not (pairs, tokens, hidden) of this pipeline's
    image encoder, ``source_embeds`` that are not (pairs, D) of its stage 1, or ``source_embeds`` for a
    pipeline without stage 1."""
    where = "as pipeline.encode_sources gives them"
    if image_features is not None:
        _check_shape("image_features", image_features, (pairs, *feature_shape(pipeline)), where)
    if source_embeds is not None:
        size = embedding_size(pipeline)
        if size is None:
            raise PcdmsError("source_embeds: this pipeline has no stage 1 (prior), which is what uses them")
        _check_shape("source_embeds", source_embeds, (pairs, size), where)


def _check_shape(name: str, tensor, expected: tuple[int, ...], where: str) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise PcdmsError(f"{name}: a tensor of shape {expected}, got {type(tensor).__name__} ({where})")
    if tuple(tensor.shape) != expected:
        raise PcdmsError(f"{name}: got shape {tuple(tensor.shape)}, expected {expected} ({where})")


def checked_latents(
    pipeline, latents, running: tuple[str, ...], pairs: int, num_images_per_pair: int, frame
) -> dict[str, torch.Tensor]:
    """``latents`` as {stage: tensor}, checked against the stages that run and their shapes before any
    stage runs: PcdmsError, in one line, for a stage that does not run, a tensor where several stages run,
    or a wrong shape."""
    if latents is None:
        return {}
    if isinstance(latents, torch.Tensor):
        if len(running) > 1:
            raise PcdmsError(
                f"latents: one tensor, but {len(running)} stages run ({', '.join(running)}): "
                "pass a dict such as {'prior': ..., 'inpaint': ..., 'refine': ...}"
            )
        latents = {running[0]: latents}
    if not isinstance(latents, dict):
        raise PcdmsError(f"latents: a tensor or a dict of tensors by stage, got {type(latents).__name__}")
    idle = [stage for stage in latents if stage not in running]
    if idle:
        raise PcdmsError(
            f"latents for {idle[0]!r}, a stage that does not run in this call (running: {', '.join(running)})"
        )
    shapes = pipeline.latents_shapes(pairs, num_images_per_pair, *frame)
    for stage, tensor in latents.items():
        if stage not in shapes:  # its model is missing, which the call reports when the stage is due
            continue
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != shapes[stage]:
            given = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise PcdmsError(f"latents for {STAGE_TITLES[stage]}: got shape {given}, expected {shapes[stage]}")
    return latents
