"""The stage-3 sampler: sizes, seeds, the official unconditional branch, guidance rescale off by default."""

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import body_image, generators, three_pairs
from pcdms.pipelines.common import rescale_guided_noise
from pcdms.pipelines.refine import RefinePipeline, load_refine_pipeline
from stage3 import tiny_refine_pipeline


@pytest.fixture(scope="module")
def pipeline():
    return tiny_refine_pipeline()


@pytest.fixture
def images(pose):
    source = body_image(pose).resize((64, 128))
    coarse = body_image(pose.hflip()).resize((64, 128))
    return source, coarse


def run(pipeline, images, seed=0, **kwargs):
    source, coarse = images
    generator = torch.Generator().manual_seed(seed)
    return pipeline(source, coarse, generator=generator, output_type="pt", num_inference_steps=3, **kwargs).images


def test_the_output_has_the_requested_size_and_repeats_for_a_seed(pipeline, images):
    first = run(pipeline, images)
    assert first.shape == (1, 3, 128, 64) and first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, run(pipeline, images))
    assert not torch.equal(first, run(pipeline, images, seed=1))
    assert run(pipeline, images, width=44, height=100).shape == (1, 3, 100, 44)  # padded to 48x112, cropped back


def test_coarse_images_as_tensors_equal_the_same_images_as_pil(pipeline, images):
    source, coarse = images
    as_tensor = torch.from_numpy(np.array(coarse)).permute(2, 0, 1)[None].float() / 255
    assert torch.equal(run(pipeline, images), run(pipeline, (source, as_tensor)))
    several = pipeline(
        [source, source],
        torch.rand(2, 3, 100, 44),
        width=44,
        height=100,
        num_inference_steps=2,
        num_images_per_pair=2,
        generator=torch.Generator().manual_seed(0),
    ).images
    assert len(several) == 4 and all(isinstance(image, Image.Image) and image.size == (44, 100) for image in several)


def test_guidance_uses_zero_context_and_zero_coarse_latents(pipeline, images, monkeypatch):
    calls = []
    denoise = pipeline.refine.denoise

    def spy(sample, timestep, context):
        calls.append((sample.clone(), context.clone()))
        return denoise(sample, timestep, context)

    monkeypatch.setattr(pipeline.refine, "denoise", spy)
    run(pipeline, images, guidance_scale=2.0)
    sample, context = calls[0]
    assert sample.shape[0] == 2 and context.shape == (2, 257, 32)
    assert torch.equal(sample[0, :4], sample[1, :4])  # the same noisy latents in both branches
    assert sample[0, 4:].abs().max() == 0 and sample[1, 4:].abs().max() > 0  # coarse latents zeroed
    assert context[0].abs().max() == 0 and context[1].abs().max() > 0
    calls.clear()
    run(pipeline, images, guidance_scale=1.0)
    assert calls[0][0].shape[0] == 1  # no guidance, one branch


def test_guidance_rescale_is_off_by_default_and_is_the_published_formula(pipeline, images):
    default = run(pipeline, images)
    assert torch.equal(default, run(pipeline, images, guidance_rescale=0.0))
    assert not torch.equal(default, run(pipeline, images, guidance_rescale=2.0))  # the official scripts' value
    guided, conditional = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    rescaled = rescale_guided_noise(guided, conditional, 1.0)
    torch.testing.assert_close(rescaled.std(dim=(1, 2, 3)), conditional.std(dim=(1, 2, 3)))
    torch.testing.assert_close(rescale_guided_noise(guided, conditional, 0.0), guided)


def test_a_saved_pipeline_loads_and_samples_the_same(pipeline, images, tmp_path):
    pipeline.save_pretrained(tmp_path / "refine")
    loaded = load_refine_pipeline(tmp_path / "refine")
    assert isinstance(loaded, RefinePipeline)
    loaded.set_progress_bar_config(disable=True)
    torch.testing.assert_close(run(pipeline, images), run(loaded, images), rtol=0, atol=1e-5)


def test_a_list_of_generators_seeds_each_pair_on_its_own(pipeline, pose):
    """Pair 1 with generator 42 gives the same images alone as in a batch of three: its coarse latents and
    initial noise come from its generator. The batched convolutions round differently in the last bits:
    measured at most 1.3e-6 (with 1 or 2 threads)."""
    sources, _, targets = three_pairs(pose)
    coarse = [body_image(target).resize((64, 128)) for target in targets]
    settings = {"num_inference_steps": 3, "output_type": "pt"}
    for per_pair in (1, 2):
        settings["num_images_per_pair"] = per_pair
        alone = pipeline(sources[1], coarse[1], generator=generators(42), **settings).images
        batched = pipeline(sources, coarse, generator=generators(7, 42, 9), **settings).images
        torch.testing.assert_close(alone, batched[per_pair : 2 * per_pair], rtol=0, atol=5e-6)
    assert (alone[0] - alone[1]).abs().max() > 0.1  # each image of a pair has its own noise
    with pytest.raises(ValueError, match="4 generators for 3 pairs"):
        pipeline(sources, coarse, generator=generators(1, 2, 3, 4))
