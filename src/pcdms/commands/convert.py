"""``pcdms convert official | trained``: build a PCDMs pipeline folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import parse_setting


def add_parsers(commands) -> None:
    convert = commands.add_parser("convert", help="build a PCDMs pipeline folder").add_subparsers(
        dest="convert_command", required=True, metavar="SOURCE"
    )
    official = convert.add_parser("official", help="from the authors' released checkpoints and local public models")
    official.add_argument(
        "--inpaint",
        type=Path,
        required=True,
        help="stage-2 mp_rank_00_model_states.pt (or its folder), or PCDMs_ckpt.pt",
    )
    official.add_argument("--prior", type=Path, help="stage-1 mp_rank_00_model_states.pt (or its folder)")
    official.add_argument("--refine", type=Path, help="stage-3 mp_rank_00_model_states.pt (or its folder)")
    official.add_argument(
        "--stable-diffusion", type=Path, required=True, help="local stable-diffusion-2-1-base folder (vae/, unet/)"
    )
    official.add_argument("--dinov2", type=Path, required=True, help="local dinov2-giant folder")
    official.add_argument(
        "--clip", type=Path, help="local OpenCLIP ViT-H/14 folder (IP-Adapter's models/image_encoder)"
    )
    official.add_argument(
        "--kandinsky", type=Path, help="local kandinsky-2-2-prior folder, for its scheduler (optional)"
    )
    official.add_argument("--out", type=Path, required=True, help="the pipeline folder to write")
    official.add_argument(
        "--dtype",
        choices=("float16", "bfloat16", "float32"),
        default="float16",
        help="precision written (default: float16)",
    )
    official.set_defaults(run=run_official)
    trained = convert.add_parser("trained", help="from this project's training runs (their model/ folders)")
    trained.add_argument("--inpaint", type=Path, required=True, help="the stage-2 run's model/ folder")
    trained.add_argument("--prior", type=Path, help="the stage-1 run's model/ folder")
    trained.add_argument("--refine", type=Path, help="the stage-3 run's model/ folder")
    trained.add_argument("--clip", type=Path, help="the CLIP vision folder stages 1 and 2 were trained with")
    trained.add_argument("--out", type=Path, required=True, help="the pipeline folder to write")
    trained.add_argument(
        "--sampling",
        type=parse_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting the model samples best with, recorded in its folder and used where a call leaves it out "
        "(inpaint_guidance=1, refine_strength=0.1, ...: see docs/generation.md); repeatable",
    )
    trained.add_argument(
        "--dtype",
        choices=("float32", "float16", "bfloat16"),
        default="float32",
        help="precision written (default: float32); float16 halves the folder, and loading casts back to the "
        "precision asked for",
    )
    trained.set_defaults(run=run_trained)


def run_official(args: argparse.Namespace) -> int:
    import torch

    from ..convert import convert_official
    from ..devices import quiet_model_loading

    quiet_model_loading()
    folder = convert_official(
        args.out,
        inpaint=args.inpaint,
        prior=args.prior,
        refine=args.refine,
        stable_diffusion=args.stable_diffusion,
        dinov2=args.dinov2,
        clip=args.clip,
        kandinsky=args.kandinsky,
        dtype=getattr(torch, args.dtype),
    )
    print(f"PCDMs pipeline: {folder}")
    return 0


def run_trained(args: argparse.Namespace) -> int:
    import torch

    from ..convert import assemble_trained
    from ..devices import quiet_model_loading
    from ..pipelines.settings import checked_sampling

    checked_sampling(dict(args.sampling), "--sampling")
    quiet_model_loading()
    folder = assemble_trained(
        args.out,
        inpaint=args.inpaint,
        prior=args.prior,
        refine=args.refine,
        clip=args.clip,
        sampling=dict(args.sampling),
        dtype=getattr(torch, args.dtype),
    )
    print(f"PCDMs pipeline: {folder}")
    return 0
