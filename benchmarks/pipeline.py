"""Per-stage latency and peak memory of the whole PCDMs pipeline, with random weights.

    python benchmarks/pipeline.py --config tiny                  # the toy sizes, on this machine's CPU
    python benchmarks/pipeline.py --config full --device cuda    # the official sizes (about 5 B parameters)

Each stage runs as the pipeline runs it (stage 1: CLIP encoding and the prior; stage 2: DINOv2 and the
inpainting sampler; stage 3: the refining sampler), ``--repeats`` times after one warm-up run; the
median time is reported. Peak memory is the CUDA allocator's peak during the stage on a GPU, and the
peak resident set above the level before the stage on a CPU (sampled every 2 ms). The result is
printed as a Markdown row and appended to ``benchmarks/results/pipeline.jsonl`` with the device and
the date.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from diffusers.utils import logging as diffusers_logging
from PIL import Image
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, Dinov2Config, Dinov2Model

from pcdms.data.toy import tiny_vae
from pcdms.models.encoders import ClipImageEncoder, tiny_clip_config, tiny_dinov2_config
from pcdms.models.inpaint import InpaintModel
from pcdms.models.prior import PosePriorTransformer
from pcdms.models.refine import RefineModel
from pcdms.pipelines.inpaint import official_sampling_scheduler
from pcdms.pipelines.pcdms import PCDMsPipeline
from pcdms.pipelines.prior import unclip_scheduler
from pcdms.pose import Keypoints, render_pose
from pcdms.training import load_config
from pcdms.training.inpaint import build_inpaint
from pcdms.training.refine import build_refine

RESULTS = Path(__file__).parent / "results" / "pipeline.jsonl"

# The toy models are built as the committed toy configs build them for training.
CONFIGS = Path(__file__).parent.parent / "configs"

# Stable Diffusion 2.1-base's VAE, DINOv2-giant and OpenCLIP ViT-H/14 (IP-Adapter's image encoder).
SD_VAE = {
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "layers_per_block": 2,
    "latent_channels": 4,
    "sample_size": 512,
}
DINOV2_GIANT = Dinov2Config(
    hidden_size=1536, num_hidden_layers=40, num_attention_heads=24, mlp_ratio=4, use_swiglu_ffn=True, image_size=518
)
CLIP_VIT_H = CLIPVisionConfig(
    hidden_size=1280,
    intermediate_size=5120,
    num_hidden_layers=32,
    num_attention_heads=16,
    patch_size=14,
    image_size=224,
    projection_dim=1024,
    hidden_act="gelu",
)


def build(config: str) -> tuple[PCDMsPipeline, tuple[int, int]]:
    """The pipeline with random weights, and the output size it is benchmarked at."""
    if config == "tiny":
        embedding_dim = tiny_clip_config().projection_dim
        prior = load_config(CONFIGS / "prior-toy.yaml").prior
        components = {
            "vae": tiny_vae(),
            "image_encoder": Dinov2Model(tiny_dinov2_config()),
            "clip_encoder": CLIPVisionModelWithProjection(tiny_clip_config()),
            "prior": PosePriorTransformer(**prior.architecture, embedding_dim=embedding_dim),
            "inpaint": build_inpaint(load_config(CONFIGS / "inpaint-toy.yaml").inpaint),
            "refine": build_refine(load_config(CONFIGS / "refine-toy.yaml").refine),
        }
        size = (64, 128)
    else:
        components = {
            "vae": AutoencoderKL(**SD_VAE),
            "image_encoder": Dinov2Model(DINOV2_GIANT),
            "clip_encoder": CLIPVisionModelWithProjection(CLIP_VIT_H),
            "prior": PosePriorTransformer(),
            "inpaint": InpaintModel(),
            "refine": RefineModel(),
        }
        size = (512, 512)
    pipeline = PCDMsPipeline(
        inpaint_scheduler=official_sampling_scheduler(),
        prior_scheduler=unclip_scheduler(),
        refine_scheduler=official_sampling_scheduler(),
        **components,
    )
    return pipeline, size


class PeakMemory:
    """Peak memory above the starting level while inside: CUDA's allocator, or the process's resident set."""

    def __init__(self, device: torch.device):
        self.device, self.peak = device, 0

    @staticmethod
    def resident() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            self.start, self.running = self.resident(), True
            self.highest = self.start
            self.thread = threading.Thread(target=self.sample, daemon=True)
            self.thread.start()
        return self

    def sample(self):
        while self.running:
            self.highest = max(self.highest, self.resident())
            time.sleep(0.002)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated(self.device) - self.start
        else:
            self.running = False
            self.thread.join()
            self.peak = self.highest - self.start


def standing_pose(size: tuple[int, int]) -> Keypoints:
    width, height = size
    points = [(0.5, 0.15), (0.5, 0.27), (0.35, 0.28), (0.3, 0.42), (0.28, 0.56), (0.65, 0.28), (0.7, 0.42),
              (0.72, 0.56), (0.42, 0.58), (0.41, 0.75), (0.4, 0.93), (0.58, 0.58), (0.59, 0.75), (0.6, 0.93),
              (0.47, 0.13), (0.53, 0.13), (0.44, 0.14), (0.56, 0.14)]  # fmt: skip
    return Keypoints(np.array(points) * (width, height), np.ones(len(points)), size)


def measure(pipeline: PCDMsPipeline, size, steps: int, repeats: int, device: torch.device) -> dict[str, dict]:
    source_pose = standing_pose(size)
    target_pose = source_pose.hflip()
    source = render_pose(source_pose).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    clip = ClipImageEncoder(pipeline.clip_encoder)
    state: dict = {}

    def prior():
        state["embeds"] = pipeline.stage_pipeline("prior")(
            clip.encode([source]), [source_pose], [target_pose], num_inference_steps=steps
        ).image_embeds

    def inpaint():
        stage = pipeline.stage_pipeline("inpaint")
        state["features"] = stage.encode_images([source])
        state["coarse"] = stage(
            source, source_pose, target_pose, state["embeds"], width=size[0], height=size[1],
            num_inference_steps=steps, image_features=state["features"], output_type="pt",
        ).images  # fmt: skip

    def refine():
        pipeline.stage_pipeline("refine")(
            None, state["coarse"], width=size[0], height=size[1], num_inference_steps=steps,
            image_features=state["features"], output_type="pt",
        )  # fmt: skip

    results = {}
    for name, stage in (("prior", prior), ("inpaint", inpaint), ("refine", refine)):
        stage()  # warm-up
        times, peaks = [], []
        for _ in range(repeats):
            with PeakMemory(device) as memory:
                start = time.perf_counter()
                stage()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            peaks.append(memory.peak)
        results[name] = {"seconds": statistics.median(times), "peak_mib": max(peaks) / 2**20}
    return results


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    parser.add_argument("--steps", type=int, default=20, help="sampling steps per stage (official: 20)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-save", action="store_true", help="print only, do not append to the results file")
    args = parser.parse_args()

    torch.manual_seed(0)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    with torch.device(device):
        pipeline, size = build(args.config)
    if dtype != torch.float32:
        diffusers_logging.set_verbosity_error()  # no module of these models must stay float32: no warning
        pipeline.to(dtype=dtype)
    pipeline.set_progress_bar_config(disable=True)
    parameters = sum(
        p.numel() for p in pipeline.components.values() if isinstance(p, torch.nn.Module) for p in p.parameters()
    )
    results = measure(pipeline, size, args.steps, args.repeats, device)
    record = {
        "date": datetime.date.today().isoformat(),
        "device": device_name(device),
        "config": args.config,
        "dtype": args.dtype,
        "size": f"{size[0]}x{size[1]}",
        "steps": args.steps,
        "parameters": parameters,
        "torch": torch.__version__,
        "stages": results,
    }
    row = " | ".join(f"{stage['seconds']:.3f} s, {stage['peak_mib']:.0f} MiB" for stage in results.values())
    print(f"| {record['date']} | {record['device']} | {args.config} {record['size']} {args.dtype} | {row} |")
    if not args.no_save:
        RESULTS.parent.mkdir(exist_ok=True)
        with RESULTS.open("a") as file:
            file.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
