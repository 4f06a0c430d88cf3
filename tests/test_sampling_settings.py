"""Stage 3's strength (image-to-image start) and the sampling settings a model folder recommends."""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import body_image
from pcdms.errors import PcdmsError
from pcdms.pipelines.pcdms import load_pcdms_pipeline
from pcdms.pipelines.settings import OFFICIAL_SAMPLING, checked_sampling
from stage3 import tiny_refine_pipeline
from tiny_pcdms import tiny_pcdms


@pytest.fixture(scope="module")
def refine():
    return tiny_refine_pipeline()


@pytest.fixture
def images(pose):
    return body_image(pose).resize((64, 128)), body_image(pose.hflip()).resize((64, 128))


def refined(pipeline, images, **kwargs):
    settings = {"num_inference_steps": 10, "output_type": "pt", "generator": torch.Generator().manual_seed(0)}
    return pipeline(*images, **{**settings, **kwargs}).images


def test_strength_1_is_the_official_start_from_noise(refine, images):
    assert torch.equal(refined(refine, images), refined(refine, images, strength=1.0))


def test_strength_runs_the_last_steps_of_the_schedule(refine, images):
    seen = []
    refined(refine, images, strength=0.3, callback_on_step_end=lambda pipe, step, t, kw: seen.append(int(t)))
    refine.scheduler.set_timesteps(10)
    assert seen == [int(t) for t in refine.scheduler.timesteps[-3:]]  # int(10 x 0.3) steps, the least noisy
    assert not torch.equal(refined(refine, images, strength=0.3), refined(refine, images))


def test_below_1_sampling_starts_from_the_coarse_latents_noised_to_the_first_step(refine, images, monkeypatch):
    """With zero noise the first input is the coarse latents scaled by sqrt(alpha_bar) of the first timestep;
    the coarse latents themselves are the input's other half (spec 3)."""
    first = []
    denoise = refine.refine.denoise

    def spy(sample, timestep, context):
        first.append((sample.clone(), int(timestep)))
        return denoise(sample, timestep, context)

    monkeypatch.setattr(refine.refine, "denoise", spy)
    shape = refine.latents_shape(1, 64, 128)
    refined(refine, images, strength=0.5, guidance_scale=1.0, latents=torch.zeros(shape))
    sample, timestep = first[0]
    scale = refine.scheduler.alphas_cumprod[timestep].sqrt()
    torch.testing.assert_close(sample[:, :4], scale * sample[:, 4:])


@pytest.mark.parametrize("strength", [0.0, 1.5])
def test_a_strength_outside_0_to_1_is_one_line(refine, images, strength):
    with pytest.raises(PcdmsError, match=r"strength must be in \(0, 1\]"):
        refined(refine, images, strength=strength)


def test_a_low_strength_of_few_steps_still_runs_one_step(refine, images):
    seen = []
    refined(refine, images, strength=0.05, callback_on_step_end=lambda pipe, step, t, kw: seen.append(int(t)))
    refine.scheduler.set_timesteps(10)
    assert seen == [int(refine.scheduler.timesteps[-1])]


@pytest.fixture(scope="module")
def pipeline():
    return tiny_pcdms()


def generate(pipeline, pose, **kwargs):
    source = body_image(pose).resize((64, 128))
    generators = {stage: torch.Generator().manual_seed(1) for stage in ("prior", "inpaint", "refine")}
    steps = {"prior_steps": 2, "inpaint_steps": 2, "refine_steps": 4}
    return pipeline(source, pose.hflip(), pose, generator=generators, output_type="pt", **steps, **kwargs).images


def test_a_folder_s_recommended_settings_fill_what_a_call_leaves_out(pipeline, pose, tmp_path):
    assert pipeline.sampling_defaults == OFFICIAL_SAMPLING  # nothing recorded: the official settings
    pipeline.save_pretrained(tmp_path / "model")
    index = tmp_path / "model" / "model_index.json"
    recorded = json.loads(index.read_text())
    recorded["sampling"] = {"inpaint_guidance": 1.0, "refine_strength": 0.5}
    index.write_text(json.dumps(recorded))
    loaded = load_pcdms_pipeline(tmp_path / "model")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.sampling_defaults == {**OFFICIAL_SAMPLING, "inpaint_guidance": 1.0, "refine_strength": 0.5}
    explicit = generate(pipeline, pose, inpaint_guidance=1.0, refine_strength=0.5)
    torch.testing.assert_close(generate(loaded, pose), explicit, rtol=0, atol=1e-5)
    # what a call gives wins over the folder's recommendation
    torch.testing.assert_close(
        generate(loaded, pose, inpaint_guidance=2.0, refine_strength=1.0), generate(pipeline, pose)
    )
    loaded.save_pretrained(tmp_path / "again")  # the recommendation travels with the folder
    assert json.loads((tmp_path / "again" / "model_index.json").read_text())["sampling"] == recorded["sampling"]


@pytest.mark.parametrize(
    ("sampling", "message"),
    [
        ({"refine_strenght": 0.3}, "unknown sampling setting 'refine_strenght'"),
        ({"refine_strength": 0}, r"refine_strength must be a number in \(0, 1\]"),
        ({"inpaint_steps": 0.5}, "inpaint_steps must be a whole number of at least 1"),
        ({"inpaint_guidance": "high"}, "inpaint_guidance must be a number"),
        ([0.3], "a mapping of setting names to numbers"),
    ],
)
def test_a_folder_with_bad_settings_is_named_in_one_line(pipeline, tmp_path, sampling, message):
    pipeline.save_pretrained(tmp_path / "model")
    index = tmp_path / "model" / "model_index.json"
    index.write_text(json.dumps({**json.loads(index.read_text()), "sampling": sampling}))
    with pytest.raises(PcdmsError, match=f'model_index.json: "sampling": {message}'):
        load_pcdms_pipeline(tmp_path / "model")


def test_settings_are_checked_and_typed():
    assert checked_sampling({"refine_steps": 10.0, "inpaint_guidance": 1}) == {
        "refine_steps": 10,
        "inpaint_guidance": 1.0,
    }
    assert checked_sampling(None) == {}
    numbers = {"inpaint_guidance": np.float32(2.0), "refine_steps": np.int64(8), "refine_strength": torch.tensor(0.5)}
    assert checked_sampling(numbers) == {"inpaint_guidance": 2.0, "refine_steps": 8, "refine_strength": 0.5}
    assert all(type(value) in (int, float) for value in checked_sampling(numbers).values())
    with pytest.raises(PcdmsError, match="prior_steps must be a whole number of at least 2"):
        checked_sampling({"prior_steps": 1})
    bad = (("inpaint_guidance", float("nan")), ("refine_guidance", float("inf")), ("refine_steps", 2.5),
           ("inpaint_guidance", "2"), ("inpaint_guidance", True), ("refine_guidance", torch.tensor([1.0, 2.0])), ("refine_steps", 10**400))  # fmt: skip
    for key, value in bad:
        with pytest.raises(PcdmsError, match=f"{key} must be a"):
            checked_sampling({key: value})


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"inpaint_guidance": -1}, "PCDMsPipeline: inpaint_guidance must be a number of at least 0, got -1"),
        ({"refine_guidance": float("nan")}, "PCDMsPipeline: refine_guidance must be a number of at least 0, got nan"),
        ({"refine_steps": 2.5}, "PCDMsPipeline: refine_steps must be a whole number of at least 1, got 2.5"),
    ],
)
def test_a_call_s_own_settings_are_checked_before_sampling(pipeline, pose, setting, message):
    with pytest.raises(PcdmsError, match=re.escape(message)):
        pipeline(Image.new("RGB", (64, 128)), pose, pose, **setting)


@pytest.mark.parametrize("guidance", ["-1", "inpaint=nan", "refine=inf"])
def test_a_bad_guidance_on_the_command_line_is_one_line_before_any_model_loads(tmp_path, capsys, guidance):
    from pcdms.cli import main

    argv = ["generate", "--model", str(tmp_path / "no-model"), "--source", "a.jpg", "--target-pose", "b.json"]
    assert main([*argv, "--out", str(tmp_path / "out.png"), "--guidance", guidance]) == 1
    error = capsys.readouterr().err
    assert error.startswith("pcdms: error: --guidance: ") and "must be a number of at least 0" in error
    assert error.count("\n") == 1 and not (tmp_path / "out.png").exists()


def test_a_strength_outside_0_to_1_on_the_command_line_is_one_line_before_any_model_loads(tmp_path, capsys):
    from pcdms.cli import main

    argv = ["generate", "--model", str(tmp_path / "no-model"), "--source", "a.jpg", "--target-pose", "b.json"]
    assert main([*argv, "--out", str(tmp_path / "out.png"), "--strength", "1.5"]) == 1
    error = capsys.readouterr().err
    assert error == "pcdms: error: --strength: refine_strength must be a number in (0, 1], got 1.5\n"
