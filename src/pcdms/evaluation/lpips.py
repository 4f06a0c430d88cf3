"""LPIPS v0.1 with AlexNet (the lpips package's default) in plain torch, from torchvision's and lpips' files."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from torch import nn

from ..checkpoints import check_state_dict, read_state_dict
from ..errors import PcdmsError

TAP_CHANNELS = (64, 192, 384, 256, 256)

# torchvision's classifier, which alexnet-owt-7be5be79.pth holds next to the convolutions LPIPS uses
ALEXNET_CLASSIFIER_SHAPES = {
    "classifier.1.weight": (4096, 9216),
    "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096),
    "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096),
    "classifier.6.bias": (1000,),
}


class AlexNetFeatures(nn.Module):
    """torchvision's AlexNet convolutions (``features.N``), returning the output of each of its five ReLUs."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(),
        )

    def forward(self, x) -> list[torch.Tensor]:
        taps = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                taps.append(x)
        return taps


def unit_normalize(x, eps=1e-10):
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """The learned perceptual distance of Zhang et al. (v0.1, AlexNet): lower is more alike.

    Inputs are (N, 3, H, W) in [-1, 1]; ``normalize=True`` takes [0, 1] inputs and maps them by 2x - 1. That flag
    is where evaluation protocols differ: the official PCDMs script feeds [0, 1] images with ``normalize`` off,
    CFLD's turns it on; their numbers are not comparable. Evaluation only: no gradients, always in eval mode.
    """

    def __init__(self):
        super().__init__()
        self.alexnet = AlexNetFeatures()
        self.lins = nn.ModuleList(nn.Conv2d(channels, 1, 1, bias=False) for channels in TAP_CHANNELS)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)

    @torch.no_grad()
    def forward(self, a: torch.Tensor, b: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """The distance of each pair, shape (N,)."""
        if normalize:
            a, b = 2 * a - 1, 2 * b - 1
        taps = self.alexnet((torch.cat([a, b]) - self.shift) / self.scale)
        distance = 0
        for lin, tap in zip(self.lins, taps, strict=True):
            tap_a, tap_b = unit_normalize(tap).chunk(2)
            distance = distance + lin((tap_a - tap_b) ** 2).mean(dim=(1, 2, 3))
        return distance


def lpips_linear_path() -> Path | None:
    """``weights/v0.1/alex.pth`` of the installed lpips package, or None; found without importing the package,
    whose import pulls torchvision."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "weights" / "v0.1" / "alex.pth"
    return path if path.is_file() else None


def load_lpips(alexnet_path: str | os.PathLike, linear_path: str | os.PathLike | None = None) -> LPIPS:
    """LPIPS from torchvision's AlexNet file (``alexnet-owt-7be5be79.pth``, checked whole, classifier included)
    and the lpips package's linear layers (``weights/v0.1/alex.pth``; by default the installed package's)."""
    linear_path = linear_path or lpips_linear_path()
    if linear_path is None:
        raise PcdmsError(
            "LPIPS needs the lpips package's linear weights: pass its weights/v0.1/alex.pth, "
            "or install the package with: pip install --no-deps lpips==0.1.4"
        )
    model = LPIPS()
    alexnet = read_state_dict(alexnet_path)
    expected_shapes = {f"features.{key}": value.shape for key, value in model.alexnet.features.state_dict().items()}
    expected_shapes |= {key: torch.Size(shape) for key, shape in ALEXNET_CLASSIFIER_SHAPES.items()}
    check_state_dict(alexnet, expected_shapes, alexnet_path, "torchvision's AlexNet (alexnet-owt-7be5be79.pth)")
    model.alexnet.load_state_dict({key: value for key, value in alexnet.items() if key.startswith("features.")})
    linear = read_state_dict(linear_path)
    expected_shapes = {f"lin{k}.model.1.weight": lin.weight.shape for k, lin in enumerate(model.lins)}
    check_state_dict(linear, expected_shapes, linear_path, "the lpips package's v0.1 AlexNet linear layers")
    model.lins.load_state_dict({f"{k}.weight": linear[f"lin{k}.model.1.weight"] for k in range(len(model.lins))})
    return model
