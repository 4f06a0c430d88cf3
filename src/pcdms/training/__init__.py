"""Training: one loop (accelerate) for every stage, driven by a YAML config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from accelerate.utils import set_seed

from ..io import atomic_write
from .config import RunConfig
from .config_file import load_config
from .loop import Task, train


def build_task(config: RunConfig) -> Task:
    if config.stage == "vae":
        from .vae import VaeTask

        return VaeTask(config.vae, config.data)
    if config.stage == "prior":
        from .prior import PriorTask

        return PriorTask(config.prior, config.data, config.output_dir)
    if config.stage == "inpaint":
        from .inpaint import InpaintTask

        return InpaintTask(config.inpaint, config.data, config.output_dir)
    if config.stage == "refine":
        from .refine import RefineTask

        return RefineTask(config.refine, config.data, config.output_dir)
    raise ValueError(f"no training task for stage {config.stage!r}")


def run_training(
    config: RunConfig, resume: str = "latest", on_step: Callable[[int, float], None] | None = None
) -> Path:
    """Train the stage a config names; return the folder of the trained model."""
    set_seed(config.seed)  # before the model is built, so a new model's initial weights repeat too
    task = build_task(config)
    output_dir = Path(config.output_dir)
    with atomic_write(output_dir / "config.yaml") as file:
        yaml.safe_dump(config.to_dict(), file, sort_keys=False)
    return train(config.training, task, output_dir, config.seed, resume, config.to_dict(), on_step)


__all__ = ["RunConfig", "Task", "load_config", "run_training", "train"]
