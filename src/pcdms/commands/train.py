"""``pcdms train STAGE``: one stage from a YAML config."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import PcdmsError
from .common import parse_setting


def add_parsers(commands) -> None:
    train = commands.add_parser("train", help="train a stage from a YAML config (one GPU, many, or the CPU)")
    train.add_argument(
        "stage",
        choices=("vae", "prior", "inpaint", "refine"),
        metavar="STAGE",
        help="prior, inpaint or refine (or vae: a small VAE for models without Stable Diffusion's)",
    )
    train.add_argument("--config", type=Path, required=True, help="the run's YAML config")
    train.add_argument(
        "--resume",
        default="latest",
        help="latest (default: the newest checkpoint of the run, if any), none, or a checkpoint folder",
    )
    train.add_argument(
        "--set",
        type=parse_setting,
        action="append",
        default=[],
        metavar="SECTION.NAME=VALUE",
        help="override a config setting",
    )
    train.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from ..devices import quiet_model_loading
    from ..training import load_config, run_training

    quiet_model_loading()
    config = load_config(args.config, dict(args.set))
    if config.stage != args.stage:
        raise PcdmsError(f"{args.config}: this config trains the {config.stage}, not the {args.stage}")
    final = run_training(config, resume=args.resume)
    print(f"trained {args.stage}: {final}")
    return 0
