"""Sampling pipelines (diffusers ``DiffusionPipeline``s): each stage alone, and the three together."""

from .inpaint import InpaintOutput, InpaintPipeline, load_inpaint_pipeline, official_sampling_scheduler
from .pcdms import PCDMsOutput, PCDMsPipeline, load_pcdms_pipeline
from .prior import PriorOutput, PriorPipeline, load_prior_pipeline, sample_pairs, unclip_scheduler
from .refine import RefineOutput, RefinePipeline, load_refine_pipeline

__all__ = [
    "InpaintOutput",
    "InpaintPipeline",
    "PCDMsOutput",
    "PCDMsPipeline",
    "PriorOutput",
    "PriorPipeline",
    "RefineOutput",
    "RefinePipeline",
    "load_inpaint_pipeline",
    "load_pcdms_pipeline",
    "load_prior_pipeline",
    "load_refine_pipeline",
    "official_sampling_scheduler",
    "sample_pairs",
    "unclip_scheduler",
]
