"""Training checkpoints that can always be resumed from, and that never run code when read.

A checkpoint is ``output_dir/checkpoints/step-N``: accelerate's state (model, optimiser, schedule,
random states) and, with an EMA, ``ema.safetensors``. It is written as ``step-N.tmp`` and renamed
once every file is on disk, so a run killed while saving leaves the previous checkpoints whole.

Reading one never unpickles code. accelerate reads its own files weights-only (tensors, plain
containers and the numpy random state), but unpickles registered custom states (``custom_checkpoint_N.pkl``)
with ``weights_only=False``; so the EMA is not registered with accelerate but saved here as safetensors,
and before accelerate opens a checkpoint every file in it is read here weights-only. A file that the
safe loader refuses stops the resume with a message naming it; a truncated or missing file (a save
killed half-way by an older version, a full disk, a copy cut short) makes ``latest`` fall back to
the newest checkpoint that is whole.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import is_weights_only_available
from accelerate.utils import load as accelerate_load
from diffusers.training_utils import EMAModel
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import PcdmsError
from ..pickle_scan import pickle_imports, unpickling_refused

CHECKPOINTS = "checkpoints"
EMA_FILE = "ema.safetensors"
TEMPORARY_SUFFIX = ".tmp"
# accelerate's registered custom states: pickles it reads with weights_only=False. pcdms writes none.
CUSTOM_STATE = re.compile(r"custom_checkpoint_\d+\.pkl$")
_NAME = re.compile(r"step-(\d+)$")


class BrokenCheckpoint(PcdmsError):
    """A checkpoint left incomplete or damaged (a file missing, truncated or unreadable): ``latest`` skips it."""


def checkpoint_step(folder: Path) -> int:
    """N of a ``step-N`` folder."""
    return int(_NAME.match(folder.name).group(1))


def saved_checkpoints(output_dir: Path) -> list[Path]:
    """The run's checkpoint folders that were completely written (renamed from their temporary name), oldest first."""
    folders = [path for path in (output_dir / CHECKPOINTS).glob("step-*") if _NAME.match(path.name) and path.is_dir()]
    return sorted(folders, key=checkpoint_step)


def unfinished_checkpoints(output_dir: Path) -> list[Path]:
    """Temporary folders of saves that never finished (the process was killed while writing)."""
    return sorted((output_dir / CHECKPOINTS).glob(f"step-*{TEMPORARY_SUFFIX}"))


def check_checkpoint(folder: Path, process_index: int = 0) -> None:
    """Raise unless every file of ``folder`` reads safely.

    :class:`BrokenCheckpoint` for a missing model or random state of this process, or a truncated or
    unreadable file; :class:`PcdmsError` ("refusing to unpickle") for a pickle that holds anything but
    tensors, plain containers and numpy's random state, and for accelerate's custom states, which
    accelerate itself would unpickle without that check. Tensor data is memory-mapped, not read.
    """
    names = {path.name for path in folder.iterdir()}
    if not any(name.startswith(("model", "pytorch_model")) for name in names):
        raise BrokenCheckpoint(f"{folder}: incomplete, it holds no model state")
    if f"random_states_{process_index}.pkl" not in names:
        raise BrokenCheckpoint(f"{folder}: incomplete, random_states_{process_index}.pkl is missing")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            _check_file(path)


def _check_file(path: Path) -> None:
    if path.suffix == ".safetensors":
        try:
            with safe_open(path, "pt"):  # reads the header and checks it covers the whole file
                pass
        except (SafetensorError, OSError) as error:
            raise BrokenCheckpoint(f"{path}: truncated or unreadable ({error})") from None
        return
    if path.suffix not in (".bin", ".pkl", ".pt", ".pth"):
        return  # accelerate and DeepSpeed read nothing else as a pickle
    if not is_weights_only_available():  # accelerate would unpickle everything with torch.load's old default
        raise PcdmsError(f"{path}: resuming needs torch 2.4 or newer, which reads checkpoints without unpickling code")
    try:
        try:
            # accelerate's own loader: weights-only, with the numpy types its random states need allowed.
            accelerate_load(path, map_location="cpu", mmap=True)
        except RuntimeError as error:
            if "mmap" not in str(error):
                raise
            accelerate_load(path, map_location="cpu")  # not a torch.save zip: read as a plain (legacy) pickle
    except pickle.UnpicklingError:
        if pickle_imports(path) is None:  # not even a complete pickle: cut short or overwritten
            raise BrokenCheckpoint(f"{path}: truncated or unreadable (no complete pickle data)") from None
        raise unpickling_refused(path) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise BrokenCheckpoint(f"{path}: truncated or unreadable ({str(error).split('. ')[0]})") from None
    if CUSTOM_STATE.match(path.name):
        raise PcdmsError(
            f"{path}: refusing to unpickle it: accelerate reads its custom states with weights_only=False, and pcdms "
            f"writes none (the EMA is {EMA_FILE}); this checkpoint was written by another program or an older pcdms; "
            "start over with --resume none"
        )


def find_checkpoint(
    output_dir: Path, resume: str, process_index: int = 0, report: Callable[[str], None] = print
) -> Path | None:
    """The checkpoint to resume from: ``none``; a checkpoint folder, which must be whole; or ``latest``,
    the newest whole checkpoint (None when there is none yet), each one skipped reported with its reason."""
    if resume == "none":
        return None
    if resume != "latest":
        folder = Path(resume)
        if not folder.is_dir() or not _NAME.match(folder.name):
            raise PcdmsError(f"{folder}: not a training checkpoint folder (expected .../checkpoints/step-N)")
        check_checkpoint(folder, process_index)
        return folder
    for unfinished in unfinished_checkpoints(output_dir):
        report(f"skipped {unfinished}: incomplete, its save was interrupted")
    candidates = saved_checkpoints(output_dir)
    skipped = []
    for folder in reversed(candidates):
        try:
            check_checkpoint(folder, process_index)
        except BrokenCheckpoint as error:
            report(f"skipped {folder}: {str(error).removeprefix(f'{folder}: ')}")
            skipped.append(folder.name)
            continue
        return folder
    if candidates:
        raise PcdmsError(
            f"{output_dir / CHECKPOINTS}: no checkpoint can be resumed ({', '.join(skipped)} are damaged); "
            "start over with --resume none"
        )
    return None


def save_ema(ema: EMAModel, folder: Path) -> None:
    """The EMA as safetensors: its averaged weights as tensors, its counters in the file's metadata."""
    state = ema.state_dict()
    tensors = {
        f"shadow_params.{index}": tensor.detach().cpu().contiguous()
        for index, tensor in enumerate(state.pop("shadow_params"))
    }
    save_file(tensors, folder / EMA_FILE, metadata={"ema": json.dumps(state)})


def load_ema(ema: EMAModel, folder: Path, device: torch.device) -> None:
    """Restore what :func:`save_ema` wrote; one line when the averages do not fit the model."""
    path = folder / EMA_FILE
    try:
        with safe_open(path, "pt") as file:
            settings = json.loads((file.metadata() or {})["ema"])
        tensors = load_file(path)
    except (SafetensorError, OSError, KeyError, ValueError) as error:
        raise BrokenCheckpoint(f"{path}: truncated or unreadable ({error})") from None
    shadow = [tensors.get(f"shadow_params.{index}") for index in range(len(tensors))]
    own = ema.shadow_params
    if len(shadow) != len(own) or any(
        saved is None or saved.shape != mine.shape for saved, mine in zip(shadow, own, strict=False)
    ):
        raise PcdmsError(f"{path}: the averaged weights do not fit this model; resume with the model it was saved with")
    ema.load_state_dict({**settings, "shadow_params": shadow})
    ema.to(device)


def write_checkpoint(accelerator: Accelerator, folder: Path, ema: EMAModel | None) -> None:
    """Write the training state to ``folder`` (``.../step-N``) all at once: into ``step-N.tmp`` by every
    process, then flushed to disk and renamed by the main one. A folder already named ``step-N`` (of an
    earlier attempt at this run) is replaced only once the new one is complete."""
    temporary = folder.with_name(folder.name + TEMPORARY_SUFFIX)
    if accelerator.is_main_process and temporary.exists():
        shutil.rmtree(temporary)  # a save of this step that was interrupted
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    if accelerator.is_main_process and ema is not None:
        save_ema(ema, temporary)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _flush(temporary)
        replaced = folder.with_name(folder.name + ".old")
        if folder.exists():
            shutil.rmtree(replaced, ignore_errors=True)
            os.replace(folder, replaced)
        os.replace(temporary, folder)
        _flush_folder(folder.parent)
        shutil.rmtree(replaced, ignore_errors=True)
    accelerator.wait_for_everyone()


def prune_checkpoints(output_dir: Path, newest: Path, keep: int) -> None:
    """Delete the checkpoints older than ``newest`` beyond the ``keep`` newest (``newest`` included),
    and the temporary folders of interrupted saves; ``newest`` itself is never deleted."""
    older = [folder for folder in saved_checkpoints(output_dir) if checkpoint_step(folder) < checkpoint_step(newest)]
    for stale in older[: max(len(older) - (keep - 1), 0)]:
        shutil.rmtree(stale, ignore_errors=True)
    for unfinished in unfinished_checkpoints(output_dir):
        shutil.rmtree(unfinished, ignore_errors=True)


def _flush(folder: Path) -> None:
    """Every file of ``folder`` on disk before the rename makes it a checkpoint (else a power cut could
    leave a complete-looking folder of empty files)."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as file:
                os.fsync(file.fileno())
    _flush_folder(folder)


def _flush_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # folders cannot be opened on every system (Windows); their entries are flushed anyway
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
