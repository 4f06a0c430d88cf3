"""One 512x512 sample per preset at the official size on a GPU, random weights: seconds and peak memory, in
bfloat16 and float16, eager and under torch.compile (issue 20).

    python benchmarks/gpu_presets.py                      # on a GPU: the official sizes (about 5 B parameters)
    python benchmarks/gpu_presets.py --tiny --out x.json  # on a CPU in seconds: tiny models (tests run this)

The pipeline is benchmarks/pipeline.py's (SD 2.1-base UNets for stages 2 and 3, DINOv2-giant, OpenCLIP
ViT-H/14, the 1 B-parameter prior, SD's VAE), built on the device with random weights, so nothing is
downloaded. Each row is one whole call, stages 1 to 3, one image: a warm-up call (which compiles, under
torch.compile: its seconds are recorded as ``first_call_seconds``), then ``--repeats`` timed calls (the
median is reported), the CUDA allocator's peak memory during them above what the weights hold. torch.compile
compiles the two UNets (95 % of the work) in place (``module.compile()``); with guidance on part of the steps
(batch 2, then 1) and feature reuse (full and shallow calls) it compiles one graph per kind of call.

Random weights can overflow in half precision; a random image is no error here, so the VAE's output is made
finite instead of refused (pcdms itself refuses a non-finite image). Rows run in order until ``--budget``
seconds have passed; the rest are recorded as skipped, so one run fits a 10-minute slot. The results are
written after every row to ``--out`` (default benchmarks/results/gpu_presets.json), with the device and date.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))  # benchmarks/pipeline.py: the full-size pipeline and its tools

from pipeline import PeakMemory, build, device_name, standing_pose

from pcdms.pipelines import common
from pcdms.pipelines.presets import PRESET_NAMES
from pcdms.pose import render_pose

RESULTS = Path(__file__).parent / "results" / "gpu_presets.json"
VARIANTS = ("eager", "compile")


def finite_decode(vae, latents: torch.Tensor) -> torch.Tensor:
    """The VAE's images made finite and clamped: random weights in half precision may overflow."""
    images = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample
    return torch.nan_to_num(images.float()).clamp(-1, 1)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def one_row(pipeline, inputs, preset: str, repeats: int, device: torch.device) -> dict:
    """A warm-up call, then ``repeats`` timed calls of the whole pipeline with ``preset``."""

    def call():
        pipeline(*inputs, preset=preset, generator=torch.Generator(device).manual_seed(0), output_type="pt")
        synchronize(device)

    began = time.perf_counter()
    call()
    first = time.perf_counter() - began
    times = []
    with PeakMemory(device) as memory:
        for _ in range(repeats):
            began = time.perf_counter()
            call()
            times.append(time.perf_counter() - began)
    return {
        "seconds": round(statistics.median(times), 4),
        "first_call_seconds": round(first, 2),
        "peak_mib": round(memory.peak / 2**20),
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; the VAE patch and grad mode are undone on return, so a caller's process (a test) is
    left as it was."""
    original = common.decode
    common.decode = finite_decode  # see the module docstring
    try:
        with torch.no_grad():
            return run(argv)
    finally:
        common.decode = original


def run(argv: list[str] | None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the toy sizes on the CPU, float32, in seconds")
    parser.add_argument("--device", default="cuda", help="default: cuda (the CPU with --tiny)")
    parser.add_argument("--dtypes", nargs="+", choices=("bfloat16", "float16", "float32"), default=None)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--presets", nargs="+", choices=PRESET_NAMES, default=list(PRESET_NAMES))
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per row after the warm-up (default 2)")
    parser.add_argument("--budget", type=float, default=540, help="seconds after which the rest is skipped")
    parser.add_argument(
        "--compile-backend", help="torch.compile's backend (default: inductor; with --tiny: eager, no compiler)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default: {RESULTS})")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    device = torch.device("cpu" if args.tiny else args.device)
    dtypes = args.dtypes or (["float32"] if args.tiny else ["bfloat16", "float16"])
    backend = args.compile_backend or ("eager" if args.tiny else "inductor")
    torch.manual_seed(0)
    with torch.device(device):
        pipeline, size = build("tiny" if args.tiny else "full")
    pipeline.set_progress_bar_config(disable=True)
    source_pose = standing_pose(size)
    source = render_pose(source_pose).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    inputs = (source, source_pose.hflip(), source_pose)
    results = {
        "date": datetime.date.today().isoformat(),
        "device": device_name(device),
        "torch": torch.__version__,
        "config": "tiny" if args.tiny else "full",
        "size": f"{size[0]}x{size[1]}",
        "build_seconds": round(time.perf_counter() - started, 1),
        "compile_backend": backend,
        "rows": [],
    }
    for variant in args.variants:  # eager first: compiling is done in place, once
        if variant == "compile":
            for model in (pipeline.inpaint, pipeline.refine):
                model.unet.compile(backend=backend)
        for dtype in dtypes:
            pipeline.to(dtype=getattr(torch, dtype))
            for preset in args.presets:
                row = {"preset": preset, "dtype": dtype, "variant": variant}
                if time.perf_counter() - started > args.budget:
                    row["skipped"] = f"the {args.budget:.0f} s budget was spent"
                else:
                    row |= one_row(pipeline, inputs, preset, args.repeats, device)
                    print(f"{preset:8} {dtype:9} {variant:8} {row['seconds']:.3f} s  {row['peak_mib']} MiB", flush=True)
                results["rows"].append(row)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=2) + "\n")  # after every row: a timeout keeps them
    print(f"results: {args.out}")
    return results


if __name__ == "__main__":
    main()
