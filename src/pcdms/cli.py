"""The ``pcdms`` command.

Errors a user can fix come out as one line, ``pcdms: error: ...``, with exit status 1; a wrong
command line gets argparse's usage message and status 2. The model commands import diffusers and
transformers when they run, so that the pose and data commands start in a second.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

import yaml
from PIL import Image

from . import __version__
from .data import LAYOUTS, available_splits, open_dataset, write_pose_files
from .errors import PcdmsError
from .io import atomic_write, load_image, save_image
from .pose import (
    KEYPOINT_NAMES,
    OFFICIAL,
    draw_overlay,
    get_extractor,
    load_pose,
    read_and_extract,
    render_pose,
    save_pose,
    write_extraction,
    write_openpose_json,
    write_pcdms_txt,
)

EXAMPLE_IMAGE = "astronaut.jpg"


def example_image_path() -> Path:
    """The bundled example photo (NASA's portrait of Eileen Collins, public domain)."""
    return Path(str(files("pcdms") / "assets" / "examples" / EXAMPLE_IMAGE))


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT``, e.g. ``176x256``."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 176x256") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be positive")
    return width, height


def _joint_count(keypoints) -> str:
    return f"{int(keypoints.present.sum())} of {len(KEYPOINT_NAMES)} joints"


def run_demo(args: argparse.Namespace) -> int:
    image_path = example_image_path()
    image, keypoints = read_and_extract(image_path)
    written = write_extraction(image, keypoints, args.out, image_path.stem)
    print(f"pcdms demo: the pose of the bundled photo {image_path.name}, {_joint_count(keypoints)} found")
    for label, path in written.items():
        print(f"  {label.replace('_', ' '):<9} {path}")
    return 0


def run_pose_extract(args: argparse.Namespace) -> int:
    stems = [Path(image).stem for image in args.images]
    repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
    if repeated:
        raise PcdmsError(f"several input images are named {repeated[0]}.*; their outputs would collide in {args.out}")
    extractor = get_extractor(args.extractor)
    failures = 0
    for image_path in map(Path, args.images):
        try:
            image, keypoints = read_and_extract(image_path, extractor)
        except PcdmsError as error:
            print(f"pcdms: error: {error}", file=sys.stderr)
            failures += 1
            continue
        written = write_extraction(image, keypoints, args.out, image_path.stem)
        if args.txt:
            written["txt"] = write_pcdms_txt(Path(args.out) / f"{image_path.stem}.txt", keypoints, OFFICIAL)
        print(f"{image_path}: {_joint_count(keypoints)} -> " + ", ".join(str(path) for path in written.values()))
    return 1 if failures else 0


def run_pose_render(args: argparse.Namespace) -> int:
    background = load_image(args.on) if args.on else None
    frame = background.size if background else args.size
    keypoints = load_pose(args.pose, image_size=args.image_size or frame)
    picture = draw_overlay(background, keypoints) if background else render_pose(keypoints, args.size)
    print(save_image(picture, args.out))
    return 0


def run_pose_convert(args: argparse.Namespace) -> int:
    keypoints = load_pose(args.pose, image_size=args.image_size)
    if args.format == "openpose":
        print(write_openpose_json(args.out, keypoints))
    else:
        print(save_pose(args.out, keypoints, OFFICIAL))
    return 0


def run_data_validate(args: argparse.Namespace) -> int:
    dataset = open_dataset(args.root, args.split, args.layout, args.images)
    report = dataset.validate(check_images=args.check_images, progress=True)
    print(report.summary())
    return 0 if report.ok else 1


def run_data_prepare_poses(args: argparse.Namespace) -> int:
    failures = 0
    for split in args.split or available_splits(args.root, args.layout):
        dataset = open_dataset(args.root, split, args.layout, args.images)
        summary = write_pose_files(dataset, args.out, args.size, args.format, args.overwrite, progress=True)
        print(
            f"{dataset}: {summary.written} written, {summary.already_there} already there, "
            f"{len(summary.failed)} without a usable pose"
        )
        for failure in summary.failed[:5]:
            print(f"  {failure}")
        failures += len(summary.failed)
    print(f"pose maps and pose txt files are in {args.out}")
    return 1 if failures else 0


def run_toy(args: argparse.Namespace) -> int:
    from .data.toy import write_tiny_clip, write_tiny_dinov2, write_toy_dataset, write_toy_vae

    data = write_toy_dataset(args.out / "data", args.people, args.poses, args.test_people, args.seed)
    clip = write_tiny_clip(args.out / "clip", seed=args.seed)
    dinov2 = write_tiny_dinov2(args.out / "dinov2", seed=args.seed)
    print(f"toy dataset (Market-1501 layout): {data}\ntiny random CLIP encoder: {clip}\ntiny random DINOv2: {dinov2}")
    print(f"fitting a tiny VAE to the training images ({args.vae_steps} steps, about 30 s for 300) ...", flush=True)
    vae = write_toy_vae(args.out / "vae", sorted((data / "train").glob("*.png")), args.vae_steps, seed=args.seed)
    print(f"tiny VAE: {vae}")
    return 0


def parse_setting(text: str) -> tuple[str, object]:
    """``section.name=value``, the value read as YAML (so 10 is a number and true a boolean)."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not section.name=value")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not valid YAML") from None


def quiet_model_loading() -> None:
    """No progress bars for loading model files: the commands show their own progress."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def run_train(args: argparse.Namespace) -> int:
    from .training import load_config, run_training

    quiet_model_loading()
    config = load_config(args.config, dict(args.set))
    if config.stage != args.stage:
        raise PcdmsError(f"{args.config}: this config trains the {config.stage}, not the {args.stage}")
    final = run_training(config, resume=args.resume)
    print(f"trained {args.stage}: {final}")
    return 0


def resolve_device(name: str):
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


def load_pose_or_extract(path: Path, size: tuple[int, int] | None):
    """A pose file (in the frame of ``size`` where it records none), or a photo whose pose is extracted."""
    if path.suffix.lower() in Image.registered_extensions():
        return read_and_extract(path)[1]
    return load_pose(path, image_size=size)


def run_sample_prior(args: argparse.Namespace) -> int:
    from .pipelines.prior import load_prior_pipeline

    quiet_model_loading()
    device = resolve_device(args.device)
    pipeline = load_prior_pipeline(args.model).to(device)
    pipeline.set_progress_bar_config(disable=True)
    sampling = {"num_inference_steps": args.steps, "guidance_scale": args.guidance}
    if args.data:
        return sample_prior_split(args, pipeline, device, sampling)
    if not (args.source and args.target_pose and args.out):
        raise PcdmsError("sample prior needs --source, --target-pose and --out (or --data for a whole split)")
    return sample_prior_pair(args, pipeline, device, sampling)


def sample_prior_split(args: argparse.Namespace, pipeline, device, sampling: dict) -> int:
    """Every pair of a dataset split: the mean cosine similarity, and ``{source}_to_{target}.npy`` files."""
    import numpy as np
    import torch

    from .data.embeddings import PriorPairs, cached_embeddings
    from .pipelines.prior import sample_pairs

    dataset = open_dataset(args.data, args.split, args.layout, args.images)
    dataset.validate().raise_if_unusable()
    with tempfile.TemporaryDirectory() as scratch:
        cache = args.out / "cache" if args.out else Path(scratch)
        embeds, null = cached_embeddings(dataset, args.image_encoder, cache, args.batch_size, device)
    pairs = PriorPairs(dataset, embeds, pipeline.prior.pose_convention)
    predicted = sample_pairs(pipeline, pairs, args.batch_size, args.seed, progress=True, null_embeds=null, **sampling)
    if args.out:
        for (source, target), embedding in zip(pairs.names, predicted, strict=True):
            with atomic_write(args.out / f"{Path(source).stem}_to_{Path(target).stem}.npy", "wb") as file:
                np.save(file, embedding[None].numpy())
        print(f"{len(pairs)} embeddings in {args.out}")
    targets, sources = pairs.embeds[pairs.pairs[:, 1]], pairs.embeds[pairs.pairs[:, 0]]
    similarity = torch.nn.functional.cosine_similarity(predicted, targets).mean().item()
    copying = torch.nn.functional.cosine_similarity(sources, targets).mean().item()
    print(
        f"mean cosine similarity to the targets' CLIP embeddings: {similarity:.4f} (copying the source's: {copying:.4f})"
    )
    return 0


def sample_prior_pair(args: argparse.Namespace, pipeline, device, sampling: dict) -> int:
    """One source photo and target pose: the embedding as a (1, D) ``.npy``."""
    import numpy as np
    import torch

    from .models.encoders import ClipImageEncoder

    encoder = ClipImageEncoder.from_pretrained(args.image_encoder).to(device)
    source = load_image(args.source)
    source_pose = load_pose_or_extract(args.source_pose or args.source, source.size)
    target_pose = load_pose_or_extract(args.target_pose, args.target_size)
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


def resolve_dtype(name: str, device):
    """float32 on a CPU; on a GPU bfloat16 where it is supported, else float16; or the one named."""
    import torch

    if name == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def run_sample_inpaint(args: argparse.Namespace) -> int:
    import torch

    from .pipelines.inpaint import load_inpaint_pipeline

    quiet_model_loading()
    device = resolve_device(args.device)
    pipeline = load_inpaint_pipeline(args.model, torch_dtype=resolve_dtype(args.dtype, device)).to(device)
    pipeline.set_progress_bar_config(disable=True)
    width, height = args.size or (None, None)
    sampling = {
        "width": width,
        "height": height,
        "num_inference_steps": args.steps,
        "guidance_scale": args.guidance,
        "num_images_per_pair": args.samples,
        "generator": torch.Generator(device).manual_seed(args.seed),
    }
    if args.data:
        if not args.out:
            raise PcdmsError("sample inpaint --data needs --out, a folder for the images")
        return sample_inpaint_split(args, pipeline, device, sampling)
    if not (args.source and args.target_pose and args.out):
        raise PcdmsError("sample inpaint needs --source, --target-pose and --out (or --data for a whole split)")
    source = load_image(args.source)
    source_pose = load_pose_or_extract(args.source_pose or args.source, source.size)
    target_pose = load_pose_or_extract(args.target_pose, args.target_size)
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

    from .models.encoders import ClipImageEncoder

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


def sample_paths(out: Path, count: int) -> list[Path]:
    """``out`` for one image; ``stem_0.png``, ``stem_1.png``, ... for several."""
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{index}{out.suffix or '.png'}") for index in range(count)]


def sample_inpaint_split(args: argparse.Namespace, pipeline, device, sampling: dict) -> int:
    """Every pair of a split, as ``{source}_to_{target}.png``: with the real targets' CLIP embeddings
    (what stage 3 trains on) or stage-1 ones (``--embeddings`` folder of ``{source}_to_{target}.npy``).
    Pairs whose images are already there are skipped, so an interrupted run resumes."""
    import numpy as np
    import torch

    from .data.embeddings import cached_embeddings

    dataset = open_dataset(args.data, args.split, args.layout, args.images)
    dataset.validate().raise_if_unusable()
    names = [f"{Path(source).stem}_to_{Path(target).stem}.png" for source, target in dataset.pairs]
    todo = [index for index, name in enumerate(names) if not sample_paths(args.out / name, args.samples)[-1].exists()]
    uses_embeds = pipeline.inpaint.uses_target_embedding
    embeds = None
    if uses_embeds and not args.embeddings:
        if not args.clip:
            raise PcdmsError("sample inpaint --data needs --clip DIR (real targets' embeddings) or --embeddings DIR")
        embeds, _ = cached_embeddings(dataset, args.clip, args.out / "cache", args.batch_size, device)
    errors, copy_errors = [], []
    for start in tqdm_range(len(todo), args.batch_size, "stage 2"):
        batch = [dataset[index] for index in todo[start : start + args.batch_size]]
        target_embeds = None
        if uses_embeds and embeds is not None:
            target_embeds = torch.stack([embeds[pair.target_name] for pair in batch])
        elif uses_embeds:
            target_embeds = torch.cat([load_stage1_embedding(args.embeddings, pair) for pair in batch])
        images = pipeline(
            [pair.source_image for pair in batch],
            [pair.source_pose for pair in batch],
            [pair.target_pose for pair in batch],
            target_embeds,
            **sampling,
        ).images
        for number, pair in enumerate(batch):
            samples = images[number * args.samples : (number + 1) * args.samples]
            name = f"{Path(pair.source_name).stem}_to_{Path(pair.target_name).stem}.png"
            for path, image in zip(sample_paths(args.out / name, args.samples), samples, strict=True):
                save_image(image, path)
            target = np.asarray(pair.target_image.convert("RGB").resize(samples[0].size), dtype=np.float32) / 255
            source = np.asarray(pair.source_image.convert("RGB").resize(samples[0].size), dtype=np.float32) / 255
            errors.append(np.abs(np.asarray(samples[0], dtype=np.float32) / 255 - target).mean())
            copy_errors.append(np.abs(source - target).mean())
    print(f"{len(todo)} pairs sampled, {len(names) - len(todo)} already there, images in {args.out}")
    if errors:
        print(
            f"mean absolute pixel error to the targets (0-1 scale): {np.mean(errors):.4f} "
            f"(copying the source: {np.mean(copy_errors):.4f})"
        )
    return 0


def tqdm_range(total: int, step: int, description: str):
    from tqdm.auto import tqdm

    return tqdm(range(0, total, step), desc=description, unit="batch", disable=total <= step)


def load_stage1_embedding(folder: Path, pair):
    import numpy as np
    import torch

    path = folder / f"{Path(pair.source_name).stem}_to_{Path(pair.target_name).stem}.npy"
    if not path.is_file():
        raise PcdmsError(f"{path}: no stage-1 embedding for this pair (write them with: pcdms sample prior --data)")
    try:
        return torch.from_numpy(np.load(path)).float().reshape(1, -1)
    except (OSError, ValueError) as error:
        raise PcdmsError(f"{path}: not a .npy embedding ({error})") from None


def add_pair_arguments(parser: argparse.ArgumentParser) -> None:
    """The options naming one pair to sample: the source photo and the two poses."""
    parser.add_argument("--source", type=Path, help="source photo")
    parser.add_argument(
        "--source-pose", type=Path, help="its pose: a pose file or a photo to take it from (default: the source photo)"
    )
    parser.add_argument("--target-pose", type=Path, help="the target pose: a pose file or a photo to take it from")
    parser.add_argument("--target-size", type=parse_size, help="WxH of the target image, for pose files that lack it")


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """The options naming a dataset split to sample instead of one pair."""
    parser.add_argument("--data", type=Path, help="instead: sample every pair of a dataset split")
    parser.add_argument("--split", default="test")
    parser.add_argument("--layout", choices=("auto", *LAYOUTS), default="auto")
    parser.add_argument("--images", type=Path, help="image folder, where it is not the layout's usual one")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pcdms", description="Pose-guided person image synthesis (PCDMs).")
    parser.add_argument("--version", action="version", version=f"pcdms {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the main job on the bundled example and print where the results are")
    demo.add_argument("--out", type=Path, default=Path("pcdms-demo"), help="output folder (default: pcdms-demo)")
    demo.set_defaults(run=run_demo)

    pose = commands.add_parser("pose", help="extract, render and convert poses").add_subparsers(
        dest="pose_command", required=True, metavar="POSE_COMMAND"
    )
    extract = pose.add_parser("extract", help="find the body pose in photos")
    extract.add_argument("images", nargs="+", metavar="IMAGE")
    extract.add_argument(
        "--out", type=Path, required=True, help="folder for STEM.json, STEM_pose.png, STEM_overlay.png"
    )
    extract.add_argument(
        "--extractor", default="mediapipe", help="'mediapipe' (default), a registered name, or package.module:factory"
    )
    extract.add_argument(
        "--txt", action="store_true", help="also write STEM.txt, the PCDMs pose txt (official convention)"
    )
    extract.set_defaults(run=run_pose_extract)

    render = pose.add_parser("render", help="draw a pose file as a pose map, or over a photo")
    render.add_argument("pose", type=Path, metavar="POSE", help="pcdms JSON, OpenPose JSON or PCDMs txt")
    render.add_argument("--out", type=Path, required=True, help="image file to write (.png or .jpg)")
    render.add_argument("--size", type=parse_size, help="map size WxH (default: the pose's image size)")
    render.add_argument(
        "--image-size", type=parse_size, help="size WxH of the image the pose belongs to, for files that lack it"
    )
    render.add_argument("--on", type=Path, metavar="IMAGE", help="draw over this photo instead of on black")
    render.set_defaults(run=run_pose_render)

    convert = pose.add_parser("convert", help="convert a pose file between formats")
    convert.add_argument("pose", type=Path, metavar="POSE", help="pcdms JSON, OpenPose JSON or PCDMs txt")
    convert.add_argument("--out", type=Path, required=True, help=".json (pcdms) or .txt (PCDMs, official convention)")
    convert.add_argument(
        "--format", choices=("pcdms", "openpose"), default="pcdms", help="JSON flavour (default: pcdms)"
    )
    convert.add_argument("--image-size", type=parse_size, help="size WxH of the image the pose belongs to")
    convert.set_defaults(run=run_pose_convert)

    data = commands.add_parser("data", help="check datasets and write their pose files").add_subparsers(
        dest="data_command", required=True, metavar="DATA_COMMAND"
    )
    for name, help_text in (
        ("validate", "count missing or unreadable images and poses in a dataset split"),
        ("prepare-poses", "write the pose maps and pose txt files of a whole dataset"),
    ):
        sub = data.add_parser(name, help=help_text)
        sub.add_argument("root", type=Path, metavar="ROOT", help="dataset folder")
        sub.add_argument("--layout", choices=("auto", *LAYOUTS), default="auto")
        sub.add_argument("--images", type=Path, help="image folder, where it is not the layout's usual one")
    validate = data.choices["validate"]
    validate.add_argument("--split", default="train", help="split to check (default: train)")
    validate.add_argument("--check-images", action="store_true", help="decode every image, not only check it exists")
    validate.set_defaults(run=run_data_validate)
    prepare = data.choices["prepare-poses"]
    prepare.add_argument(
        "--out", type=Path, required=True, help="folder for openpose_all_img/ and normalized_pose_txt/"
    )
    prepare.add_argument(
        "--split", action="append", help="split to process; repeat for several (default: those of train and test there)"
    )
    prepare.add_argument("--size", type=parse_size, help="pose map size WxH (default: each image's own size)")
    prepare.add_argument("--format", choices=("jpg", "png"), default="jpg", help="pose map format (official: jpg)")
    prepare.add_argument("--overwrite", action="store_true", help="rewrite files that are already there")
    prepare.set_defaults(run=run_data_prepare_poses)

    toy = commands.add_parser("toy", help="write a toy dataset, tiny encoders and a tiny VAE, to try training on a CPU")
    toy.add_argument("out", type=Path, metavar="OUT", help="folder for OUT/data, OUT/clip, OUT/dinov2 and OUT/vae")
    toy.add_argument("--people", type=int, default=8, help="people drawn (default: 8)")
    toy.add_argument("--poses", type=int, default=6, help="poses per person (default: 6)")
    toy.add_argument("--test-people", type=int, default=2, help="people kept for the test split (default: 2)")
    toy.add_argument("--vae-steps", type=int, default=300, help="steps fitting the tiny VAE (default: 300)")
    toy.add_argument("--seed", type=int, default=0)
    toy.set_defaults(run=run_toy)

    train = commands.add_parser("train", help="train a stage from a YAML config (one GPU, many, or the CPU)")
    train.add_argument("stage", choices=("prior", "inpaint"), metavar="STAGE", help="prior or inpaint")
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
    prior.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    prior.set_defaults(run=run_sample_prior)

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
    inpaint.add_argument("--steps", type=int, default=20, help="sampling steps (default: 20)")
    inpaint.add_argument("--guidance", type=float, default=2.0, help="guidance scale, on above 1 (default: 2.0)")
    inpaint.add_argument("--samples", type=int, default=1, help="images per pair (default: 1)")
    inpaint.add_argument("--seed", type=int, default=42)
    inpaint.add_argument("--batch-size", type=int, default=8)
    inpaint.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    inpaint.add_argument(
        "--dtype", choices=("auto", "float32", "float16", "bfloat16"), default="auto", help="auto: float32 on a CPU"
    )
    inpaint.set_defaults(run=run_sample_inpaint)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except PcdmsError as error:
        print(f"pcdms: error: {error}", file=sys.stderr)
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"pcdms: error: {where}{error.strerror or error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("pcdms: interrupted", file=sys.stderr)
        return 130
    return 1
