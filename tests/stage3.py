"""Tiny stage-3 material for tests: a refining model in the official layout at a size a CPU runs in milliseconds."""

import torch
from transformers import Dinov2Model

from pcdms.data.toy import tiny_vae
from pcdms.models.encoders import tiny_dinov2_config
from pcdms.models.refine import RefineModel
from pcdms.pipelines.inpaint import official_sampling_scheduler
from pcdms.pipelines.refine import RefinePipeline
from stage2 import TINY_UNET

TINY_REFINE_UNET = {
    **TINY_UNET,
    "in_channels": 8,
    "class_embed_type": None,
    "projection_class_embeddings_input_dim": None,
}
TINY_REFINE = {"image_feature_dim": 32, "image_proj_hidden_dim": 16, "resolution": (64, 128)}


def tiny_refine(seed: int = 0) -> RefineModel:
    torch.manual_seed(seed)
    return RefineModel(unet_config=TINY_REFINE_UNET, **TINY_REFINE)


def tiny_refine_pipeline(seed: int = 0) -> RefinePipeline:
    model = tiny_refine(seed)
    torch.manual_seed(seed + 1)
    pipeline = RefinePipeline(tiny_vae(), Dinov2Model(tiny_dinov2_config()), model, official_sampling_scheduler())
    pipeline.set_progress_bar_config(disable=True)
    return pipeline
