"""Cut the bundled driving clip for ``pcdms animate`` from Debian's opencv-doc street video (vtest.avi).

One person of the street dataset's test part (frames 635 on; the bundled model never trained on them)
walks for CLIP_FRAMES frames; a window of 1:2 aspect follows them (its centre smoothed over time, its
size fixed), cut from the video and scaled to 128x256. Writes src/pcdms/assets/examples/walk/walk.mp4
(the clip, at the video's 10 fps) and walk.json (the pose of each frame, a pcdms pose sequence, found by
MediaPipe). Run: python scripts/make-walk-clip.py [--list] [--track N --start F]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from pcdms.animation import write_pose_sequence, write_video
from pcdms.data.street import DEBIAN_VIDEO, StreetSettings, detect_people, median_background, read_video, track
from pcdms.errors import NoPersonError
from pcdms.pose import extract_pose

OUT = Path(__file__).resolve().parents[1] / "src" / "pcdms" / "assets" / "examples" / "walk"
FIRST_TEST_FRAME = 635  # the street dataset's split frame (street.json)
CLIP_FRAMES = 20
CLIP_SIZE = (128, 256)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--list", action="store_true", help="list the long tracks of the test part")
    parser.add_argument("--track", type=int, default=None)
    parser.add_argument("--start", type=int, default=0, help="first position within the track")
    args = parser.parse_args()
    frames = read_video(DEBIAN_VIDEO)
    background = median_background([frame for _, frame in frames])
    test = [(number, frame) for number, frame in frames if number >= FIRST_TEST_FRAME]
    settings = StreetSettings()
    tracks = track([(number, detect_people(frame, background, settings)) for number, frame in test])
    tracks = [found for found in tracks if len(found) >= CLIP_FRAMES]
    if args.list or args.track is None:
        for index, found in enumerate(tracks):
            heights = [box[3] for _, box in found]
            first, last = test[found[0][0]][0], test[found[-1][0]][0]
            print(f"track {index}: {len(found)} frames {first}-{last}, height {np.median(heights):.0f}")
        return
    found = tracks[args.track][args.start : args.start + CLIP_FRAMES]
    boxes = np.array([box for _, box in found], dtype=np.float64)
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    kernel = np.ones(5) / 5  # a steady camera: the window's centre is a moving average of the person's
    padded = np.pad(centres, ((2, 2), (0, 0)), mode="edge")
    centres = np.stack([np.convolve(padded[:, axis], kernel, mode="valid") for axis in range(2)], axis=1)
    height = float(np.median(boxes[:, 3])) * 1.3
    images, poses = [], []
    for (position, _), (cx, cy) in zip(found, centres, strict=True):
        box = (cx - height / 4, cy - height / 2, cx + height / 4, cy + height / 2)
        image = Image.fromarray(test[position][1]).crop(tuple(round(v) for v in box))
        image = image.resize(CLIP_SIZE, Image.Resampling.LANCZOS)
        images.append(image)
        try:
            poses.append(extract_pose(image))
        except NoPersonError:
            poses.append(None)
    OUT.mkdir(parents=True, exist_ok=True)
    write_video(OUT / "walk.mp4", images, 10.0)
    write_pose_sequence(OUT / "walk.json", poses, 10.0)
    missing = sum(pose is None for pose in poses)
    print(f"frames {test[found[0][0]][0]}-{test[found[-1][0]][0]}: {len(images)} frames, {missing} without a person")


if __name__ == "__main__":
    main()
