"""The diffusers conventions of every pipeline, on the tiny models: ``latents=`` (the starting noise),
``callback_on_step_end`` and the three output types."""

import numpy as np
import pytest
import torch
from diffusers.callbacks import PipelineCallback

from helpers import body_image
from pcdms.errors import PcdmsError
from tiny_pcdms import tiny_pcdms

STEPS = {"prior_steps": 2, "inpaint_steps": 2, "refine_steps": 2}


@pytest.fixture(scope="module")
def pipeline():
    return tiny_pcdms()


@pytest.fixture
def pair(pose):
    return body_image(pose).resize((64, 128)), pose, pose.hflip()


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def stage2(pipeline, pair, **kwargs):
    source, source_pose, target_pose = pair
    settings = {"num_inference_steps": 2, "output_type": "pt", "generator": seeded(0), **kwargs}
    return pipeline.stage_pipeline("inpaint")(source, source_pose, target_pose, torch.ones(1, 32), **settings).images


def stage3(pipeline, pair, **kwargs):
    source, source_pose, _ = pair
    settings = {"num_inference_steps": 2, "output_type": "pt", "generator": seeded(0), **kwargs}
    return pipeline.stage_pipeline("refine")(source, body_image(source_pose.hflip()), **settings).images


def stage1(pipeline, pair, **kwargs):
    _, source_pose, target_pose = pair
    settings = {"num_inference_steps": 3, "generator": seeded(0), **kwargs}
    return pipeline.stage_pipeline("prior")(torch.ones(1, 32), source_pose, target_pose, **settings).image_embeds


def whole(pipeline, pair, **kwargs):
    source, source_pose, target_pose = pair
    settings = {**STEPS, "output_type": "pt", "generator": seeded(0), **kwargs}
    return pipeline(source, target_pose, source_pose, **settings).images


def test_the_latent_shapes_are_those_of_each_stage(pipeline):
    # 64x128 frames: stage 2's canvas is two halves wide; the tiny VAE, as SD's, makes 8x8 pixels one latent.
    assert pipeline.latents_shapes() == {"prior": (1, 32), "inpaint": (1, 4, 16, 16), "refine": (1, 4, 16, 8)}
    # 44x100 is padded to 48x112 for the UNets; 2 pairs x 3 images each.
    shapes = pipeline.latents_shapes(2, 3, width=44, height=100)
    assert shapes == {"prior": (2, 32), "inpaint": (6, 4, 14, 12), "refine": (6, 4, 14, 6)}


def test_the_generators_draws_given_as_latents_give_the_same_result_in_each_stage(pipeline, pair):
    # Stage 1 draws its starting noise first, then the scheduler's noise from the same generator.
    generator = seeded(0)
    noise = torch.randn(1, 32, generator=generator)
    assert torch.equal(stage1(pipeline, pair, latents=noise, generator=generator), stage1(pipeline, pair))
    assert not torch.equal(stage1(pipeline, pair, latents=noise * 0.5, generator=seeded(0)), stage1(pipeline, pair))
    # Stages 2 and 3 draw the VAE latents of their conditioning image first (one per pair), then the noise.
    for run, stage in ((stage2, "inpaint"), (stage3, "refine")):
        shape = pipeline.latents_shapes()[stage]
        generator = seeded(0)
        torch.randn(shape, generator=generator)  # the VAE posterior's draw, same shape for one image per pair
        noise = torch.randn(shape, generator=generator)
        assert torch.equal(run(pipeline, pair, latents=noise), run(pipeline, pair)), stage
        assert not torch.equal(run(pipeline, pair, latents=-noise), run(pipeline, pair)), stage


def test_the_whole_pipeline_takes_latents_per_stage(pipeline, pair):
    shapes = pipeline.latents_shapes()
    prior_generator = seeded(1)
    latents = {"prior": torch.randn(shapes["prior"], generator=prior_generator)}
    for stage, seed in (("inpaint", 2), ("refine", 3)):
        generator = seeded(seed)
        torch.randn(shapes[stage], generator=generator)  # the VAE posterior's draw
        latents[stage] = torch.randn(shapes[stage], generator=generator)
    expected = whole(pipeline, pair, generator={"prior": seeded(1), "inpaint": seeded(2), "refine": seeded(3)})
    given = whole(
        pipeline, pair, latents=latents, generator={"prior": prior_generator, "inpaint": seeded(2), "refine": seeded(3)}
    )
    assert torch.equal(given, expected)
    # Stages left out of the dict draw their own noise from their generators, as without latents.
    source, source_pose, target_pose = pair
    settings = {**STEPS, "output_type": "pt", "return_intermediates": True}
    only_refine = pipeline(
        source, target_pose, source_pose, latents={"refine": latents["refine"]}, generator=seeded(0), **settings
    )
    plain = pipeline(source, target_pose, source_pose, generator=seeded(0), **settings)
    assert torch.equal(only_refine.coarse_images, plain.coarse_images)
    assert not torch.equal(only_refine.images, plain.images)


def test_one_latents_tensor_serves_when_one_stage_runs(pipeline, pair):
    tiny, noise2 = pipeline, torch.randn(pipeline.latents_shapes()["inpaint"], generator=seeded(6))
    lite = tiny_pcdms(lite=True)
    noise = torch.randn(lite.latents_shapes()["inpaint"], generator=seeded(5))
    assert torch.equal(whole(lite, pair, latents=noise), whole(lite, pair, latents={"inpaint": noise}))
    # With target embeddings given and stage 3 skipped, stage 2 alone runs: one tensor is its noise.
    source, source_pose, target_pose = pair
    settings = {**STEPS, "output_type": "pt", "target_embeds": torch.ones(1, 32), "stop_after": "inpaint"}
    coarse = [
        pipeline(source, target_pose, source_pose, generator=seeded(0), latents=latents, **settings).images
        for pipeline, latents in ((tiny, noise2), (tiny, {"inpaint": noise2}))
    ]
    assert torch.equal(*coarse)


@pytest.mark.parametrize(
    ("latents", "kwargs", "message"),
    [
        (torch.zeros(1, 4, 16, 8), {}, r"latents: one tensor, but 3 stages run \(prior, inpaint, refine\)"),
        ({"refine": torch.zeros(1, 4, 16, 16)}, {}, r"latents for stage 3 \(refine\): got shape \(1, 4, 16, 16\)"),
        ({"prior": torch.zeros(2, 32)}, {}, r"expected \(1, 32\)"),
        ({"refine": torch.zeros(1, 4, 16, 8)}, {"stop_after": "inpaint"}, "'refine', a stage that does not run"),
        ({"prior": torch.zeros(1, 32)}, {"target_embeds": torch.ones(1, 32)}, "'prior', a stage that does not run"),
        ({"denoise": torch.zeros(1, 32)}, {}, "'denoise', a stage that does not run"),
    ],
)
def test_latents_that_do_not_fit_are_one_line_errors_before_any_stage_runs(pipeline, pair, latents, kwargs, message):
    steps = []
    with pytest.raises(PcdmsError, match=message) as error:
        whole(pipeline, pair, latents=latents, callback_on_step_end=lambda *args: steps.append(args), **kwargs)
    assert "\n" not in str(error.value) and steps == []


def test_a_stage_pipeline_refuses_latents_of_the_wrong_shape(pipeline, pair):
    with pytest.raises(PcdmsError, match=r"^latents for stage 2 \(inpaint\): got shape \(1, 4, 16, 8\), expected"):
        stage2(pipeline, pair, latents=torch.zeros(1, 4, 16, 8))
    with pytest.raises(PcdmsError, match=r"^latents for stage 1 \(prior\): got shape \(32,\), expected \(1, 32\)$"):
        stage1(pipeline, pair, latents=torch.zeros(32))


def test_the_callback_sees_every_step_of_every_stage_and_can_change_the_latents(pipeline, pair):
    calls = []

    def record(stage_pipeline, step, timestep, tensors):
        calls.append((stage_pipeline.stage, step, int(timestep), sorted(tensors), tensors["latents"].shape))

    plain = whole(pipeline, pair)
    assert torch.equal(whole(pipeline, pair, callback_on_step_end=record), plain)  # returning None changes nothing
    prior_steps, unet_steps = [999, 0], [999, 500]  # UnCLIP ends at 0; UniPC's linspace spacing stops at 500
    assert [(stage, step, timestep) for stage, step, timestep, _, _ in calls] == [
        *[("prior", step, timestep) for step, timestep in enumerate(prior_steps)],
        *[("inpaint", step, timestep) for step, timestep in enumerate(unet_steps)],
        *[("refine", step, timestep) for step, timestep in enumerate(unet_steps)],
    ]
    assert {tuple(names) for _, _, _, names, _ in calls} == {("latents",)}
    assert [shape for stage, step, _, _, shape in calls if step == 0] == list(pipeline.latents_shapes().values())

    def damp(stage_pipeline, step, timestep, tensors):
        return {"latents": tensors["latents"] * 0.5} if stage_pipeline.stage == "refine" and step == 0 else tensors

    assert not torch.equal(whole(pipeline, pair, callback_on_step_end=damp), plain)


def test_the_stage_pipelines_callbacks_and_diffusers_callback_classes(pipeline, pair):
    class Zero(PipelineCallback):  # diffusers' callback class: it names its own tensor inputs
        tensor_inputs = ("latents",)

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            return {"latents": torch.zeros_like(callback_kwargs["latents"])}

    steps = []
    stage2(pipeline, pair, callback_on_step_end=lambda pipe, step, timestep, tensors: steps.append(step))
    stage1(pipeline, pair, callback_on_step_end=lambda pipe, step, timestep, tensors: steps.append(step))
    assert steps == [0, 1, 0, 1, 2]
    # Zero latents after the last step decode to what all-zero latents decode to, whatever the input.
    zeroed = stage3(pipeline, pair, callback_on_step_end=Zero())
    other = stage3(pipeline, pair, callback_on_step_end=Zero(), generator=seeded(4))
    assert torch.equal(zeroed, other) and not torch.equal(zeroed, stage3(pipeline, pair))
    assert torch.equal(
        stage1(pipeline, pair, callback_on_step_end=Zero()),
        pipeline.prior.denormalize(torch.zeros(1, 32)),
    )
    with pytest.raises(PcdmsError, match=r"callback_on_step_end_tensor_inputs: \['prompt_embeds'\] are not among"):
        stage2(pipeline, pair, callback_on_step_end=print, callback_on_step_end_tensor_inputs=["prompt_embeds"])


def unit_values(images, output_type) -> np.ndarray:
    """Any output type as a (batch, height, width, 3) float array in [0, 1]."""
    if output_type == "pil":
        return np.stack([np.asarray(image, dtype=np.float64) / 255 for image in images])
    if output_type == "pt":
        return images.permute(0, 2, 3, 1).double().numpy()
    return images.astype(np.float64)


@pytest.mark.parametrize("run", [whole, stage2, stage3], ids=["pcdms", "inpaint", "refine"])
def test_the_three_output_types_agree(pipeline, pair, run):
    outputs = {kind: run(pipeline, pair, output_type=kind) for kind in ("pil", "np", "pt")}
    assert isinstance(outputs["np"], np.ndarray) and outputs["np"].dtype == np.float32
    assert outputs["np"].shape == (1, 128, 64, 3) and outputs["pt"].shape == (1, 3, 128, 64)
    assert outputs["pt"].dtype == torch.float32 and outputs["pt"].min() >= 0 and outputs["pt"].max() <= 1
    assert np.array_equal(unit_values(outputs["np"], "np"), unit_values(outputs["pt"], "pt"))
    # PIL's 8-bit values are the [0, 1] values x 255, rounded.
    difference = np.abs(unit_values(outputs["pil"], "pil") - unit_values(outputs["pt"], "pt")) * 255
    assert difference.max() <= 0.5 + 1e-3


def test_output_np_of_a_source_of_another_aspect_is_cut_back(pipeline, pose):
    source = body_image(pose).resize((88, 128))  # wider than the 64x128 frame: padded, then cut back
    pil = whole(pipeline, (source, pose, pose.hflip()), output_type="pil")[0]
    array = whole(pipeline, (source, pose, pose.hflip()), output_type="np")
    assert array.shape == (1, pil.height, pil.width, 3)
    assert np.abs(np.asarray(pil) / 255 - array[0]).max() <= 0.5 / 255 + 1e-6
    with pytest.raises(ValueError, match="output_type must be 'pil', 'np' or 'pt', got 'latent'"):
        whole(pipeline, (source, pose, pose.hflip()), output_type="latent")
