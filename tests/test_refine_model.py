"""The stage-3 model: the official layout at full size, the authors' checkpoint loaded strictly with their
forward pass, initialisation from Stable Diffusion, and save/load."""

import pytest
import torch
from diffusers import UNet2DConditionModel
from torch import nn

from helpers import save_official
from pcdms.errors import PcdmsError
from pcdms.models.refine import RefineModel
from stage2 import OfficialStage2
from stage3 import TINY_REFINE, TINY_REFINE_UNET, tiny_refine


class OfficialStage3(nn.Module):
    """The official stage-3 training script's model, built independently of pcdms: ``unet`` (8 input
    channels) and ``image_proj_model_p``, its forward as the script's: the coarse latents concatenated
    to the noisy ones, the projected DINOv2 tokens as the whole context."""

    def __init__(self):
        super().__init__()
        self.unet = UNet2DConditionModel(**TINY_REFINE_UNET)
        self.image_proj_model_p = nn.Module()
        self.image_proj_model_p.net = nn.Sequential(
            nn.Linear(32, 16), nn.GELU(), nn.Dropout(0.0), nn.LayerNorm(16), nn.Linear(16, 32), nn.Dropout(0.0)
        )
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.add_(0.05 * torch.randn_like(parameter))

    def forward(self, noisy, coarse_latents, timestep, image_features):
        context = self.image_proj_model_p.net(image_features)
        return self.unet(torch.cat([noisy, coarse_latents], dim=1), timestep, encoder_hidden_states=context).sample


def test_the_full_size_model_has_the_official_names_and_shapes():
    with torch.device("meta"):
        model = RefineModel()
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert shapes["unet.conv_in.weight"] == (320, 8, 3, 3)
    assert shapes["image_proj_model_p.net.0.weight"] == (768, 1536)
    assert shapes["image_proj_model_p.net.3.weight"] == (768,)
    assert shapes["image_proj_model_p.net.4.weight"] == (1024, 768)
    assert not any(key.startswith("unet.class_embedding") for key in shapes)
    assert {key.split(".")[0] for key in shapes} == {"unet", "image_proj_model_p"}
    # SD 2.1-base's UNet with 4 more input channels, plus the projection (1536*768+768 + 2*768 + 768*1024+1024)
    assert sum(value.numel() for value in model.unet.parameters()) == 865_910_724 + 4 * 320 * 9
    assert sum(value.numel() for value in model.image_proj_model_p.parameters()) == 1_969_408


def test_an_official_checkpoint_loads_strictly_and_gives_the_official_forward(tmp_path):
    torch.manual_seed(0)
    official = OfficialStage3().eval()
    checkpoint = save_official(tmp_path / "5000" / "mp_rank_00_model_states.pt", official.state_dict())
    model = RefineModel.from_official(tmp_path / "5000", unet_config=TINY_REFINE_UNET, **TINY_REFINE).eval()
    official.half().float()  # the checkpoint holds fp16 weights, as DeepSpeed wrote them
    noisy, coarse = torch.randn(2, 4, 16, 8), torch.randn(2, 4, 16, 8)
    features, timestep = torch.randn(2, 257, 32), torch.tensor([10, 900])
    with torch.no_grad():
        ours = model(torch.cat([noisy, coarse], dim=1), timestep, features)
        theirs = official(noisy, coarse, timestep, features)
    assert ours.abs().mean() > 0.1
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    assert checkpoint.is_file()


def test_a_checkpoint_of_another_stage_or_shape_is_named(tmp_path):
    torch.save({"module": OfficialStage2().state_dict()}, tmp_path / "stage2.pt")
    with pytest.raises(PcdmsError, match=r"stage2.pt: this is a stage-2 inpainting checkpoint .* not a stage-3"):
        RefineModel.from_official(tmp_path / "stage2.pt", unet_config=TINY_REFINE_UNET, **TINY_REFINE)
    state = OfficialStage3().state_dict()
    state["unet.conv_in.weight"] = torch.zeros(32, 9, 3, 3)
    torch.save({"module": state}, tmp_path / "nine.pt")
    with pytest.raises(
        PcdmsError, match=r"nine.pt: .* of the wrong shape \(first: unet.conv_in.weight \(32, 9, 3, 3\)"
    ):
        RefineModel.from_official(tmp_path / "nine.pt", unet_config=TINY_REFINE_UNET, **TINY_REFINE)


def test_initialisation_from_stable_diffusion_keeps_everything_but_the_new_channels(tmp_path, capsys):
    sd_unet = UNet2DConditionModel(**{**TINY_REFINE_UNET, "in_channels": 4})
    sd_unet.save_pretrained(tmp_path / "sd" / "unet")
    model = RefineModel.from_stable_diffusion(tmp_path / "sd", image_feature_dim=32, image_proj_hidden_dim=16)
    ours, theirs = model.unet.state_dict(), sd_unet.state_dict()
    assert ours["conv_in.weight"].shape == (32, 8, 3, 3)
    assert all(torch.equal(ours[key], theirs[key]) for key in ours if key != "conv_in.weight")
    assert "stage-3 UNet initialised" in capsys.readouterr().out
    assert model.config.unet_config["in_channels"] == 8


def test_a_model_saved_and_loaded_predicts_the_same(tmp_path):
    model = tiny_refine().eval()
    model.save_pretrained(tmp_path / "refine")
    loaded = RefineModel.from_pretrained(tmp_path / "refine").eval()
    assert list(loaded.config.resolution) == [64, 128]
    sample, features = torch.randn(1, 8, 16, 8), torch.randn(1, 257, 32)
    with torch.no_grad():
        # equal weights; the loaded ones' memory layout can change the float summation order (~1e-7)
        torch.testing.assert_close(model(sample, 500, features), loaded(sample, 500, features), rtol=1e-5, atol=1e-6)
