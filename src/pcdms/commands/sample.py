"""``pcdms sample prior | inpaint | refine``: one stage on its own, for one pair or a whole split (the split
runs are in pcdms.sampling)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import PcdmsError
from .common import add_device_arguments, add_pair_arguments, add_split_arguments, open_split, parse_size


def add_parsers(commands) -> None:
    sample = commands.add_parser("sample", help="sample one stage on its own").add_subparsers(
        dest="sample_command", required=True, metavar="STAGE"
    )
    prior = sample.add_parser("prior", help="stage 1: the target's CLIP embedding from a source photo and two poses")
    prior.add_argument("--model", type=Path, required=True, help="a stage-1 pipeline folder (a training run's model/)")
    prior.add_argument(
        "--image-encoder", type=Path, required=True, help="the local CLIP vision folder it was trained with"
    )
    add_pair_arguments(prior)
    prior.add_argument("--target", type=Path, help="the real target photo, to report how close the sample is")
    add_split_arguments(prior)
    prior.add_argument(
        "--out", type=Path, help=".npy file (one pair), or folder for SOURCE_to_TARGET.npy files (--data)"
    )
    prior.add_argument("--steps", type=int, default=20, help="sampling steps (default: 20)")
    prior.add_argument("--guidance", type=float, default=0.0, help="guidance scale, on above 1 (default: 0, off)")
    prior.add_argument("--seed", type=int, default=42)
    prior.add_argument("--batch-size", type=int, default=64)
    add_device_arguments(prior, dtype=False)
    prior.set_defaults(run=run_prior)

    inpaint = sample.add_parser(
        "inpaint", help="stage 2: the target person from a source photo, two poses and an embedding"
    )
    inpaint.add_argument(
        "--model", type=Path, required=True, help="a stage-2 pipeline folder (a training run's model/)"
    )
    add_pair_arguments(inpaint)
    inpaint.add_argument("--embedding", type=Path, help="the target's CLIP embedding, a .npy from sample prior")
    inpaint.add_argument("--target", type=Path, help="or the real target photo, whose embedding --clip computes")
    inpaint.add_argument("--clip", type=Path, help="the local CLIP vision folder the model was trained with")
    add_split_arguments(inpaint)
    inpaint.add_argument(
        "--embeddings", type=Path, help="with --data: stage-1 SOURCE_to_TARGET.npy files (default: real targets')"
    )
    inpaint.add_argument("--out", type=Path, help="image file (one pair), or folder for SOURCE_to_TARGET.png (--data)")
    inpaint.add_argument("--size", type=parse_size, help="WxH of one half and of the output (default: the model's)")
    add_image_sampling_arguments(inpaint)
    inpaint.set_defaults(run=run_inpaint)

    refine = sample.add_parser("refine", help="stage 3: stage 2's coarse image refined, with the source's appearance")
    refine.add_argument("--model", type=Path, required=True, help="a stage-3 pipeline folder (a training run's model/)")
    refine.add_argument("--source", type=Path, help="source photo")
    refine.add_argument("--coarse", type=Path, help="stage 2's image of the target (what sample inpaint wrote)")
    add_split_arguments(refine)
    refine.add_argument(
        "--coarse-images", type=Path, help="with --data: stage 2's SOURCE_to_TARGET.png images of the split"
    )
    refine.add_argument("--out", type=Path, help="image file (one pair), or folder for SOURCE_to_TARGET.png (--data)")
    refine.add_argument("--size", type=parse_size, help="WxH of the output (default: the model's)")
    add_image_sampling_arguments(refine, rescale=True)
    refine.set_defaults(run=run_refine)


def add_image_sampling_arguments(parser: argparse.ArgumentParser, rescale: bool = False) -> None:
    """The sampling options of stages 2 and 3 (``rescale``: stage 3's guidance rescale too)."""
    parser.add_argument("--steps", type=int, default=20, help="sampling steps (default: 20)")
    parser.add_argument("--guidance", type=float, default=2.0, help="guidance scale, on above 1 (default: 2.0)")
    if rescale:
        parser.add_argument(
            "--guidance-rescale",
            type=float,
            default=0.0,
            help="guidance rescale factor (default: 0, off; official: 2.0)",
        )
        parser.add_argument(
            "--strength",
            type=float,
            default=1.0,
            help="where sampling starts, in (0, 1]: 1 from pure noise (official, default), below 1 from the "
            "coarse image partly noised, running that fraction of the steps",
        )
    parser.add_argument("--samples", type=int, default=1, help="images per pair (default: 1)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-size", type=int, default=8)
    add_device_arguments(parser)


def run_prior(args: argparse.Namespace) -> int:
    from ..devices import quiet_model_loading, resolve_device
    from ..pipelines.prior import load_prior_pipeline

    quiet_model_loading()
    device = resolve_device(args.device)
    pipeline = load_prior_pipeline(args.model).to(device)
    pipeline.set_progress_bar_config(disable=True)
    sampling = {"num_inference_steps": args.steps, "guidance_scale": args.guidance}
    if args.data:
        from ..sampling.prior import sample_prior_split

        dataset = open_split(args)
        dataset.validate().raise_if_unusable()
        sample_prior_split(
            pipeline, dataset, args.image_encoder, args.out, device, args.batch_size, args.seed, **sampling
        )
        return 0
    if not (args.source and args.target_pose and args.out):
        raise PcdmsError("sample prior needs --source, --target-pose and --out (or --data for a whole split)")
    return sample_prior_pair(args, pipeline, device, sampling)


def sample_prior_pair(args: argparse.Namespace, pipeline, device, sampling: dict) -> int:
    """One source photo and target pose: the embedding as a (1, D) ``.npy``."""
    import numpy as np
    import torch

    from ..generation import read_pose_input
    from ..io import atomic_write, load_image
    from ..models.encoders import ClipImageEncoder

    encoder = ClipImageEncoder.from_pretrained(args.image_encoder).to(device)
    source = load_image(args.source)
    source_pose = read_pose_input(args.source_pose or args.source, source.size, args.source_person)
    target_pose = read_pose_input(args.target_pose, args.target_size, args.target_person)
    generator = torch.Generator(device).manual_seed(args.seed)
    output = pipeline(
        encoder.encode([source]),
        source_pose,
        target_pose,
        null_embeds=encoder.null_embeds(),
        generator=generator,
        **sampling,
    )
    embedding = output.image_embeds.float().cpu()
    with atomic_write(args.out, "wb") as file:
        np.save(file, embedding.numpy())
    print(args.out)
    if args.target:
        target = encoder.encode([load_image(args.target)]).float().cpu()
        similarity = torch.nn.functional.cosine_similarity(embedding, target).item()
        print(f"cosine similarity to the target's CLIP embedding: {similarity:.4f}")
    return 0


def load_for_sampling(loader, args: argparse.Namespace):
    """A stage pipeline (``loader``: load_inpaint_pipeline, ...) for ``sample``: on ``--device``, in ``--dtype``,
    without progress bars (the command shows its own); and the device."""
    from ..devices import quiet_model_loading, resolve_device, resolve_dtype

    quiet_model_loading()
    device = resolve_device(args.device)
    pipeline = loader(args.model, dtype=resolve_dtype(args.dtype, device)).to(device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline, device


def stage_sampling(args: argparse.Namespace, device, **extra) -> dict:
    """The call arguments of a stage-2 or stage-3 pipeline that ``sample``'s shared options set."""
    import torch

    width, height = args.size or (None, None)
    return {
        "width": width,
        "height": height,
        "num_inference_steps": args.steps,
        "guidance_scale": args.guidance,
        "num_images_per_pair": args.samples,
        "generator": torch.Generator(device).manual_seed(args.seed),
        **extra,
    }


def run_inpaint(args: argparse.Namespace) -> int:
    from ..generation import read_pose_input, sample_paths
    from ..io import load_image, save_image
    from ..pipelines.inpaint import load_inpaint_pipeline

    pipeline, device = load_for_sampling(load_inpaint_pipeline, args)
    sampling = stage_sampling(args, device)
    if args.data:
        if not args.out:
            raise PcdmsError("sample inpaint --data needs --out, a folder for the images")
        from ..sampling.inpaint import sample_inpaint_split

        dataset = open_split(args)
        dataset.validate().raise_if_unusable()
        sample_inpaint_split(
            pipeline,
            dataset,
            args.out,
            device,
            samples=args.samples,
            batch_size=args.batch_size,
            clip=args.clip,
            embeddings=args.embeddings,
            **sampling,
        )
        return 0
    if not (args.source and args.target_pose and args.out):
        raise PcdmsError("sample inpaint needs --source, --target-pose and --out (or --data for a whole split)")
    source = load_image(args.source)
    source_pose = read_pose_input(args.source_pose or args.source, source.size, args.source_person)
    target_pose = read_pose_input(args.target_pose, args.target_size, args.target_person)
    target_embeds = None
    if pipeline.inpaint.uses_target_embedding:
        target_embeds = target_embedding(args)
    images = pipeline(source, source_pose, target_pose, target_embeds, **sampling).images
    for path, image in zip(sample_paths(args.out, len(images)), images, strict=True):
        print(save_image(image, path))
    return 0


def target_embedding(args: argparse.Namespace):
    """The target's CLIP embedding for one pair: a stage-1 .npy, or the real target photo's."""
    import numpy as np
    import torch

    from ..io import load_image
    from ..models.encoders import ClipImageEncoder

    if args.embedding:
        try:
            return torch.from_numpy(np.load(args.embedding)).float().reshape(1, -1)
        except (OSError, ValueError) as error:
            raise PcdmsError(f"{args.embedding}: not a .npy embedding ({error})") from None
    if args.target and args.clip:
        return ClipImageEncoder.from_pretrained(args.clip).encode([load_image(args.target)])
    raise PcdmsError(
        "this stage-2 model needs the target's CLIP embedding: --embedding FILE.npy (from sample prior), "
        "or --target PHOTO with --clip DIR"
    )


def run_refine(args: argparse.Namespace) -> int:
    from ..generation import sample_paths
    from ..io import load_image, save_image
    from ..pipelines.refine import load_refine_pipeline

    pipeline, device = load_for_sampling(load_refine_pipeline, args)
    sampling = stage_sampling(args, device, guidance_rescale=args.guidance_rescale, strength=args.strength)
    if args.data:
        if not (args.coarse_images and args.out):
            raise PcdmsError("sample refine --data needs --coarse-images (stage 2's images of the split) and --out")
        from ..data.refine import coarse_images_command
        from ..sampling.refine import sample_refine_split

        dataset = open_split(args)
        dataset.validate().raise_if_unusable()
        regenerate = coarse_images_command(args.data, args.split, args.coarse_images, args.layout, args.images)
        sample_refine_split(
            pipeline,
            dataset,
            args.coarse_images,
            args.out,
            samples=args.samples,
            batch_size=args.batch_size,
            regenerate=regenerate,
            **sampling,
        )
        return 0
    if not (args.source and args.coarse and args.out):
        raise PcdmsError("sample refine needs --source, --coarse and --out (or --data for a whole split)")
    images = pipeline(load_image(args.source), load_image(args.coarse), **sampling).images
    for path, image in zip(sample_paths(args.out, len(images)), images, strict=True):
        print(save_image(image, path))
    return 0
