"""The ``pcdms`` command.

Errors a user can fix come out as one line, ``pcdms: error: ...``, with exit status 1; a wrong
command line gets argparse's usage message and status 2.
"""

from __future__ import annotations

import argparse
import sys
from importlib.resources import files
from pathlib import Path

from . import __version__
from .data import LAYOUTS, available_splits, open_dataset, write_pose_files
from .errors import PcdmsError
from .io import load_image, save_image
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
