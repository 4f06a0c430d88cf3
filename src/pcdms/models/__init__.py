"""The models of the three stages and their frozen encoders."""

from .encoders import ClipImageEncoder, tiny_clip_config
from .prior import PosePriorTransformer

__all__ = ["ClipImageEncoder", "PosePriorTransformer", "tiny_clip_config"]
