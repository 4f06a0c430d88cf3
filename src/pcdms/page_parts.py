"""The Gradio pieces the web page's tabs share (:mod:`pcdms.page`, :mod:`pcdms.animate_page`): a photo upload
that names a file it cannot read, handlers whose errors become one-line messages on the page, result images
and strips of thumbnails."""

from __future__ import annotations

import traceback
from functools import wraps
from pathlib import Path

import gradio as gr

from .errors import PcdmsError
from .io import image_size, load_image


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


def person_inputs(app, label: str, height: int, elem_id: str, examples_id: str) -> tuple[gr.Image, gr.Gallery]:
    """A tab's person: a photo upload (id ``elem_id``) and, under it, the bundled examples of ``app`` (a
    PoseTransferApp) to pick (id ``examples_id``)."""
    person = photo_input(
        label=label, sources=["upload", "clipboard"], height=height, elem_id=elem_id, elem_classes="shown-large"
    )
    examples = picker(
        [load_image(example.photo) for example in app.examples],
        label="or pick an example",
        elem_id=examples_id,
    )
    return person, examples
