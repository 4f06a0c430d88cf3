"""A photo that is not the model's shape: one rule (pad to the model's aspect, cut the result back) for the
pipeline, the command line and the page; and the generate command's options, alike for one pair and --pairs."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import body_image, standing_pose
from pcdms.bundled import model_folder
from pcdms.cli import main
from pcdms.pipelines.framing import aspect_padding, crop_back, fit_to_model
from pcdms.pipelines.pcdms import load_pcdms_pipeline
from tiny_pcdms import tiny_pcdms

CASE = Path(__file__).parent / "data" / "cases" / "txt_target_pairs"


def run(capsys, *argv):
    status = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_padding_to_the_models_aspect():
    assert aspect_padding((548, 342), (64, 128)) == (0, 377, 0, 377)  # a landscape photo: 548x1096
    assert aspect_padding((50, 200), (64, 128)) == (25, 0, 25, 0)  # narrower than 1:2: 100x200
    assert aspect_padding((64, 128), (64, 128)) == aspect_padding((176, 352), (64, 128)) == (0, 0, 0, 0)
    assert aspect_padding((101, 100), (100, 100)) == (0, 0, 0, 1)


def test_a_pair_is_fitted_without_stretching_anybody():
    source_pose = standing_pose((120, 60))
    target_pose = standing_pose((176, 256))  # drawn in another frame: letterboxed into the photo's
    fitted = fit_to_model(body_image(source_pose), source_pose, target_pose, (64, 128))
    assert fitted.source.size == fitted.source_pose.image_size == fitted.target_pose.image_size == (120, 240)
    assert fitted.box == (0.0, 90 / 240, 1.0, 150 / 240)
    assert fitted.source_pose.allclose(source_pose.pad(0, 90, 0, 90))
    assert fitted.target_pose.allclose(target_pose.letterbox((120, 60)).pad(0, 90, 0, 90))
    assert np.array_equal(np.asarray(fitted.source)[:90], np.full((90, 120, 3), 255))  # padded with white
    same = fit_to_model(body_image(standing_pose((64, 128))), None, standing_pose((64, 128)), (64, 128))
    assert same.box is None and same.source.size == (64, 128)


def test_crop_back_cuts_each_pairs_images_to_its_box():
    images = torch.arange(2 * 3 * 128 * 64, dtype=torch.float32).reshape(2, 3, 128, 64)
    cut = crop_back(images, [(0.0, 90 / 240, 1.0, 150 / 240)], per_pair=2)
    assert [tuple(image.shape) for image in cut] == [(3, 32, 64), (3, 32, 64)]
    assert torch.equal(cut[1], images[1, :, 48:80, :])


@pytest.fixture(scope="module")
def pipeline():
    pipeline = tiny_pcdms()
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def generators(seed=3):
    return {stage: torch.Generator().manual_seed(seed) for stage in ("prior", "inpaint", "refine")}


STEPS = {"prior_steps": 2, "inpaint_steps": 1, "refine_steps": 1}


def test_the_pipeline_keeps_a_landscape_photos_aspect_by_padding_and_cutting_back(pipeline):
    source_pose = standing_pose((137, 86))
    source, target = body_image(source_pose), standing_pose((64, 128))
    output = pipeline(source, target, source_pose, generator=generators(), return_intermediates=True, **STEPS)
    assert output.images[0].size == output.coarse_images[0].size == (64, 40)  # 137x86 is 1.59:1, 64x40 1.6:1
    fitted = fit_to_model(source, source_pose, target, (64, 128))
    padded = pipeline(fitted.source, fitted.target_pose, fitted.source_pose, generator=generators(), **STEPS)
    assert padded.images[0].size == (64, 128)  # what the model made, before cutting back
    left, top, right, bottom = 0, round(fitted.box[1] * 128), 64, round(fitted.box[3] * 128)
    assert np.array_equal(np.asarray(output.images[0]), np.asarray(padded.images[0])[top:bottom, left:right])


def test_a_batch_mixing_aspects_cuts_each_pair_back(pipeline):
    landscape, portrait = standing_pose((137, 86)), standing_pose((64, 128))
    images = pipeline(
        [body_image(landscape), body_image(portrait)], [portrait, portrait], [landscape, portrait], **STEPS
    ).images
    assert [image.size for image in images] == [(64, 40), (64, 128)]
    with pytest.raises(ValueError, match="different sizes: use output_type='pil'"):
        pipeline([body_image(landscape), body_image(portrait)], [portrait] * 2, [landscape, portrait], output_type="pt")


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ({"prior_steps": 1}, "PCDMsPipeline: prior_steps must be a whole number of at least 2, got 1"),
        ({"refine_steps": 0}, "PCDMsPipeline: refine_steps must be a whole number of at least 1, got 0"),
        ({"num_images_per_pair": 0}, "at least 1 image per pair is needed, got 0"),
    ],
)
def test_the_pipeline_refuses_too_few_steps_or_images(pipeline, steps, message):
    from pcdms.errors import PcdmsError

    pose = standing_pose((64, 128))
    with pytest.raises(PcdmsError, match=rf"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        pipeline(body_image(pose), pose, pose, **steps)


def test_the_bundled_model_loads_by_name():
    assert model_folder("pcdms-street") == model_folder(Path("pcdms-street")) != Path("pcdms-street")
    assert (model_folder("pcdms-street") / "model_index.json").is_file()
    assert load_pcdms_pipeline("pcdms-street").stages == ("prior", "inpaint", "refine")


# The command line, on the bundled model (by name) and the txt_target_pairs case.


def single_pair(capsys, out, *extra):
    return run(
        capsys, "generate", "--model", "pcdms-street", "--source", CASE / "source.jpg",
        "--source-pose", CASE / "source.json", "--target-pose", CASE / "target_pose.txt", "--out", out, *extra,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--steps", "1"], "--steps: prior_steps must be a whole number of at least 2, got 1"),
        (["--steps", "0"], "--steps: prior_steps must be a whole number of at least 2, got 0"),
        (["--steps", "refine=0"], "--steps: refine_steps must be a whole number of at least 1, got 0"),
        (["--samples", "0"], "--samples must be at least 1, got 0"),
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    ],
)
def test_generate_refuses_numbers_it_cannot_sample_with_in_one_line(tmp_path, capsys, option, message):
    status, out, err = single_pair(capsys, tmp_path / "out.png", "--target-size", "176x256", *option)
    assert status == 1 and out == ""
    assert err.startswith(f"pcdms: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "out.png").exists()


def test_target_size_works_for_a_pairs_file_as_for_one_pair(tmp_path, capsys):
    """The case generate/txt_target_pairs: PCDMs txt target poses record no frame; --target-size gives it."""
    status, out, err = single_pair(capsys, tmp_path / "one.png", "--target-size", "176x256", "--steps", "2")
    assert status == 0, err
    status, out, err = run(
        capsys, "generate", "--model", "pcdms-street", "--pairs", CASE / "pairs.csv", "--target-size", "176x256",
        "--steps", "2", "--out", tmp_path / "batch",
    )  # fmt: skip
    assert status == 0, err
    assert "1 pairs generated" in out
    batch = Image.open(tmp_path / "batch" / "source_to_target_pose.png")
    assert batch.size == (64, 128)
    assert np.array_equal(np.asarray(batch), np.asarray(Image.open(tmp_path / "one.png")))
    status, _, err = run(
        capsys, "generate", "--pairs", CASE / "pairs.csv", "--out", tmp_path / "b", "--source", CASE / "source.jpg"
    )
    assert status == 1 and "leave out --source, --target-pose and --source-pose" in err


def test_a_landscape_photo_keeps_its_aspect_on_the_command_line(tmp_path, capsys):
    source = Image.open(CASE / "source.jpg")
    wide = Image.new("RGB", (192, 128), "white")
    wide.paste(source, (64, 0))
    wide.save(tmp_path / "wide.jpg")
    from pcdms.pose import load_pose, write_pose_json

    write_pose_json(tmp_path / "wide.json", load_pose(CASE / "source.json").pad(64, 0, 64, 0))
    status, _, err = run(
        capsys, "generate", "--model", "pcdms-street", "--source", tmp_path / "wide.jpg",
        "--source-pose", tmp_path / "wide.json", "--target-pose", CASE / "target_pose.txt", "--target-size",
        "176x256", "--steps", "2", "--out", tmp_path / "out.png",
    )  # fmt: skip
    assert status == 0, err
    # 192x128 padded to 192x384 (1:2); rows 128 to 256 of 384 are 43 to 85 of the 64x128 frame
    assert Image.open(tmp_path / "out.png").size == (64, 42)


def test_two_pairs_that_would_share_an_output_name_are_refused(tmp_path, capsys):
    for name in ("source.jpg", "source.json"):
        shutil.copy(CASE / name, tmp_path / name)
    pose = Image.open(CASE / "source.jpg")  # any image: the refusal comes before anything is read
    pose.save(tmp_path / "x_pose.png")
    pose.save(tmp_path / "x_pose.jpg")
    (tmp_path / "pairs.csv").write_text("source.jpg,x_pose.png,source.json\nsource.jpg,x_pose.jpg,source.json\n")
    status, _, err = run(
        capsys, "generate", "--model", "pcdms-street", "--pairs", tmp_path / "pairs.csv", "--out", tmp_path / "out"
    )
    assert status == 1
    assert err == (
        f"pcdms: error: {tmp_path / 'pairs.csv'}: the pairs source.jpg,x_pose.png and source.jpg,x_pose.jpg would "
        "both be written as source_to_x_pose.png; rename one of the files\n"
    )
    assert not (tmp_path / "out" / "source_to_x_pose.png").exists()
