"""Stage-2 training on the shared loop, on the toy dataset with tiny random encoders and VAE: it learns
its pairs, its randomness comes only from the loop's generator, and bad set-ups fail in one line."""

import shutil

import numpy as np
import pytest
import torch
import yaml
from diffusers import AutoencoderKL
from PIL import Image

from pcdms.data import open_dataset
from pcdms.data.canvas import image_tensor
from pcdms.data.toy import write_tiny_clip, write_tiny_dinov2, write_toy_dataset, write_toy_vae
from pcdms.errors import PcdmsError
from pcdms.models.encoders import CLIPImageProcessor, clip_pixels, image_features
from pcdms.pipelines.inpaint import load_inpaint_pipeline
from pcdms.training import load_config, run_training
from pcdms.training.config import InpaintConfig
from pcdms.training.inpaint import InpaintTask, build_inpaint
from stage2 import TINY_UNET, tiny_inpaint

ARCHITECTURE = {
    "unet_config": {key: value for key, value in TINY_UNET.items() if key not in ("in_channels", "out_channels")},
    "image_feature_dim": 32,
    "image_proj_hidden_dim": 16,
    "pose_block_channels": [4, 8, 8, 16],
}


def write_toy(root, people, poses):
    """A toy dataset with one test person, tiny encoders and a tiny VAE fitted briefly."""
    write_toy_dataset(root / "data", people=people, poses=poses, test_people=1)
    write_tiny_clip(root / "clip")
    write_tiny_dinov2(root / "dinov2")
    write_toy_vae(root / "vae", sorted((root / "data" / "train").glob("*.png")), steps=100)
    return root


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Two people in three poses each for training (12 pairs)."""
    return write_toy(tmp_path_factory.mktemp("toy"), people=3, poses=3)


def write_config(folder, toy, inpaint=None, **training):
    settings = {"max_steps": 400, "batch_size": 6, "learning_rate": 1e-3, "max_grad_norm": 1.0}
    settings.update(checkpoint_every=1000, log_every=10, **training)
    config = {
        "stage": "inpaint",
        "output_dir": str(folder / "run"),
        "data": {"root": str(toy / "data")},
        "training": settings,
        "inpaint": {
            "dinov2": str(toy / "dinov2"),
            "clip": str(toy / "clip"),
            "vae": str(toy / "vae"),
            "size": [64, 128],
            "architecture": ARCHITECTURE,
            **(inpaint or {}),
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "inpaint.yaml").write_text(yaml.safe_dump(config))
    return folder / "inpaint.yaml"


@pytest.fixture(scope="module")
def two_pairs(tmp_path_factory):
    """One person in two poses: two training pairs, to learn by heart."""
    return write_toy(tmp_path_factory.mktemp("two"), people=2, poses=2)


def test_a_tiny_model_learns_its_pairs_and_samples_them(tmp_path, two_pairs):
    config = load_config(write_config(tmp_path, two_pairs, max_steps=500, batch_size=2, learning_rate=2e-3))
    losses = []
    final = run_training(config, on_step=lambda step, loss: losses.append(loss))
    assert np.mean(losses[-20:]) < np.mean(losses[:10]) / 4

    pipeline = load_inpaint_pipeline(final)
    pipeline.set_progress_bar_config(disable=True)
    task = InpaintTask(config.inpaint, config.data, config.output_dir)
    dataset = open_dataset(two_pairs / "data", "train")
    pairs = [dataset[index] for index in range(len(dataset))]
    assert len(pairs) == 2
    embeds = task.collate(list(range(len(pairs))))["target_embeds"]
    images = pipeline(
        [pair.source_image for pair in pairs],
        [pair.source_pose for pair in pairs],
        [pair.target_pose for pair in pairs],
        embeds,
        guidance_scale=1.0,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
    ).images
    assert images.shape == (2, 3, 128, 64)

    def reconstruction(image):  # the best the VAE can give back
        with torch.no_grad():
            latents = pipeline.vae.encode(image_tensor(image)[None]).latent_dist.mean
            return (pipeline.vae.decode(latents).sample[0].clamp(-1, 1) + 1) / 2

    for pair, image in zip(pairs, images, strict=True):
        target, source = reconstruction(pair.target_image), reconstruction(pair.source_image)
        assert (image - target).abs().mean() < 0.5 * (source - target).abs().mean()


@pytest.fixture(scope="module")
def task(toy, tmp_path_factory):
    config = load_config(write_config(tmp_path_factory.mktemp("task"), toy))
    return InpaintTask(config.inpaint, config.data, config.output_dir)


def pair_item(dataset, index: int) -> dict[str, torch.Tensor]:
    """One pair's tensors, as a batch of one gathers them."""
    return {key: value[0] for key, value in dataset.batch([index]).items()}


def test_a_batch_is_its_pairs_tensors_gathered(task):
    """A batch holds, in order, each pair's canvas posterior and target embedding, its source's masked canvas
    and tokens, and the source and target pose maps side by side in [-1, 1]."""
    data, order = task.dataset, [5, 0, 3, 5]
    batch = task.collate([data[index] for index in order])
    for row, index in enumerate(order):
        source, (source_pose, target_pose) = data.sources[index], data.poses[index]
        assert torch.equal(batch["canvas"][row], data.canvas[index])
        assert torch.equal(batch["target_embeds"][row], data.target_embeds[index])
        assert torch.equal(batch["masked"][row], data.masked[source])
        assert torch.equal(batch["tokens"][row], data.tokens[source])
        side_by_side = torch.cat([data.pose_maps[source_pose], data.pose_maps[target_pose]], dim=2)
        assert torch.equal(batch["pose"][row], side_by_side.float() / 127.5 - 1)


@pytest.mark.gpu
def test_batches_are_gathered_on_the_training_device_alike(toy, tmp_path):
    config = load_config(write_config(tmp_path, toy))
    on_cpu, on_gpu = (InpaintTask(config.inpaint, config.data, config.output_dir) for _ in range(2))
    on_gpu.to(torch.device("cuda"))
    for key, value in on_gpu.collate([3, 1, 4]).items():
        assert value.device.type == "cuda"
        assert torch.equal(value.cpu(), on_cpu.collate([3, 1, 4])[key])


def test_the_loss_draws_all_its_randomness_from_the_generator(task):
    batch = task.collate([task.dataset[index] for index in range(3)])
    model = task.model
    first = task.loss(model, batch, torch.Generator().manual_seed(5))
    assert torch.equal(first, task.loss(model, batch, torch.Generator().manual_seed(5)))
    assert not torch.equal(first, task.loss(model, batch, torch.Generator().manual_seed(6)))


def test_drops_zero_the_encoders_pixel_inputs(task, monkeypatch):
    """A dropped source is DINOv2 of zero pixels; a dropped target embedding is CLIP of zero pixels."""
    batch = task.collate([task.dataset[index] for index in range(3)])
    seed = torch.Generator().manual_seed
    monkeypatch.setattr(task.config, "drop_image_features", 1.0)
    monkeypatch.setattr(task.config, "drop_target_embedding", 1.0)
    dropped = task.loss(task.model, batch, seed(1))
    monkeypatch.setattr(task.config, "drop_image_features", 0.0)
    monkeypatch.setattr(task.config, "drop_target_embedding", 0.0)
    zero_pixels = image_features(task.dinov2, torch.zeros(1, 3, 224, 224)).expand(3, -1, -1)
    blank = {**batch, "tokens": zero_pixels, "target_embeds": task.null_embeds.expand(3, -1)}
    assert torch.allclose(dropped, task.loss(task.model, blank, seed(1)), rtol=1e-6)
    assert not torch.equal(dropped, task.loss(task.model, batch, seed(1)))


def test_the_cached_items_are_what_the_frozen_networks_give(task, toy, tmp_path):
    """Every cached tensor equals the frozen network run on the pair's images as the layout places them."""
    dataset = open_dataset(toy / "data", "train")
    for index in (0, 5):
        pair, item = dataset[index], pair_item(task.dataset, index)
        with torch.no_grad():
            canvas = task.vae.encode(task.layout.image_canvas(pair.source_image, pair.target_image)[None]).latent_dist
            masked = task.vae.encode(task.layout.image_canvas(pair.source_image, None)[None]).latent_dist
            tokens = image_features(task.dinov2, clip_pixels([pair.source_image], CLIPImageProcessor()))
        assert item["canvas"].shape == (8, 16, 16)  # 4 channels of mean and of std; the toy VAE is 1/8
        assert torch.allclose(item["canvas"], torch.cat([canvas.mean, canvas.std], dim=1)[0], atol=1e-5)
        assert torch.allclose(item["masked"], torch.cat([masked.mean, masked.std], dim=1)[0], atol=1e-5)
        assert torch.allclose(item["tokens"], tokens[0], atol=1e-5)
        assert torch.equal(item["pose"], task.layout.pose_canvas(pair.source_pose, pair.target_pose))
        assert item["target_embeds"].shape == (32,)


def test_the_cache_is_read_back_and_keyed_by_content(toy, tmp_path, monkeypatch):
    """A second run reads the cache without running the VAE; a changed image is encoded again, alone."""
    data = tmp_path / "data"
    shutil.copytree(toy / "data", data)
    config = load_config(write_config(tmp_path, toy), overrides={"data.root": str(data)})
    first = InpaintTask(config.inpaint, config.data, config.output_dir)
    encoded = []
    original = AutoencoderKL.encode
    monkeypatch.setattr(
        AutoencoderKL, "encode", lambda vae, images: encoded.append(len(images)) or original(vae, images)
    )
    second = InpaintTask(config.inpaint, config.data, config.output_dir)
    assert encoded == []
    assert torch.equal(pair_item(first.dataset, 3)["canvas"], pair_item(second.dataset, 3)["canvas"])

    dataset = open_dataset(data, "train")
    source, _ = dataset.pairs[0]
    image = Image.open(dataset.image_path(source)).convert("RGB")
    Image.fromarray(255 - np.array(image)).save(dataset.image_path(source))
    third = InpaintTask(config.inpaint, config.data, config.output_dir)
    changed = [pair for pair in dataset.pairs if source in pair]
    assert sum(encoded) == len(changed) + 1  # the canvases it is in, and its masked canvas
    assert not torch.allclose(pair_item(third.dataset, 0)["canvas"], pair_item(first.dataset, 0)["canvas"])
    unchanged = next(index for index, pair in enumerate(dataset.pairs) if source not in pair)
    assert torch.equal(pair_item(third.dataset, unchanged)["canvas"], pair_item(first.dataset, unchanged)["canvas"])


def test_the_model_records_its_training_size_and_can_be_continued(tmp_path):
    config = InpaintConfig(dinov2="unused", vae="unused", architecture=ARCHITECTURE, size=[48, 96])
    model = build_inpaint(config)
    assert list(model.config.resolution) == [48, 96]
    assert list(type(model).from_config(model.config).config.resolution) == [48, 96]  # as the loop exports it
    saved = tiny_inpaint()
    saved.save_pretrained(tmp_path / "model" / "inpaint")  # as in a run's model/ folder
    continued = build_inpaint(InpaintConfig(pretrained=str(tmp_path / "model"), size=[64, 128]))
    for key, value in saved.state_dict().items():
        assert torch.equal(continued.state_dict()[key], value)
    with pytest.raises(PcdmsError, match=r"inpaint.architecture: .*unexpected keyword argument 'depth'"):
        build_inpaint(InpaintConfig(architecture={"depth": 3}))


def test_a_model_that_does_not_fit_its_encoders_is_named(tmp_path, toy):
    wide = {**ARCHITECTURE, "image_feature_dim": 64}
    config = load_config(write_config(tmp_path, toy, inpaint={"architecture": wide}))
    with pytest.raises(PcdmsError, match=r"does not fit its encoders: DINOv2 gives 32-d tokens, the model takes 64-d"):
        InpaintTask(config.inpaint, config.data, config.output_dir)


def test_config_errors_are_one_line(tmp_path, toy):
    path = write_config(tmp_path, toy, inpaint={"dinov2": ""})
    with pytest.raises(PcdmsError, match=r"inpaint.dinov2 is not set"):
        load_config(path)
    path = write_config(tmp_path, toy, inpaint={"drop_image_feature": 0.1})
    with pytest.raises(
        PcdmsError, match=r"unknown setting 'drop_image_feature' \(did you mean drop_image_features\?\)"
    ):
        load_config(path)
    path = write_config(tmp_path, toy, inpaint={"size": [64]})
    with pytest.raises(PcdmsError, match=r"inpaint.size is \[width, height\]"):
        load_config(path)
