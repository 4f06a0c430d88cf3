"""A toy pose-transfer dataset drawn from scratch, tiny random image encoders, and a tiny VAE fitted to it.

With them the training commands run on a CPU in minutes and nothing is downloaded: the figures are
flat-coloured people (shirt, trousers, skin, hair) in random arm and leg poses, 64x128 like
Market-1501, written in the Market-1501 layout so they go through the same readers as real data.
Pairs join two poses of the same person; the test split holds people the training split never saw.
"""

from __future__ import annotations

import math
import os
from itertools import permutations
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from PIL import Image, ImageDraw
from transformers import CLIPVisionModelWithProjection, Dinov2Model

from ..io import atomic_folder, load_image, save_image
from ..models.encoders import tiny_clip_config, tiny_dinov2_config
from ..pose.annotation_csv import write_annotation_csv
from ..pose.keypoints import KEYPOINT_NAMES, Keypoints
from .canvas import image_tensor

SIZE = (64, 128)
BACKGROUND = (228, 226, 220)
JOINT = {name: index for index, name in enumerate(KEYPOINT_NAMES)}
# A person standing, facing the camera, in the 64x128 frame; arms and legs are placed around it.
HEAD = {"nose": (32, 18), "right_eye": (29, 16), "left_eye": (35, 16), "right_ear": (27, 18), "left_ear": (37, 18)}
TRUNK = {
    "neck": (32, 30),
    "right_shoulder": (22, 32),
    "left_shoulder": (42, 32),
    "right_hip": (26, 68),
    "left_hip": (38, 68),
}
# Each limb: (from, middle, end) joints, the two segment lengths, and the ranges, in degrees, of the
# first segment's angle from straight down and of the second's bend from the first (positive: away
# from the body).
LIMB_SEGMENTS = (
    ("shoulder", "elbow", "wrist", (16, 15), (-10, 110), (-30, 100)),
    ("hip", "knee", "ankle", (24, 25), (-15, 30), (-25, 10)),
)


def random_pose(rng: np.random.Generator) -> Keypoints:
    """A random arm and leg pose around the standing template, shifted a little sideways."""
    points = {**HEAD, **TRUNK}
    for side, outward in (("right", -1), ("left", 1)):
        for start, middle, end, lengths, first, bend in LIMB_SEGMENTS:
            angle = 0.0
            joint = np.array(points[f"{side}_{start}"], dtype=float)
            for name, length, swing in zip((middle, end), lengths, (first, bend), strict=True):
                angle += math.radians(rng.uniform(*swing))
                joint = joint + length * np.array([outward * math.sin(angle), math.cos(angle)])
                points[f"{side}_{name}"] = joint
    shift = np.array([rng.uniform(-5, 5), rng.uniform(-2, 2)])
    xy = np.array([points[name] for name in KEYPOINT_NAMES], dtype=float) + shift
    xy = np.clip(np.round(xy), 0, np.array(SIZE) - 1)
    return Keypoints(xy, np.ones(len(KEYPOINT_NAMES)), SIZE)


def random_palette(rng: np.random.Generator) -> dict[str, tuple[int, int, int]]:
    def colour(low: int, high: int) -> tuple[int, int, int]:
        return tuple(int(value) for value in rng.integers(low, high, size=3))

    skin = rng.choice([(241, 194, 167), (198, 134, 99), (141, 85, 54), (224, 172, 105)])
    return {
        "shirt": colour(20, 235),
        "trousers": colour(10, 200),
        "skin": tuple(int(v) for v in skin),
        "hair": colour(0, 120),
    }


def draw_person(pose: Keypoints, palette: dict[str, tuple[int, int, int]]) -> Image.Image:
    image = Image.new("RGB", pose.image_size, BACKGROUND)
    draw = ImageDraw.Draw(image)

    def at(name: str) -> tuple[float, float]:
        return tuple(pose.xy[JOINT[name]])

    for side in ("right", "left"):
        draw.line(
            [at(f"{side}_hip"), at(f"{side}_knee"), at(f"{side}_ankle")],
            fill=palette["trousers"],
            width=7,
            joint="curve",
        )
    draw.polygon([at("right_shoulder"), at("left_shoulder"), at("left_hip"), at("right_hip")], fill=palette["shirt"])
    for side in ("right", "left"):
        draw.line(
            [at(f"{side}_shoulder"), at(f"{side}_elbow"), at(f"{side}_wrist")],
            fill=palette["shirt"],
            width=5,
            joint="curve",
        )
        x, y = at(f"{side}_wrist")
        draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=palette["skin"])
    x, y = at("nose")
    draw.ellipse([x - 7, y - 8, x + 7, y + 8], fill=palette["skin"])
    draw.chord([x - 7, y - 9, x + 7, y + 5], 180, 360, fill=palette["hair"])
    return image


def write_toy_dataset(
    out: str | os.PathLike, people: int = 8, poses: int = 6, test_people: int = 2, seed: int = 0
) -> Path:
    """``out`` in the Market-1501 layout: ``{train,test}/`` images, pairs and annotation CSVs."""
    rng = np.random.default_rng(seed)
    with atomic_folder(out) as folder:
        for split, members in (("train", range(people - test_people)), ("test", range(people - test_people, people))):
            annotations, pairs = {}, []
            for person in members:
                palette = random_palette(rng)
                names = []
                for number in range(poses):
                    pose = random_pose(rng)
                    name = f"p{person:03d}_{number:02d}.png"
                    save_image(draw_person(pose, palette), folder / split / name)
                    annotations[name] = pose
                    names.append(name)
                pairs += permutations(names, 2)
            write_annotation_csv(folder / f"market-annotation-{split}.csv", annotations)
            (folder / f"market-pairs-{split}.csv").write_text("from,to\n" + "".join(f"{s},{t}\n" for s, t in pairs))
    return Path(out)


def write_tiny_clip(out: str | os.PathLike, embedding_dim: int = 32, seed: int = 0) -> Path:
    """A randomly initialised tiny CLIP vision encoder folder (a stand-in for OpenCLIP ViT-H/14)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = CLIPVisionModelWithProjection(tiny_clip_config(embedding_dim))
    with atomic_folder(out) as folder:
        model.save_pretrained(folder)
    return Path(out)


def write_tiny_dinov2(out: str | os.PathLike, hidden_size: int = 32, seed: int = 0) -> Path:
    """A randomly initialised tiny DINOv2 folder (a stand-in for DINOv2-giant; 257 tokens of ``hidden_size``)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Dinov2Model(tiny_dinov2_config(hidden_size))
    with atomic_folder(out) as folder:
        model.save_pretrained(folder)
    return Path(out)


def tiny_vae() -> AutoencoderKL:
    """A VAE with Stable Diffusion's shape (4 latent channels, 1/8 the resolution), about 300 k parameters."""
    return AutoencoderKL(
        block_out_channels=(16, 32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        norm_num_groups=8,
        latent_channels=4,
        sample_size=128,
    )


def write_toy_vae(
    out: str | os.PathLike, images: list[Path], steps: int = 300, batch_size: int = 8, seed: int = 0
) -> Path:
    """A tiny VAE fitted to ``images`` (about 30 s on 2 CPU cores for the toy set), so that samples
    decode to pictures; its scaling factor makes the latents' standard deviation 1, as SD's does."""
    pixels = torch.stack([image_tensor(load_image(path)) for path in images])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        vae = tiny_vae()
        optimizer = torch.optim.AdamW(vae.parameters(), lr=2e-3)
        for _ in range(steps):
            batch = pixels[torch.randint(0, len(pixels), (batch_size,))]
            posterior = vae.encode(batch).latent_dist
            reconstruction = vae.decode(posterior.sample()).sample
            loss = torch.nn.functional.mse_loss(reconstruction, batch) + 1e-6 * posterior.kl().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mean
    vae.register_to_config(scaling_factor=round(1.0 / latents.std().item(), 5))
    with atomic_folder(out) as folder:
        vae.save_pretrained(folder)
    return Path(out)
