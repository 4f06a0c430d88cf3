"""The web page's Animate tab (``pcdms serve``, issue 18): a person's photo and a short clip in, a video back.

:func:`animate_tab` lays out the tab inside the page :func:`pcdms.page.build_page` builds, over the handler
:meth:`pcdms.app.PoseTransferApp.animate`: the person (an upload, or one of the bundled examples, whose pose is
known), a clip (an upload, or the bundled walk), the options, a progress bar over the frames, and the video
with one line saying how many frames were animated and what was cut or filled. Errors are one-line messages
on the page, as on the other tab.
"""

from __future__ import annotations

import gradio as gr

from .animation.upload import MAX_PAGE_FRAMES
from .page_parts import person_inputs, shown_on_page

# A bar over the frames (not the stages' bars of every frame, which the pose-transfer tab follows).
FRAME_PROGRESS = gr.Progress()


def animate_tab(app) -> None:
    """The tab's components and events, inside the ``gr.Tab`` being built, over ``app`` (a PoseTransferApp)."""
    source_pose = gr.State(None)
    with gr.Row(equal_height=False):
        with gr.Column():
            gr.Markdown("### 1. The person")
            person, person_examples = person_inputs(app, "person to animate", 360, "animate-person", "animate-examples")
        with gr.Column():
            gr.Markdown(f"### 2. A short clip of someone moving (its first {MAX_PAGE_FRAMES} frames are used)")
            clip = gr.Video(label="clip", sources=["upload"], height=360, elem_id="animate-clip")
            walk = gr.Button("or use the bundled walk (20 frames)", size="sm", elem_id="animate-walk")
    with gr.Row():
        smoothing = gr.Checkbox(True, label="smooth the clip's poses (One-Euro filter)")
        retarget = gr.Checkbox(True, label="fit the clip's skeleton to the person's body (retarget)")
        side_by_side = gr.Checkbox(False, label="side by side: clip | pose | result")
        seed = gr.Number(42, precision=0, minimum=0, maximum=2**32 - 1, label="seed (one noise for every frame)")
    animate = gr.Button("Animate", variant="primary", elem_id="animate")
    video = gr.Video(label="animation", interactive=False, height=420, elem_id="animation")
    summary = gr.Markdown(elem_id="animate-summary")

    def choose_example(event: gr.SelectData):
        return app.example(event.index)

    def run_animation(person, source_pose, clip, smoothing, retarget, side_by_side, seed, progress=FRAME_PROGRESS):
        progress(0, desc="finding the poses in the clip")

        def on_frame(done: int, total: int) -> None:
            progress((done, total), desc="frames", unit="frames")

        made = app.animate(
            person, source_pose, clip, smoothing=smoothing, retarget=retarget, side_by_side=side_by_side,
            seed=seed, on_frame=on_frame,
        )  # fmt: skip
        return str(made.video), made.message

    person_examples.select(shown_on_page(choose_example), None, [person, source_pose])
    # A new photo's pose is found when it is animated; an example's is known.
    person.upload(lambda: None, None, source_pose)
    person.clear(lambda: None, None, source_pose)
    walk.click(shown_on_page(app.example_clip), None, clip)
    animate.click(
        shown_on_page(run_animation),
        [person, source_pose, clip, smoothing, retarget, side_by_side, seed],
        [video, summary],
        concurrency_id="model",  # one model: an animation waits for a generation, and the other way round
        show_progress_on=video,
        api_name="animate",
    )
