"""End to end in a real browser: ``pcdms serve`` with the bundled model, driven in Debian's headless Chromium.

Playwright drives the system's Chromium (nothing is downloaded). The test skips where Chromium or Playwright
is absent, unless PCDMS_REQUIRE_BROWSER is set (as ``.ci/run`` sets it), where it fails instead. The
screenshot of the finished page is kept in ``test-artifacts/`` (or PCDMS_TEST_ARTIFACTS).
"""

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import free_port
from pcdms.bundled import street_examples_path
from pcdms.pose import Keypoints, load_pose, render_pose

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("PCDMS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# Without the background-networking switches, Chromium keeps calling Google's hosts, which an offline machine refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_or_skip():
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "Playwright is not installed (pip install playwright)"
    if missing is None and CHROMIUM is None:
        missing = "no Chromium on this machine (Debian: apt-get install chromium)"
    if missing is None:
        return sync_playwright
    if os.environ.get("PCDMS_REQUIRE_BROWSER"):
        pytest.fail(f"the browser test must run here, but {missing}")
    pytest.skip(missing)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``pcdms serve`` in its own process, from a scratch folder, until the tests end."""
    browser_or_skip()
    import httpx

    folder = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {**os.environ, "GRADIO_TEMP_DIR": str(folder / "gradio"), "PYTHONUNBUFFERED": "1"}
    log = (folder / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "pcdms", "serve", "--port", str(port), "--device", "cpu"],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{url}/config", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"pcdms serve did not start:\n{(folder / 'serve.log').read_text()}")
        time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=30)
    log.close()


def artifact(name: str) -> Path:
    folder = Path(os.environ.get("PCDMS_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_upload_choose_a_pose_drag_a_joint_and_generate(server, tmp_path):
    sync_playwright = browser_or_skip()
    import httpx

    person = street_examples_path() / "0095_c1s1_000636_00.jpg"
    (tmp_path / "notes.png").write_text("not an image")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1300}, accept_downloads=True)
        page.goto(server)
        page.wait_for_selector("#generate", timeout=60_000)

        # A file that is not an image: a message on the page, naming it.
        page.locator("#person input[type=file]").set_input_files(tmp_path / "notes.png")
        toast = page.locator(".toast-body").filter(has_text="notes.png")
        toast.wait_for(timeout=30_000)
        assert "notes.png: not an image file" in toast.inner_text()
        page.locator(".toast-close").first.click()

        # The person: an upload, whose pose the server extracts.
        page.locator("#person input[type=file]").set_input_files(person)
        page.wait_for_selector("#person img", timeout=30_000)

        # The pose: the fourth of the gallery, then its right elbow dragged up and out.
        page.locator("#pose-gallery button.thumbnail-item").nth(3).click()
        page.wait_for_function(
            "document.querySelector('#pose-editor .pose-count').textContent.startsWith('16 of 18')", timeout=30_000
        )
        elbow = page.locator("#pose-editor circle[data-joint='3']")
        before = elbow.bounding_box()
        page.mouse.move(before["x"] + before["width"] / 2, before["y"] + before["height"] / 2)
        page.mouse.down()
        page.mouse.move(before["x"] - 40, before["y"] - 120, steps=6)
        page.mouse.up()
        after = elbow.bounding_box()
        assert after["y"] < before["y"] - 100 and after["x"] < before["x"] - 30
        dragged = (float(elbow.get_attribute("cx")), float(elbow.get_attribute("cy")))

        page.locator("#generate").click()
        page.wait_for_selector("#result img", timeout=120_000)
        page.wait_for_selector("#download:visible", timeout=30_000)
        page.wait_for_timeout(500)  # let the images finish drawing before the screenshot
        page.screenshot(path=artifact("pcdms-serve.png"), full_page=True)

        # The model got the edited pose: the gallery's pose with the elbow where the drag left it.
        gallery_pose = load_pose(street_examples_path() / "0086_c1s1_000699_00.json")
        xy = gallery_pose.xy.copy()
        xy[3] = dragged
        edited = Keypoints(xy, gallery_pose.confidence, gallery_pose.image_size)
        shown = page.locator("#target-pose img").get_attribute("src")
        target_map = np.asarray(Image.open(io.BytesIO(httpx.get(shown).content)).convert("RGB"))
        assert np.array_equal(target_map, np.asarray(render_pose(edited)))
        assert not np.array_equal(target_map, np.asarray(render_pose(gallery_pose)))

        with page.expect_download() as download:
            page.locator("#download").click()
        result = Image.open(io.BytesIO(Path(download.value.path()).read_bytes()))
        assert download.value.suggested_filename == "0095_c1s1_000636_00_pcdms_seed42.png"
        assert result.size == (64, 128)
        assert np.asarray(result).std() > 10  # a picture, not a flat or black image
        browser.close()


def test_the_animate_tab_takes_an_example_person_and_the_bundled_walk(server):
    """The second tab renders its inputs: an example person and the bundled clip load into them (the animation
    itself is tested on the tiny model in test_app_animate.py; the bundled model's 20 frames take minutes here)."""
    sync_playwright = browser_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.goto(server)
        page.get_by_role("tab", name="Animate").click()
        page.wait_for_selector("#animate", timeout=30_000)
        page.locator("#animate-examples button.thumbnail-item").nth(2).click()
        page.wait_for_selector("#animate-person img", timeout=30_000)
        page.locator("#animate-walk").click()
        page.wait_for_selector("#animate-clip video", timeout=30_000)
        page.wait_for_timeout(500)
        page.screenshot(path=artifact("pcdms-serve-animate.png"), full_page=True)
        browser.close()
