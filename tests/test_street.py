"""The street dataset builder: detection, tracking, and the whole build on frames cut from the video."""

import json
from dataclasses import replace

import numpy as np
import pytest

from pcdms.data import open_dataset
from pcdms.data.street import DEBIAN_VIDEO, StreetSettings, build_street_dataset, detect_people, track
from test_cli import assert_one_line_error, run

cv2 = pytest.importorskip("cv2")


def frame_with(boxes, size=(240, 320)):
    frame = np.full((*size, 3), 128, np.uint8)
    for x, y, w, h in boxes:
        frame[y : y + h, x : x + w] = 20
    return frame


def test_detect_people_keeps_upright_isolated_blobs():
    background = frame_with([])
    settings = StreetSettings(min_height=40)
    people = [(30, 40, 20, 60), (200, 100, 24, 70)]
    assert sorted(detect_people(frame_with(people), background, settings)) == people
    # Too small, lying (a wide blob: a group or a car), and two people side by side: none is one reliable person.
    assert detect_people(frame_with([(30, 40, 10, 30), (100, 100, 80, 50)]), background, settings) == []
    assert detect_people(frame_with([(100, 40, 20, 60), (124, 40, 20, 60)]), background, settings) == []


def test_tracks_follow_each_person_and_break_on_a_height_jump_or_a_long_absence():
    walker = [(10 + 4 * step, 50, 20, 60) for step in range(6)]
    other = [(200 - 4 * step, 80, 22, 66) for step in range(6)]
    detections = [(step, [walker[step], other[step]]) for step in range(6)]
    tracks = track(detections)
    assert [[box for _, box in found] for found in tracks] == [walker, other]
    # The box doubles in height (two people merged): a new track, not the same person.
    jumped = track([(0, [(10, 50, 20, 60)]), (1, [(10, 40, 22, 120)])])
    assert len(jumped) == 2
    # Gone for more than two frames: the track ends.
    gone = track([(0, [(10, 50, 20, 60)]), (1, []), (2, []), (3, []), (4, [(10, 50, 20, 60)])])
    assert len(gone) == 2


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """80 frames of the Debian video (people walking across), written as a small clip."""
    if not DEBIAN_VIDEO.is_file():
        pytest.skip(f"{DEBIAN_VIDEO} is not installed (Debian's opencv-doc package)")
    capture = cv2.VideoCapture(str(DEBIAN_VIDEO))
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (768, 576))
    for number in range(230):
        ok, frame = capture.read()
        assert ok
        if number >= 150:
            writer.write(frame)
    writer.release()
    return path


def test_build_on_frames_of_the_video(clip, tmp_path):
    pytest.importorskip("mediapipe")
    settings = replace(StreetSettings(), min_track=3, gap_frames=5, test_fraction=0.3, max_test_pairs=40)
    summary = build_street_dataset(tmp_path / "street", clip, settings=settings, progress=False)
    assert summary.frames == 80 and summary.crops["train"] > 30 and summary.pairs["train"] > 30
    description = json.loads((tmp_path / "street" / "street.json").read_text())
    assert description["counts"]["pairs"] == summary.pairs
    frames = {}
    for split in ("train", "test"):
        dataset = open_dataset(tmp_path / "street", split)
        assert dataset.validate(check_images=True).ok
        assert len(dataset) == summary.pairs[split] <= (40 if split == "test" else 10**6)
        pair = dataset[0]
        assert pair.source_image.size == pair.target_image.size == (64, 128)
        assert pair.source_pose.present.sum() >= settings.min_joints
        for source, target in dataset.pairs:
            source_track, _, source_frame, _ = source.split("_")
            target_track, _, target_frame, _ = target.split("_")
            assert source_track == target_track  # one person
            assert abs(int(source_frame) - int(target_frame)) >= settings.min_frame_distance
        frames[split] = [int(name.split("_")[2]) for name in dataset.image_names()]
    # The split is in time, with a gap: no test frame, nor one next to it, is in training.
    assert max(frames["train"]) < summary.split_frame - settings.gap_frames <= min(frames["test"]) - settings.gap_frames


def test_street_command_without_the_video_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("pcdms.data.street.DEBIAN_VIDEO", tmp_path / "vtest.avi")
    status, _, err = run(capsys, "data", "street", "--out", tmp_path / "street")
    assert status == 1
    assert_one_line_error(err, "no --video given and Debian's opencv-doc video is not at")
    status, _, err = run(capsys, "data", "street", "--out", tmp_path / "street", "--video", tmp_path / "none.avi")
    assert status == 1
    assert_one_line_error(err, "none.avi: no such video file")
    assert not (tmp_path / "street").exists()
