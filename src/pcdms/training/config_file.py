"""Reading a training config file (YAML) into the settings of :mod:`pcdms.training.config`.

Every setting is checked when read: unknown names (with the closest known one), types, numbers (NaN, infinite,
out of range), choices, the paths a stage needs, and the architecture's argument names; each problem is one
:class:`PcdmsError` naming the file and the setting. ``--set section.name=value`` overrides win over the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from diffusers.optimization import SchedulerType

from ..errors import PcdmsError
from ..pose.vector import CONVENTIONS
from .config import STAGES, RunConfig


def _convert(value: Any, kind: Any, where: str) -> Any:
    """``value`` checked against the annotation ``kind``; YAML's 1e-4 (a string to it) becomes a float."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        if float in options and isinstance(value, int | float) and not isinstance(value, bool):
            return _convert(value, float, where)  # a number given is checked as one (never read as text)
        errors = []
        for option in (option for option in options if option is not type(None)):
            try:
                return _convert(value, option, where)
            except PcdmsError as error:
                errors.append(str(error))
        raise PcdmsError(errors[0])
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise PcdmsError(f"{where}: expected a list, got {value!r}")
        return [_convert(item, typing.get_args(kind)[0], where) for item in value]
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise PcdmsError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise PcdmsError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PcdmsError(f"{where}: expected a whole number, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool):
            raise PcdmsError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise PcdmsError(f"{where}: expected a number, got {value!r}") from None
        if not math.isfinite(number):  # YAML's .nan and .inf, or the text "nan"
            raise PcdmsError(f"{where}: expected a finite number, got {value!r}")
        return number
    if kind is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise PcdmsError(f"{where}: expected text, got {value!r}")
        return str(value)
    raise TypeError(f"unsupported setting type {kind!r}")


def _build(cls, values: Any, where: str):
    """``cls`` from a mapping; ``where`` is ``"file: section"`` for messages."""
    if not isinstance(values, dict):
        raise PcdmsError(f"{where}: expected a mapping of settings, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    arguments = {}
    for key, value in values.items():
        if key not in hints:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(names)}"
            raise PcdmsError(f"{where}: unknown setting {key!r}{hint}")
        arguments[key] = _convert(value, hints[key], f"{where}.{key}" if ": " in where else f"{where}: {key}")
    return cls(**arguments)


def load_config(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a training config; ``overrides`` (``{"training.max_steps": 10}``) win over the file."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise PcdmsError(f"{path}: no such file") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise PcdmsError(f"{path}: not valid YAML{where}") from None
    if not isinstance(values, dict):
        raise PcdmsError(f"{path}: expected a mapping of settings at the top")
    for dotted, value in (overrides or {}).items():
        _override(values, dotted, value, path)
    config = _build(RunConfig, values, str(path))
    if config.stage not in STAGES:
        raise PcdmsError(f"{path}: stage must be one of {', '.join(STAGES)}, got {config.stage!r}")
    if getattr(config, config.stage) is None:
        raise PcdmsError(f"{path}: a {config.stage} run needs a '{config.stage}:' section")
    for name, value in (("output_dir", config.output_dir), ("data.root", config.data.root)):
        if not value:
            raise PcdmsError(f"{path}: {name} is not set")
    _check_values(config, path)
    return config


def _override(values: dict[str, Any], dotted: str, value: Any, path: Path) -> None:
    """Set ``section.name`` (``--set``) in the file's settings; a setting used as a section is refused."""
    *parents, name = dotted.split(".")
    if not name or not all(parents):
        raise PcdmsError(f"--set {dotted}={value}: expected section.name=value")
    section, kind = values, RunConfig
    for depth, parent in enumerate(parents):
        where = ".".join(parents[: depth + 1])
        kind = _section_kind(kind, parent)
        inner = section.get(parent)
        if kind is None or (inner is not None and not isinstance(inner, dict)):
            shown = f" ({inner!r} in {path})" if parent in section else ""
            raise PcdmsError(f"--set {dotted}={value}: {where} is a setting{shown}, not a section")
        if inner is None:  # absent, or an empty section in the file ("prior:" with nothing under it)
            inner = section[parent] = {}
        section = inner
    section[name] = value


def _section_kind(kind: Any, name: str) -> Any:
    """What ``name`` is inside ``kind`` (a settings class, or ``dict`` for free mappings such as an
    architecture): the class of a section, ``dict``, or None for a setting that holds a value."""
    if kind is dict:
        return dict
    hints = typing.get_type_hints(kind)
    if name not in hints:
        return dict  # an unknown name: reading the file names it with the settings it could be
    options = [option for option in typing.get_args(hints[name]) if option is not type(None)] or [hints[name]]
    for option in options:
        if dataclasses.is_dataclass(option):
            return option
        if option is dict or typing.get_origin(option) is dict:
            return dict
    return None


# Numeric settings and their ranges: (section, name, lowest, lowest allowed?, highest, highest allowed?).
# Checked whenever the section is present, before any data is read, so a bad value never waits for
# the data to be prepared (nor reaches the optimiser as a traceback).
_RANGES = [
    ("training", "max_steps", 1, True, None, False),
    ("training", "batch_size", 1, True, None, False),
    ("training", "gradient_accumulation_steps", 1, True, None, False),
    ("training", "learning_rate", 0, False, None, False),
    ("training", "weight_decay", 0, True, None, False),
    ("training", "adam_beta1", 0, True, 1, False),
    ("training", "adam_beta2", 0, True, 1, False),
    ("training", "adam_epsilon", 0, False, None, False),
    ("training", "warmup_steps", 0, True, None, False),
    ("training", "max_grad_norm", 0, True, None, False),  # 0: no clipping
    ("training", "ema_decay", 0, False, 1, False),
    ("training", "checkpoint_every", 1, True, None, False),
    ("training", "checkpoints_to_keep", 1, True, None, False),  # fewer would delete every checkpoint it writes
    ("training", "log_every", 1, True, None, False),
    ("training", "num_workers", 0, True, None, False),
    ("vae", "kl_weight", 0, True, None, False),
    ("vae", "scaling_factor", 0, False, None, False),
    ("prior", "clip_std", 0, False, None, False),
    ("prior", "noise_offset", 0, True, None, False),
    ("prior", "embedding_batch_size", 1, True, None, False),
    ("inpaint", "noise_offset", 0, True, None, False),
    ("inpaint", "embedding_batch_size", 1, True, None, False),
    ("refine", "noise_offset", 0, True, None, False),
]
MAX_SEED = 2**32 - 1  # numpy's seeds (accelerate's set_seed seeds numpy too)


def _check_range(path: Path, name: str, value: Any, low, low_inclusive: bool, high, high_inclusive: bool) -> None:
    if value is None or isinstance(value, str):  # unset (ema_decay), or "auto" (checked as a choice)
        return
    too_low = value < low if low_inclusive else value <= low
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if not too_low and not too_high:
        return
    rule = f"at least {low}" if low_inclusive else f"above {low}"
    if high is not None:
        rule += f" and at most {high}" if high_inclusive else f" and below {high}"
    raise PcdmsError(f"{path}: {name} must be {rule}, got {value}")


# The class each stage's ``architecture`` mapping is passed to, for its argument names.
_ARCHITECTURES = {
    "vae": ("diffusers", "AutoencoderKL"),
    "prior": ("pcdms.models.prior", "PosePriorTransformer"),
    "inpaint": ("pcdms.models.inpaint", "InpaintModel"),
    "refine": ("pcdms.models.refine", "RefineModel"),
}


def _check_architecture(path: Path, stage: str, architecture: dict[str, Any]) -> None:
    """The architecture's names are arguments of the model it builds, and its numbers are finite."""
    import importlib

    module, name = _ARCHITECTURES[stage]
    model_class = getattr(importlib.import_module(module), name)
    checks = [(f"{stage}.architecture", architecture, model_class)]
    if isinstance(architecture.get("unet_config"), dict):
        from diffusers import UNet2DConditionModel

        checks.append((f"{stage}.architecture.unet_config", architecture["unet_config"], UNet2DConditionModel))
    for where, mapping, cls in checks:
        known = [name for name in inspect.signature(cls.__init__).parameters if name != "self"]
        for key, value in mapping.items():
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise PcdmsError(f"{path}: {where}: {cls.__name__} has no argument {key!r}{hint}")
            for number in _numbers(value):
                if not math.isfinite(number):
                    raise PcdmsError(f"{path}: {where}.{key}: expected finite numbers, got {value!r}")


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, list | tuple):
        return [number for item in value for number in _numbers(item)]
    return []


def _check_values(config: RunConfig, path: Path) -> None:
    choices = [
        ("data.unusable_pairs", config.data.unusable_pairs, ("error", "skip")),
        ("training.mixed_precision", config.training.mixed_precision, ("no", "fp16", "bf16")),
        ("training.report_to", config.training.report_to, ("none", "tensorboard")),
        ("training.lr_scheduler", config.training.lr_scheduler, tuple(type.value for type in SchedulerType)),
    ]
    if not 0 <= config.seed <= MAX_SEED:
        raise PcdmsError(f"{path}: seed must be between 0 and {MAX_SEED}, got {config.seed}")
    for section_name, name, *bounds in _RANGES:
        section = getattr(config, section_name)
        if section is not None:
            _check_range(path, f"{section_name}.{name}", getattr(section, name), *bounds)
    section = getattr(config, config.stage)
    _check_architecture(path, config.stage, section.architecture)
    probabilities = []
    if config.vae is not None:
        vae = config.vae
        if isinstance(vae.scaling_factor, str):
            choices.append(("vae.scaling_factor", vae.scaling_factor, ("auto",)))
        if len(vae.size) != 2 or min(vae.size) < 1:
            raise PcdmsError(f"{path}: vae.size is [width, height], got {vae.size}")
    if config.prior is not None:
        prior = config.prior
        choices.append(("prior.pose_convention", prior.pose_convention, tuple(CONVENTIONS)))
        choices += [
            (f"prior.{name}", value, ("auto",))
            for name, value in (("clip_mean", prior.clip_mean), ("clip_std", prior.clip_std))
            if isinstance(value, str)
        ]
        probabilities += [
            (f"prior.{name}", getattr(prior, name))
            for name in ("drop_source_image", "drop_source_pose", "drop_target_pose")
        ]
        if not prior.image_encoder:
            raise PcdmsError(f"{path}: prior.image_encoder is not set (a local CLIP vision folder)")
    if config.inpaint is not None:
        inpaint = config.inpaint
        probabilities += [
            (f"inpaint.{name}", getattr(inpaint, name)) for name in ("drop_image_features", "drop_target_embedding")
        ]
        if not inpaint.dinov2:
            raise PcdmsError(f"{path}: inpaint.dinov2 is not set (a local DINOv2 folder)")
        if not inpaint.vae and not inpaint.stable_diffusion:
            raise PcdmsError(f"{path}: inpaint.vae is not set (a local AutoencoderKL folder, or set stable_diffusion)")
        if len(inpaint.size) != 2 or min(inpaint.size) < 1:
            raise PcdmsError(f"{path}: inpaint.size is [width, height] of one half, got {inpaint.size}")
    if config.refine is not None:
        refine = config.refine
        probabilities.append(("refine.drop_coarse_image", refine.drop_coarse_image))
        if not refine.dinov2:
            raise PcdmsError(f"{path}: refine.dinov2 is not set (a local DINOv2 folder)")
        if not refine.vae and not refine.stable_diffusion:
            raise PcdmsError(f"{path}: refine.vae is not set (a local AutoencoderKL folder, or set stable_diffusion)")
        if not refine.coarse_images:
            raise PcdmsError(
                f"{path}: refine.coarse_images is not set (the folder of stage 2's images of the training pairs)"
            )
        if len(refine.size) != 2 or min(refine.size) < 1:
            raise PcdmsError(f"{path}: refine.size is [width, height], got {refine.size}")
    for name, value, allowed in choices:
        if value not in allowed:
            raise PcdmsError(f"{path}: {name} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    for name, value in probabilities:
        if not 0 <= value <= 1:
            raise PcdmsError(f"{path}: {name} is a probability, between 0 and 1, got {value}")
