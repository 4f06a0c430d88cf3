"""The whole pipeline on tiny random models: three stages in memory, per-stage settings and seeds,
intermediates, stopping after stage 2, the lite model, and save/load."""

import pytest
import torch
from PIL import Image

from helpers import body_image, generators, three_pairs
from pcdms.errors import PcdmsError
from pcdms.pipelines.pcdms import STAGES, load_pcdms_pipeline
from pcdms.pose import render_pose
from tiny_pcdms import tiny_pcdms

STEPS = {"prior_steps": 2, "inpaint_steps": 2, "refine_steps": 2}


@pytest.fixture(scope="module")
def pipeline():
    return tiny_pcdms()


@pytest.fixture
def pair(pose):
    return body_image(pose).resize((64, 128)), pose, pose.hflip()


def run(pipeline, pair, seed=0, **kwargs):
    source, source_pose, target_pose = pair
    settings = {**STEPS, "output_type": "pt", **kwargs}
    generator = kwargs.pop("generator", None) or torch.Generator().manual_seed(seed)
    settings.pop("generator", None)
    return pipeline(source, target_pose, source_pose, generator=generator, **settings)


def test_three_stages_give_an_image_of_the_requested_size_identical_for_a_seed(pipeline, pair):
    first = run(pipeline, pair).images
    assert first.shape == (1, 3, 128, 64)  # the stage-2 model's training size by default
    assert torch.equal(first, run(pipeline, pair).images)
    assert not torch.equal(first, run(pipeline, pair, seed=1).images)
    images = run(pipeline, pair, width=44, height=88, output_type="pil", num_images_per_pair=2).images
    assert [image.size for image in images] == [(44, 88), (44, 88)]
    # A frame of another aspect than the 64x128 source: the source is padded to it and the result cut
    # back to the source's aspect (pcdms.pipelines.framing; tests/test_framing.py).
    assert run(pipeline, pair, width=44, height=100, output_type="pil").images[0].size == (44, 88)
    assert images[0].tobytes() != images[1].tobytes()


def test_the_stages_are_chained_in_memory_with_dinov2_computed_once(pipeline, pair, monkeypatch):
    calls = {"dinov2": 0}
    forward = pipeline.image_encoder.forward

    def counting(*args, **kwargs):
        calls["dinov2"] += 1
        return forward(*args, **kwargs)

    monkeypatch.setattr(pipeline.image_encoder, "forward", counting)
    output = run(pipeline, pair, return_intermediates=True)
    assert calls["dinov2"] == 1
    assert output.target_embeds.shape == (1, 32) and output.coarse_images.shape == (1, 3, 128, 64)
    coarse_only = run(pipeline, pair, stop_after="inpaint")
    assert torch.equal(coarse_only.images, output.coarse_images)  # stopping after stage 2 changes nothing before
    assert not torch.equal(output.images, output.coarse_images)


def test_each_stage_has_its_own_settings_and_seed(pipeline, pair):
    def generators(prior, inpaint, refine):
        return {
            name: torch.Generator().manual_seed(seed)
            for name, seed in zip(("prior", "inpaint", "refine"), (prior, inpaint, refine), strict=True)
        }

    base = run(pipeline, pair, generator=generators(0, 0, 0), return_intermediates=True)
    other_refine = run(pipeline, pair, generator=generators(0, 0, 5), return_intermediates=True)
    assert torch.equal(base.coarse_images, other_refine.coarse_images)  # stages 1-2 untouched by stage 3's seed
    assert not torch.equal(base.images, other_refine.images)
    other_prior = run(pipeline, pair, generator=generators(5, 0, 0), return_intermediates=True)
    assert not torch.equal(base.target_embeds, other_prior.target_embeds)
    more_steps = run(pipeline, pair, generator=generators(0, 0, 0), refine_steps=3, return_intermediates=True)
    assert torch.equal(base.coarse_images, more_steps.coarse_images)
    assert not torch.equal(base.images, more_steps.images)
    given = run(
        pipeline, pair, generator=generators(0, 0, 0), target_embeds=base.target_embeds, return_intermediates=True
    )
    assert torch.equal(given.coarse_images, base.coarse_images)  # a given embedding replaces stage 1


def test_poses_may_be_files_and_pose_images(pipeline, pair, tmp_path):
    from pcdms.pose import save_pose

    source, source_pose, target_pose = pair
    reference = run(pipeline, pair).images
    pose_file = save_pose(tmp_path / "target.json", target_pose)
    rendered = render_pose(target_pose)
    for given in (pose_file, rendered):
        images = run(pipeline, (source, source_pose, given)).images
        assert images.shape == reference.shape
    torch.testing.assert_close(run(pipeline, (source, source_pose, pose_file)).images, reference)


def test_a_saved_pipeline_loads_and_gives_the_same_images(pipeline, pair, tmp_path):
    pipeline.save_pretrained(tmp_path / "pcdms")
    loaded = load_pcdms_pipeline(tmp_path / "pcdms")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.stages == ("prior", "inpaint", "refine")
    torch.testing.assert_close(run(loaded, pair).images, run(pipeline, pair).images, rtol=0, atol=1e-5)


def test_the_lite_model_runs_stage_2_alone(pair, tmp_path):
    lite = tiny_pcdms(lite=True)
    lite.save_pretrained(tmp_path / "lite")
    loaded = load_pcdms_pipeline(tmp_path / "lite")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.stages == ("inpaint",) and loaded.prior is None and loaded.refine is None
    output = run(loaded, pair, return_intermediates=True)
    assert output.images.shape == (1, 3, 128, 64) and output.target_embeds is None
    with pytest.raises(PcdmsError, match="no stage 3"):
        run(loaded, pair, stop_after="refine")


def test_without_a_refiner_it_stops_after_stage_2(pair):
    pipeline = tiny_pcdms(refine=False)
    assert pipeline.stages == ("prior", "inpaint")
    assert isinstance(run(pipeline, pair, output_type="pil").images[0], Image.Image)


def test_a_list_of_generators_seeds_each_pair_on_its_own(pipeline, pose):
    """Pair 1 with generator 42 (for all stages, or one per stage) gives the same embedding, coarse and final
    images alone as in a batch of three, two images per pair. The batched matmuls and convolutions round
    differently in the last bits: measured at most 1.8e-7 for the embeddings, 1.3e-6 for the images (with 1
    or 2 threads)."""
    sources, source_poses, target_poses = three_pairs(pose)
    settings = {**STEPS, "output_type": "pt", "return_intermediates": True, "num_images_per_pair": 2}

    def per_stage(*seeds):
        return {stage: generators(*(seed + offset for seed in seeds)) for offset, stage in enumerate(STAGES)}

    for make in (generators, per_stage):
        alone = pipeline(sources[1], target_poses[1], source_poses[1], generator=make(42), **settings)
        batched = pipeline(sources, target_poses, source_poses, generator=make(7, 42, 9), **settings)
        torch.testing.assert_close(alone.target_embeds, batched.target_embeds[1:2], rtol=0, atol=1e-6)
        torch.testing.assert_close(alone.coarse_images, batched.coarse_images[2:4], rtol=0, atol=5e-6)
        torch.testing.assert_close(alone.images, batched.images[2:4], rtol=0, atol=5e-6)
        assert (alone.images[0] - alone.images[1]).abs().max() > 0.1  # each image of a pair has its own noise
    with pytest.raises(ValueError, match="2 generators for 3 pairs"):
        pipeline(sources, target_poses, source_poses, generator={"refine": generators(1, 2)}, **settings)
