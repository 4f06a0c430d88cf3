"""Reading the authors' checkpoints and other people's weights, safely and strictly.

The official training saved DeepSpeed checkpoints: ``{step}/mp_rank_00_model_states.pt``, whose
``"module"`` dict holds the weights. They are read with ``torch.load(weights_only=True)``: tensors
and plain containers only, never arbitrary pickled objects. A checkpoint is recognised by its keys,
so a file of the wrong stage (the official repository's issue #24) is named as such instead of
failing with a wall of missing keys.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from .errors import PcdmsError

OFFICIAL_FILE = "mp_rank_00_model_states.pt"

STAGE_NAMES = {
    "prior": "stage-1 prior",
    "inpaint": "stage-2 inpainting",
    "inpaint-lite": "lite stage-2 (PCDMs_ckpt.pt)",
    "refine": "stage-3 refining",
}


def detect_stage(keys) -> str | None:
    """Which official model a set of state-dict keys belongs to, or None."""
    keys = set(keys)
    if {"prd_embedding", "pose_encoder1.net.0.weight"} <= keys:
        return "prior"
    has_unet = any(key.startswith("unet.") for key in keys)
    has_pose = any(key.startswith("pose_proj.") for key in keys)
    if has_unet and has_pose and any(key.startswith("image_proj_model.") for key in keys):
        return "inpaint-lite"
    if has_unet and has_pose:
        return "inpaint"
    if has_unet and any(key.startswith("image_proj_model_p.") for key in keys):
        return "refine"
    return None


def _torch_load(path: Path):
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:
            if "mmap" not in str(error):
                raise
            with warnings.catch_warnings():  # torch warns about the pickle protocol of files it then reads
                warnings.simplefilter("ignore")
                return torch.load(path, map_location="cpu", weights_only=True)  # a legacy (non-zip) file
    except pickle.UnpicklingError as error:
        # The weights-only unpickler names a class it refuses as an "Unsupported global"; anything else it
        # cannot read (an unknown opcode) is not a checkpoint at all.
        if "Unsupported global" not in str(error):
            reason = str(error).split("\n")[0] if "Weights only" not in str(error) else "unreadable pickle data"
            raise PcdmsError(f"{path}: not a PyTorch checkpoint, or a corrupt one ({reason})") from None
        raise PcdmsError(
            f"{path}: holds Python objects besides tensors, and pcdms never unpickles arbitrary objects; "
            'if you trust the file, re-save its weights with: python -c "import torch; '
            f"torch.save(torch.load('{path}', weights_only=False)['module'], 'weights.pt')\" and load weights.pt"
        ) from None
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as error:
        reason = str(error).split(". ")[0]
        raise PcdmsError(f"{path}: truncated or corrupt checkpoint ({reason})") from None


def load_official_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The weights of an official checkpoint: a ``mp_rank_00_model_states.pt`` (or its folder), its
    ``"module"`` dict; or a plain state dict saved with ``torch.save``."""
    path = Path(path)
    if path.is_dir():
        path = path / OFFICIAL_FILE
    if not path.is_file():
        raise PcdmsError(f"{path}: no such checkpoint file")
    data = _torch_load(path)
    state = data.get("module", data) if isinstance(data, dict) else None
    if not _is_state_dict(state):
        raise PcdmsError(f"{path}: not a checkpoint of model weights (expected a 'module' dict of tensors)")
    return state


def _is_state_dict(data) -> bool:
    return (
        isinstance(data, dict)
        and bool(data)
        and all(isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in data.items())
    )


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A plain state dict: a ``.safetensors`` file, or a dict of tensors saved with ``torch.save`` (read weights-only)."""
    path = Path(path)
    if not path.is_file():
        raise PcdmsError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        try:
            return load_file(path)
        except SafetensorError as error:
            raise PcdmsError(f"{path}: not a readable safetensors file ({error})") from None
    state = _torch_load(path)
    if not _is_state_dict(state):
        raise PcdmsError(f"{path}: not a state dict (expected a dict of tensors)")
    return state


def check_state_dict(
    state_dict: dict[str, torch.Tensor], expected_shapes: dict[str, torch.Size], source, description: str
) -> None:
    """Raise a one-line error counting the missing, unexpected and wrongly shaped keys and naming the first of each."""
    missing = [key for key in expected_shapes if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected_shapes]
    wrong_shape = [
        f"{key} {tuple(state_dict[key].shape)} (model: {tuple(shape)})"
        for key, shape in expected_shapes.items()
        if key in state_dict and state_dict[key].shape != shape
    ]
    problems = [
        f"{len(items)} {label} (first: {items[0]})"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("of the wrong shape", wrong_shape))
        if items
    ]
    if problems:
        raise PcdmsError(f"{source}: does not match {description}: " + "; ".join(problems) + " keys")


def load_strict(
    model: nn.Module, state_dict: dict[str, torch.Tensor], source: str | os.PathLike, expected_stage: str
) -> None:
    """Load ``state_dict`` into ``model`` with every key and shape matching, or say exactly what is wrong."""
    stage = detect_stage(state_dict)
    if stage is not None and stage != expected_stage:
        example = next(iter(state_dict))
        raise PcdmsError(
            f"{source}: this is a {STAGE_NAMES[stage]} checkpoint (keys like {example!r}), "
            f"not a {STAGE_NAMES[expected_stage]} one"
        )
    expected_shapes = {key: value.shape for key, value in model.state_dict().items()}
    check_state_dict(state_dict, expected_shapes, source, f"the {STAGE_NAMES[expected_stage]}")
    model.load_state_dict(state_dict, strict=True)


@dataclass
class LoadReport:
    """What a partial initialisation took: keys loaded, keys left freshly initialised, keys not used."""

    loaded: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.loaded)} tensors loaded, {len(self.fresh)} freshly initialised "
            f"({', '.join(self.fresh)}), {len(self.unused)} not used ({', '.join(self.unused)})"
        )


def load_matching(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> LoadReport:
    """Copy every tensor whose name and shape match; keep the model's own initialisation for the rest."""
    own = model.state_dict()
    report = LoadReport()
    matching = {}
    for key, value in own.items():
        if key in state_dict and state_dict[key].shape == value.shape:
            matching[key] = state_dict[key]
            report.loaded.append(key)
        else:
            report.fresh.append(key)
    report.unused = [key for key in state_dict if key not in own]
    model.load_state_dict(matching, strict=False)
    return report


def read_diffusers_weights(folder: str | os.PathLike, subfolder: str | None = None) -> dict[str, torch.Tensor]:
    """The weights of a diffusers model folder (``diffusion_pytorch_model`` safetensors, sharded or not, or .bin)."""
    folder = Path(folder)
    if subfolder and (folder / subfolder).is_dir():
        folder = folder / subfolder
    single = folder / "diffusion_pytorch_model.safetensors"
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    legacy = folder / "diffusion_pytorch_model.bin"
    try:
        if single.is_file():
            return load_file(single)
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return {key: value for shard in shards for key, value in load_file(folder / shard).items()}
    except (OSError, ValueError, KeyError) as error:
        raise PcdmsError(f"{folder}: cannot read the model weights ({error})") from None
    if legacy.is_file():
        return load_official_state_dict(legacy)
    raise PcdmsError(f"{folder}: no diffusers model weights (diffusion_pytorch_model.safetensors or .bin)")
