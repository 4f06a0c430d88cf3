"""The web page's handlers on the tiny model, and what the running server refuses to serve."""

import json
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

gr = pytest.importorskip("gradio")
httpx = pytest.importorskip("httpx")

from helpers import FoundPose, body_image, free_port, standing_pose  # noqa: E402
from pcdms import app as app_module  # noqa: E402
from pcdms import io as io_module  # noqa: E402
from pcdms import page as page_module  # noqa: E402
from pcdms.app import PoseTransferApp, Settings, gallery_poses, street_examples  # noqa: E402
from pcdms.errors import PcdmsError  # noqa: E402
from pcdms.page import build_page, close_page, launch, photo_input, shown_on_page  # noqa: E402
from pcdms.pose import Keypoints, load_pose, write_openpose_json  # noqa: E402
from pcdms.pose.pose_json import pose_from_dict, pose_to_dict, write_pose_json  # noqa: E402
from tiny_pcdms import tiny_pcdms  # noqa: E402


@pytest.fixture(scope="module")
def app():
    return PoseTransferApp(tiny_pcdms(), street_examples(), gallery_poses(), extractor=FoundPose())


@pytest.fixture
def person(tmp_path):
    path = tmp_path / "person.png"
    body_image(standing_pose((64, 128))).save(path)
    return str(path)


def test_examples_and_gallery_come_with_their_poses(app):
    assert len(app.examples) == 16 and len(app.gallery) == 16
    image, pose = app.example(3)
    assert image.size == (64, 128)
    assert pose_from_dict(pose, "pose") == load_pose(app.examples[3].pose)
    assert pose_from_dict(app.pose_from_gallery(5), "pose") == app.gallery[5][1]


def test_gallery_from_a_folder_spreads_its_choice(tmp_path):
    for index in range(10):
        write_pose_json(tmp_path / f"pose{index}.json", standing_pose())
    assert [name for name, _ in gallery_poses(tmp_path, limit=4)] == ["pose0", "pose2", "pose5", "pose7"]
    with pytest.raises(PcdmsError, match="missing: no such folder of pose files"):
        gallery_poses(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PcdmsError, match=r"empty: no pose files \(.json\) in it"):
        gallery_poses(tmp_path / "empty")


def test_poses_from_files_and_photos(app, tmp_path, person):
    pose = standing_pose((64, 128))
    write_openpose_json(tmp_path / "openpose.json", pose)
    assert pose_from_dict(app.pose_from_file(str(tmp_path / "openpose.json")), "pose").allclose(pose, atol=1e-3)
    assert pose_from_dict(app.pose_from_photo(person), "pose") == pose
    assert pose_from_dict(app.person(person), "pose") == pose
    assert app.person(None) is None


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda path: path.write_text("{not json"), r"^bad\.json: "),
        (lambda path: path.write_text(json.dumps({"people": 3})), r"^bad\.json: not an OpenPose file"),
        (
            lambda path: write_pose_json(path, standing_pose().drop(np.arange(18) >= 5)),
            r"^bad\.json: a pose with 5 of 18 joints is too few to pose a person \(at least 8\)$",
        ),
    ],
)
def test_bad_pose_files_get_one_line_naming_only_the_file(app, tmp_path, write, message):
    path = tmp_path / "bad.json"
    write(path)
    with pytest.raises(PcdmsError, match=message) as raised:
        app.pose_from_file(str(path))
    assert str(tmp_path) not in str(raised.value) and "\n" not in str(raised.value)


def test_bad_photos_get_one_line_naming_only_the_file(app, tmp_path, monkeypatch):
    (tmp_path / "notes.png").write_text("not an image")
    Image.new("RGB", (64, 128), (90, 90, 90)).save(tmp_path / "wall.png")
    Image.new("RGB", (300, 200)).save(tmp_path / "large.png")
    cases = [
        ("notes.png", app.person, r"^notes\.png: not an image file"),
        ("wall.png", app.pose_from_photo, r"^wall\.png: no person found$"),
        ("large.png", app.person, r"^large\.png: 300x200 pixels is too large for pcdms \(at most 16384 pixels a side "),
    ]
    monkeypatch.setattr(io_module, "MAX_IMAGE_PIXELS", 50_000)
    for name, handler, message in cases:
        with pytest.raises(PcdmsError, match=message) as raised:
            handler(str(tmp_path / name))
        assert str(tmp_path) not in str(raised.value)


def test_a_landscape_photo_follows_the_rule_of_every_entry_point(app, tmp_path):
    """Padded to the model's aspect and cut back (pcdms.pipelines.framing), as the pipeline and the command
    line do: the page's image is the pipeline's, and keeps the photo's aspect."""
    pose = standing_pose((150, 100))
    body_image(pose).save(tmp_path / "wide.png")
    target = standing_pose((176, 256))
    settings = Settings(prior_steps=2, inpaint_steps=1, refine_steps=1, seed=5)
    result = app.generate(str(tmp_path / "wide.png"), pose_to_dict(pose), pose_to_dict(target), settings)
    expected = app.pipeline(
        Image.open(tmp_path / "wide.png").convert("RGB"),
        target,
        pose,
        prior_steps=2,
        inpaint_steps=1,
        refine_steps=1,
        generator={stage: torch.Generator().manual_seed(5) for stage in app.stages},
    ).images[0]
    assert result.image.size == expected.size == (64, 42)  # 150x100 in a 64x128 frame: rows 43 to 85 of 128
    assert np.array_equal(np.asarray(result.image), np.asarray(expected))
    assert result.target_pose.size == (150, 100)  # the target pose as fitted into the photo's frame


def test_generate_is_the_pipeline_with_the_poses_the_page_shows(app, person):
    target = standing_pose((176, 256)).hflip()
    settings = Settings(prior_steps=2, inpaint_steps=2, refine_steps=2, seed=7)
    result = app.generate(person, None, pose_to_dict(target), settings)
    assert result.image.size == result.coarse.size == (64, 128)

    source = Image.open(person).convert("RGB")
    expected_pose = target.letterbox((64, 128))
    expected = app.pipeline(
        source,
        expected_pose,
        standing_pose((64, 128)),
        width=64,
        height=128,
        prior_steps=2,
        inpaint_steps=2,
        refine_steps=2,
        generator={stage: torch.Generator().manual_seed(7) for stage in app.stages},
    ).images[0]
    assert np.array_equal(np.asarray(result.image), np.asarray(expected))
    assert np.asarray(result.image).std() > 0
    assert result.target_pose.size == (64, 128)
    assert np.array_equal(np.asarray(result.target_pose), np.asarray(app_module.render_pose(expected_pose)))
    assert result.download.name == "person_pcdms_seed7.png"
    assert np.array_equal(np.asarray(Image.open(result.download)), np.asarray(result.image))

    again = app.generate(person, None, pose_to_dict(target), settings)
    assert np.array_equal(np.asarray(again.image), np.asarray(result.image))
    assert list(app.downloads.iterdir()) == [again.download]  # the earlier download is not kept
    other = app.generate(person, None, pose_to_dict(target), Settings(2, 2, 2, seed=8))
    assert not np.array_equal(np.asarray(other.image), np.asarray(result.image))


def test_generate_refuses_what_it_cannot_use(app, person):
    settings = Settings(1, 1, 1)
    with pytest.raises(PcdmsError, match="choose a person first"):
        app.generate(None, None, pose_to_dict(standing_pose()), settings)
    few = standing_pose().drop(np.arange(18) >= 7)
    with pytest.raises(PcdmsError, match=r"^the target pose: a pose with 7 of 18 joints is too few"):
        app.generate(person, None, pose_to_dict(few), settings)
    broken = {**pose_to_dict(standing_pose()), "image_size": [0, 5]}
    with pytest.raises(PcdmsError, match=r"^the target pose: image_size must be"):
        app.generate(person, None, broken, settings)


def test_errors_reach_the_page_as_messages_not_tracebacks(capsys):
    def fails(error):
        raise error

    with pytest.raises(gr.Error) as raised:
        shown_on_page(fails)(PcdmsError("pose.json: not a pose"))
    assert raised.value.message == "pose.json: not a pose"
    with pytest.raises(gr.Error) as raised:
        shown_on_page(fails)(RuntimeError("CUDA out of memory"))
    assert raised.value.message == "internal error (RuntimeError); the server's log has the details"
    assert "CUDA out of memory" in capsys.readouterr().err  # the traceback goes to the server's log


def test_an_upload_that_is_not_an_image_is_named(tmp_path):
    (tmp_path / "holiday.jpg").write_text("not a photo")
    payload = gr.data_classes.ImageData(path=str(tmp_path / "holiday.jpg"), orig_name="holiday.jpg")
    with pytest.raises(gr.Error) as raised:
        photo_input().preprocess(payload)
    assert raised.value.message == "holiday.jpg: not an image file (or a format Pillow cannot read)"


@pytest.mark.parametrize(
    ("name", "size"), [("huge_12000.png", "12000x12000 pixels"), ("huge_20000.png", "400 megapixels")]
)
def test_a_huge_upload_is_refused_from_its_header_with_the_limit(name, size):
    """Tiny files with huge headers: called too large (not "not an image"), before anything decodes them."""
    case = Path(__file__).parent / "data" / "cases" / name
    payload = gr.data_classes.ImageData(path=str(case), orig_name=name)
    started = time.perf_counter()
    with pytest.raises(gr.Error) as raised:
        photo_input().preprocess(payload)
    assert time.perf_counter() - started < 2  # decoding the 12000 one took tens of seconds
    assert (
        raised.value.message == f"{name}: {size} is too large for pcdms (at most 16384 pixels a side and 40 megapixels)"
    )


def test_a_cut_out_is_used_on_white_as_on_the_command_line(app):
    """The page gets the upload as it is (Gradio would flatten it onto black) and reads it as load_image does."""
    case = Path(__file__).parent / "data" / "cases" / "rgba_cutout.png"
    payload = gr.data_classes.ImageData(path=str(case), orig_name="cutout.png")
    uploaded = photo_input().preprocess(payload)
    image = app._image(uploaded)
    clear = np.asarray(Image.open(case))[..., 3] == 0
    assert (np.asarray(image)[clear] == 255).all()
    assert np.array_equal(np.asarray(image), np.asarray(io_module.load_image(case)))


def test_every_entry_point_refuses_too_few_joints(app, person):
    """The page, like the command line, the Python API and dataset validation, refuses the three-joint pose."""
    case = Path(__file__).parent / "data" / "cases" / "three_joints.json"
    with pytest.raises(PcdmsError, match=r"^three_joints\.json: a pose with 3 of 18 joints is too few .*at least 8"):
        app.pose_from_file(str(case))


@pytest.fixture(scope="module")
def server(app, tmp_path_factory):
    """The page served on localhost as ``pcdms serve`` serves it, with a 1 MB upload limit."""
    page = build_page(app)
    launch(page, port=free_port(), max_upload_mb=1, block=False)
    yield page.local_url.rstrip("/")
    close_page(page)


def test_page_lists_the_model_stages_and_examples(server):
    config = httpx.get(f"{server}/config").json()
    labels = {component["props"].get("label") for component in config["components"]}
    assert {"person", "result", "stage 2 (coarse)", "stage 3 steps", "seed (same seed, same image)"} <= labels


def test_no_server_file_can_be_read_through_the_page(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the server's working folder: Gradio may return files from it, never serve them
    (tmp_path / "secret.txt").write_text("private")
    paths = ["/etc/passwd", "../../../../etc/passwd", "secret.txt", str(tmp_path / "secret.txt")]
    for path in [*paths, app_module.__file__, sys.executable]:
        response = httpx.get(f"{server}/gradio_api/file={path}")
        assert response.status_code in (403, 404), path
        assert "private" not in response.text and "root:" not in response.text


def test_uploads_over_the_limit_are_refused(server):
    small = httpx.post(f"{server}/gradio_api/upload", files={"files": ("small.png", b"x" * 1000)})
    assert small.status_code == 200
    large = httpx.post(f"{server}/gradio_api/upload", files={"files": ("large.png", b"x" * 2_000_000)})
    assert large.status_code == 413


def test_keypoints_cross_the_page_as_pcdms_pose_json(app):
    value = app.pose_from_gallery(0)
    assert json.loads(json.dumps(value)) == value
    assert isinstance(pose_from_dict(value, "pose"), Keypoints)


def test_generations_wait_their_turn(app, server, person, monkeypatch):
    """Two users at once: the model runs one generation at a time, the other waits in the queue."""
    from gradio_client import Client, handle_file

    running, most = 0, 0
    lock = threading.Lock()
    generate = app.generate

    def counted(*args):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.5)
        try:
            return generate(*args)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(app, "generate", counted)
    target = app.pose_from_gallery(0)

    def request(seed):
        client = Client(server, verbose=False)
        return client.predict(handle_file(person), target, 2, 1, 1, 2.0, 2.0, seed, api_name="/run")

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(request, [1, 2]))
    assert most == 1
    assert all(Image.open(result[0]).size == (64, 128) for result in results)


# The page's own cache (issue 17): Gradio's shared /tmp/gradio is not served, the private folder goes on exit.


def test_the_page_serves_its_own_cache_not_gradios_shared_one(app, tmp_path):
    import tempfile
    import uuid

    page = build_page(app)
    launch(page, port=free_port(), block=False)
    url = page.local_url.rstrip("/")
    shared = Path(tempfile.gettempdir()).resolve() / "gradio" / uuid.uuid4().hex
    try:
        assert page.cache_folder.is_dir() and not str(page.cache_folder).startswith(str(shared.parent))
        # A file another Gradio application left in the shared folder cannot be fetched through this page.
        shared.mkdir(parents=True)
        (shared / "other_app.txt").write_text("someone else's upload")
        response = httpx.get(f"{url}/gradio_api/file={shared / 'other_app.txt'}")
        assert response.status_code in (403, 404) and "someone else" not in response.text
        # An upload lands in the page's own folder, and is served back from it.
        uploaded = httpx.post(f"{url}/gradio_api/upload", files={"files": ("mine.txt", b"my upload")}).json()[0]
        assert Path(uploaded).resolve().is_relative_to(page.cache_folder.resolve())
        assert httpx.get(f"{url}/gradio_api/file={uploaded}").text == "my upload"
    finally:
        shutil.rmtree(shared, ignore_errors=True)
        close_page(page)
    assert not page.cache_folder.exists()  # removed when the page closes (and at exit, if it never does)
    assert page_module.os.environ.get("GRADIO_TEMP_DIR") != str(page.cache_folder)


def test_a_busy_port_says_to_pick_another(app):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        page = build_page(app)
        with pytest.raises(PcdmsError) as raised:
            launch(page, port=port, block=False)
    assert str(raised.value) == f"port {port} on 127.0.0.1 is in use: pick another --port"
    assert not page.cache_folder.exists()
