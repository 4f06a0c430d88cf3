"""The web page's Animate tab (issue 18) on the tiny model: the tab is on the page beside pose transfer, and a
person's photo with a 3-frame clip comes back as a readable 3-frame video through the served page, with a
progress report per batch of frames; errors name the upload, not its path on the server."""

from pathlib import Path

import numpy as np
import pytest
from PIL import ImageChops

gr = pytest.importorskip("gradio")
httpx = pytest.importorskip("httpx")
pytest.importorskip("imageio_ffmpeg", reason="the Animate tab reads and writes MP4s: the video extra")

from helpers import FoundPose, body_image, free_port, standing_pose  # noqa: E402
from pcdms.animation import read_video, write_video  # noqa: E402
from pcdms.app import PoseTransferApp, gallery_poses, street_examples  # noqa: E402
from pcdms.errors import PcdmsError  # noqa: E402
from pcdms.page import build_page, close_page, launch  # noqa: E402
from tiny_pcdms import tiny_pcdms  # noqa: E402


@pytest.fixture(scope="module")
def app():
    pipeline = tiny_pcdms()
    pipeline.register_to_config(sampling={"prior_steps": 2, "inpaint_steps": 2, "refine_steps": 2})
    return PoseTransferApp(pipeline, street_examples(), gallery_poses(), extractor=FoundPose())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A person's photo and a 3-frame clip (MP4, 10 fps) of a body stepping sideways."""
    folder = tmp_path_factory.mktemp("uploads")
    body_image(standing_pose((64, 128))).save(folder / "person.png")
    frames = [ImageChops.offset(body_image(standing_pose((64, 128))), 4 * step, 0) for step in range(3)]
    write_video(folder / "clip.mp4", frames, 10)
    return folder / "person.png", folder / "clip.mp4"


@pytest.fixture(scope="module")
def server(app):
    page = build_page(app)
    launch(page, port=free_port(), block=False)
    yield page.local_url.rstrip("/")
    close_page(page)


def test_the_page_has_a_pose_transfer_tab_and_an_animate_tab(server):
    components = httpx.get(f"{server}/config").json()["components"]
    tabs = [c["props"].get("label") for c in components if c.get("type") == "tabitem"]
    assert [tab for tab in tabs if tab in ("Pose transfer", "Animate")] == ["Pose transfer", "Animate"]
    animate = {c["props"].get("elem_id"): c["type"] for c in components if c["props"].get("elem_id")}
    assert {key: animate.get(key) for key in ("animate-person", "animate-clip", "animate", "animation")} == {
        "animate-person": "image",
        "animate-clip": "video",
        "animate": "button",
        "animation": "video",
    }


def test_the_tab_turns_a_photo_and_a_3_frame_clip_into_a_3_frame_video(server, files):
    from gradio_client import Client, handle_file

    person, clip = files
    client = Client(server, verbose=False)
    video, summary = client.predict(
        handle_file(str(person)), handle_file(str(clip)), True, True, False, 7, api_name="/animate"
    )
    path = video["video"] if isinstance(video, dict) else video
    frames, fps, count = read_video(path)
    frames = list(frames)
    assert (fps, count, len(frames)) == (10.0, 3, 3)
    assert frames[0].size == (64, 128) and np.asarray(frames[0]).std() > 5  # pictures, not blank frames
    assert summary == "3 frames at 10 fps"


def test_the_handler_reports_each_batch_of_frames_and_side_by_side_is_wider(app, files):
    person, clip = files
    progress = []
    made = app.animate(str(person), None, str(clip), side_by_side=True, on_frame=lambda *done: progress.append(done))
    assert progress == [(0, 3), (3, 3)]  # the default batch of 4 makes the 3 frames at once
    frames, fps, count = read_video(made.video)
    assert (fps, count) == (10.0, 3) and next(frames).size == (3 * 64, 128)  # clip frame | pose | result


def test_an_example_person_and_the_bundled_walk_animate(app):
    clip = app.example_clip()
    assert read_video(clip)[1:] == (10.0, 20)
    assert Path(clip).resolve().is_relative_to(app.animations.resolve())  # served from the app's folder
    _photo, pose = app.example(0)
    photo = app.examples[0].photo
    seen = []
    extractor, app.extractor = app.extractor, lambda image: seen.append(image.size) or standing_pose(image.size)
    try:
        made = app.animate(str(photo), pose, str(clip))
    finally:
        app.extractor = extractor
    assert read_video(made.video)[1:] == (10.0, 20)
    assert (64, 128) not in seen  # the example's pose is known: only the clip's frames (128x256) were extracted


@pytest.mark.parametrize(
    ("person", "clip", "message"),
    [
        (None, "clip.mp4", "choose a person first: upload a photo or pick an example"),
        ("person.png", None, "upload a short clip of someone moving"),
        ("person.png", "notes.mp4", r"notes.mp4: not a video ffmpeg can read"),
    ],
)
def test_errors_are_one_line_naming_the_upload_not_its_path(app, files, tmp_path, person, clip, message):
    (tmp_path / "notes.mp4").write_text("not a video")
    person = person and str(files[0])
    clip = clip and (str(files[1]) if clip == "clip.mp4" else str(tmp_path / clip))
    with pytest.raises(PcdmsError) as raised:
        app.animate(person, None, clip)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)
    assert str(tmp_path) not in str(raised.value)
