"""Sampling presets (issue 20) on the tiny pipeline: official is byte-identical to today's official sampling,
each preset samples with the scheduler and steps it documents, guidance runs only inside its interval, deep
features are reused, and a call's explicit settings win over the preset's."""

import pytest
import torch
from diffusers import UniPCMultistepScheduler

from helpers import body_image
from pcdms.errors import PcdmsError
from pcdms.pipelines.feature_reuse import reusing_features
from pcdms.pipelines.presets import PRESET_NAMES, PRESETS, get_preset, preset_defaults
from pcdms.pipelines.settings import OFFICIAL_SAMPLING
from stage2 import tiny_pipeline
from tiny_pcdms import tiny_pcdms

# The street model's kind of recommendation: stage 2 unguided, stage 3 from stage 2's image.
RECOMMENDED = {"inpaint_guidance": 1.0, "refine_strength": 0.3}


@pytest.fixture(scope="module")
def pipeline():
    return tiny_pcdms()


@pytest.fixture
def pair(pose):
    return body_image(pose).resize((64, 128)), pose.hflip(), pose


def run(pipeline, pair, **kwargs):
    source, target_pose, source_pose = pair
    settings = {"prior_steps": 2, "output_type": "pt", "generator": torch.Generator().manual_seed(0), **kwargs}
    return pipeline(source, target_pose, source_pose, **settings).images


def stage_steps(pipeline, pair, **kwargs) -> dict[str, list]:
    """Each stage's (timestep, scheduler) per step, as the step callback sees them."""
    seen = {"prior": [], "inpaint": [], "refine": []}

    def record(stage_pipeline, step, timestep, tensors):
        seen[stage_pipeline.stage].append((int(timestep), stage_pipeline.scheduler))

    run(pipeline, pair, callback_on_step_end=record, **kwargs)
    return seen


def unet_batches(pipeline, pair, **kwargs) -> dict[str, list[int]]:
    """The batch of every UNet call of stages 2 and 3: 2 for a guided step of one image, 1 for an unguided one."""
    batches = {"inpaint": [], "refine": []}
    handles = [
        getattr(pipeline, stage).unet.register_forward_pre_hook(
            lambda module, args, stage=stage: batches[stage].append(args[0].shape[0])
        )
        for stage in batches
    ]
    try:
        run(pipeline, pair, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return batches


# Fewer steps than official's 20 keep the tests fast; the preset's own steps are OFFICIAL_SAMPLING's (checked below).
FEW = {"inpaint_steps": 3, "refine_steps": 3}


def test_official_is_no_preset_for_a_model_without_recommendations(pipeline, pair):
    assert pipeline.config.sampling is None
    assert torch.equal(run(pipeline, pair, preset="official", **FEW), run(pipeline, pair, **FEW))
    assert preset_defaults(None, "official") == preset_defaults(None, None) == OFFICIAL_SAMPLING


def test_official_is_the_official_settings_whatever_the_model_recommends(pair):
    recommending = tiny_pcdms()
    recommending.register_to_config(sampling=RECOMMENDED)
    official = run(recommending, pair, preset="official", **FEW)
    explicit = {**OFFICIAL_SAMPLING, "prior_steps": 2, **FEW}
    assert torch.equal(official, run(recommending, pair, **explicit))
    assert not torch.equal(official, run(recommending, pair, **FEW))  # no preset: the model's own settings
    assert preset_defaults(RECOMMENDED, "official") == OFFICIAL_SAMPLING
    assert preset_defaults(RECOMMENDED, None) == {**OFFICIAL_SAMPLING, **RECOMMENDED}


@pytest.mark.parametrize("name", ["fast", "fastest"])
def test_each_preset_samples_with_its_documented_scheduler_and_steps(pipeline, pair, name):
    preset = PRESETS[name]
    loaded = pipeline.inpaint_scheduler, dict(pipeline.inpaint_scheduler.config)
    seen = stage_steps(pipeline, pair, preset=name)
    for stage in ("inpaint", "refine"):
        schedulers = {id(scheduler) for _, scheduler in seen[stage]}
        scheduler = seen[stage][0][1]
        assert len(schedulers) == 1 and isinstance(scheduler, UniPCMultistepScheduler)
        assert scheduler is not getattr(pipeline, f"{stage}_scheduler")  # a copy for the call
        assert scheduler.config.solver_order == 2 and scheduler.config.final_sigmas_type == "sigma_min"
        assert len(seen[stage]) == preset.sampling[f"{stage}_steps"]
    assert len(seen["prior"]) == 2  # the prior keeps the call's settings
    assert {"fast": 8, "fastest": 6}[name] == preset.sampling["inpaint_steps"] == preset.sampling["refine_steps"]
    # the loaded pipeline's scheduler is the same object with the same config after the call
    assert pipeline.inpaint_scheduler is loaded[0] and dict(pipeline.inpaint_scheduler.config) == loaded[1]


def test_the_presets_are_what_their_docs_say():
    assert PRESET_NAMES == ("official", "fast", "fastest")
    assert PRESETS["official"].sampling == OFFICIAL_SAMPLING and PRESETS["official"].sampler is None
    assert PRESETS["official"].guidance_interval is None and PRESETS["official"].feature_reuse is None
    assert PRESETS["fast"].guidance_interval == (0.3, 1.0) and PRESETS["fast"].feature_reuse is None
    assert PRESETS["fastest"].guidance_interval == (0.4, 1.0) and PRESETS["fastest"].feature_reuse == 2
    for name in ("fast", "fastest"):  # guidance and stage 3's strength stay the model's
        assert set(PRESETS[name].sampling) == {"inpaint_steps", "refine_steps"}


def test_guidance_runs_only_on_the_steps_inside_the_interval(pipeline, pair):
    batches = unet_batches(pipeline, pair, preset="fast")
    schedule = UniPCMultistepScheduler.from_config(pipeline.inpaint_scheduler.config)
    schedule.set_timesteps(8)
    expected = [2 if int(t) / 1000 >= 0.3 else 1 for t in schedule.timesteps]
    assert expected == [2] * 6 + [1] * 2  # 999 ... 375 guided; 250 and 125 not
    assert batches == {"inpaint": expected, "refine": expected}
    # every step guided without a preset
    assert unet_batches(pipeline, pair, inpaint_steps=8, refine_steps=8) == {"inpaint": [2] * 8, "refine": [2] * 8}


def test_an_unguided_step_predicts_with_the_conditional_branch(pair):
    """Guidance 1 (off) on every step, or guidance on with an interval that leaves every step out: the same image."""
    stage = tiny_pipeline()
    source, target_pose, source_pose = pair
    embeds = torch.randn(1, 32, generator=torch.Generator().manual_seed(1))

    def coarse(**kwargs):
        return stage(
            source, source_pose, target_pose, embeds, num_inference_steps=4, output_type="pt",
            generator=torch.Generator().manual_seed(0), **kwargs,
        ).images  # fmt: skip

    unguided = coarse(guidance_scale=1.0)
    assert torch.equal(coarse(guidance_scale=2.0, guidance_interval=(0.0, 0.01)), unguided)
    assert not torch.equal(coarse(guidance_scale=2.0), unguided)
    with pytest.raises(PcdmsError, match="guidance_interval"):
        coarse(guidance_interval=(0.5, 0.2))


def test_the_guided_steps_are_chosen_before_the_loop_on_host_timesteps(pair, monkeypatch):
    """Which steps are guided is decided once, from a host copy of the timesteps: a test of a GPU timestep
    inside the loop would make every step wait for the previous one's kernels."""
    import pcdms.pipelines.inpaint as inpaint_module

    stage = tiny_pipeline()
    source, target_pose, source_pose = pair
    events = []

    def recording(interval, num_train_timesteps):
        def guide(step, timestep):
            events.append(("guide", step, timestep.device.type))
            return step % 2 == 0

        return guide

    monkeypatch.setattr(inpaint_module, "guidance_interval_steps", recording)
    stage.inpaint.unet.register_forward_pre_hook(lambda module, args: events.append(("unet", args[0].shape[0])))
    stage(
        source, source_pose, target_pose, torch.randn(1, 32), num_inference_steps=4, guidance_scale=2.0,
        guidance_interval=(0.0, 1.0), output_type="pt", generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    chosen = [("guide", step, "cpu") for step in range(4)]
    assert events == chosen + [("unet", 2), ("unet", 1), ("unet", 2), ("unet", 1)]


def test_feature_reuse_skips_the_deep_blocks_and_stays_close(pair):
    stage = tiny_pipeline()
    source, target_pose, source_pose = pair
    embeds = torch.randn(1, 32, generator=torch.Generator().manual_seed(1))
    unet = stage.inpaint.unet
    calls = {"deep": 0, "outer": 0}
    unet.mid_block.resnets[0].register_forward_hook(lambda *args: calls.__setitem__("deep", calls["deep"] + 1))
    unet.conv_out.register_forward_hook(lambda *args: calls.__setitem__("outer", calls["outer"] + 1))

    def coarse(seed=0, **kwargs):
        return stage(
            source, source_pose, target_pose, embeds, num_inference_steps=10, output_type="pt",
            generator=torch.Generator().manual_seed(seed), **kwargs,
        ).images  # fmt: skip

    full = coarse()
    assert calls == {"deep": 10, "outer": 10}
    calls.update(deep=0, outer=0)
    reused = coarse(feature_reuse=2)
    assert calls == {"deep": 5, "outer": 10}  # steps 0, 2, 4, 6, 8 run the deep blocks
    assert not torch.equal(reused, full)
    # closer to the full image than another seed's image is
    assert (reused - full).abs().mean() < 0.5 * (coarse(seed=1) - full).abs().mean()
    assert "forward" not in unet.mid_block.__dict__ and not unet._forward_pre_hooks  # the UNet as it was


def test_feature_reuse_follows_a_batch_that_halves_between_steps():
    """Guided steps keep [unconditional; conditional] features; an unguided step reuses the conditional half, and
    a step larger than what was kept runs in full."""
    unet = tiny_pipeline().inpaint.unet
    sample = torch.randn(2, 9, 16, 16)
    context, labels = torch.randn(2, 4, 32), torch.randn(2, 32)

    def call(rows, timestep=500):
        return unet(sample[-rows:], timestep, encoder_hidden_states=context[-rows:], class_labels=labels[-rows:]).sample

    with reusing_features(unet, 2) as counts:
        call(2)
        half = call(1)
        call(2)  # a third call: full, by the schedule
        call(2)  # reused
    assert (counts.full, counts.reused) == (2, 2)
    with reusing_features(unet, 2) as counts:
        call(1)
        call(2)  # larger than what was kept: runs in full
    assert (counts.full, counts.reused) == (2, 0)
    assert half.shape[0] == 1
    with torch.no_grad(), reusing_features(unet, 2):
        first, again = call(2), call(2)  # the same input: reusing the deep features changes nothing
    torch.testing.assert_close(first, again)


def test_explicit_settings_win_over_the_preset(pipeline, pair):
    seen = stage_steps(pipeline, pair, preset="fast", inpaint_steps=5)
    assert (len(seen["inpaint"]), len(seen["refine"])) == (5, 8)
    batches = unet_batches(pipeline, pair, preset="fast", inpaint_guidance=1.0)
    assert batches["inpaint"] == [1] * 8 and batches["refine"][0] == 2
    assert preset_defaults({"inpaint_steps": 30}, "fast")["inpaint_steps"] == 8  # the preset over the model's


def test_a_preset_is_named_or_built():
    assert get_preset(None) is None and get_preset("fast") is PRESETS["fast"]
    custom = PRESETS["fast"].replace(name="mine", feature_reuse=3)
    assert get_preset(custom) is custom
    with pytest.raises(PcdmsError, match=r"unknown preset 'quick' \(known: official, fast, fastest\)"):
        get_preset("quick")
    with pytest.raises(PcdmsError, match="feature_reuse"):
        PRESETS["fast"].replace(feature_reuse=0)
    with pytest.raises(PcdmsError, match="inpaint_steps"):
        PRESETS["fast"].replace(sampling={"inpaint_steps": 0})
    with pytest.raises(PcdmsError, match=r"preset 'fast': sampler must be a Sampler, .* got 'UniPCMultistepScheduler'"):
        PRESETS["fast"].replace(sampler="UniPCMultistepScheduler")
