"""Sampling pipelines (diffusers ``DiffusionPipeline``s)."""

from .prior import PriorOutput, PriorPipeline, load_prior_pipeline, sample_pairs, unclip_scheduler

__all__ = ["PriorOutput", "PriorPipeline", "load_prior_pipeline", "sample_pairs", "unclip_scheduler"]
