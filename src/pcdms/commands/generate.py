"""``pcdms generate``: the person of a photo in a target pose, all three stages; one pair or a pairs file.
The work is in pcdms.generation; this module reads the options."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..bundled import DEFAULT_SEEDS, STAGE_NAMES, bundled_model, model_record, stage_generators
from ..errors import PcdmsError
from .common import (
    add_device_arguments,
    add_person_arguments,
    add_preset_argument,
    parse_size,
    parse_stage_value,
    per_stage,
)


def add_parsers(commands) -> None:
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
    generate.add_argument(
        "--retarget",
        action="store_true",
        help="move and scale the target pose onto the source's body: its place, height and limb lengths (one pair)",
    )
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
    for option, kind, metavar, help_text in (
        (
            "--steps",
            int,
            "N",
            "sampling steps, all stages or one (prior, inpaint, refine); repeatable (default: the --preset's, else "
            "the model's recommended settings, else the official 20)",
        ),
        (
            "--guidance",
            float,
            "X",
            "guidance scale of stages 2 and 3, or of one stage; on above 1 (default: the --preset's, else the "
            "model's recommended settings, else the official 2.0, prior 0: off)",
        ),
        ("--seed", int, "N", "random seed, all stages or one (default: 42)"),
    ):
        generate.add_argument(
            option,
            type=parse_stage_value(kind),
            action="append",
            default=[],
            metavar=f"[STAGE=]{metavar}",
            help=help_text,
        )
    generate.add_argument(
        "--strength",
        type=float,
        metavar="X",
        help="where stage 3 starts, in (0, 1]: 1 from pure noise (official), below 1 from stage 2's image partly "
        "noised, keeping its layout (default: the model's recommended setting, else 1)",
    )
    add_preset_argument(generate)
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
    add_device_arguments(generate)
    generate.set_defaults(run=run_generate)


def check_options(args: argparse.Namespace) -> None:
    """Refuse, before any model is loaded, option combinations that cannot work."""
    if args.pairs is None and not (args.source and args.target_pose):
        raise PcdmsError("generate needs --source and --target-pose (or --pairs FILE for a batch)")
    if args.retarget and args.pairs is not None:
        raise PcdmsError("--retarget works on one pair (--source and --target-pose), not with --pairs")
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
    from ..pipelines.settings import checked_sampling

    if args.strength is not None:
        checked_sampling({"refine_strength": args.strength}, "--strength")
    guidance = per_stage(args.guidance, {}, stages=("inpaint", "refine"))
    checked_sampling({f"{stage}_guidance": value for stage, value in guidance.items()}, "--guidance")
    checked_sampling({f"{stage}_steps": steps for stage, steps in per_stage(args.steps, {}).items()}, "--steps")


def run_generate(args: argparse.Namespace) -> int:
    from ..devices import quiet_model_loading, resolve_device, resolve_dtype
    from ..generation import ORACLE_LABEL, generate_pairs, read_pose_input, source_pose_of, write_generated
    from ..io import load_image
    from ..pipelines.pcdms import load_pcdms_pipeline
    from ..pipelines.presets import preset_defaults

    quiet_model_loading()
    model = args.model or bundled_model()
    check_options(args)
    device = resolve_device(args.device)
    if args.pairs is not None:
        from accelerate import PartialState

        # Under accelerate launch or torchrun, each process takes its share of the pairs, on its own GPU.
        state = PartialState(cpu=device.type == "cpu")
        device = state.device if args.device == "auto" else device
    pipeline = load_pcdms_pipeline(model, dtype=resolve_dtype(args.dtype, device)).to(device)
    recommended = preset_defaults(pipeline.config.sampling, args.preset)  # the preset's, else the model's
    steps = per_stage(args.steps, {stage: recommended[f"{stage}_steps"] for stage in STAGE_NAMES})
    guidance = per_stage(
        args.guidance, {stage: recommended[f"{stage}_guidance"] for stage in STAGE_NAMES}, stages=("inpaint", "refine")
    )
    strength = recommended["refine_strength"] if args.strength is None else args.strength
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
        "refine_strength": strength,
        "preset": args.preset,
    }

    def generators(pairs: int) -> dict:
        return stage_generators(seeds, pairs, device)

    if args.pairs is None:
        pipeline.set_progress_bar_config(leave=False)
        source = load_image(args.source)
        target_pose = read_pose_input(args.target_pose, args.target_size, args.target_person)
        source_pose = source_pose_of(source, args.source, args.source_pose, args.source_person)
        if args.retarget:  # the target's bones in the source's proportions, on the source's body
            from ..animation import retarget_pose

            target_pose = retarget_pose(source_pose.resize(source.size), target_pose)
        output = pipeline(source, target_pose, source_pose, generator=generators(1), **settings)
        for path in write_generated(output, 0, args.out, args.samples, args.intermediates):
            print(path)
        return 0
    manifest = {
        "model": model_record(model),
        "preset": args.preset,
        "steps": steps,
        "guidance": guidance,
        "refine_strength": strength,
        "seeds": seeds,
        "samples": args.samples,
        "best_of": args.best_of,
        "size": list(args.size) if args.size else None,
        "stop_after": args.stop_after,
        "selection": ORACLE_LABEL.format(args.best_of) if args.best_of > 1 else None,
    }
    failures = generate_pairs(
        pipeline,
        args.pairs,
        args.out,
        settings,
        generators,
        manifest,
        samples=args.samples,
        best_of=args.best_of,
        ground_truth=args.ground_truth,
        batch_size=args.batch_size,
        intermediates=args.intermediates,
        target_size=args.target_size,
        source_person=args.source_person,
        target_person=args.target_person,
    )
    return 1 if failures else 0
