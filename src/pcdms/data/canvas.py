"""The stage-2 canvas: source and target side by side, as the inpainting UNet sees them (spec 2.2).

The canvas is two halves wide: the source on the left, the target on the right. The VAE encodes
the full [source | target] canvas in training and the masked canvas [source | black] always; the
mask (at latent resolution) is 1 on the source half and 0 on the half to generate; the pose canvas
holds both pose maps in [-1, 1].

Each half is the image resized to ``width`` x ``height`` (bicubic). The official models use 512x512
halves, stretching DeepFashion's 176x256 images; any other size works too, native aspect included:
a half is padded (edges repeated, poses shifted to match) to sides the UNet can take, multiples of
``multiple`` pixels, and the generated half is cropped back, so 352x512 in gives 352x512 out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..pose.keypoints import Keypoints, check_size
from ..pose.render import pose_map_tensor


def image_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB image as a float32 tensor (3, height, width) in [-1, 1]."""
    return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).float() / 127.5 - 1.0


@dataclass(frozen=True)
class CanvasLayout:
    """Where the source and target halves lie, for halves of ``width`` x ``height`` pixels."""

    width: int
    height: int
    multiple: int = 64

    def __post_init__(self):
        check_size((self.width, self.height), "canvas half size")
        if self.multiple < 1:
            raise ValueError(f"multiple must be at least 1, got {self.multiple}")

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def padded_size(self) -> tuple[int, int]:
        """One half's size once padded to multiples of ``multiple``."""
        return tuple(math.ceil(side / self.multiple) * self.multiple for side in self.size)

    @property
    def padding(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) pixels added around a half, centred."""
        extra_x, extra_y = (padded - side for padded, side in zip(self.padded_size, self.size, strict=True))
        return extra_x // 2, extra_y // 2, extra_x - extra_x // 2, extra_y - extra_y // 2

    @property
    def canvas_size(self) -> tuple[int, int]:
        width, height = self.padded_size
        return 2 * width, height

    def place_image(self, image: Image.Image) -> Image.Image:
        """An image as one half: resized to the half's size (bicubic), then padded with its own edges."""
        image = image.convert("RGB")
        if image.size != self.size:
            image = image.resize(self.size, Image.Resampling.BICUBIC)
        left, top, right, bottom = self.padding
        if not any(self.padding):
            return image
        return Image.fromarray(np.pad(np.array(image), ((top, bottom), (left, right), (0, 0)), mode="edge"))

    def place_pose(self, pose: Keypoints) -> Keypoints:
        """Keypoints moved as :meth:`place_image` moves their image."""
        return pose.resize(self.size).pad(*self.padding)

    def image_canvas(self, left: Image.Image, right: Image.Image | None) -> torch.Tensor:
        """(3, H, 2W) in [-1, 1]: ``left`` and ``right`` placed side by side; ``right=None`` leaves it black."""
        source = image_tensor(self.place_image(left))
        target = torch.full_like(source, -1.0) if right is None else image_tensor(self.place_image(right))
        return torch.cat([source, target], dim=2)

    def pose_canvas(self, source_pose: Keypoints, target_pose: Keypoints) -> torch.Tensor:
        """(3, H, 2W) in [-1, 1]: the two pose maps, drawn at the placed size."""
        return torch.cat([pose_map_tensor(self.place_pose(pose)) for pose in (source_pose, target_pose)], dim=2)

    def latent_mask(self, scale: int) -> torch.Tensor:
        """(1, 1, H/scale, 2W/scale): 1 on the source half (known), 0 on the target half (to generate)."""
        width, height = (side // scale for side in self.padded_size)
        return torch.cat([torch.ones(1, 1, height, width), torch.zeros(1, 1, height, width)], dim=3)

    def pad(self, images: torch.Tensor) -> torch.Tensor:
        """Images (batch, 3, height, width) padded as :meth:`place_image` pads one (edges repeated)."""
        left, top, right, bottom = self.padding
        return F.pad(images, (left, right, top, bottom), mode="replicate") if any(self.padding) else images

    def crop(self, images: torch.Tensor) -> torch.Tensor:
        """Padded images (..., 3, H, W) back to (..., 3, height, width): the inverse of :meth:`pad`."""
        left, top, _, _ = self.padding
        return images[..., top : top + self.height, left : left + self.width]

    def crop_target(self, canvas: torch.Tensor) -> torch.Tensor:
        """The target half of a canvas batch (..., 3, H, 2W), padding removed: (..., 3, height, width)."""
        left, top, _, _ = self.padding
        start = self.padded_size[0] + left
        return canvas[..., top : top + self.height, start : start + self.width]
