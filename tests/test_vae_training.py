"""Training a small VAE on the shared loop (``pcdms train vae``): it learns to reconstruct its images,
its scaling factor makes the training latents' spread 1, and its settings are checked in one line."""

import re

import pytest
import torch
import yaml
from diffusers import AutoencoderKL
from transformers import Dinov2Model

from pcdms.cli import main
from pcdms.data import open_dataset
from pcdms.data.canvas import image_tensor
from pcdms.data.toy import write_toy_dataset
from pcdms.errors import PcdmsError
from pcdms.io import load_image
from pcdms.models import ClipImageEncoder
from pcdms.models.encoders import image_features, load_local_model
from pcdms.training import load_config, run_training

ARCHITECTURE = {
    "block_out_channels": [8, 16, 16],
    "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3,
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "latent_channels": 4,
}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_dataset(tmp_path_factory.mktemp("toy"), people=3, poses=3, test_people=1)


def write_config(folder, data, **vae):
    config = {
        "stage": "vae",
        "output_dir": str(folder / "run"),
        "data": {"root": str(data)},
        "training": {"max_steps": 150, "batch_size": 6, "learning_rate": 3e-3, "checkpoint_every": 1000},
        "vae": {"size": [64, 128], "architecture": ARCHITECTURE, **vae},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vae.yaml").write_text(yaml.safe_dump(config))
    return folder / "vae.yaml"


def training_images(data):
    dataset = open_dataset(data, "train")
    return torch.stack([image_tensor(load_image(dataset.image_path(name))) for name in dataset.image_names()])


@torch.no_grad()
def reconstruction_error(vae, images):
    return torch.nn.functional.mse_loss(vae.decode(vae.encode(images).latent_dist.mean).sample, images).item()


def test_a_small_vae_learns_to_reconstruct_and_scales_its_latents(tmp_path, toy):
    config = load_config(write_config(tmp_path, toy))
    torch.manual_seed(0)
    untrained = AutoencoderKL(**ARCHITECTURE)
    folder = run_training(config)
    vae = AutoencoderKL.from_pretrained(folder).eval()
    images = training_images(toy)
    assert images.shape[0] == 6
    assert reconstruction_error(vae, images) < 0.5 * reconstruction_error(untrained, images)
    with torch.no_grad():
        latents = vae.encode(images).latent_dist.mean
    assert latents.shape == (6, 4, 32, 16)  # three blocks: 1/4 of each side
    assert latents.std().item() * vae.config.scaling_factor == pytest.approx(1.0, abs=1e-4)


def test_a_fixed_scaling_factor_is_kept(tmp_path, toy):
    config = load_config(write_config(tmp_path, toy, scaling_factor=0.5), {"training.max_steps": 2})
    assert AutoencoderKL.from_pretrained(run_training(config)).config.scaling_factor == 0.5


@pytest.mark.parametrize(
    ("vae", "message"),
    [
        ({"size": [64]}, "vae.size is [width, height]"),
        ({"scaling_factor": "median"}, "vae.scaling_factor must be one of auto"),
        ({"kl_weigth": 1e-6}, "unknown setting 'kl_weigth' (did you mean kl_weight?)"),
    ],
)
def test_settings_are_checked_in_one_line(tmp_path, toy, vae, message):
    with pytest.raises(PcdmsError, match=re.escape(message)):
        load_config(write_config(tmp_path, toy, **vae))


def test_a_bad_architecture_is_named(tmp_path, toy, capsys):
    config = write_config(tmp_path, toy, architecture={"block_out_channels": [8, 16], "wings": 2})
    assert main(["train", "vae", "--config", str(config)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"pcdms: error: {config}: vae.architecture: AutoencoderKL has no argument 'wings'"  # before any data


def test_stand_in_encoders_are_written_at_the_asked_sizes(tmp_path, capsys):
    assert main(["encoders", str(tmp_path), "--clip-dim", "24", "--dinov2-dim", "16"]) == 0
    assert "24-d embeddings" in capsys.readouterr().out
    clip = ClipImageEncoder.from_pretrained(tmp_path / "clip")
    dinov2 = load_local_model(Dinov2Model, tmp_path / "dinov2", "DINOv2 encoder")
    pixels = torch.zeros(2, 3, 224, 224)
    assert clip(pixels).shape == (2, 24)
    assert image_features(dinov2, pixels).shape == (2, 257, 16)
