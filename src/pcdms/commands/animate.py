"""``pcdms animate``: the person of a photo driven by a pose sequence (a video, a folder of poses or images,
a sequence file), to a video or a folder of frames. The work is in pcdms.animation; this module reads the
options."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..bundled import DEFAULT_SEEDS, bundled_model
from ..errors import PcdmsError
from .common import add_device_arguments, add_preset_argument, parse_size, parse_stage_value, per_stage


def add_parsers(commands) -> None:
    animate = commands.add_parser(
        "animate", help="the person of a photo moving as in a video or a pose sequence, to a video"
    )
    animate.add_argument("--source", type=Path, required=True, help="photo of the person")
    animate.add_argument(
        "--driving",
        type=Path,
        required=True,
        help="the motion: a video (.mp4, .avi, .gif, ...), a folder of pose files or images (in name order), "
        "or a pose sequence file (.json)",
    )
    animate.add_argument(
        "--out",
        type=Path,
        required=True,
        help="OUT.mp4 or OUT.gif (its frames kept in OUT_frames/, where a rerun resumes), or a folder for the frames",
    )
    animate.add_argument("--source-pose", type=Path, help="the source's pose file (default: extracted from --source)")
    animate.add_argument(
        "--model", type=Path, help="a PCDMs pipeline folder, or a bundled model's name (default: pcdms-street)"
    )
    smoothing = animate.add_argument_group("smoothing (One-Euro filter, Casiez et al., CHI 2012)")
    smoothing.add_argument("--no-smoothing", action="store_true", help="use the driving poses as detected")
    smoothing.add_argument(
        "--min-cutoff", type=float, default=1.0, help="cutoff at rest, Hz: lower is smoother (default: 1.0)"
    )
    smoothing.add_argument(
        "--beta", type=float, default=3.0, help="how fast the cutoff rises with speed: higher lags less (default: 3.0)"
    )
    smoothing.add_argument(
        "--d-cutoff", type=float, default=1.0, help="cutoff of the speed estimate, Hz (default: 1.0)"
    )
    animate.add_argument(
        "--no-retarget", action="store_true", help="keep the driver's body size and place (default: the source's)"
    )
    animate.add_argument(
        "--side-by-side", action="store_true", help="each video frame is [driving frame | rendered pose | result]"
    )
    animate.add_argument("--batch-size", type=int, default=4, help="frames per batch (default: 4)")
    animate.add_argument("--max-frames", type=int, metavar="N", help="only the first N frames of the driving input")
    animate.add_argument(
        "--fps", type=float, help="frames per second of the video (default: the driving video's, else 10)"
    )
    animate.add_argument("--seed", type=int, default=DEFAULT_SEEDS["inpaint"], help="random seed (default: 42)")
    animate.add_argument(
        "--steps",
        type=parse_stage_value(int),
        action="append",
        default=[],
        metavar="[STAGE=]N",
        help="sampling steps, all stages or one (prior, inpaint, refine); repeatable (default: the --preset's, else the model's)",
    )
    add_preset_argument(animate)
    animate.add_argument("--size", type=parse_size, help="WxH the model works at (default: its training size)")
    animate.add_argument(
        "--extractor", default="mediapipe", help="pose extractor for videos and photos (default: mediapipe)"
    )
    add_device_arguments(animate)
    animate.set_defaults(run=run_animate)


def check_options(args: argparse.Namespace) -> None:
    """Refuse, before any model is loaded, options that cannot work."""
    for option, value in (("--batch-size", args.batch_size), ("--max-frames", args.max_frames)):
        if value is not None and value < 1:
            raise PcdmsError(f"{option} must be at least 1, got {value}")
    if args.fps is not None and not args.fps > 0:
        raise PcdmsError(f"--fps must be positive, got {args.fps}")
    if args.min_cutoff <= 0 or args.d_cutoff <= 0 or args.beta < 0:
        raise PcdmsError("--min-cutoff and --d-cutoff must be positive and --beta at least 0")
    if args.side_by_side and args.out.suffix.lower() not in (".mp4", ".gif"):
        raise PcdmsError(f"{args.out}: --side-by-side needs a video out (.mp4 or .gif)")
    from ..pipelines.settings import checked_sampling

    checked_sampling({f"{stage}_steps": steps for stage, steps in per_stage(args.steps, {}).items()}, "--steps")


def run_animate(args: argparse.Namespace) -> int:
    from ..animation import AnimationSettings, OneEuroSettings, make_animation, model_identity, read_driving
    from ..bundled import model_folder
    from ..devices import quiet_model_loading, resolve_device, resolve_dtype
    from ..pipelines.pcdms import load_pcdms_pipeline
    from ..pose import get_extractor, load_pose

    quiet_model_loading()
    check_options(args)
    model = args.model or bundled_model()
    extractor = get_extractor(args.extractor)
    # The inputs first: a bad driving file is reported before the model loads.
    driving = read_driving(args.driving, extractor, args.max_frames, progress=True)
    source_pose = load_pose(args.source_pose) if args.source_pose else None
    device = resolve_device(args.device)
    pipeline = load_pcdms_pipeline(model, dtype=resolve_dtype(args.dtype, device)).to(device)
    pipeline.set_progress_bar_config(disable=True)  # one bar over the frames instead
    width, height = args.size or (None, None)
    settings = AnimationSettings(
        seed=args.seed,
        steps=per_stage(args.steps, {}),
        width=width,
        height=height,
        batch_size=args.batch_size,
        preset=args.preset,
    )
    smoothing = None if args.no_smoothing else OneEuroSettings(args.min_cutoff, args.beta, args.d_cutoff)
    animation = make_animation(
        pipeline,
        args.source,
        driving,
        args.out,
        source_pose=source_pose,
        smoothing=smoothing,
        retarget=not args.no_retarget,
        settings=settings,
        fps=args.fps,
        with_driving=args.side_by_side,
        model_name=model_identity(model_folder(model)),
        extractor=extractor,
    )
    made = f"{animation.generated} generated"
    if animation.generated:
        made += f", {animation.seconds / animation.generated:.2f} s per frame"
    print(
        f"{animation.out}: {len(animation.frames)} frames at {animation.fps:g} fps ({made}, {animation.reused} reused)"
    )
    return 0
