"""Argument types and option groups that several commands share. Light: argparse, YAML and the dataset
layouts' names, no torch."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from ..bundled import STAGE_NAMES
from ..data import LAYOUTS, open_dataset
from ..devices import DEVICE_HELP, DTYPES, THREADS_HELP
from ..errors import PcdmsError

# The presets of pcdms.pipelines.presets (which imports torch), by name; tests check the two agree.
PRESET_NAMES = ("official", "fast", "fastest")


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT``, e.g. ``176x256``."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 176x256") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be positive")
    return width, height


def parse_person(text: str) -> int:
    """A person's index in an OpenPose file: 0, 1, ..."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a person index 0, 1, 2, ...")
    return int(text)


def parse_setting(text: str) -> tuple[str, object]:
    """``section.name=value``, the value read as YAML (so 10 is a number and true a boolean)."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not section.name=value")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not valid YAML") from None


def parse_stage_value(kind):
    """``VALUE`` for every stage, or ``STAGE=VALUE`` for one (``refine=30``)."""

    def parse(text: str) -> tuple[str | None, object]:
        stage, separator, value = text.rpartition("=")
        if separator and stage not in STAGE_NAMES:
            raise argparse.ArgumentTypeError(f"{text!r}: the stage is one of {', '.join(STAGE_NAMES)}")
        try:
            return (stage or None), kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not a {kind.__name__}") from None

    return parse


def per_stage(settings: list[tuple[str | None, object]], defaults: dict[str, object], stages=STAGE_NAMES) -> dict:
    """The per-stage values of a repeatable option: a plain value sets ``stages``, ``STAGE=VALUE`` one stage."""
    values = dict(defaults)
    for stage, value in settings:
        values.update({name: value for name in ([stage] if stage else stages)})
    return values


def add_device_arguments(parser: argparse.ArgumentParser, dtype: bool = True) -> None:
    """``--device``, (with ``dtype``) ``--dtype``, and ``--threads``, resolved by pcdms.devices (``--threads`` by
    pcdms.cli before the command runs)."""
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    if dtype:
        parser.add_argument("--dtype", choices=DTYPES, default="auto", help="auto: float32 on a CPU")
    parser.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)


def add_preset_argument(parser: argparse.ArgumentParser) -> None:
    """``--preset``: a named set of sampling settings (pcdms.pipelines.presets); the names are listed here so that
    ``--help`` stays without torch."""
    parser.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        help="sampling preset: official (the authors' settings), fast, fastest (fewer steps, guidance on part of "
        "them, fastest also reuses deep UNet features); options given win over it (default: the model's own "
        "settings; see docs/presets.md)",
    )


def add_pair_arguments(parser: argparse.ArgumentParser) -> None:
    """The options naming one pair to sample: the source photo and the two poses."""
    parser.add_argument("--source", type=Path, help="source photo")
    parser.add_argument(
        "--source-pose", type=Path, help="its pose: a pose file, a pose image or a photo (default: the source photo's)"
    )
    parser.add_argument("--target-pose", type=Path, help="the target pose: a pose file, a pose image or a photo")
    parser.add_argument("--target-size", type=parse_size, help="WxH of the target image, for pose files that lack it")
    add_person_arguments(parser)


def add_person_arguments(parser: argparse.ArgumentParser) -> None:
    """Which person of an OpenPose file that lists several (default: the main subject, the largest)."""
    for role in ("target", "source"):
        parser.add_argument(
            f"--{role}-person",
            type=parse_person,
            metavar="N",
            help=f"the person to take from a {role} OpenPose file listing several: 0, 1, ... (default: the largest)",
        )


def add_layout_arguments(parser: argparse.ArgumentParser) -> None:
    """``--layout`` and ``--images``: how a dataset folder is laid out."""
    parser.add_argument("--layout", choices=("auto", *LAYOUTS), default="auto")
    parser.add_argument("--images", type=Path, help="image folder, where it is not the layout's usual one")


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """The options naming a dataset split to sample instead of one pair."""
    parser.add_argument("--data", type=Path, help="instead: sample every pair of a dataset split")
    parser.add_argument("--split", default="test")
    add_layout_arguments(parser)
    parser.add_argument(
        "--max-pairs", type=int, help="with --data: only N pairs, spread evenly over the split's pair list"
    )


def open_split(args: argparse.Namespace):
    """The split that ``--data`` names, cut to ``--max-pairs`` evenly spread pairs."""
    dataset = open_dataset(args.data, args.split, args.layout, args.images)
    if args.max_pairs is not None:
        if args.max_pairs < 1:
            raise PcdmsError(f"--max-pairs must be at least 1, got {args.max_pairs}")
        if args.max_pairs < len(dataset):
            step = len(dataset) / args.max_pairs
            dataset = dataset.subset([int(number * step) for number in range(args.max_pairs)])
    return dataset
