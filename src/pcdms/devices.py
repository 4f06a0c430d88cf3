"""Device and precision by name, as the command line and the web page take them (``--device``, ``--dtype``).

torch is imported when a name is resolved, not with this module.
"""

from __future__ import annotations

from .errors import PcdmsError

DEVICE_HELP = "auto (default), cpu, cuda, cuda:N"
DTYPES = ("auto", "float32", "float16", "bfloat16")
THREADS_HELP = (
    "CPU threads for torch's operators (default: torch's own, one per physical core); where other work runs on "
    "the machine, fewer threads than cores keep the two from slowing each other down"
)


def resolve_device(name: str):
    """``auto`` (CUDA where available, else the CPU), or a torch device name such as ``cpu``, ``cuda:1``.

    Raises PcdmsError for a name that is not a device, or CUDA asked for on a machine without it.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise PcdmsError(f"--device: {name!r} is not a device (cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PcdmsError("--device: CUDA is not available on this machine")
    return device


def resolve_dtype(name: str, device):
    """float32 on a CPU; on a GPU bfloat16 where it is supported, else float16; or the one named (one of DTYPES)."""
    import torch

    if name == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def quiet_model_loading() -> None:
    """No progress bars for loading model files: the commands and the page show their own progress."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def set_threads(count: int | None) -> None:
    """Run torch's CPU operators on ``count`` threads (``--threads``, the page's too); None leaves torch's
    default (one thread per physical core). Raises PcdmsError for fewer than 1."""
    if count is None:
        return
    if count < 1:
        raise PcdmsError(f"--threads must be at least 1, got {count}")
    import torch

    torch.set_num_threads(count)
