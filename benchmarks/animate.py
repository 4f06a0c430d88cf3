"""pcdms animate on the street video: one test-split person driven by another's walk.

    python benchmarks/animate.py                              # the bundled model, street/ (pcdms data street)
    python benchmarks/animate.py --model DIR --max-frames 3 --results /tmp/a.json --gif /tmp/a.gif   # a quick check

The driver is the test-split track with the longest run of consecutive frames (its crops are the driving
video, its dataset poses, found by MediaPipe on each crop, the driving poses); the source is the first crop
of the longest other track. The animation is made twice, with and without One-Euro smoothing (retargeting
on, the same seed), and each is measured:

- seconds per frame: the model's time over the frames generated (a fresh frame folder, batches of 4);
- PCKh per frame: the pose MediaPipe finds on the generated frame (scaled to 256 pixels high, with a margin,
  as the street dataset reads its crops) against the retargeted driving pose the model got
  (pcdms.evaluation.pckh; a frame where nobody is found scores 0);
- flicker: the mean absolute difference of consecutive frames (0-255), next to the driving video's own.

Writes benchmarks/results/animate.json and docs/animate.gif (driving crop | pose | result, smoothed).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pcdms.animation import AnimationSettings, Driving, OneEuroSettings, make_animation, side_by_side, write_video
from pcdms.bundled import bundled_model
from pcdms.devices import quiet_model_loading, resolve_device
from pcdms.errors import NoPersonError
from pcdms.evaluation.pckh import PCKh
from pcdms.io import load_image
from pcdms.pipelines.pcdms import load_pcdms_pipeline
from pcdms.pose import get_extractor, read_annotation_csv

ROOT = Path(__file__).resolve().parents[1]
DETECTION_HEIGHT, MARGIN = 256, 0.25


def tracks(data: Path) -> dict[int, list[tuple[int, str]]]:
    """Test-split crops by track: (frame, name), in frame order (names are TRACK_c1s1_FRAME_00.jpg)."""
    found: dict[int, list[tuple[int, str]]] = {}
    for path in sorted((data / "test").glob("*.jpg")):
        track, _, frame, _ = path.stem.split("_")
        found.setdefault(int(track), []).append((int(frame), path.name))
    return found


def longest_run(crops: list[tuple[int, str]]) -> list[str]:
    """The longest run of crops of consecutive frames."""
    best, run = [], []
    for frame, name in crops:
        run = [*run, (frame, name)] if run and frame == run[-1][0] + 1 else [(frame, name)]
        best = run if len(run) > len(best) else best
    return [name for _, name in best]


def detected(extractor, image: Image.Image) -> np.ndarray | None:
    """The pose found on a generated frame, in its pixels; None when nobody is found."""
    scale = DETECTION_HEIGHT / image.height
    big = image.resize((round(image.width * scale), DETECTION_HEIGHT), Image.Resampling.BICUBIC)
    pad = round(MARGIN * big.width)
    framed = Image.fromarray(np.pad(np.asarray(big), ((0, 0), (pad, pad), (0, 0)), mode="edge"))
    try:
        pose = extractor(framed)
    except NoPersonError:
        return None
    return (pose.xy - (pad, 0) + 0.5) / scale - 0.5


def flicker(frames: list[Image.Image]) -> float:
    """Mean absolute difference of consecutive frames, 0-255."""
    arrays = [np.asarray(frame.convert("RGB"), dtype=np.float64) for frame in frames]
    return float(np.mean([np.abs(b - a).mean() for a, b in itertools.pairwise(arrays)]))


def measure(animation, extractor) -> dict:
    frames = [load_image(path) for path in animation.frames]
    per_frame = []
    for frame, pose in zip(frames, animation.poses, strict=True):
        score = PCKh()
        score.add(pose.resize(frame.size).xy, detected(extractor, frame))
        per_frame.append(round(score.value, 4) if score.joints else None)
    scored = [value for value in per_frame if value is not None]
    return {
        "seconds_per_frame": round(animation.seconds / max(1, animation.generated), 3),
        "pckh_mean": round(float(np.mean(scored)), 4) if scored else None,
        "pckh_per_frame": per_frame,
        "flicker": round(flicker(frames), 3),
    }, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a PCDMs pipeline folder (default: the bundled model)")
    parser.add_argument("--data", type=Path, default=ROOT / "street", help="the street dataset (pcdms data street)")
    parser.add_argument("--max-frames", type=int, default=24)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "animate.json")
    parser.add_argument("--gif", type=Path, default=ROOT / "docs" / "animate.gif")
    args = parser.parse_args()
    quiet_model_loading()
    by_track = tracks(args.data)
    runs = {track: longest_run(crops) for track, crops in by_track.items()}
    driver = max(runs, key=lambda track: len(runs[track]))
    source_track = max((track for track in by_track if track != driver), key=lambda track: len(by_track[track]))
    source_name = by_track[source_track][0][1]
    names = runs[driver][: args.max_frames]
    annotations = read_annotation_csv(args.data / "market-annotation-test.csv", (64, 128))
    images = [load_image(args.data / "test" / name) for name in names]
    driving = Driving(args.data / "test", [annotations[name] for name in names], [], 10.0, images)

    model = args.model or bundled_model()
    device = resolve_device(args.device)
    pipeline = load_pcdms_pipeline(model).to(device)
    pipeline.set_progress_bar_config(disable=True)
    extractor = get_extractor()
    source = load_image(args.data / "test" / source_name)
    settings = AnimationSettings(seed=args.seed, batch_size=4)
    variants, made = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for label, smoothing in (("smoothed", OneEuroSettings()), ("raw", None)):
            animation = make_animation(
                pipeline, source, driving, Path(scratch) / label, source_pose=annotations[source_name],
                smoothing=smoothing, settings=settings, model_name=str(model),
            )  # fmt: skip
            variants[label], generated = measure(animation, extractor)
            made[label] = (generated, animation.poses)
    frames, poses = made["smoothed"]
    write_video(args.gif, [side_by_side(*each) for each in zip(frames, poses, images, strict=True)], driving.fps)
    result = {
        "date": datetime.date.today().isoformat(),
        "device": f"{device.type} ({platform.machine()}, torch {torch.__version__})",
        "model": str(model),
        "source": source_name,
        "driver": {"track": driver, "frames": names},
        "fps": driving.fps,
        "driving_flicker": round(flicker(images), 3),
        **variants,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    for label in variants:
        v = variants[label]
        print(f"{label}: {v['seconds_per_frame']} s/frame, PCKh {v['pckh_mean']}, flicker {v['flicker']}")
    print(f"driving flicker {result['driving_flicker']}; wrote {args.results} and {args.gif}")


if __name__ == "__main__":
    main()
