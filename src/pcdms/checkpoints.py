"""Reading the authors' checkpoints and other people's weights, safely and strictly.

The official training saved DeepSpeed checkpoints: ``{step}/mp_rank_00_model_states.pt``, whose
``"module"`` dict holds the weights. They are read with ``torch.load(weights_only=True)``: tensors
and plain containers only, never arbitrary pickled objects (a refused file is named as such by
:mod:`pcdms.pickle_scan`). A checkpoint is recognised by its keys,
so a file of the wrong stage (the official repository's issue #24) is named as such instead of
failing with a wall of missing keys.
"""

from __future__ import annotations

import json
import os
import pickle
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn

from .errors import PcdmsError
from .pickle_scan import unpickling_refused

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
    except pickle.UnpicklingError:
        # Whatever torch's wording, the weights-only unpickler refused the file: say which kind of file it is.
        raise unpickling_refused(
            path,
            'if you trust the file, re-save its weights with: python -c "import torch; '
            f"torch.save(torch.load('{path}', weights_only=False)['module'], 'weights.pt')\" and load weights.pt",
        ) from None
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as error:
        reason = str(error).split(". ")[0]
        raise PcdmsError(f"{path}: truncated or corrupt checkpoint ({reason})") from None


# What training wrappers put in front of a model's keys: DDP and DeepSpeed wrap the whole model
# (``module.``); torch.compile wraps a model or any of its parts (``_orig_mod.``).
WRAPPER_PREFIX = "module."
COMPILE_SEGMENT = "_orig_mod."


def strip_wrapper_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with the keys a bare model has: every ``_orig_mod.`` segment removed, and ``module.``
    removed from the front when every key starts with it (as many times as it was wrapped)."""
    if any(COMPILE_SEGMENT in key for key in state):
        state = {key.replace(COMPILE_SEGMENT, ""): value for key, value in state.items()}
    while state and all(key.startswith(WRAPPER_PREFIX) for key in state):
        state = {key.removeprefix(WRAPPER_PREFIX): value for key, value in state.items()}
    return state


def load_official_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The weights of an official checkpoint: a ``mp_rank_00_model_states.pt`` (or its folder), its
    ``"module"`` dict; or a plain state dict saved with ``torch.save``. Keys saved through a wrapper
    (``module.``, ``_orig_mod.``) come back as the bare model's."""
    path = Path(path)
    if path.is_dir():
        path = path / OFFICIAL_FILE
    if not path.is_file():
        raise PcdmsError(f"{path}: no such checkpoint file")
    data = _torch_load(path)
    state = data.get("module", data) if isinstance(data, dict) else None
    if not _is_state_dict(state):
        raise PcdmsError(f"{path}: not a checkpoint of model weights (expected a 'module' dict of tensors)")
    return strip_wrapper_prefixes(state)


def _is_state_dict(data) -> bool:
    return (
        isinstance(data, dict)
        and bool(data)
        and all(isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in data.items())
    )


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A plain state dict: a ``.safetensors`` file, or a dict of tensors saved with ``torch.save`` (read
    weights-only); wrapper prefixes (``module.``, ``_orig_mod.``) are stripped."""
    path = Path(path)
    if not path.is_file():
        raise PcdmsError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        try:
            return strip_wrapper_prefixes(load_file(path))
        except SafetensorError as error:
            raise PcdmsError(f"{path}: not a readable safetensors file ({error})") from None
    state = _torch_load(path)
    if not _is_state_dict(state):
        raise PcdmsError(f"{path}: not a state dict (expected a dict of tensors)")
    return strip_wrapper_prefixes(state)


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
            return strip_wrapper_prefixes(load_file(single))
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return strip_wrapper_prefixes(
                {key: value for shard in shards for key, value in load_file(folder / shard).items()}
            )
    except (OSError, ValueError, KeyError) as error:
        raise PcdmsError(f"{folder}: cannot read the model weights ({error})") from None
    if legacy.is_file():
        return load_official_state_dict(legacy)
    raise PcdmsError(f"{folder}: no diffusers model weights (diffusion_pytorch_model.safetensors or .bin)")


def check_pipeline_folder(pipeline_class, folder: str | os.PathLike, skip=()) -> None:
    """Each model component of a saved pipeline folder holds the class the pipeline takes, and weights
    of the sizes its ``config.json`` builds; else one line naming the component and its config file.

    diffusers and transformers would otherwise build a component from whatever config they find (a
    stage-3 config in the stage-2 folder), fail with a message naming no file, or, where weights are
    missing, initialise them at random without a word. Only configs and safetensors headers are read
    (the models are built on the meta device); components in ``skip`` (given by the caller) are left out.
    """
    folder = Path(folder)
    for component, expected in typing.get_type_hints(pipeline_class.__init__).items():
        options = [option for option in typing.get_args(expected) if option is not type(None)] or [expected]
        model_class = options[0]
        config_file = folder / component / "config.json"
        if component in skip or not isinstance(model_class, type) or not issubclass(model_class, nn.Module):
            continue
        if config_file.is_file():
            check_model_folder(model_class, folder / component, f"{component} component")


def check_model_folder(model_class, folder: Path, what: str) -> None:
    """``folder``'s ``config.json`` describes a ``model_class`` whose every weight is in the folder's
    safetensors at the shape the config gives (see :func:`check_pipeline_folder`)."""
    config_file = folder / "config.json"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError):
        raise PcdmsError(f"{config_file}: the {what}'s config is not readable JSON") from None
    if not isinstance(config, dict):
        raise PcdmsError(f"{config_file}: the {what}'s config is not a JSON object")
    transformers_config = getattr(model_class, "config_class", None)
    found = config.get("_class_name") if transformers_config is None else config.get("model_type")
    expected = model_class.__name__ if transformers_config is None else transformers_config.model_type
    # A full CLIP folder ("clip") holds the vision tower ("clip_vision_model"), as load_local_model accepts.
    if found and found != expected and not str(expected).startswith(f"{found}_"):
        raise PcdmsError(f"{config_file}: the {what}'s config is for {found}, not {expected}")
    shapes = _safetensors_shapes(folder, "model" if transformers_config else "diffusion_pytorch_model")
    if shapes is None:
        return  # other weight formats are read, and checked, by the library itself
    expected_shapes = _built_shapes(model_class, config, transformers_config, config_file, what)
    given = {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}
    if transformers_config is not None:  # transformers renames and ties some keys on load: shapes only
        given = {key: value for key, value in given.items() if key in expected_shapes}
        expected_shapes = {key: shape for key, shape in expected_shapes.items() if key in given}
    check_state_dict(given, expected_shapes, f"{folder} (the {what})", f"the sizes of {config_file}")


def _safetensors_shapes(folder: Path, stem: str) -> dict[str, list[int]] | None:
    """Every tensor's shape from the headers of ``stem.safetensors`` (or its shards), or None without such files."""
    single, index = folder / f"{stem}.safetensors", folder / f"{stem}.safetensors.index.json"
    try:
        if index.is_file():
            files = [folder / shard for shard in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
        elif single.is_file():
            files = [single]
        else:
            return None
        shapes = {}
        for path in files:
            with safe_open(path, "pt") as weights:
                names = weights.keys()
                shapes.update({key: weights.get_slice(key).get_shape() for key in names})
        return shapes
    except (OSError, ValueError, KeyError, SafetensorError) as error:
        raise PcdmsError(f"{folder}: cannot read the model weights ({error})") from None


def _built_shapes(model_class, config: dict, transformers_config, config_file: Path, what: str) -> dict:
    """The parameter and buffer shapes of ``model_class`` built from ``config`` on the meta device."""
    from accelerate import init_empty_weights

    try:
        with init_empty_weights(include_buffers=True), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if transformers_config is not None:
                model = model_class(transformers_config.from_dict(config))
            else:
                model = model_class.from_config(config)
    except (TypeError, ValueError, KeyError, AttributeError, RuntimeError, AssertionError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PcdmsError(f"{config_file}: cannot build the {what} from it ({reason})") from None
    return {key: value.shape for key, value in model.state_dict().items()}
