"""``pcdms serve``: the web page for pose transfer, built with Gradio over the handlers of :mod:`pcdms.app`.

:func:`build_page` lays out :class:`~pcdms.app.PoseTransferApp`'s handlers in two tabs, "Pose transfer" and
"Animate" (:mod:`pcdms.animate_page`), and turns their
:class:`PcdmsError` into messages on the page; :func:`launch` serves it on a private upload folder, and
:func:`serve` loads the model first. The queue runs one generation at a time.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

import gradio as gr

from .animate_page import animate_tab
from .app import (
    MAX_UPLOAD_MB,
    PoseTransferApp,
    Settings,
    gallery_poses,
    street_examples,
)
from .errors import PcdmsError
from .page_parts import person_inputs, photo_input, picker, shown_image, shown_on_page
from .pipelines.presets import PRESET_NAMES
from .pose import COLORS, KEYPOINT_NAMES, LIMBS, render_pose

# Where an absent joint waits in the editor until it is put back: a person standing, as fractions of the frame.
STANDING = (
    (0.50, 0.16), (0.50, 0.27), (0.35, 0.28), (0.31, 0.43), (0.29, 0.57), (0.65, 0.28), (0.69, 0.43), (0.72, 0.57),
    (0.42, 0.59), (0.41, 0.76), (0.40, 0.94), (0.58, 0.59), (0.59, 0.76), (0.60, 0.94), (0.47, 0.13), (0.53, 0.13),
    (0.43, 0.15), (0.57, 0.15),
)  # fmt: skip


def editor_script() -> str:
    return (files("pcdms") / "assets" / "app" / "pose_editor.js").read_text(encoding="utf-8")


# A bar for each stage: the stage pipelines' own progress bars, followed on the page.
STAGE_PROGRESS = gr.Progress(track_tqdm=True)
# The preset menu's choice for no preset: the model's own settings.
MODEL_SETTINGS = "model"


def page_preset(chosen: str | None) -> str | None:
    """The preset menu's choice as Settings.preset takes it: None for the model's own settings."""
    return None if chosen in (None, MODEL_SETTINGS) else chosen


# Small models make small images: the page shows them filling their boxes (the download keeps the real size).
PAGE_CSS = """
.shown-large img { width: 100%; height: 100%; object-fit: contain; }
#person img { background: #fff; } /* a cut-out shown on white, as load_image composes it */
"""

EDITOR_CSS = """
.pose-canvas { display: block; height: 420px; max-width: 100%; margin: 0 auto; touch-action: none; user-select: none; }
.pose-frame { fill: #111; pointer-events: none; }
.pose-canvas line { pointer-events: none; }
.joint { cursor: grab; pointer-events: all; }
.joint:active { cursor: grabbing; }
.pose-count { text-align: center; font-size: 0.85em; opacity: 0.8; margin: 0.4em 0 0; }
"""


GRADIO_CACHE_VARIABLE = "GRADIO_TEMP_DIR"


def private_cache() -> Path:
    """A Gradio cache and upload folder of this server's own, removed when the process exits.

    Gradio's default, ``/tmp/gradio``, is shared by every Gradio application on the machine, and a page
    serves the files of its upload folder: another application's files there could be fetched by their
    path. Gradio reads its folder from ``GRADIO_TEMP_DIR`` when a page is built and when it is served."""
    folder = Path(tempfile.mkdtemp(prefix="pcdms-gradio-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # also when the server is stopped by a signal
    return folder


def shared_gradio_cache() -> Path:
    """Gradio's default upload folder, shared by every Gradio application of the machine: never served."""
    return Path(tempfile.gettempdir()).resolve() / "gradio"


def build_page(app: PoseTransferApp):
    """The Gradio page over ``app``'s handlers, with a Gradio cache folder of its own (``page.cache_folder``,
    removed by :func:`close_page` or at exit)."""
    defaults = app.recommended_settings()
    cache = private_cache()
    previous = os.environ.get(GRADIO_CACHE_VARIABLE)
    os.environ[GRADIO_CACHE_VARIABLE] = str(cache)
    # Gradio's cache (uploads, results) is swept of files older than an hour, every hour.
    with gr.Blocks(title="pcdms: pose transfer", delete_cache=(3600, 3600), analytics_enabled=False) as page:
        gr.Markdown(
            "# pcdms: this person, that pose\n"
            "Progressive Conditional Diffusion Models (ICLR 2024): stage 1 predicts the target's CLIP embedding, "
            "stage 2 paints a coarse image, stage 3 refines it. **Animate** moves the person as someone in a short "
            "clip moves."
        )
        with gr.Tabs():
            with gr.Tab("Pose transfer", id="pose-transfer"):
                source_pose = gr.State(None)
                with gr.Row(equal_height=False):
                    with gr.Column():
                        gr.Markdown("### 1. The person")
                        person, person_examples = person_inputs(app, "person", 420, "person", "person-examples")
                    with gr.Column():
                        gr.Markdown("### 2. The target pose")
                        editor = gr.HTML(
                            app.pose_from_gallery(0),
                            html_template="<div class='pose-editor'></div>",
                            css_template=EDITOR_CSS,
                            js_on_load=editor_script(),
                            names=list(KEYPOINT_NAMES),
                            limbs=[list(limb) for limb in LIMBS],
                            colors=[f"rgb{color}" for color in COLORS],
                            standing=[list(point) for point in STANDING],
                            elem_id="pose-editor",
                        )
                        with gr.Tabs():
                            with gr.Tab("gallery"):
                                poses = picker(
                                    [(render_pose(keypoints), name) for name, keypoints in app.gallery],
                                    show_label=False,
                                    elem_id="pose-gallery",
                                )
                            with gr.Tab("from a photo"):
                                pose_photo = photo_input(label="photo of someone in the pose", height=200)
                            with gr.Tab("pose file"):
                                pose_file = gr.File(
                                    label="pcdms or OpenPose JSON", file_types=[".json"], type="filepath"
                                )
                with gr.Accordion("advanced", open=False):
                    preset = gr.Dropdown(
                        [("the model's own settings", MODEL_SETTINGS), *((name, name) for name in PRESET_NAMES)],
                        value=MODEL_SETTINGS,
                        label="preset (fast, fastest: fewer steps, guidance on part of them; the values below follow it)",
                    )
                    with gr.Row():
                        # UnCLIP's sampler takes at least 2 steps.
                        prior_steps = gr.Slider(
                            2, 100, defaults.prior_steps, step=1, label="stage 1 steps", visible="prior" in app.stages
                        )
                        inpaint_steps = gr.Slider(1, 100, defaults.inpaint_steps, step=1, label="stage 2 steps")
                        refine_steps = gr.Slider(
                            1, 100, defaults.refine_steps, step=1, label="stage 3 steps", visible="refine" in app.stages
                        )
                    with gr.Row():
                        inpaint_guidance = gr.Slider(
                            0, 10, defaults.inpaint_guidance, step=0.1, label="stage 2 guidance"
                        )
                        refine_guidance = gr.Slider(
                            0,
                            10,
                            defaults.refine_guidance,
                            step=0.1,
                            label="stage 3 guidance",
                            visible="refine" in app.stages,
                        )
                        refine_strength = gr.Slider(
                            0.05,
                            1,
                            defaults.refine_strength,
                            step=0.05,
                            label="stage 3 strength (1: from noise)",
                            visible="refine" in app.stages,
                        )
                        seed = gr.Number(
                            defaults.seed,
                            precision=0,
                            minimum=0,
                            maximum=2**32 - 1,
                            label="seed (same seed, same image)",
                        )
                generate = gr.Button("Generate", variant="primary", elem_id="generate")
                with gr.Row():
                    result = shown_image("result", elem_id="result")
                    coarse = shown_image("stage 2 (coarse)")
                    source_map = shown_image("person's pose")
                    target_map = shown_image("target pose (as the model got it)", elem_id="target-pose")
                download = gr.DownloadButton("Download the result", visible=False, elem_id="download")
            with gr.Tab("Animate", id="animate-tab"):
                animate_tab(app)

        def choose_example(event: gr.SelectData):
            return app.example(event.index)

        def choose_pose(event: gr.SelectData):
            return app.pose_from_gallery(event.index)

        def run(
            person, source_pose, target_pose, prior_steps, inpaint_steps, refine_steps, inpaint_guidance,
            refine_guidance, seed, refine_strength, preset, progress=STAGE_PROGRESS,
        ):  # fmt: skip
            settings = Settings(
                prior_steps, inpaint_steps, refine_steps, inpaint_guidance, refine_guidance, seed, refine_strength,
                page_preset(preset),
            )  # fmt: skip
            made = app.generate(person, source_pose, target_pose, settings)
            shown = gr.DownloadButton(value=str(made.download), visible=True)
            return made.image, made.coarse, made.source_pose, made.target_pose, shown

        # MediaPipe and the model each serve one request at a time; the rest wait in the queue.
        person_examples.select(shown_on_page(choose_example), None, [person, source_pose])
        # The earlier person's pose goes first, so that a failed extraction cannot leave it in place.
        forget = person.upload(lambda: None, None, source_pose)
        forget.then(shown_on_page(app.person), person, source_pose, concurrency_id="pose")
        person.clear(lambda: None, None, source_pose)
        poses.select(shown_on_page(choose_pose), None, editor)
        pose_photo.upload(shown_on_page(app.pose_from_photo), pose_photo, editor, concurrency_id="pose")
        pose_file.upload(shown_on_page(app.pose_from_file), pose_file, editor)

        def preset_values(chosen):  # the sliders show what the preset samples with; a value moved then wins
            values = app.recommended_settings(page_preset(chosen))
            return (
                values.prior_steps, values.inpaint_steps, values.refine_steps, values.inpaint_guidance,
                values.refine_guidance, values.refine_strength,
            )  # fmt: skip

        preset.change(
            preset_values,
            preset,
            [prior_steps, inpaint_steps, refine_steps, inpaint_guidance, refine_guidance, refine_strength],
        )
        generate.click(
            shown_on_page(run),
            [
                person, source_pose, editor, prior_steps, inpaint_steps, refine_steps, inpaint_guidance,
                refine_guidance, seed, refine_strength, preset,
            ],
            [result, coarse, source_map, target_map, download],
            concurrency_id="model",
            show_progress_on=result,
        )  # fmt: skip
    page.cache_folder, page.previous_cache_variable = cache, previous
    return page


def close_page(page) -> None:
    """Stop serving ``page`` and remove its cache folder (uploads and results)."""
    page.close()
    shutil.rmtree(page.cache_folder, ignore_errors=True)
    if os.environ.get(GRADIO_CACHE_VARIABLE) == str(page.cache_folder):
        if page.previous_cache_variable is None:
            del os.environ[GRADIO_CACHE_VARIABLE]
        else:
            os.environ[GRADIO_CACHE_VARIABLE] = page.previous_cache_variable


def launch(page, host: str = "127.0.0.1", port: int | None = None, max_upload_mb: int = MAX_UPLOAD_MB,
           queue_size: int = 16, block: bool = True) -> None:  # fmt: skip
    """Serve ``page``: one generation at a time, ``queue_size`` more waiting; uploads up to ``max_upload_mb``;
    ``block``: until interrupted (then the page is closed and its cache removed), or return once the server
    is up. Only the page's own files are served: its cache folder, never Gradio's shared one. Raises
    PcdmsError, in one line, when ``port`` is taken (or, with no port, every port from 7860 to 7959)."""
    page.queue(default_concurrency_limit=1, max_size=queue_size)
    system_fonts = ["ui-sans-serif", "system-ui", "sans-serif"]  # no web fonts: the page works offline
    try:
        start_server(page, host, port, max_upload_mb, system_fonts)
    except OSError as error:
        if "Cannot find empty port" not in str(error):  # Gradio's words: its advice names its own settings
            raise
        shutil.rmtree(page.cache_folder, ignore_errors=True)
        if port is None:
            raise PcdmsError(f"no free port on {host} from 7860 to 7959: pick one with --port") from None
        raise PcdmsError(f"port {port} on {host} is in use: pick another --port") from None
    if block:
        print(f"pcdms serve: {page.local_url} (Ctrl+C stops it)", flush=True)
        try:
            page.block_thread()
        finally:
            close_page(page)


def start_server(page, host: str, port: int | None, max_upload_mb: int, system_fonts: list[str]) -> None:
    page.launch(
        server_name=host,
        server_port=port,
        blocked_paths=[str(shared_gradio_cache())],
        max_file_size=f"{max_upload_mb}mb",
        theme=gr.themes.Default(font=system_fonts, font_mono=["ui-monospace", "monospace"]),
        css=PAGE_CSS,
        ssr_mode=False,
        show_error=False,
        footer_links=[],
        prevent_thread_lock=True,
        quiet=True,
    )


def serve(
    model: Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    poses: Path | None = None,
    device: str = "auto",
    dtype: str = "auto",
    max_upload_mb: int = MAX_UPLOAD_MB,
    queue_size: int = 16,
) -> None:
    """Load the model and serve the page until interrupted."""
    from .devices import resolve_device, resolve_dtype
    from .pipelines.pcdms import load_pcdms_pipeline

    gallery = gallery_poses(poses)  # before the model: a wrong folder is reported at once
    # A stop by the service manager (SIGTERM) ends as Ctrl+C does: the page closes and its cache is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    device = resolve_device(device)
    pipeline = load_pcdms_pipeline(model, dtype=resolve_dtype(dtype, device)).to(device)
    launch(build_page(PoseTransferApp(pipeline, street_examples(), gallery)), host, port, max_upload_mb, queue_size)
