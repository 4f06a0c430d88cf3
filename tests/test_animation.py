"""``pcdms animate`` and pcdms.animation with the tiny pipeline: a 3-frame animation that shares its noise,
resumes, and writes a readable video at the right rate; bad driving inputs in one line."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import body_image, standing_pose
from pcdms.animation import (
    AnimationSettings,
    Driving,
    bone_lengths,
    initial_noise,
    make_animation,
    read_driving,
    read_video,
    retarget_pose,
    target_poses,
    write_pose_sequence,
    write_video,
)
from pcdms.animation.upload import animate_upload
from pcdms.cli import main
from pcdms.errors import NoPersonError, PcdmsError
from pcdms.pipelines.pcdms import PCDMsPipeline
from pcdms.pose import Keypoints
from pcdms.pose.pose_json import pose_to_dict
from tiny_pcdms import tiny_pcdms

SETTINGS = AnimationSettings(steps={"prior": 2, "inpaint": 1, "refine": 1}, batch_size=2)


def shifted(pose: Keypoints, dx: float) -> Keypoints:
    return Keypoints(pose.xy + (dx, 0), pose.confidence, pose.image_size)


@pytest.fixture(scope="module")
def pipeline():
    return tiny_pcdms()


@pytest.fixture(scope="module")
def walk():
    """A source person and a 3-frame driving walk (in a frame of another size), with its frames."""
    source_pose = standing_pose((64, 128))
    driver = standing_pose((128, 256))
    poses = [shifted(driver, 4.0 * frame) for frame in range(3)]
    return (
        body_image(source_pose),
        source_pose,
        Driving(Path("walk.mp4"), poses, [], 10.0, [body_image(p) for p in poses]),
    )


@pytest.fixture(scope="module")
def animated(pipeline, walk, tmp_path_factory):
    """The walk made into an MP4 once, and what the pipeline was called with."""
    source, source_pose, driving = walk
    calls = []

    class Recording:  # the pipeline, noting each call's arguments
        def __getattr__(self, name):
            return getattr(pipeline, name)

        def __call__(self, *args, **kwargs):
            calls.append(kwargs)
            return pipeline(*args, **kwargs)

    recording = Recording()
    out = tmp_path_factory.mktemp("animate") / "walk.mp4"
    animation = make_animation(
        recording, source, driving, out, source_pose=source_pose, settings=SETTINGS, progress=False
    )
    return animation, calls


def test_every_frame_starts_from_the_same_noise(animated, pipeline):
    _animation, calls = animated
    assert [len(call["latents"]["inpaint"]) for call in calls] == [2, 1]  # frames in batches of 2
    noise = initial_noise(pipeline, SETTINGS)
    for call in calls:
        for stage, tensor in call["latents"].items():
            for frame in tensor:
                assert frame.equal(noise[stage][0])
    assert set(calls[0]["latents"]) == {"prior", "inpaint", "refine"}


def test_every_frame_gets_the_source_encoded_once(animated, pipeline, walk, tmp_path):
    _animation, calls = animated
    source, source_pose, driving = walk
    encodings = pipeline.encode_sources(source, SETTINGS.width, SETTINGS.height)
    for call in calls:  # each frame of each batch: the same DINOv2 tokens and CLIP embedding of the source
        for name in ("image_features", "source_embeds"):
            assert all(frame.equal(encodings[name][0]) for frame in call[name])
    runs = {"image_encoder": 0, "clip_encoder": 0}
    hooks = [getattr(pipeline, name).register_forward_hook(lambda *_, name=name: runs.update({name: runs[name] + 1}))
             for name in runs]  # fmt: skip
    try:
        make_animation(pipeline, source, driving, tmp_path / "walk", source_pose=source_pose, settings=SETTINGS,
                       progress=False)  # fmt: skip
    finally:
        for hook in hooks:
            hook.remove()
    assert runs == {"image_encoder": 1, "clip_encoder": 1}  # once for the 3 frames in 2 batches


def test_the_video_has_every_frame_at_the_driving_rate(animated):
    animation, _ = animated
    frames, fps, count = read_video(animation.out)
    frames = list(frames)
    assert (fps, count, len(frames)) == (10.0, 3, 3)
    assert frames[0].size == Image.open(animation.frames[0]).size
    assert animation.generated == 3 and animation.reused == 0


def test_a_rerun_writes_nothing_new_and_gives_the_same_frames(animated, pipeline, walk):
    animation, _ = animated
    source, source_pose, driving = walk
    before = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in animation.frames}
    again = make_animation(
        pipeline, source, driving, animation.out, source_pose=source_pose, settings=SETTINGS, progress=False
    )
    assert (again.generated, again.reused) == (0, 3)
    assert {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in again.frames} == before


def test_an_interrupted_run_resumes_with_the_frames_an_uninterrupted_one_makes(animated, pipeline, walk, tmp_path):
    animation, _ = animated
    source, source_pose, driving = walk
    folder = tmp_path / "frames"
    shutil.copytree(animation.frames[0].parent, folder)
    (folder / "000002.png").unlink()  # stopped before the last frame
    resumed = make_animation(
        pipeline, source, driving, folder, source_pose=source_pose, settings=SETTINGS, progress=False
    )
    assert (resumed.generated, resumed.reused) == (1, 2)
    assert (folder / "000002.png").read_bytes() == animation.frames[2].read_bytes()


def test_a_frame_folder_of_another_animation_is_refused(animated, pipeline, walk):
    animation, _ = animated
    source, source_pose, driving = walk
    other = AnimationSettings(seed=7, steps=SETTINGS.steps, batch_size=2)
    with pytest.raises(PcdmsError, match=r"walk_frames: holds frames of another animation \(different settings\)"):
        make_animation(
            pipeline, source, driving, animation.out, source_pose=source_pose, settings=other, progress=False
        )


def test_side_by_side_frames_show_driving_pose_and_result(pipeline, walk, tmp_path):
    source, source_pose, driving = walk
    out = make_animation(
        pipeline, source, driving, tmp_path / "side.gif", source_pose=source_pose, settings=SETTINGS,
        with_driving=True, progress=False,
    )  # fmt: skip
    frames, fps, count = read_video(out.out)
    first = next(frames)
    result = Image.open(out.frames[0])
    assert (fps, count) == (10.0, 3)
    assert first.size == (result.width * 2 + 64, result.height)  # 128x256 driving frame scaled to 128 high


def test_retargeting_off_gives_the_driving_poses_unchanged(walk):
    _, source_pose, driving = walk
    assert target_poses(driving, source_pose, smoothing=None, retarget=False) == driving.poses
    moved = target_poses(driving, source_pose, smoothing=None)
    assert all(pose.image_size == source_pose.image_size for pose in moved)


def test_a_sequence_file_and_a_folder_of_pose_files_drive_alike(walk, tmp_path):
    _, _, driving = walk
    write_pose_sequence(tmp_path / "walk.json", [driving.poses[0], None, driving.poses[2]], fps=12.5)
    with pytest.warns(UserWarning, match=r"walk\.json: no person found in 1 of 3 frames \(2\); filled"):
        read = read_driving(tmp_path / "walk.json")
    assert read.fps == 12.5 and read.filled == [1]
    np.testing.assert_allclose(read.poses[1].xy, driving.poses[1].xy)  # halfway between frames 0 and 2
    folder = tmp_path / "poses"
    folder.mkdir()
    for number, pose in enumerate(driving.poses):
        (folder / f"frame_{number * 5}.json").write_text(  # frame_10 after frame_5: numbers in order
            json.dumps({"people": [{"pose_keypoints_2d": np.nan_to_num(np.c_[pose.xy, pose.confidence]).ravel().tolist()}],
                        "canvas_width": 128, "canvas_height": 256})
        )  # fmt: skip
    assert read_driving(folder).poses == driving.poses


def test_a_video_with_nobody_in_any_frame_is_one_line_naming_it(tmp_path):
    empty = tmp_path / "street.mp4"
    write_video(empty, [Image.new("RGB", (64, 64), (90, 90, 90))] * 3, 10)
    with pytest.raises(NoPersonError, match=rf"^{empty}: no person found in any of its 3 frames$"):
        read_driving(empty, extractor=lambda image: (_ for _ in ()).throw(NoPersonError("no person found")))


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("clip.mp4", b"this is not a video", r"clip\.mp4: not a video ffmpeg can read"),
        ("clip.gif", b"GIF89a broken", r"clip\.gif: not a GIF Pillow can read"),
        ("notes.txt", b"hello", r"notes\.txt: not a video .*, a pose sequence \(\.json\) or a folder of poses$"),
        ("poses.json", b'{"frames": 3}', r"poses\.json: not a pose sequence"),
    ],
)
def test_a_driving_file_that_is_not_a_video_or_a_sequence_is_one_line_naming_it(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(PcdmsError, match=message) as error:
        read_driving(tmp_path / name)
    assert "\n" not in str(error.value)


def test_an_empty_folder_is_one_line_naming_it(tmp_path):
    with pytest.raises(PcdmsError, match=rf"^{tmp_path}: no pose files \(\.json, \.txt\) or images in this folder$"):
        read_driving(tmp_path)


def test_the_command_reports_a_bad_driving_input_before_loading_a_model(tmp_path, capsys):
    (tmp_path / "clip.mp4").write_text("not a video")
    status = main(["animate", "--source", "person.jpg", "--driving", str(tmp_path / "clip.mp4"), "--out", "out.mp4",
                   "--model", str(tmp_path / "no-model")])  # fmt: skip
    assert status == 1
    error = capsys.readouterr().err
    assert (
        error.startswith(f"pcdms: error: {tmp_path / 'clip.mp4'}: not a video ffmpeg can read")
        and error.count("\n") == 1
    )


def test_the_command_refuses_bad_steps_before_reading_anything(tmp_path, capsys):
    status = main(["animate", "--source", "person.jpg", "--driving", str(tmp_path / "clip.mp4"),
                   "--out", str(tmp_path / "out.gif"), "--steps", "refine=0"])  # fmt: skip
    assert status == 1
    error = capsys.readouterr().err
    assert error == "pcdms: error: --steps: refine_steps must be a whole number of at least 1, got 0\n"
    assert list(tmp_path.iterdir()) == []  # no frame folder


@pytest.fixture(scope="module")
def saved_model(pipeline, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    pipeline.save_pretrained(folder)
    return folder


def test_the_command_animates_a_pose_sequence_with_a_saved_pipeline(saved_model, walk, tmp_path, capsys):
    source, source_pose, driving = walk
    source.save(tmp_path / "person.png")
    write_pose_sequence(tmp_path / "walk.json", driving.poses, fps=5)
    (tmp_path / "person.json").write_text(json.dumps(pose_to_dict(source_pose)))
    arguments = ["animate", "--source", str(tmp_path / "person.png"), "--source-pose", str(tmp_path / "person.json"),
                 "--driving", str(tmp_path / "walk.json"), "--out", str(tmp_path / "walk.gif"), "--model",
                 str(saved_model), "--steps", "1", "--steps", "prior=2", "--max-frames", "2", "--device", "cpu"]  # fmt: skip
    assert main(arguments) == 0
    printed = capsys.readouterr().out.strip()
    assert re.fullmatch(
        rf"{tmp_path / 'walk.gif'}: 2 frames at 5 fps \(2 generated, [0-9.]+ s per frame, 0 reused\)", printed
    )
    _frames, fps, count = read_video(tmp_path / "walk.gif")
    assert (fps, count) == (5.0, 2)


def test_generate_retarget_gives_the_pipeline_the_target_pose_on_the_sources_body(
    saved_model, walk, tmp_path, monkeypatch
):
    source, source_pose, driving = walk
    source.save(tmp_path / "person.png")
    (tmp_path / "person.json").write_text(json.dumps(pose_to_dict(source_pose)))
    (tmp_path / "target.json").write_text(json.dumps(pose_to_dict(driving.poses[2])))
    seen = []
    call = PCDMsPipeline.__call__
    monkeypatch.setattr(PCDMsPipeline, "__call__", lambda self, *a, **k: seen.append(a[1]) or call(self, *a, **k))
    arguments = ["generate", "--source", str(tmp_path / "person.png"), "--source-pose", str(tmp_path / "person.json"),
                 "--target-pose", str(tmp_path / "target.json"), "--out", str(tmp_path / "out.png"), "--model",
                 str(saved_model), "--steps", "1", "--steps", "prior=2", "--device", "cpu"]  # fmt: skip
    assert main([*arguments, "--retarget"]) == 0
    assert seen[0].allclose(retarget_pose(source_pose, driving.poses[2]))
    np.testing.assert_allclose(bone_lengths(seen[0]), bone_lengths(source_pose), rtol=1e-6)
    assert main(arguments) == 0  # without: the target pose as given
    assert seen[1] == driving.poses[2]


def test_generate_retarget_is_for_one_pair(tmp_path, capsys):
    assert main(["generate", "--pairs", "pairs.csv", "--out", "out/", "--retarget", "--model", str(tmp_path)]) == 1
    assert (
        capsys.readouterr().err
        == "pcdms: error: --retarget works on one pair (--source and --target-pose), not with --pairs\n"
    )


def test_the_pages_handler_animates_the_first_frames_of_a_long_clip(pipeline, walk, tmp_path):
    source, source_pose, driving = walk
    source.save(tmp_path / "person.png")
    write_video(tmp_path / "clip.gif", [*driving.images, driving.images[0]], 10)  # 4 frames
    progress = []
    made = animate_upload(
        pipeline, tmp_path / "person.png", tmp_path / "clip.gif", tmp_path / "request", max_frames=3,
        extractor=lambda image: source_pose if image.size == source.size else driving.poses[0],
        on_frame=lambda done, total: progress.append((done, total)),
    )  # fmt: skip
    assert made.message == "3 frames at 10 fps; the clip is longer than 3 frames: its first 3 are animated"
    _frames, fps, count = read_video(made.video)
    assert (fps, count) == (10.0, 3)
    assert progress == [(0, 3), (3, 3)]  # the default batch of 4 makes the 3 frames at once


@pytest.mark.parametrize(
    "person, clip, message", [(None, "clip.mp4", "choose a photo"), ("person.png", None, "upload a short clip")]
)
def test_the_pages_handler_asks_for_what_is_missing(pipeline, tmp_path, person, clip, message):
    with pytest.raises(PcdmsError, match=message):
        animate_upload(pipeline, person, clip, tmp_path)
