"""Inception-v3 in plain torch, under torchvision's parameter names, up to its 2048 pool features.

One network for the three weight files :mod:`pcdms.evaluation.inception` loads: torchvision's ImageNet
layout, or with ``fid_variant`` the TensorFlow FID network's pooling (pytorch-fid's FIDInception blocks).
It can stop after any mixed block (``last_block``), as the stand-in encoders of the bundled model do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MIXED_BLOCKS = ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e")
MIXED_BLOCKS += ("Mixed_7a", "Mixed_7b", "Mixed_7c")


class BasicConv2d(nn.Module):
    def __init__(self, dim_in, dim_out, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(dim_in, dim_out, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(dim_out, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def average_pool(fid_variant: bool) -> nn.Module:
    # TensorFlow's average pool leaves the zero padding out of the mean; torchvision's counts it
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=not fid_variant)


class InceptionA(nn.Module):
    def __init__(self, dim_in, pool_features, pool: nn.Module):
        super().__init__()
        self.branch1x1 = BasicConv2d(dim_in, 64, 1)
        self.branch5x5_1 = BasicConv2d(dim_in, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(dim_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.pool = pool
        self.branch_pool = BasicConv2d(dim_in, pool_features, 1)

    def forward(self, x):
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), branch5x5, branch3x3dbl, self.branch_pool(self.pool(x))], dim=1)


class InceptionB(nn.Module):
    def __init__(self, dim_in):
        super().__init__()
        self.branch3x3 = BasicConv2d(dim_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(dim_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), branch3x3dbl, F.max_pool2d(x, 3, stride=2)], dim=1)


class InceptionC(nn.Module):
    def __init__(self, dim_in, channels_7x7, pool: nn.Module):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(dim_in, 192, 1)
        self.branch7x7_1 = BasicConv2d(dim_in, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(dim_in, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.pool = pool
        self.branch_pool = BasicConv2d(dim_in, 192, 1)

    def forward(self, x):
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            branch7x7dbl = conv(branch7x7dbl)
        return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl, self.branch_pool(self.pool(x))], dim=1)


class InceptionD(nn.Module):
    def __init__(self, dim_in):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(dim_in, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(dim_in, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = self.branch7x7x3_1(x)
        for conv in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            branch7x7x3 = conv(branch7x7x3)
        return torch.cat([branch3x3, branch7x7x3, F.max_pool2d(x, 3, stride=2)], dim=1)


class InceptionE(nn.Module):
    def __init__(self, dim_in, pool: nn.Module):
        super().__init__()
        self.branch1x1 = BasicConv2d(dim_in, 320, 1)
        self.branch3x3_1 = BasicConv2d(dim_in, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(dim_in, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.pool = pool
        self.branch_pool = BasicConv2d(dim_in, 192, 1)

    def forward(self, x):
        branch3x3 = self.branch3x3_1(x)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(branch3x3),
                self.branch3x3_2b(branch3x3),
                self.branch3x3dbl_3a(branch3x3dbl),
                self.branch3x3dbl_3b(branch3x3dbl),
                self.branch_pool(self.pool(x)),
            ],
            dim=1,
        )


class InceptionAux(nn.Module):
    """The auxiliary classifier: only its weights, so that torchvision's file loads strictly; never run."""

    def __init__(self, dim_in, num_classes):
        super().__init__()
        self.conv0 = BasicConv2d(dim_in, 128, 1)
        self.conv1 = BasicConv2d(128, 768, 5)
        self.fc = nn.Linear(768, num_classes)


class InceptionV3(nn.Module):
    """Inception-v3 under torchvision's parameter names, up to its 2048 pool features.

    ``fid_variant`` switches to the TensorFlow FID network's pooling (pytorch-fid's FIDInception blocks): the
    average pools before ``branch_pool`` ignore padding, and Mixed_7c max-pools there instead. ``fc`` and
    ``AuxLogits`` only hold the classifier weights of the files we load; they are never run.
    """

    def __init__(
        self,
        num_classes: int | None = 1000,
        aux_logits: bool = True,
        fid_variant: bool = False,
        last_block: str = MIXED_BLOCKS[-1],
    ):
        super().__init__()
        if last_block not in MIXED_BLOCKS:
            raise ValueError(f"last_block must be one of {', '.join(MIXED_BLOCKS)}, got {last_block!r}")
        self.fid_variant = fid_variant
        self.blocks = MIXED_BLOCKS[: MIXED_BLOCKS.index(last_block) + 1]
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32, average_pool(fid_variant))
        self.Mixed_5c = InceptionA(256, 64, average_pool(fid_variant))
        self.Mixed_5d = InceptionA(288, 64, average_pool(fid_variant))
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128, average_pool(fid_variant))
        self.Mixed_6c = InceptionC(768, 160, average_pool(fid_variant))
        self.Mixed_6d = InceptionC(768, 160, average_pool(fid_variant))
        self.Mixed_6e = InceptionC(768, 192, average_pool(fid_variant))
        self.AuxLogits = InceptionAux(768, num_classes) if aux_logits else None
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, average_pool(fid_variant))
        last_pool = nn.MaxPool2d(3, stride=1, padding=1) if fid_variant else average_pool(fid_variant)
        self.Mixed_7c = InceptionE(2048, last_pool)
        self.fc = nn.Linear(2048, num_classes) if num_classes is not None else None
        for name in MIXED_BLOCKS[len(self.blocks) :]:  # a truncated network keeps only the blocks it runs
            delattr(self, name)
        if last_block != MIXED_BLOCKS[-1]:
            self.fc = None

    def spatial_features(self, x):
        """(N, 3, H, W), already transformed for these weights → the last block's map (N, C, h, w): at 299x299,
        (N, 2048, 8, 8) after Mixed_7c, (N, 768, 17, 17) after Mixed_6a. Works from 75x75 up."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in self.blocks:
            x = getattr(self, name)(x)
        return x

    def pool_features(self, x):
        """(N, 3, 299, 299), already transformed for these weights → (N, 2048). Works from 75x75 up."""
        return self.spatial_features(x).mean(dim=(2, 3))
