"""The one training loop of pcdms, for every stage, on a CPU, one GPU or many (accelerate).

A stage gives a :class:`Task`: its trainable model, its dataset of ready tensors, and its loss. The
loop does the rest: optimiser, learning-rate schedule, mixed precision, gradient accumulation and
clipping, gradient checkpointing, an optional EMA of the weights, a progress bar, logging,
checkpoints and exact resumption. DeepSpeed and FSDP come through accelerate's own configuration
(``accelerate launch --config_file ... -m pcdms train ...``).

Resumption is exact: the data order of an epoch is fixed by the seed and the epoch, and the noise,
timesteps and condition drops of each micro-batch come from a generator seeded by the seed, the
micro-batch number and the process, so a run stopped at step k and resumed continues as if it had
never stopped. Checkpoints are written all at once and read without unpickling code (see ``.state``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, is_tensorboard_available
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..errors import PcdmsError
from .config import TrainingConfig
from .state import (
    CHECKPOINTS,
    EMA_FILE,
    checkpoint_step,
    find_checkpoint,
    load_ema,
    prune_checkpoints,
    write_checkpoint,
)

FINAL_MODEL = "model"


class Task(Protocol):
    """What a stage gives the loop."""

    name: str
    model: nn.Module  # the trainable model
    dataset: Dataset  # items the collate function batches

    def collate(self, items: list[Any]) -> dict[str, torch.Tensor]: ...

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        """The training loss of one micro-batch; all its randomness comes from ``generator``."""
        ...

    def save(self, model: nn.Module, folder: Path) -> None:
        """Write the trained model as the stage's diffusers-style folder."""
        ...

    # Optional: ``to(device)`` keeps the frozen tensors that batches are gathered from on the training device.


def micro_batch_generator(seed: int, micro_step: int, process: int) -> torch.Generator:
    """The random source of one micro-batch on one process: the same numbers whenever that batch is run."""
    return torch.Generator().manual_seed((seed * 1_000_003 + process * 7_919 + micro_step) % 2**63)


def train(
    config: TrainingConfig,
    task: Task,
    output_dir: str | Path,
    seed: int = 0,
    resume: str = "latest",
    run_config: dict[str, Any] | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> Path:
    """Train ``task.model``; return the folder of the final model (``output_dir/model``).

    ``resume``: ``latest`` (the newest complete checkpoint in ``output_dir``, if any; the damaged ones
    newer than it are reported and skipped), ``none``, or a checkpoint folder. ``run_config`` is logged
    with the run. ``on_step(step, loss)`` is called after every optimiser step with the mean loss since
    the last log.
    """
    output_dir = Path(output_dir)
    if config.report_to == "tensorboard" and not is_tensorboard_available():
        raise PcdmsError("training.report_to is tensorboard, which is not installed: pip install tensorboard")
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with=None if config.report_to == "none" else config.report_to,
        project_dir=output_dir,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=seed),
    )

    model = task.model
    if config.num_workers == 0 and hasattr(task, "to"):
        task.to(accelerator.device)  # loader workers cannot share a GPU's tensors
    if config.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    model.train()
    optimizer = torch.optim.AdamW(
        [parameter for parameter in model.parameters() if parameter.requires_grad],
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        eps=config.adam_epsilon,
        weight_decay=config.weight_decay,
    )
    loader = DataLoader(
        task.dataset,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=len(task.dataset) >= config.batch_size,
        collate_fn=task.collate,
        num_workers=config.num_workers,
        generator=torch.Generator().manual_seed(seed),
    )
    # The prepared scheduler steps once per process per optimiser step, so its lengths scale with them.
    lr_scheduler = get_scheduler(
        config.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=config.warmup_steps * accelerator.num_processes,
        num_training_steps=config.max_steps * accelerator.num_processes,
    )
    model, optimizer, loader, lr_scheduler = accelerator.prepare(model, optimizer, loader, lr_scheduler)
    ema = None
    if config.ema_decay is not None:
        # Not registered with accelerate, which would unpickle it on resume: saved as safetensors by .state.
        # foreach: one multi-tensor update for all parameters instead of a few small operations per parameter.
        ema = EMAModel(accelerator.unwrap_model(model).parameters(), decay=config.ema_decay, foreach=True)
        ema.to(accelerator.device)

    global_step = 0
    checkpoint = find_checkpoint(output_dir, resume, accelerator.process_index, accelerator.print)
    if checkpoint is not None:
        has_ema = (checkpoint / EMA_FILE).is_file()
        if has_ema != (ema is not None):
            saved = "with an EMA of the weights" if has_ema else "without an EMA"
            raise PcdmsError(
                f"{checkpoint}: saved {saved}; resume with the training.ema_decay it was saved with, "
                "or start over with --resume none"
            )
        try:
            accelerator.load_state(str(checkpoint))
        except (RuntimeError, ValueError, KeyError) as error:
            raise PcdmsError(
                f"{checkpoint}: cannot resume from it with these settings ({str(error).splitlines()[0]}); "
                "resume with the settings it was saved with (the model, the optimiser), or start over with --resume none"
            ) from None
        if ema is not None:
            load_ema(ema, checkpoint, accelerator.device)
        global_step = checkpoint_step(checkpoint)
        accelerator.print(f"resumed from {checkpoint} at step {global_step}")
    if accelerator.is_main_process and config.report_to != "none":
        accelerator.init_trackers(f"pcdms-{task.name}", config=_flat(run_config or {}))

    # accelerate also steps at the end of each epoch, on the batches left over from the accumulation.
    steps_per_epoch = math.ceil(len(loader) / config.gradient_accumulation_steps)
    first_epoch, steps_into_epoch = divmod(global_step, steps_per_epoch)
    batches_to_skip = steps_into_epoch * config.gradient_accumulation_steps
    micro_step = first_epoch * len(loader) + batches_to_skip
    # accelerate counts micro-batches to know when to step; a checkpoint written by Ctrl-C in the middle
    # of an accumulation holds that count mid-way, so set it to where the last finished step left it.
    accelerator.step = batches_to_skip
    progress = tqdm(
        total=config.max_steps,
        initial=global_step,
        desc=f"training {task.name}",
        unit="step",
        disable=not accelerator.is_local_main_process,
    )
    running_loss, running_count = 0.0, 0

    def save_checkpoint() -> None:
        folder = output_dir / CHECKPOINTS / f"step-{global_step}"
        write_checkpoint(accelerator, folder, ema)  # under a temporary name, renamed when complete
        if accelerator.is_main_process:
            prune_checkpoints(output_dir, folder, config.checkpoints_to_keep)

    try:
        for epoch in itertools.count(first_epoch):
            if global_step >= config.max_steps:
                break
            loader.set_epoch(epoch)
            batches = loader
            if epoch == first_epoch and batches_to_skip:
                batches = accelerator.skip_first_batches(loader, batches_to_skip)
            for batch in batches:
                generator = micro_batch_generator(seed, micro_step, accelerator.process_index)
                with accelerator.accumulate(model):
                    loss = task.loss(model, batch, generator)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and config.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                micro_step += 1
                running_loss += accelerator.gather(loss.detach()).mean().item()
                running_count += 1
                if not accelerator.sync_gradients:
                    continue
                global_step += 1
                if ema is not None:
                    ema.step(accelerator.unwrap_model(model).parameters())
                average = running_loss / running_count
                progress.update(1)
                progress.set_postfix(loss=f"{average:.4g}", lr=f"{lr_scheduler.get_last_lr()[0]:.3g}")
                if on_step is not None:
                    on_step(global_step, average)
                if global_step % config.log_every == 0 or global_step == config.max_steps:
                    accelerator.log({"loss": average, "lr": lr_scheduler.get_last_lr()[0]}, step=global_step)
                    running_loss, running_count = 0.0, 0
                if global_step % config.checkpoint_every == 0 or global_step == config.max_steps:
                    save_checkpoint()
                if global_step >= config.max_steps:
                    break
    except KeyboardInterrupt:
        # Save where we stand (the interrupted step's partial gradients are dropped), unless several
        # processes run: they cannot agree on a checkpoint once one has stopped.
        if accelerator.num_processes == 1 and global_step > 0:
            save_checkpoint()
            accelerator.print(f"\ninterrupted at step {global_step}; run the same command again to resume")
        raise
    finally:
        progress.close()

    accelerator.wait_for_everyone()
    final = output_dir / FINAL_MODEL
    weights = accelerator.get_state_dict(model)  # every process takes part: sharded weights are gathered
    if accelerator.is_main_process:
        trained = accelerator.unwrap_model(model)
        export = type(trained).from_config(trained.config)
        export.load_state_dict(weights)
        if ema is not None:
            ema.copy_to(export.parameters())
        task.save(export, final)
    accelerator.end_training()
    return final


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as flat ``section.name`` keys of loggable values, for the trackers."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, int | float | str | bool) else str(value)
    return flat
