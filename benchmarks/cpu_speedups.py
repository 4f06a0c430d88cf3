"""Do channels-last memory and torch.compile pay for the bundled model on this machine's CPU? (issue 20)

    python benchmarks/cpu_speedups.py [--model DIR] [--batches 1 16] [--threads 2] [--repeats 3]

For each batch size (street test pairs, every 25th, the benchmark's seeds, the model's own settings; one pair
per call is what ``pcdms generate`` does), generates the same pairs with the UNets and the VAE in the default
(contiguous) memory format and in channels-last, alternating the two ``--repeats`` times after a warm-up
call, then with the two UNets compiled (``torch.compile``, inductor, in a fresh compile cache so that the
first call's seconds are a cold compilation). Reports the median seconds per call of each, the compiled
first call, and the largest pixel difference from the contiguous images. For one pair per call it also
splits the eager sampling loops' time: inside the UNets' calls, and outside them (the scheduler, guidance,
the loop's own Python); and it times one stage-2 UNet call at its real size and on the smallest latent the
UNet takes (one latent pixel per deepest-level cell), whose seconds are the per-call cost that does not grow
with the image (Python and operator dispatch), the part that compilation can remove. Results, with the device and date,
to benchmarks/results/cpu_speedups.json. Needs the street dataset (pcdms data street --out street).
"""

from __future__ import annotations

import os
import tempfile

# Before torch is imported: inductor reads its cache folder then, and a warm cache would hide the compile time.
os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="pcdms-inductor-")

import argparse
import datetime
import json
import statistics
import time
from pathlib import Path

import torch
from pipeline import device_name  # benchmarks/pipeline.py, beside this script

from pcdms.bundled import DEFAULT_SEEDS, bundled_model, stage_generators
from pcdms.data import open_dataset
from pcdms.pipelines import load_pcdms_pipeline
from pcdms.pipelines.common import UNetStagePipeline

RESULTS = Path(__file__).parent / "results" / "cpu_speedups.json"
FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def median_seconds(function, repeats: int = 20) -> float:
    function()
    spent = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent)


def loop_split(call, unets, repeats: int) -> dict:
    """Seconds per call in the UNet stages' sampling loops, and in the UNets' calls within them."""
    spent = {"sampling loops": 0.0, "UNet calls": 0.0}
    sample_latents, started = UNetStagePipeline.sample_latents, []

    def timed_loop(*args, **kwargs):
        begun = time.perf_counter()
        try:
            return sample_latents(*args, **kwargs)
        finally:
            spent["sampling loops"] += time.perf_counter() - begun

    def end(*_):
        spent["UNet calls"] += time.perf_counter() - started.pop()

    hooks = [unet.register_forward_pre_hook(lambda *_: started.append(time.perf_counter())) for unet in unets]
    hooks += [unet.register_forward_hook(end) for unet in unets]
    UNetStagePipeline.sample_latents = timed_loop
    try:
        for _ in range(repeats):
            call()
    finally:
        UNetStagePipeline.sample_latents = sample_latents
        for hook in hooks:
            hook.remove()
    split = {name: round(value / repeats, 4) for name, value in spent.items()}
    split["share outside the UNets"] = round(1 - spent["UNet calls"] / spent["sampling loops"], 4)
    return split


def unet_call_cost(pipeline, call) -> dict:
    """One stage-2 UNet call's seconds with the arguments of a real call, and on the smallest latent."""
    unet, captured = pipeline.inpaint.unet, {}

    def capture(module, args, kwargs):
        captured.setdefault("call", (args, kwargs))

    hook = unet.register_forward_pre_hook(capture, with_kwargs=True)
    call()
    hook.remove()
    (sample, *rest), kwargs = captured["call"]
    cell = 2 ** (len(unet.config.block_out_channels) - 1)
    smallest = sample[..., :cell, :cell].contiguous()
    real = median_seconds(lambda: unet(sample, *rest, **kwargs))
    fixed = median_seconds(lambda: unet(smallest, *rest, **kwargs))
    return {
        "real latent": list(sample.shape),
        "seconds": round(real, 4),
        "smallest latent": list(smallest.shape),
        "seconds on the smallest": round(fixed, 4),
        "share": round(fixed / real, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("street"), help="the street dataset (default: street)")
    parser.add_argument("--model", type=Path, help="a PCDMs pipeline folder (default: the bundled model)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16], help="pairs per call (default 1 16)")
    parser.add_argument("--threads", type=int, default=2, help="torch's CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per variant (default 3)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(args.threads)
    model = args.model or bundled_model()
    pipeline = load_pcdms_pipeline(model)
    pipeline.set_progress_bar_config(disable=True)
    dataset = open_dataset(args.data, "test")
    unets = (pipeline.inpaint.unet, pipeline.refine.unet)

    def caller(pairs: int):
        chosen = [dataset[index * 25 % len(dataset)] for index in range(pairs)]
        inputs = ([p.source_image for p in chosen], [p.target_pose for p in chosen], [p.source_pose for p in chosen])

        def call() -> tuple[float, torch.Tensor]:
            started = time.perf_counter()
            images = pipeline(*inputs, generator=stage_generators(DEFAULT_SEEDS, pairs), output_type="pt").images
            return time.perf_counter() - started, images

        return call

    rows = []
    for pairs in args.batches:  # eager first for every batch: compiling cannot be undone
        call, seconds, images = caller(pairs), {name: [] for name in FORMATS}, {}
        call()  # warm-up
        for _ in range(args.repeats):
            for name, memory_format in FORMATS.items():
                for module in (pipeline.inpaint, pipeline.refine, pipeline.vae):
                    module.to(memory_format=memory_format)
                spent, images[name] = call()
                seconds[name].append(round(spent, 3))
        rows.append({"pairs": pairs, "seconds": seconds, "images": images})
        if pairs == 1:
            rows[-1]["eager sampling loops"] = loop_split(call, unets, args.repeats)
            rows[-1]["stage-2 UNet call"] = unet_call_cost(pipeline, call)
    for module in (pipeline.inpaint, pipeline.refine, pipeline.vae):
        module.to(memory_format=torch.contiguous_format)
    for unet in unets:
        unet.compile()
    for row in rows:
        call = caller(row["pairs"])
        first, _ = call()
        row["seconds"]["compile"] = [round(call()[0], 3) for _ in range(args.repeats)]
        row["compile_first_call"] = round(first, 1)
        _, row["images"]["compile"] = call()

    for row in rows:
        images = row.pop("images")
        eager = statistics.median(row["seconds"]["contiguous"])
        row["speedup"] = {name: round(eager / statistics.median(values), 3) for name, values in row["seconds"].items()}
        row["largest_pixel_difference"] = {
            name: float((images["contiguous"] - image).abs().max()) for name, image in images.items()
        }
        print(row)
    results = {
        "date": datetime.date.today().isoformat(),
        "device": device_name(torch.device("cpu")),
        "torch": torch.__version__,
        "model": model.name,
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
