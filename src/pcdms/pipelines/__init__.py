"""Sampling pipelines (diffusers ``DiffusionPipeline``s)."""

from .inpaint import InpaintOutput, InpaintPipeline, load_inpaint_pipeline, official_sampling_scheduler
from .prior import PriorOutput, PriorPipeline, load_prior_pipeline, sample_pairs, unclip_scheduler

__all__ = [
    "InpaintOutput",
    "InpaintPipeline",
    "PriorOutput",
    "PriorPipeline",
    "load_inpaint_pipeline",
    "load_prior_pipeline",
    "official_sampling_scheduler",
    "sample_pairs",
    "unclip_scheduler",
]
