"""Does channels-last memory pay for the bundled model on this machine's CPU? (issue 20)

    python benchmarks/channels_last.py [--model DIR] [--pairs 16] [--threads 2] [--repeats 2]

Generates the same street test pairs (every 25th, the benchmark's seeds, the model's own settings) with the
UNets and the VAE in the default (contiguous) memory format and in channels-last, alternating the two
``--repeats`` times after one warm-up call, and reports the seconds of each call and the largest pixel
difference between the two formats' images. Results, with the device and date, to
benchmarks/results/channels_last.json. Needs the street dataset (pcdms data street --out street).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from pcdms.bundled import DEFAULT_SEEDS, bundled_model, stage_generators
from pcdms.data import open_dataset
from pcdms.pipelines import load_pcdms_pipeline

RESULTS = Path(__file__).parent / "results" / "channels_last.json"
FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("street"), help="the street dataset (default: street)")
    parser.add_argument("--model", type=Path, help="a PCDMs pipeline folder (default: the bundled model)")
    parser.add_argument("--pairs", type=int, default=16, help="test pairs per call (default 16)")
    parser.add_argument("--threads", type=int, default=2, help="torch's CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per format (default 2)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(args.threads)
    model = args.model or bundled_model()
    pipeline = load_pcdms_pipeline(model)
    pipeline.set_progress_bar_config(disable=True)
    dataset = open_dataset(args.data, "test")
    pairs = [dataset[index] for index in range(0, len(dataset), len(dataset) // args.pairs)][: args.pairs]
    inputs = ([p.source_image for p in pairs], [p.target_pose for p in pairs], [p.source_pose for p in pairs])

    def call() -> tuple[float, torch.Tensor]:
        started = time.perf_counter()
        images = pipeline(*inputs, generator=stage_generators(DEFAULT_SEEDS, len(pairs)), output_type="pt").images
        return time.perf_counter() - started, images

    call()  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in FORMATS}
    images = {}
    for _ in range(args.repeats):
        for name, memory_format in FORMATS.items():
            for module in (pipeline.inpaint, pipeline.refine, pipeline.vae):
                module.to(memory_format=memory_format)
            spent, images[name] = call()
            seconds[name].append(round(spent, 3))
    difference = (images["contiguous"] - images["channels_last"]).abs().max().item()
    ratio = statistics.median(seconds["contiguous"]) / statistics.median(seconds["channels_last"])
    for name, values in seconds.items():
        print(f"{name}: {values} s for {len(pairs)} pairs")
    print(f"channels-last speed-up {ratio:.3f}x; largest pixel difference {difference:.2e} (0-1 scale)")
    results = {
        "date": datetime.date.today().isoformat(),
        "device": f"CPU ({platform.processor() or platform.machine()}, {args.threads} threads)",
        "torch": torch.__version__,
        "model": model.name,
        "pairs": len(pairs),
        "seconds": seconds,
        "speedup": round(ratio, 3),
        "largest_pixel_difference": difference,
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
