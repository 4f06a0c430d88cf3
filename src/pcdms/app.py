"""``pcdms serve``: a web page for pose transfer, built with Gradio.

The page holds one person and one target pose. The person is an uploaded photo (its pose extracted) or a
bundled example (its pose known). The target pose comes from a second photo (extracted), a pose file, a
gallery of dataset poses, or the skeleton editor, and every one of them lands in the editor, where its 18
joints can be dragged: the editor's pose is what the model gets. Generation runs the three stages with a
progress bar each and shows the result beside stage 2's coarse image and the two poses as the model saw them.

:class:`PoseTransferApp` holds the handlers as plain methods that raise :class:`PcdmsError`;
:func:`build_page` lays them out and turns those errors into messages on the page. Only generation uses
the model, and the queue runs one generation at a time.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import tempfile
import threading
import traceback
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from importlib.resources import files
from pathlib import Path

import gradio as gr
from PIL import Image

from .bundled import STAGE_NAMES, stage_generators, street_examples_path
from .errors import PcdmsError
from .io import image_size, load_image, save_image
from .pose import COLORS, KEYPOINT_NAMES, LIMBS, Keypoints, check_enough_joints, draw_overlay, load_pose, render_pose
from .pose.formats import pose_from_dict, pose_to_dict

MAX_UPLOAD_MB = 20
GALLERY_LIMIT = 60

# Where an absent joint waits in the editor until it is put back: a person standing, as fractions of the frame.
STANDING = (
    (0.50, 0.16), (0.50, 0.27), (0.35, 0.28), (0.31, 0.43), (0.29, 0.57), (0.65, 0.28), (0.69, 0.43), (0.72, 0.57),
    (0.42, 0.59), (0.41, 0.76), (0.40, 0.94), (0.58, 0.59), (0.59, 0.76), (0.60, 0.94), (0.47, 0.13), (0.53, 0.13),
    (0.43, 0.15), (0.57, 0.15),
)  # fmt: skip


@dataclass(frozen=True)
class Example:
    """A bundled photo of a person with its pose file."""

    photo: Path
    pose: Path


@dataclass(frozen=True)
class Settings:
    """The "advanced" fold: steps per stage, guidance of stages 2 and 3, one seed for all stages."""

    prior_steps: int = 20
    inpaint_steps: int = 20
    refine_steps: int = 20
    inpaint_guidance: float = 2.0
    refine_guidance: float = 2.0
    seed: int = 42


@dataclass
class Result:
    """A generation as the page shows it: the image, stage 2's, the two poses drawn, and the file to download."""

    image: Image.Image
    coarse: Image.Image
    source_pose: Image.Image
    target_pose: Image.Image
    download: Path


def street_examples() -> list[Example]:
    """The bundled street photos, each with its pose file."""
    return [Example(photo, photo.with_suffix(".json")) for photo in sorted(street_examples_path().glob("*.jpg"))]


def gallery_poses(folder: Path | None = None, limit: int = GALLERY_LIMIT) -> list[tuple[str, Keypoints]]:
    """Named poses for the gallery: the pose files (.json) of ``folder`` (at most ``limit``, spread evenly
    over the sorted files), or the bundled street poses."""
    if folder is None:
        return [(example.pose.stem, load_pose(example.pose)) for example in street_examples()]
    if not folder.is_dir():
        raise PcdmsError(f"{folder}: no such folder of pose files")
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise PcdmsError(f"{folder}: no pose files (.json) in it")
    chosen = [paths[index * len(paths) // limit] for index in range(limit)] if len(paths) > limit else paths
    return [(path.stem, load_pose(path)) for path in chosen]


@contextmanager
def named_by_file_name(path: str):
    """Errors about an uploaded file name it as the user did, not by its path on the server."""
    try:
        yield
    except PcdmsError as error:
        raise PcdmsError(str(error).replace(str(path), Path(path).name)) from None


class PoseTransferApp:
    """The page's handlers over one pipeline. Files arrive as paths in Gradio's upload folder; messages name
    them by their own name, never by the server's path."""

    def __init__(self, pipeline, examples: list[Example], gallery: list[tuple[str, Keypoints]], extractor=None):
        self.pipeline, self.examples, self.gallery, self.extractor = pipeline, examples, gallery, extractor
        self.downloads = Path(tempfile.mkdtemp(prefix="pcdms-serve-"))
        weakref.finalize(self, shutil.rmtree, self.downloads, ignore_errors=True)
        self._extracting = threading.Lock()  # one MediaPipe graph, shared by every request

    @property
    def stages(self) -> tuple[str, ...]:
        return self.pipeline.stages

    def example(self, index: int) -> tuple[Image.Image, dict]:
        """A bundled person: the photo and its pose."""
        example = self.examples[index]
        return load_image(example.photo), pose_to_dict(load_pose(example.pose))

    def person(self, path: str | None) -> dict | None:
        """An uploaded person's pose, extracted from the photo."""
        if path is None:
            return None
        name = Path(path).name
        return pose_to_dict(self._enough_joints(self._extract(self._image(path), name), name))

    def pose_from_photo(self, path: str) -> dict:
        """The pose of the person in a second photo."""
        name = Path(path).name
        return pose_to_dict(self._enough_joints(self._extract(self._image(path), name), name))

    def pose_from_file(self, path: str) -> dict:
        """A pose file: pcdms or OpenPose JSON."""
        with named_by_file_name(path):
            keypoints = load_pose(path)
        return pose_to_dict(self._enough_joints(keypoints, Path(path).name))

    def pose_from_gallery(self, index: int) -> dict:
        return pose_to_dict(self.gallery[index][1])

    def generate(self, person: str | None, source_pose: dict | None, target_pose: dict, settings: Settings) -> Result:
        """The person in the target pose, with the intermediates the page shows beside it."""
        if person is None:
            raise PcdmsError("choose a person first: upload a photo or pick an example")
        name = Path(person).name
        source = self._image(person)
        source_keypoints = pose_from_dict(source_pose, "the person's pose") if source_pose else None
        if source_keypoints is None or source_keypoints.image_size != source.size:
            source_keypoints = self._extract(source, name)
        target = self._enough_joints(pose_from_dict(target_pose, "the target pose"), "the target pose")
        # The rule of every entry point (pcdms.pipelines.framing): the pose fitted into the photo's frame without
        # stretching the body, the photo padded to the model's aspect, the result cut back to the photo's.
        target_keypoints = target.letterbox(source.size)
        seeds = dict.fromkeys(STAGE_NAMES, int(settings.seed))
        output = self.pipeline(
            source,
            target_keypoints,
            source_keypoints,
            prior_steps=settings.prior_steps,
            inpaint_steps=settings.inpaint_steps,
            refine_steps=settings.refine_steps,
            inpaint_guidance=settings.inpaint_guidance,
            refine_guidance=settings.refine_guidance,
            generator=stage_generators(seeds, 1, self.pipeline._execution_device),
            return_intermediates=True,
        )
        image = output.images[0]
        for earlier in self.downloads.iterdir():  # already copied to Gradio's cache when it was shown
            earlier.unlink()
        download = save_image(image, self.downloads / f"{Path(name).stem}_pcdms_seed{int(settings.seed)}.png")
        return Result(
            image=image,
            coarse=output.coarse_images[0],
            source_pose=draw_overlay(source, source_keypoints),
            target_pose=render_pose(target_keypoints),
            download=download,
        )

    def _image(self, path: str) -> Image.Image:
        with named_by_file_name(path):
            return load_image(path)  # as the command line reads it: size from the header first, cut-outs on white

    def _extract(self, image: Image.Image, name: str) -> Keypoints:
        from .pose import extract_pose

        with self._extracting:
            try:
                return extract_pose(image, self.extractor)
            except PcdmsError as error:
                raise PcdmsError(f"{name}: {error}") from None

    @staticmethod
    def _enough_joints(keypoints: Keypoints, name: str) -> Keypoints:
        return check_enough_joints(keypoints, name)  # the rule of every entry point


def photo_input(**kwargs) -> gr.Image:
    """An image upload (a path in Gradio's upload folder) whose file, if it is not an image, gets a message
    naming it: Gradio's own image input fails with only a traceback in the server's log. (A subclass of
    gr.Image would do it too, but Gradio writes a stub file beside any module that defines one.)

    The size is checked from the file's header before anything decodes it, and the file reaches the handlers
    as uploaded (``image_mode=None``: Gradio would flatten a cut-out onto black), to be read by
    :func:`pcdms.io.load_image` as on the command line."""
    image = gr.Image(type="filepath", format="png", image_mode=None, **kwargs)
    convert = image.preprocess

    def preprocess(payload):
        if payload is not None and payload.path:
            name = payload.orig_name or Path(payload.path).name
            try:
                image_size(payload.path)
            except PcdmsError as error:
                raise gr.Error(str(error).replace(str(payload.path), name), print_exception=False) from None
        try:
            return convert(payload)
        except Exception:
            name = payload.orig_name or Path(payload.path).name
            raise gr.Error(
                f"{name}: not an image file (or a format Pillow cannot read)", print_exception=False
            ) from None

    image.preprocess = preprocess
    return image


def editor_script() -> str:
    return (files("pcdms") / "assets" / "app" / "pose_editor.js").read_text(encoding="utf-8")


# A bar for each stage: the stage pipelines' own progress bars, followed on the page.
STAGE_PROGRESS = gr.Progress(track_tqdm=True)

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


def shown_on_page(handler):
    """A handler whose errors become a message on the page: the user's mistakes in their own words, anything
    else as one line, with its traceback in the server's log."""

    @wraps(handler)
    def shown(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except PcdmsError as error:
            raise gr.Error(str(error), print_exception=False) from None
        except Exception as error:
            traceback.print_exc()
            raise gr.Error(
                f"internal error ({type(error).__name__}); the server's log has the details", print_exception=False
            ) from None

    return shown


def shown_image(label: str, **kwargs) -> gr.Image:
    return gr.Image(label=label, format="png", interactive=False, height=360, elem_classes="shown-large", **kwargs)


def picker(images: list, **kwargs) -> gr.Gallery:
    """A strip of thumbnails to click, whole (not cropped)."""
    return gr.Gallery(images, columns=8, height=150, allow_preview=False, object_fit="contain", format="png", **kwargs)


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
    defaults = Settings()
    cache = private_cache()
    previous = os.environ.get(GRADIO_CACHE_VARIABLE)
    os.environ[GRADIO_CACHE_VARIABLE] = str(cache)
    # Gradio's cache (uploads, results) is swept of files older than an hour, every hour.
    with gr.Blocks(title="pcdms: pose transfer", delete_cache=(3600, 3600), analytics_enabled=False) as page:
        gr.Markdown(
            "# pcdms: this person, that pose\n"
            "Progressive Conditional Diffusion Models (ICLR 2024): stage 1 predicts the target's CLIP embedding, "
            "stage 2 paints a coarse image, stage 3 refines it."
        )
        source_pose = gr.State(None)
        with gr.Row(equal_height=False):
            with gr.Column():
                gr.Markdown("### 1. The person")
                person = photo_input(
                    label="person",
                    sources=["upload", "clipboard"],
                    height=420,
                    elem_id="person",
                    elem_classes="shown-large",
                )
                person_examples = picker(
                    [load_image(example.photo) for example in app.examples],
                    label="or pick an example",
                    elem_id="person-examples",
                )
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
                        pose_file = gr.File(label="pcdms or OpenPose JSON", file_types=[".json"], type="filepath")
        with gr.Accordion("advanced", open=False):
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
                inpaint_guidance = gr.Slider(0, 10, defaults.inpaint_guidance, step=0.1, label="stage 2 guidance")
                refine_guidance = gr.Slider(
                    0, 10, defaults.refine_guidance, step=0.1, label="stage 3 guidance", visible="refine" in app.stages
                )
                seed = gr.Number(
                    defaults.seed, precision=0, minimum=0, maximum=2**32 - 1, label="seed (same seed, same image)"
                )
        generate = gr.Button("Generate", variant="primary", elem_id="generate")
        with gr.Row():
            result = shown_image("result", elem_id="result")
            coarse = shown_image("stage 2 (coarse)")
            source_map = shown_image("person's pose")
            target_map = shown_image("target pose (as the model got it)", elem_id="target-pose")
        download = gr.DownloadButton("Download the result", visible=False, elem_id="download")

        def choose_example(event: gr.SelectData):
            return app.example(event.index)

        def choose_pose(event: gr.SelectData):
            return app.pose_from_gallery(event.index)

        def run(
            person, source_pose, target_pose, prior_steps, inpaint_steps, refine_steps, inpaint_guidance,
            refine_guidance, seed, progress=STAGE_PROGRESS,
        ):  # fmt: skip
            settings = Settings(prior_steps, inpaint_steps, refine_steps, inpaint_guidance, refine_guidance, seed)
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
        generate.click(
            shown_on_page(run),
            [person, source_pose, editor, prior_steps, inpaint_steps, refine_steps, inpaint_guidance, refine_guidance, seed],
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
