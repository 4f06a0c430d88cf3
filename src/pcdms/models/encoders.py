"""The frozen image encoders: CLIP's vision tower with its projection (stages 1 and 2) and DINOv2 (stages 2 and 3).

The official models use OpenCLIP ViT-H/14 as exported for IP-Adapter (``models/image_encoder``:
32 layers, width 1280, 224x224 input, 1024-d ``image_embeds``, not L2-normalised). Preprocessing is
the official one (spec 5.3): the image is stretched to 512x512 (bicubic), then goes through
``CLIPImageProcessor``'s defaults: shortest side to 224 (bicubic), centre crop 224, scale to [0, 1],
CLIP's mean and standard deviation.

DINOv2 (giant in the official models: 1536-d, patch 14) gets exactly the same pixels, CLIP's
preprocessing and not its own, and gives its whole last hidden state: the class token and 256 patch
tokens (257 x 1536), after the final layer norm.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, Dinov2Config, Dinov2Model

try:  # transformers 5 names the processor that needs no torchvision explicitly
    from transformers import CLIPImageProcessorPil as CLIPImageProcessor
except ImportError:  # transformers 4: the default processor is that one
    from transformers import CLIPImageProcessor

from ..errors import PcdmsError

# The official code stretches every image to this square before the encoder's own preprocessing.
SQUARE_SIZE = 512


def load_local_model(model_class, folder: str | os.PathLike, what: str, marker: str = "config.json", **kwargs):
    """``model_class.from_pretrained`` on a local folder only (a model, or a pipeline with ``marker``
    model_index.json), with one-line errors."""
    folder = Path(folder)
    if not (folder / marker).is_file():
        raise PcdmsError(f"{folder}: not a {what} folder (no {marker}); pcdms loads models from local folders only")
    _check_model_type(model_class, folder / marker, what)
    try:
        return model_class.from_pretrained(folder, local_files_only=True, **kwargs)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise PcdmsError(f"{folder}: cannot load the {what} ({str(error).splitlines()[0]})") from None


def _check_model_type(model_class, config_file: Path, what: str) -> None:
    """transformers builds a model from any config whose keys it knows (a CLIP folder loads as a random
    DINOv2), so the folder's ``model_type`` is checked first. A full CLIP folder ("clip") holds the
    vision tower ("clip_vision_model") and is accepted for it."""
    expected = getattr(getattr(model_class, "config_class", None), "model_type", None)
    if not expected:
        return
    try:
        found = json.loads(config_file.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        raise PcdmsError(f"{config_file}: unreadable model configuration") from None
    if found and found != expected and not expected.startswith(f"{found}_"):
        raise PcdmsError(f"{config_file.parent}: holds a {found} model, not a {what} ({expected})")


def _pcdms_encoder_class(folder: str | os.PathLike, role: str):
    """The bundled model's Inception encoder class that ``folder`` holds for ``role`` ("clip" or "dinov2"),
    or None for any other folder (a transformers model: the real CLIP or DINOv2, or a random stand-in)."""
    from .inception_encoders import InceptionClipEncoder, InceptionTokenEncoder

    try:
        name = json.loads((Path(folder) / "config.json").read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError):
        return None  # load_local_model names the problem
    classes = {"clip": InceptionClipEncoder, "dinov2": InceptionTokenEncoder}
    if name in (InceptionClipEncoder.__name__, InceptionTokenEncoder.__name__) and name != classes[role].__name__:
        other = "DINOv2" if role == "clip" else "CLIP"
        raise PcdmsError(f"{folder}: holds the bundled model's {other}-role encoder ({name}), not its {role} one")
    return classes[role] if name == classes[role].__name__ else None


def load_clip_vision(folder: str | os.PathLike, **kwargs):
    """The CLIP vision tower with projection in ``folder``: CLIPVisionModelWithProjection, or the bundled
    model's :class:`~pcdms.models.inception_encoders.InceptionClipEncoder` (``kwargs``: ``dtype``)."""
    model_class = _pcdms_encoder_class(folder, "clip") or CLIPVisionModelWithProjection
    return load_local_model(model_class, folder, "CLIP vision encoder", **kwargs)


def load_dinov2(folder: str | os.PathLike, **kwargs):
    """The DINOv2 in ``folder``: Dinov2Model, or the bundled model's
    :class:`~pcdms.models.inception_encoders.InceptionTokenEncoder` (``kwargs``: ``dtype``)."""
    model_class = _pcdms_encoder_class(folder, "dinov2") or Dinov2Model
    return load_local_model(model_class, folder, "DINOv2 encoder", **kwargs)


def clip_pixels(images: list[Image.Image], processor: CLIPImageProcessor) -> torch.Tensor:
    """Pixel tensors (batch, 3, 224, 224) as the official code makes them."""
    squares = [image.convert("RGB").resize((SQUARE_SIZE, SQUARE_SIZE), Image.Resampling.BICUBIC) for image in images]
    return processor(images=squares, return_tensors="pt").pixel_values


class ClipImageEncoder(nn.Module):
    """CLIP vision model with projection, frozen, and the official preprocessing."""

    def __init__(self, model: CLIPVisionModelWithProjection):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.processor = CLIPImageProcessor()

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, torch_dtype: torch.dtype | None = None) -> ClipImageEncoder:
        return cls(load_clip_vision(folder, **({} if torch_dtype is None else {"dtype": torch_dtype})))

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        return clip_pixels(images, self.processor)

    @torch.no_grad()
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """CLIP image embeddings (batch, embedding_dim) of preprocessed pixels."""
        return self.model(pixel_values.to(self.model.device, self.model.dtype)).image_embeds

    def encode(self, images: list[Image.Image]) -> torch.Tensor:
        return self(self.preprocess(images))

    def null_embeds(self) -> torch.Tensor:
        """(1, embedding_dim): the embedding of an all-zero pixel tensor, what training shows the prior for a
        dropped source image (a mean-colour image after CLIP's normalisation, not a zero vector)."""
        size = self.model.config.image_size
        return self(torch.zeros(1, 3, size, size))


def tiny_clip_config(embedding_dim: int = 32) -> CLIPVisionConfig:
    """A CLIP vision tower small enough for tests and toy runs on a CPU (random weights, 224x224 input).

    Its initial weights are drawn ten times wider than CLIP's own; at CLIP's scale a random tower
    gives nearly the same embedding for every image (cosine 0.999 between any two toy images), at
    this one different images get different embeddings (about 0.6).
    """
    return CLIPVisionConfig(
        initializer_factor=10.0,
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=2,
        num_hidden_layers=2,
        image_size=224,
        patch_size=32,
        projection_dim=embedding_dim,
    )


@torch.no_grad()
def image_features(encoder: Dinov2Model, pixel_values: torch.Tensor) -> torch.Tensor:
    """DINOv2's last hidden state (batch, 257, hidden) for preprocessed pixels (:func:`clip_pixels`)."""
    return encoder(pixel_values=pixel_values.to(encoder.device, encoder.dtype)).last_hidden_state


def tiny_dinov2_config(hidden_size: int = 32) -> Dinov2Config:
    """A DINOv2 small enough for tests and toy runs (random weights; 224x224 input, 257 tokens like the real one)."""
    return Dinov2Config(
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        mlp_ratio=2,
        image_size=224,
        patch_size=14,
    )
