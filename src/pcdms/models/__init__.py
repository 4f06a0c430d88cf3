"""The models of the three stages and their frozen encoders."""

from .encoders import ClipImageEncoder, image_features, tiny_clip_config, tiny_dinov2_config
from .inpaint import InpaintModel
from .prior import PosePriorTransformer
from .refine import RefineModel

__all__ = [
    "ClipImageEncoder",
    "InpaintModel",
    "PosePriorTransformer",
    "RefineModel",
    "image_features",
    "tiny_clip_config",
    "tiny_dinov2_config",
]
