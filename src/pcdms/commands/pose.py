"""``pcdms pose extract | render | convert``: the pose toolkit on the command line (no torch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import PcdmsError
from ..io import load_image, save_image
from ..pose import (
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
from .common import parse_person, parse_size

POSE_FILE_HELP = "pcdms JSON, OpenPose JSON or PCDMs txt"
PERSON_HELP = "the person of an OpenPose file listing several (default: the largest)"


def add_parsers(commands) -> None:
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
    extract.set_defaults(run=run_extract)

    render = pose.add_parser("render", help="draw a pose file as a pose map, or over a photo")
    render.add_argument("pose", type=Path, metavar="POSE", help=POSE_FILE_HELP)
    render.add_argument("--out", type=Path, required=True, help="image file to write (.png or .jpg)")
    render.add_argument("--size", type=parse_size, help="map size WxH (default: the pose's image size)")
    render.add_argument(
        "--image-size", type=parse_size, help="size WxH of the image the pose belongs to, for files that lack it"
    )
    render.add_argument("--on", type=Path, metavar="IMAGE", help="draw over this photo instead of on black")
    render.add_argument("--person", type=parse_person, metavar="N", help=PERSON_HELP)
    render.set_defaults(run=run_render)

    convert = pose.add_parser("convert", help="convert a pose file between formats")
    convert.add_argument("pose", type=Path, metavar="POSE", help=POSE_FILE_HELP)
    convert.add_argument("--out", type=Path, required=True, help=".json (pcdms) or .txt (PCDMs, official convention)")
    convert.add_argument(
        "--format", choices=("pcdms", "openpose"), default="pcdms", help="JSON flavour (default: pcdms)"
    )
    convert.add_argument("--image-size", type=parse_size, help="size WxH of the image the pose belongs to")
    convert.add_argument("--person", type=parse_person, metavar="N", help=PERSON_HELP)
    convert.set_defaults(run=run_convert)


def joint_count(keypoints) -> str:
    return f"{int(keypoints.present.sum())} of {len(KEYPOINT_NAMES)} joints"


def run_extract(args: argparse.Namespace) -> int:
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
        print(f"{image_path}: {joint_count(keypoints)} -> " + ", ".join(str(path) for path in written.values()))
    return 1 if failures else 0


def run_render(args: argparse.Namespace) -> int:
    background = load_image(args.on) if args.on else None
    frame = background.size if background else args.size
    keypoints = load_pose(args.pose, image_size=args.image_size or frame, person=args.person)
    picture = draw_overlay(background, keypoints) if background else render_pose(keypoints, args.size)
    print(save_image(picture, args.out))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    keypoints = load_pose(args.pose, image_size=args.image_size, person=args.person)
    if args.format == "openpose":
        print(write_openpose_json(args.out, keypoints))
    else:
        print(save_pose(args.out, keypoints, OFFICIAL))
    return 0
