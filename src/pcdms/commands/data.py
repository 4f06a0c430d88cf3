"""``pcdms data validate | prepare-poses | street``: checking datasets and writing their pose files."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data import available_splits, open_dataset, write_pose_files
from ..errors import PcdmsError
from ..pose import get_extractor
from .common import add_layout_arguments, parse_size


def add_parsers(commands) -> None:
    data = commands.add_parser("data", help="check datasets and write their pose files").add_subparsers(
        dest="data_command", required=True, metavar="DATA_COMMAND"
    )
    validate = data.add_parser("validate", help="count missing or unreadable images and poses in a dataset split")
    add_root_arguments(validate)
    validate.add_argument("--split", default="train", help="split to check (default: train)")
    validate.add_argument("--check-images", action="store_true", help="decode every image, not only check it exists")
    validate.set_defaults(run=run_validate)

    prepare = data.add_parser("prepare-poses", help="write the pose maps and pose txt files of a whole dataset")
    add_root_arguments(prepare)
    prepare.add_argument(
        "--out", type=Path, required=True, help="folder for openpose_all_img/ and normalized_pose_txt/"
    )
    prepare.add_argument(
        "--split", action="append", help="split to process; repeat for several (default: those of train and test there)"
    )
    prepare.add_argument("--size", type=parse_size, help="pose map size WxH (default: each image's own size)")
    prepare.add_argument("--format", choices=("jpg", "png"), default="jpg", help="pose map format (official: jpg)")
    prepare.add_argument("--overwrite", action="store_true", help="rewrite files that are already there")
    prepare.set_defaults(run=run_prepare_poses)

    street = data.add_parser("street", help="build the street dataset (Market-1501 layout) from a fixed-camera video")
    street.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    street.add_argument("--video", type=Path, help="the video (default: Debian opencv-doc's examples/data/vtest.avi)")
    street.add_argument("--every", type=int, default=1, help="use every N-th frame (default: 1)")
    street.add_argument("--max-frames", type=int, help="read at most this many frames")
    street.add_argument("--extractor", default="mediapipe", help="pose extractor (default: mediapipe)")
    street.add_argument("--seed", type=int, default=0, help="seed of the pair sampling")
    street.set_defaults(run=run_street)


def add_root_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, metavar="ROOT", help="dataset folder")
    add_layout_arguments(parser)


def run_validate(args: argparse.Namespace) -> int:
    dataset = open_dataset(args.root, args.split, args.layout, args.images)
    report = dataset.validate(check_images=args.check_images, progress=True)
    print(report.summary())
    return 0 if report.ok else 1


def run_prepare_poses(args: argparse.Namespace) -> int:
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


def run_street(args: argparse.Namespace) -> int:
    from ..data.street import DEBIAN_VIDEO, StreetSettings, build_street_dataset

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
