"""Sampling presets: named sets of settings that trade a little quality for speed, training-free.

A preset says, for the two UNet stages (2 and 3, which cost about 95 % of an image; stage 1's prior is a small
transformer on one vector and keeps its settings):

- ``sampling``: steps per stage and, where it sets them, guidance and stage 3's strength (keys of
  :data:`~pcdms.pipelines.settings.OFFICIAL_SAMPLING`); a setting it leaves out is the model's own;
- ``sampler``: the scheduler, a diffusers class built from the model's scheduler's config
  (``Class.from_config(scheduler.config, **options)``), so the noise schedule stays the model's; None: the
  model's own scheduler (UniPC for the authors' models);
- ``guidance_interval``: guidance only on the steps whose noise level lies in (low, high), fractions of the
  training schedule (Kynkaanniemi et al., NeurIPS 2024); a step outside runs the conditional branch alone,
  half the UNet's batch;
- ``feature_reuse``: the UNet's deep blocks run every N-th step only (DeepCache, Ma et al., CVPR 2024;
  :mod:`pcdms.pipelines.feature_reuse`).

The presets (:data:`PRESETS`):

- ``official``: the authors' settings, exactly (UniPC 20 steps per stage, stage 1 unguided, stages 2 and 3
  at guidance 2.0 on every step, stage 3 from noise, no reuse): a call with it makes the images a call with
  those settings made before presets existed, byte for byte, whatever the model recommends.
- ``fast``: UniPC (Zhao et al., NeurIPS 2023; second order, as officially) in 8 steps per UNet stage instead
  of 20: its predictor-corrector keeps few-step samples close to many-step ones; and guidance only from
  t / T 0.3 up (6 of the 8 steps; the last two, nearly clean, run the conditional branch alone). Guidance
  scale and stage 3's strength: the model's own. About 14 UNet images per stage where official runs 40.
- ``fastest``: UniPC in 6 steps, guidance from t / T 0.4 up (4 of the 6), and the deep UNet features reused
  every second step.

The sampler keeps the model's linearly spaced timesteps (no Karras sigmas), so that stage 3's
``refine_strength`` (a fraction of the steps, diffusers' image-to-image convention) starts from a similar noise
level whatever the number of steps: 0.3 of 20 steps starts at t = 300 of 1000, of 8 steps at 250, of 6 at 166
(one step); with Karras sigmas, 0.3 of 10 steps would start at t = 41.
DPM-Solver++ and Karras sigmas are measured as techniques by ``benchmarks/presets.py``.

None (no preset) means the model's own settings: its model_index.json's recommended ones, else the official
ones. A call's explicit settings (``inpaint_steps=``, ...) win over the preset's. The choices above were made
before measuring; ``benchmarks/presets.py`` measures each preset and each technique alone (docs/presets.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import PcdmsError
from .common import check_guidance_interval
from .feature_reuse import check_reuse_interval
from .settings import OFFICIAL_SAMPLING, checked_sampling, resolved_sampling

# The stages a preset's sampler, guidance interval and feature reuse apply to.
UNET_STAGES = ("inpaint", "refine")


@dataclass(frozen=True)
class Sampler:
    """A scheduler by diffusers class name (``"DPMSolverMultistepScheduler"``), with config options that
    replace the model scheduler's (``{"use_karras_sigmas": True}``)."""

    kind: str
    options: Mapping[str, object] = field(default_factory=dict)

    def build(self, scheduler):
        """A new scheduler of this kind from ``scheduler``'s config (its noise schedule) and the options;
        ``scheduler`` itself is left as it is."""
        import diffusers

        scheduler_class = getattr(diffusers, self.kind, None)
        if scheduler_class is None or not hasattr(scheduler_class, "from_config"):
            raise PcdmsError(f"preset sampler: {self.kind!r} is not a diffusers scheduler")
        return scheduler_class.from_config(scheduler.config, **dict(self.options))


@dataclass(frozen=True)
class Preset:
    """A named set of sampling settings (see the module docstring for each field)."""

    name: str
    summary: str
    sampling: Mapping[str, float] = field(default_factory=dict)
    sampler: Sampler | None = None
    guidance_interval: tuple[float, float] | None = None
    feature_reuse: int | None = None

    def __post_init__(self) -> None:
        checked_sampling(dict(self.sampling), f"preset {self.name!r}")
        if self.sampler is not None and not isinstance(self.sampler, Sampler):
            raise PcdmsError(
                f"preset {self.name!r}: sampler must be a Sampler, e.g. Sampler('DDIMScheduler'), or None, "
                f"got {self.sampler!r}"
            )
        if self.guidance_interval is not None:
            check_guidance_interval(self.guidance_interval)
        check_reuse_interval(self.feature_reuse)

    def replace(self, **changes) -> Preset:
        """This preset with ``changes`` (fields by name), e.g. ``PRESETS["fast"].replace(feature_reuse=2)``."""
        return dataclasses.replace(self, **changes)

    def defaults(self, recommended: Mapping | None) -> dict:
        """Every setting of :data:`OFFICIAL_SAMPLING` this preset samples with when a call gives none: its own,
        else the model's ``recommended`` ones, else the official ones."""
        return resolved_sampling({**(recommended or {}), **self.sampling})

    def stage_pipeline(self, pipeline, stage: str) -> dict:
        """Set ``pipeline`` (a stage pipeline made for this call: :meth:`PCDMsPipeline.stage_pipeline`) up for
        this preset and return the keyword arguments its call takes for it: the preset's sampler (a new
        scheduler, so the loaded pipeline's stays as it is), and for stages 2 and 3 the guidance interval and
        feature reuse."""
        if stage not in UNET_STAGES:
            return {}
        if self.sampler is not None:
            pipeline.scheduler = self.sampler.build(pipeline.scheduler)
        return {"guidance_interval": self.guidance_interval, "feature_reuse": self.feature_reuse}


# UniPC as the official sampler runs it (second order, bh2), built from the model's scheduler config so that a
# model saved with another scheduler still gets UniPC over its own noise schedule.
UNIPC = Sampler("UniPCMultistepScheduler", {"solver_order": 2})
# DPM-Solver++ as diffusers recommends it for guided sampling in few steps (multistep, second order, data
# prediction), with Karras et al.'s sigma spacing; measured as a technique, in no preset yet.
DPM_SOLVER_KARRAS = Sampler(
    "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}
)

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "official", "the authors' settings: UniPC 20 steps per stage, guidance 2.0 on every step", OFFICIAL_SAMPLING
        ),
        Preset(
            "fast",
            "UniPC 8 steps per UNet stage, guidance from t/T 0.3 up (6 of the 8 steps)",
            {"inpaint_steps": 8, "refine_steps": 8},
            UNIPC,
            guidance_interval=(0.3, 1.0),
        ),
        Preset(
            "fastest",
            "UniPC 6 steps per UNet stage, guidance from t/T 0.4 up (4 of the 6), deep UNet features reused every "
            "second step",
            {"inpaint_steps": 6, "refine_steps": 6},
            UNIPC,
            guidance_interval=(0.4, 1.0),
            feature_reuse=2,
        ),
    )
}
PRESET_NAMES = tuple(PRESETS)


def get_preset(preset: str | Preset | None) -> Preset | None:
    """A preset by name (one of :data:`PRESET_NAMES`), a :class:`Preset` as it is, or None (the model's own
    settings). Raises PcdmsError for an unknown name."""
    if preset is None or isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise PcdmsError(f"unknown preset {preset!r} (known: {', '.join(PRESET_NAMES)})")
    return PRESETS[preset]


def preset_defaults(recommended: Mapping | None, preset: str | Preset | None) -> dict:
    """Every sampling setting a call with ``preset`` and no explicit settings uses: the preset's, else the
    model's ``recommended`` ones (a pipeline's ``config.sampling``), else the official ones."""
    chosen = get_preset(preset)
    return resolved_sampling(recommended) if chosen is None else chosen.defaults(recommended)
