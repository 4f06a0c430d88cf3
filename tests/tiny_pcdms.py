"""A tiny whole PCDMs pipeline for tests: every component random, sized for a CPU, shapes consistent."""

import torch
from transformers import CLIPVisionModelWithProjection, Dinov2Model

from pcdms.data.toy import tiny_vae
from pcdms.models.encoders import tiny_clip_config, tiny_dinov2_config
from pcdms.models.prior import PosePriorTransformer
from pcdms.pipelines.inpaint import official_sampling_scheduler
from pcdms.pipelines.pcdms import PCDMsPipeline
from pcdms.pipelines.prior import unclip_scheduler
from stage2 import tiny_inpaint
from stage3 import tiny_refine

# One 64-wide head, as the conversion reads a checkpoint's heads (64 channels each, as officially).
TINY_PRIOR = {
    "num_attention_heads": 1,
    "attention_head_dim": 64,
    "num_layers": 1,
    "embedding_dim": 32,
    "pose_hidden_dim": 16,
}


def tiny_prior(seed: int = 0) -> PosePriorTransformer:
    torch.manual_seed(seed)
    return PosePriorTransformer(**TINY_PRIOR)


def tiny_pcdms(lite: bool = False, refine: bool = True, seed: int = 0) -> PCDMsPipeline:
    """The three stages (or the lite stage 2 alone), as trained models would be: no zero layer left."""
    inpaint = tiny_inpaint(lite, seed)
    stage3 = tiny_refine(seed) if refine and not lite else None
    torch.manual_seed(seed + 1)
    with torch.no_grad():
        inpaint.pose_proj.conv_out.weight.normal_(std=0.1)
    components = {}
    if not lite:
        components = {
            "clip_encoder": CLIPVisionModelWithProjection(tiny_clip_config()),
            "prior": tiny_prior(seed),
            "prior_scheduler": unclip_scheduler(),
        }
    if stage3 is not None:
        components.update(refine=stage3, refine_scheduler=official_sampling_scheduler())
    torch.manual_seed(seed + 2)
    pipeline = PCDMsPipeline(
        vae=tiny_vae(),
        image_encoder=Dinov2Model(tiny_dinov2_config()),
        inpaint=inpaint,
        inpaint_scheduler=official_sampling_scheduler(),
        **components,
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline
