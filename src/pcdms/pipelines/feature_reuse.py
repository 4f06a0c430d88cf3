"""Reuse of a UNet's deep features across neighbouring sampling steps: the idea of DeepCache (Ma, Fang and
Wang, "DeepCache: Accelerating Diffusion Models for Free", CVPR 2024), over diffusers' own
``UNet2DConditionModel``.

Between neighbouring steps the UNet's deep, low-resolution features change little; what changes is carried
by its outermost level. So every ``interval``-th call runs the whole UNet and keeps what its deep blocks
(every down block but the first, the middle block, every up block but the last) returned; the calls between
run only the outermost level (``conv_in``, the first down block, the last up block and the output layers)
and give the last up block the kept input, with its skip connections computed afresh. This is DeepCache's
uniform schedule at its shallowest branch.

The ``DeepCache`` package (0.1.1, December 2023, unchanged since) does not fit: it patches the forward of a
pipeline's ``unet`` attribute and keys its steps by the pipeline scheduler's timesteps, and its cache does not
follow a batch that changes size between steps (guidance on part of the steps only). Here the blocks are
diffusers' own, unchanged: forward hooks keep their outputs, and on a reusing call each deep block's forward
is, for that call only, one that returns its kept output.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import PcdmsError


@dataclass
class ReuseCounts:
    """What a :func:`reusing_features` block did: UNet calls that ran every block (``full``), and calls that
    reused the deep blocks' outputs (``reused``)."""

    full: int = 0
    reused: int = 0


def check_reuse_interval(interval) -> int | None:
    """``interval`` as a whole number of at least 1 (1: no reuse), or None; PcdmsError in one line otherwise."""
    if interval is None:
        return None
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval != int(interval) or interval < 1:
        raise PcdmsError(f"feature_reuse: a whole number of steps of at least 1, got {interval!r}")
    return int(interval)


def deep_blocks(unet: nn.Module) -> list[nn.Module]:
    """The blocks a reusing call skips: every down block but the first, the middle block, every up block but
    the last (the last consumes only the first level's skip connections)."""
    return [*unet.down_blocks[1:], unet.mid_block, *unet.up_blocks[:-1]]


def last_rows(output, rows: int):
    """A block's output (a tensor, or a tuple of tensors and tuples) cut to its last ``rows`` rows: a call
    without guidance takes the conditional half of what a guided call kept."""
    if isinstance(output, torch.Tensor):
        return output[-rows:]
    return tuple(last_rows(part, rows) for part in output)


def reusing_features(unet: nn.Module, interval: int | None):
    """A context in which ``unet`` (a diffusers ``UNet2DConditionModel``) runs its deep blocks only on every
    ``interval``-th call (the first call, then every ``interval`` calls) and reuses their outputs on the calls
    between; it yields a :class:`ReuseCounts`. ``interval`` None or 1: an empty context, the UNet untouched
    (yields None). A call whose batch is larger than the kept one (guidance turned on between steps) runs in
    full. The UNet is as it was after the block. Raises PcdmsError for an interval that is not a whole number
    of at least 1."""
    interval = check_reuse_interval(interval)
    if interval is None or interval == 1:
        return nullcontext()
    return _reusing(unet, interval)


@contextmanager
def _reusing(unet: nn.Module, interval: int) -> Iterator[ReuseCounts]:
    blocks = deep_blocks(unet)
    kept: dict[nn.Module, object] = {}
    state = {"calls": 0, "batch": 0, "kept_batch": 0, "reusing": False}
    counts = ReuseCounts()

    def replay(block: nn.Module):
        return lambda *args, **kwargs: last_rows(kept[block], state["batch"])

    def before_call(module, args, kwargs) -> None:
        sample = args[0] if args else kwargs["sample"]
        batch = sample.shape[0]
        reuse = state["calls"] % interval != 0 and len(kept) == len(blocks) and batch <= state["kept_batch"]
        state.update(batch=batch, reusing=reuse, calls=state["calls"] + 1)
        for block in blocks:
            if reuse:
                block.forward = replay(block)  # this call only: an instance attribute over the class's forward
            else:
                block.__dict__.pop("forward", None)
        if reuse:
            counts.reused += 1
        else:
            counts.full += 1
            kept.clear()
            state["kept_batch"] = batch

    def keep(block: nn.Module):
        def hook(module, args, output) -> None:
            if not state["reusing"]:
                kept[block] = output

        return hook

    handles = [unet.register_forward_pre_hook(before_call, with_kwargs=True)]
    handles += [block.register_forward_hook(keep(block)) for block in blocks]
    try:
        yield counts
    finally:
        for handle in handles:
            handle.remove()
        for block in blocks:
            block.__dict__.pop("forward", None)
