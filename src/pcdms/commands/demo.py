"""``pcdms demo`` (the bundled model on the first street example) and ``pcdms serve`` (the web page)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..bundled import BUNDLED_MODEL, bundled_model, read_pairs_file, street_examples_path
from ..devices import THREADS_HELP
from ..errors import PcdmsError
from .common import add_device_arguments


def add_parsers(commands) -> None:
    demo = commands.add_parser("demo", help="run the main job on the bundled example and print where the results are")
    demo.add_argument("--out", type=Path, default=Path("pcdms-demo"), help="output folder (default: pcdms-demo)")
    demo.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)
    demo.set_defaults(run=run_demo)

    serve = commands.add_parser("serve", help="a web page for pose transfer (Gradio), on this machine by default")
    serve.add_argument("--model", type=Path, help="a PCDMs pipeline folder (default: the bundled model)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0 opens it to the network)"
    )
    serve.add_argument("--port", type=int, help="port (default: the first free one from 7860)")
    serve.add_argument(
        "--poses", type=Path, help="a folder of pose files (.json) for the gallery (default: the bundled street poses)"
    )
    add_device_arguments(serve)
    serve.add_argument("--max-upload-mb", type=int, default=20, help="largest upload accepted, in MB (default: 20)")
    serve.add_argument("--queue-size", type=int, default=16, help="requests that may wait for the model (default: 16)")
    serve.set_defaults(run=run_serve)


def run_demo(args: argparse.Namespace) -> int:
    """The first street example pair through the bundled model: what ``pcdms generate`` does for one pair,
    plus a grid of the source, the target pose, both stages and the real target."""
    import time

    from ..devices import quiet_model_loading
    from ..generation import run_street_examples
    from ..io import save_image
    from ..pipelines.pcdms import load_pcdms_pipeline

    quiet_model_loading()
    started = time.perf_counter()
    examples = read_pairs_file(street_examples_path() / "pairs.csv")[:1]
    pipeline = load_pcdms_pipeline(bundled_model()).to("cpu")
    pipeline.set_progress_bar_config(disable=True)
    images, grid = run_street_examples(pipeline, examples)
    source_path, target_pose_path, _ = examples[0]
    name = f"{source_path.stem}_to_{target_pose_path.stem}"
    result = save_image(images[0], args.out / f"{name}.png")
    grid_path = save_image(grid, args.out / f"{name}_grid.png")
    print(f"pcdms demo: {source_path.name} in the pose of {target_pose_path.name}, bundled model {BUNDLED_MODEL}")
    print(f"  image  {result}\n  grid   {grid_path}  (source, target pose, stage 2, stage 3, real)")
    print(f"  {time.perf_counter() - started:.1f} s on the CPU")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    try:
        from ..page import serve
    except ImportError as error:
        if error.name != "gradio":
            raise
        raise PcdmsError(
            "pcdms serve needs Gradio, an optional dependency: pip install -e '.[app]' in the pcdms clone"
        ) from None
    from ..devices import quiet_model_loading

    quiet_model_loading()
    serve(
        args.model or bundled_model(),
        host=args.host,
        port=args.port,
        poses=args.poses,
        device=args.device,
        dtype=args.dtype,
        max_upload_mb=args.max_upload_mb,
        queue_size=args.queue_size,
    )
    return 0
