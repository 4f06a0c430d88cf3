"""Stage-3 training on the shared loop, on the toy dataset with a tiny random DINOv2 and a tiny VAE, and
coarse images made here by degrading the targets: it learns to undo the degradation, its randomness
comes only from the loop's generator, and bad set-ups fail in one line."""

import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image, ImageFilter

from pcdms.data import open_dataset
from pcdms.data.canvas import image_tensor
from pcdms.data.refine import pair_image_name
from pcdms.data.toy import write_tiny_dinov2, write_toy_dataset, write_toy_vae
from pcdms.errors import PcdmsError
from pcdms.models.encoders import CLIPImageProcessor, clip_pixels, image_features
from pcdms.pipelines.refine import load_refine_pipeline
from pcdms.training import load_config, run_training
from pcdms.training.config import RefineConfig
from pcdms.training.refine import RefineTask, build_refine
from stage3 import TINY_REFINE_UNET, tiny_refine

ARCHITECTURE = {
    "unet_config": {key: value for key, value in TINY_REFINE_UNET.items() if key != "in_channels"},
    "image_feature_dim": 32,
    "image_proj_hidden_dim": 16,
}


def degrade(image: Image.Image) -> Image.Image:
    """A stand-in for stage 2's output: the target blurred and washed out towards grey."""
    grey = Image.new("RGB", image.size, (128, 128, 128))
    return Image.blend(image.convert("RGB").filter(ImageFilter.GaussianBlur(4)), grey, 0.5)


def write_toy(root, people, poses, coarse_size=None, encoders=None):
    """A toy dataset with one test person, and a degraded copy of each training pair's target as its coarse
    image (``coarse_size``: written at another size); a tiny DINOv2 and a tiny VAE fitted briefly, or
    those of ``encoders``."""
    write_toy_dataset(root / "data", people=people, poses=poses, test_people=1)
    if encoders:
        for name in ("dinov2", "vae"):
            shutil.copytree(encoders / name, root / name)
    else:
        write_tiny_dinov2(root / "dinov2")
        write_toy_vae(root / "vae", sorted((root / "data" / "train").glob("*.png")), steps=100)
    dataset = open_dataset(root / "data", "train")
    (root / "coarse").mkdir()
    for source, target in dataset.pairs:
        coarse = degrade(Image.open(dataset.image_path(target)))
        coarse = coarse.resize(coarse_size, Image.Resampling.BICUBIC) if coarse_size else coarse
        coarse.save(root / "coarse" / pair_image_name(source, target))
    return root


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Two people in three poses each for training (12 pairs), coarse images at half size."""
    return write_toy(tmp_path_factory.mktemp("toy"), people=3, poses=3, coarse_size=(32, 64))


def write_config(folder, toy, refine=None, data=None, **training):
    settings = {"max_steps": 400, "batch_size": 2, "learning_rate": 3e-3, "max_grad_norm": 1.0}
    settings.update(checkpoint_every=1000, log_every=10, **training)
    config = {
        "stage": "refine",
        "output_dir": str(folder / "run"),
        "data": {"root": str(toy / "data"), **(data or {})},
        "training": settings,
        "refine": {
            "dinov2": str(toy / "dinov2"),
            "vae": str(toy / "vae"),
            "coarse_images": str(toy / "coarse"),
            "size": [64, 128],
            "architecture": ARCHITECTURE,
            **(refine or {}),
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "refine.yaml").write_text(yaml.safe_dump(config))
    return folder / "refine.yaml"


@pytest.fixture(scope="module")
def two_pairs(tmp_path_factory, toy):
    """One person in two poses: two training pairs, to learn by heart. The toy set's first person is this
    one (the same seed draws it first), so its VAE fits these images too."""
    return write_toy(tmp_path_factory.mktemp("two"), people=2, poses=2, encoders=toy)


def test_a_tiny_model_learns_its_pairs_and_refines_them(tmp_path, two_pairs):
    config = load_config(write_config(tmp_path, two_pairs))
    losses = []
    final = run_training(config, on_step=lambda step, loss: losses.append(loss))
    assert np.mean(losses[-20:]) < np.mean(losses[:10]) / 3

    pipeline = load_refine_pipeline(final)
    pipeline.set_progress_bar_config(disable=True)
    assert list(pipeline.refine.config.resolution) == [64, 128]
    dataset = open_dataset(two_pairs / "data", "train")
    pairs = [dataset[index] for index in range(len(dataset))]
    coarse = [Image.open(two_pairs / "coarse" / pair_image_name(*names)) for names in dataset.pairs]
    images = pipeline(
        [pair.source_image for pair in pairs],
        coarse,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
    ).images
    assert images.shape == (2, 3, 128, 64)
    for pair, coarse_image, image in zip(pairs, coarse, images, strict=True):
        target = (image_tensor(pair.target_image) + 1) / 2
        assert (image - target).abs().mean() < 0.6 * ((image_tensor(coarse_image) + 1) / 2 - target).abs().mean()


@pytest.fixture(scope="module")
def task(toy, tmp_path_factory):
    config = load_config(write_config(tmp_path_factory.mktemp("task"), toy))
    return RefineTask(config.refine, config.data, config.output_dir)


def test_the_cached_items_are_what_the_frozen_networks_give(task, toy):
    """Each pair's cached posteriors are the VAE's of the target and of the coarse image as the layout places them
    (the coarse image, written at half size, resized back with bicubic); its tokens are DINOv2's of the source."""
    dataset = open_dataset(toy / "data", "train")
    batch = task.collate([task.dataset[index] for index in (0, 4)])
    for row, index in enumerate((0, 4)):
        pair = dataset[index]
        coarse = Image.open(toy / "coarse" / pair_image_name(*dataset.pairs[index])).convert("RGB")
        with torch.no_grad():
            target = task.vae.encode(image_tensor(pair.target_image)[None]).latent_dist
            placed = image_tensor(coarse.resize((64, 128), Image.Resampling.BICUBIC))
            coarse_posterior = task.vae.encode(placed[None]).latent_dist
            tokens = image_features(task.dinov2, clip_pixels([pair.source_image], CLIPImageProcessor()))
        assert torch.allclose(batch["target"][row], torch.cat([target.mean, target.std], dim=1)[0], atol=1e-5)
        assert torch.allclose(
            batch["coarse"][row], torch.cat([coarse_posterior.mean, coarse_posterior.std], dim=1)[0], atol=1e-5
        )
        assert torch.allclose(batch["tokens"][row], tokens[0], atol=1e-5)


def test_the_loss_draws_all_its_randomness_from_the_generator(task):
    batch = task.collate([task.dataset[index] for index in range(3)])
    first = task.loss(task.model, batch, torch.Generator().manual_seed(5))
    assert torch.equal(first, task.loss(task.model, batch, torch.Generator().manual_seed(5)))
    assert not torch.equal(first, task.loss(task.model, batch, torch.Generator().manual_seed(6)))


def test_the_drop_zeroes_the_coarse_pixels_and_never_the_source(task, monkeypatch):
    """A dropped coarse image is the VAE's latents of zero pixels (mid-grey); the source stays."""
    batch = task.collate([task.dataset[index] for index in range(3)])
    seed = torch.Generator().manual_seed
    monkeypatch.setattr(task.config, "drop_coarse_image", 1.0)
    dropped = task.loss(task.model, batch, seed(1))
    monkeypatch.setattr(task.config, "drop_coarse_image", 0.0)
    with torch.no_grad():
        zero = task.vae.encode(torch.zeros(1, 3, 128, 64)).latent_dist
    blank = {**batch, "coarse": torch.cat([zero.mean, zero.std], dim=1).expand(3, -1, -1, -1)}
    assert torch.allclose(dropped, task.loss(task.model, blank, seed(1)), rtol=1e-6)
    assert not torch.equal(dropped, task.loss(task.model, batch, seed(1)))


def test_missing_coarse_images_are_one_line_with_the_command_that_writes_them(tmp_path, toy):
    coarse = tmp_path / "coarse"
    coarse.mkdir()
    dataset = open_dataset(toy / "data", "train")
    for names in dataset.pairs[1:]:
        (coarse / pair_image_name(*names)).write_bytes((toy / "coarse" / pair_image_name(*names)).read_bytes())
    config = load_config(write_config(tmp_path, toy, refine={"coarse_images": str(coarse)}))
    with pytest.raises(PcdmsError) as error:
        RefineTask(config.refine, config.data, config.output_dir)
    message = str(error.value)
    assert "\n" not in message
    assert (
        f"1 of 12 training pairs have no stage-2 image (first: {coarse / pair_image_name(*dataset.pairs[0])})"
        in message
    )
    assert message.endswith(
        f"write them with: pcdms sample inpaint --model STAGE2 --clip CLIP --data {toy / 'data'} --split train "
        f"--out {coarse}"
    )
    config = load_config(
        write_config(tmp_path, toy, refine={"coarse_images": str(coarse)}, data={"unusable_pairs": "skip"})
    )
    assert len(RefineTask(config.refine, config.data, config.output_dir).dataset) == 11


def test_the_model_records_its_training_size_and_can_be_continued(tmp_path):
    model = build_refine(RefineConfig(architecture=ARCHITECTURE, size=[48, 96]))
    assert list(model.config.resolution) == [48, 96] and model.unet.config.in_channels == 8
    assert list(type(model).from_config(model.config).config.resolution) == [48, 96]  # as the loop exports it
    saved = tiny_refine()
    saved.save_pretrained(tmp_path / "model" / "refine")  # as in a run's model/ folder
    continued = build_refine(RefineConfig(pretrained=str(tmp_path / "model"), size=[64, 128]))
    for key, value in saved.state_dict().items():
        assert torch.equal(continued.state_dict()[key], value)
    with pytest.raises(PcdmsError, match=r"refine.architecture: .*unexpected keyword argument 'depth'"):
        build_refine(RefineConfig(architecture={"depth": 3}))


def test_a_model_that_does_not_fit_its_encoders_is_named(tmp_path, toy):
    wide = {**ARCHITECTURE, "image_feature_dim": 64, "unet_config": {**ARCHITECTURE["unet_config"], "in_channels": 9}}
    config = load_config(write_config(tmp_path, toy, refine={"architecture": wide}))
    with pytest.raises(
        PcdmsError,
        match=r"the stage-3 model does not fit its encoders: the UNet takes 9 input channels, the VAE's latents "
        r"need 8 .*; DINOv2 gives 32-d tokens, the model takes 64-d",
    ):
        RefineTask(config.refine, config.data, config.output_dir)


@pytest.mark.parametrize(
    ("refine", "message"),
    [
        ({"dinov2": ""}, r"refine.dinov2 is not set"),
        ({"vae": ""}, r"refine.vae is not set"),
        ({"coarse_images": ""}, r"refine.coarse_images is not set \(the folder of stage 2's images"),
        ({"size": [64]}, r"refine.size is \[width, height\]"),
        ({"drop_coarse_image": 1.5}, r"refine.drop_coarse_image is a probability"),
        ({"drop_coarse": 0.1}, r"unknown setting 'drop_coarse' \(did you mean drop_coarse_image\?\)"),
    ],
)
def test_config_errors_are_one_line(tmp_path, refine, message):
    path = write_config(tmp_path, tmp_path, refine=refine)
    with pytest.raises(PcdmsError, match=rf"refine.yaml: .*{message}"):
        load_config(path)
