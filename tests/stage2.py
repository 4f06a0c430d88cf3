"""Tiny stage-2 material for tests: models in the official layout at a size a CPU runs in milliseconds."""

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.controlnets.controlnet import ControlNetConditioningEmbedding
from torch import nn
from transformers import Dinov2Model

from pcdms.data.toy import tiny_vae
from pcdms.models.encoders import tiny_dinov2_config
from pcdms.models.inpaint import InpaintModel
from pcdms.pipelines.inpaint import InpaintPipeline, official_sampling_scheduler

TINY_UNET = {
    "block_out_channels": [32, 64],
    "layers_per_block": 1,
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "attention_head_dim": 4,
    "norm_num_groups": 8,
    "cross_attention_dim": 32,
    "sample_size": 16,
    "in_channels": 9,
    "out_channels": 4,
    "class_embed_type": "projection",
    "projection_class_embeddings_input_dim": 32,
}
TINY_LITE_UNET = {**TINY_UNET, "class_embed_type": None, "projection_class_embeddings_input_dim": None}
TINY = {
    "image_feature_dim": 32,
    "image_proj_hidden_dim": 16,
    "pose_block_channels": (4, 8, 8, 16),
    "resolution": (64, 128),
}


def tiny_inpaint(lite: bool = False, seed: int = 0) -> InpaintModel:
    torch.manual_seed(seed)
    return InpaintModel(unet_config=TINY_LITE_UNET if lite else TINY_UNET, **TINY)


def tiny_pipeline(lite: bool = False, seed: int = 0) -> InpaintPipeline:
    model = tiny_inpaint(lite, seed)
    torch.manual_seed(seed + 1)
    pipeline = InpaintPipeline(tiny_vae(), Dinov2Model(tiny_dinov2_config()), model, official_sampling_scheduler())
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


class OfficialStage2(nn.Module):
    """The official training script's SDModel layout, built independently of pcdms: the same three
    modules under the same names (``image_proj_model`` in the lite checkpoint)."""

    def __init__(self, lite: bool = False):
        super().__init__()
        projection = nn.Sequential(
            nn.Linear(32, 16), nn.GELU(), nn.Dropout(0.0), nn.LayerNorm(16), nn.Linear(16, 32), nn.Dropout(0.0)
        )
        setattr(self, "image_proj_model" if lite else "image_proj_model_p", nn.Module())
        getattr(self, "image_proj_model" if lite else "image_proj_model_p").net = projection
        self.unet = UNet2DConditionModel(**(TINY_LITE_UNET if lite else TINY_UNET))
        self.pose_proj = ControlNetConditioningEmbedding(32, 3, (4, 8, 8, 16))
        self.lite = lite
        with torch.no_grad():  # the released weights are trained: no zero layer left
            for parameter in self.parameters():
                parameter.add_(0.05 * torch.randn_like(parameter))

    def forward(self, sample, timestep, image_features, target_embeds, pose_canvas):
        """The official forward: conv_in(sample) + pose features, context [proj(DINO), target], class label target."""
        projection = (self.image_proj_model if self.lite else self.image_proj_model_p).net
        context = projection(image_features)
        if not self.lite:
            context = torch.cat([context, target_embeds[:, None]], dim=1)
        pose = self.pose_proj(pose_canvas)
        conv_in = self.unet.conv_in

        class WithPose(nn.Module):  # what the official copy of the UNet does after its first convolution
            def forward(self, x):
                return conv_in(x) + pose

        self.unet.conv_in = WithPose()
        try:
            labels = None if self.lite else target_embeds
            return self.unet(sample, timestep, encoder_hidden_states=context, class_labels=labels).sample
        finally:
            self.unet.conv_in = conv_in
