"""Device, precision and CPU threads, as the command line and the web page take them (``--device``, ``--dtype``,
``--threads``).

torch is imported when a name is resolved, not with this module.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from .errors import PcdmsError

DEVICE_HELP = "auto (default), cpu, cuda, cuda:N"
DTYPES = ("auto", "float32", "float16", "bfloat16")
THREADS_HELP = (
    "CPU threads for torch's operators (default: chosen when the command starts, the cores this process may use "
    "that other work leaves idle, at least 1, at most torch's one per physical core; see docs/presets.md#threads)"
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


def set_threads(count: int | None) -> int:
    """Run torch's CPU operators on ``count`` threads (``--threads``, the page's too); None chooses
    :func:`default_threads`. Returns the count set. Raises PcdmsError for a count that is not a whole number
    from 1 to this machine's CPU count (more threads than CPUs only make them wait for each other)."""
    cpus = len(usable_cpus())
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= cpus):
        raise PcdmsError(
            f"--threads must be a whole number from 1 to the {cpus} CPUs this process may use, got {count!r}"
        )
    import torch

    count = count or default_threads(torch_default_threads())
    torch.set_num_threads(count)
    return count


def torch_default_threads() -> int:
    """The threads torch starts with, whatever a call has set since: ``OMP_NUM_THREADS`` when it is set, else
    one per physical core."""
    import psutil

    try:
        return max(int(os.environ["OMP_NUM_THREADS"]), 1)
    except (KeyError, ValueError):
        return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def default_threads(most: int, sample_seconds: float = 0.1) -> int:
    """The threads to run on when the user names none: the CPUs this process may use (its affinity, within
    its container's CPU quota) that other work leaves idle over ``sample_seconds``, at least 1 and at most
    ``most`` (torch's default, one per physical core). On a machine doing nothing else that is torch's
    default; beside a job that keeps every core busy it is 1, which benchmarks/threads.py measured as the
    fastest choice for both (docs/presets.md#threads)."""
    import psutil

    cpus = usable_cpus()
    percents = psutil.cpu_percent(interval=sample_seconds, percpu=True)
    busy = [percents[cpu] for cpu in cpus if cpu < len(percents)]
    return threads_for(len(cpus), cpu_quota(), sum(busy) / (100 * len(busy)) if busy else 0.0, most)


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity, as ``taskset`` or a cpuset sets it), by number."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def threads_for(cpus: int, quota: float | None, busy: float, most: int) -> int:
    """Threads for ``cpus`` usable CPUs, a CPU ``quota`` (CPUs' worth of time, None for none), a ``busy``
    fraction in [0, 1] of those CPUs' time taken by other work, and torch's default ``most``: the usable
    CPUs' idle share, rounded, at least 1."""
    usable = min(cpus, math.ceil(quota) if quota else cpus, most)
    return max(1, round(usable * (1 - min(max(busy, 0.0), 1.0))))


def cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU time a container may use, in CPUs (cgroup v2 ``cpu.max``, or v1 ``cpu.cfs_quota_us`` over
    ``cpu.cfs_period_us``), which CPU counts do not show; None when there is no limit or no cgroup file."""
    try:
        if (root / "cpu.max").is_file():
            quota, period = (root / "cpu.max").read_text().split()[:2]
        else:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        return None if quota in ("max", "-1") else int(quota) / int(period)
    except (OSError, ValueError):
        return None
