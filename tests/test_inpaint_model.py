import json

import pytest
import torch
from diffusers import UNet2DConditionModel

from pcdms.errors import PcdmsError
from pcdms.models.inpaint import LITE_CHANGES, InpaintModel
from pcdms.models.prior import PosePriorTransformer
from pcdms.models.sd import SD21_BASE_UNET
from stage2 import TINY, TINY_UNET, OfficialStage2, tiny_inpaint


def inputs(batch=2, seed=0, lite=False):
    generator = torch.Generator().manual_seed(seed)
    return {
        "sample": torch.randn(batch, 9, 16, 16, generator=generator),
        "timestep": torch.tensor([10, 700][:batch]),
        "image_features": torch.randn(batch, 257, 32, generator=generator),
        "pose_canvas": torch.rand(batch, 3, 128, 128, generator=generator) * 2 - 1,
        "target_embeds": None if lite else torch.randn(batch, 32, generator=generator),
    }


def official_layout(lite=False):
    """Every parameter name and shape of the official stage-2 checkpoint at full size, from the spec:
    diffusers' SD 2.1-base UNet with the stage-2 changes, the ControlNet pose encoder, the projection MLP."""
    with torch.device("meta"):
        changes = {"in_channels": 9}
        if not lite:
            changes.update(class_embed_type="projection", projection_class_embeddings_input_dim=1024)
        unet = UNet2DConditionModel(**{**SD21_BASE_UNET, **changes})
    layout = {f"unet.{key}": tuple(value.shape) for key, value in unet.state_dict().items()}
    pose = [(16, 3), (16, 16), (32, 16), (32, 32), (96, 32), (96, 96), (256, 96)]
    names = ["pose_proj.conv_in"] + [f"pose_proj.blocks.{index}" for index in range(6)]
    for name, (out_channels, in_channels) in zip(names, pose, strict=True):
        layout[f"{name}.weight"], layout[f"{name}.bias"] = (out_channels, in_channels, 3, 3), (out_channels,)
    layout["pose_proj.conv_out.weight"], layout["pose_proj.conv_out.bias"] = (320, 256, 3, 3), (320,)
    projection = "image_proj_model" if lite else "image_proj_model_p"
    for index, shape in ((0, (768, 1536)), (3, (768,)), (4, (1024, 768))):
        layout[f"{projection}.net.{index}.weight"], layout[f"{projection}.net.{index}.bias"] = shape, shape[:1]
    return layout


def test_the_full_size_model_has_the_official_names_and_shapes():
    with torch.device("meta"):
        model = InpaintModel()
    ours = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert ours == official_layout()
    assert ours["unet.conv_in.weight"] == (320, 9, 3, 3)
    assert ours["unet.class_embedding.linear_1.weight"] == (1280, 1024)
    assert ours["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"] == (320, 1024)
    # SD 2.1-base's UNet has 865,910,724 parameters; stage 2 adds 5 input channels and the class embedding.
    assert sum(parameter.numel() for parameter in model.unet.parameters()) == 865_910_724 + 5 * 320 * 9 + 2_951_680


def test_the_full_size_lite_model_has_no_class_embedding():
    with torch.device("meta"):
        model = InpaintModel(unet_config={**SD21_BASE_UNET, **LITE_CHANGES})
    ours = {
        key.replace("image_proj_model_p.", "image_proj_model."): tuple(v.shape) for key, v in model.state_dict().items()
    }
    assert ours == official_layout(lite=True)
    assert not model.uses_target_embedding


@pytest.mark.parametrize("lite", [False, True])
def test_an_official_checkpoint_loads_strictly_and_gives_the_official_forward(tmp_path, lite):
    torch.manual_seed(0)
    official = OfficialStage2(lite).eval()
    path = tmp_path / ("PCDMs_ckpt.pt" if lite else "mp_rank_00_model_states.pt")
    torch.save({"module": official.state_dict(), "epoch": 3}, path)
    model = InpaintModel.from_official(path, unet_config=TINY_UNET, **TINY).eval()
    assert model.uses_target_embedding is not lite
    batch = inputs(lite=lite)
    with torch.no_grad():
        ours = model(**batch)
        theirs = official(
            batch["sample"], batch["timestep"], batch["image_features"], batch["target_embeds"], batch["pose_canvas"]
        )
    assert ours.abs().mean() > 0.1
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_wrong_stage_missing_and_misshapen_checkpoints_are_named(tmp_path):
    prior = PosePriorTransformer(num_layers=1, num_attention_heads=2, attention_head_dim=8, embedding_dim=16)
    torch.save({"module": prior.state_dict()}, tmp_path / "prior.pt")
    with pytest.raises(PcdmsError, match=r"prior.pt: this is a stage-1 prior checkpoint .* not a stage-2 inpainting"):
        InpaintModel.from_official(tmp_path / "prior.pt", unet_config=TINY_UNET, **TINY)

    state = OfficialStage2().state_dict()
    del state["unet.class_embedding.linear_1.weight"]
    torch.save({"module": state}, tmp_path / "missing.pt")
    with pytest.raises(PcdmsError, match=r"missing.pt: .* 1 missing \(first: unet.class_embedding.linear_1.weight\)"):
        InpaintModel.from_official(tmp_path / "missing.pt", unet_config=TINY_UNET, **TINY)

    state = OfficialStage2().state_dict()
    state["pose_proj.conv_out.weight"] = torch.zeros(32, 16, 1, 1)
    torch.save({"module": state}, tmp_path / "shape.pt")
    with pytest.raises(PcdmsError, match=r"shape.pt: .* of the wrong shape \(first: pose_proj.conv_out.weight"):
        InpaintModel.from_official(tmp_path / "shape.pt", unet_config=TINY_UNET, **TINY)


def test_the_pose_reaches_the_prediction_once_the_pose_encoder_is_trained():
    model = tiny_inpaint().eval()
    batch = inputs()
    other_pose = {**batch, "pose_canvas": -batch["pose_canvas"]}
    with torch.no_grad():
        # At initialisation the encoder's last layer is zero (ControlNet's zero convolution): no effect.
        assert torch.equal(model(**batch), model(**other_pose))
        for parameter in model.pose_proj.parameters():  # as trained: no zero layer, no vanishing signal
            parameter.normal_(std=0.3)
        assert (model(**batch) - model(**other_pose)).abs().mean() > 1e-2
    assert len(model.unet.conv_in._forward_hooks) == 0  # the injection ends with the call


def test_the_target_embedding_is_both_the_last_token_and_the_class_label():
    model = tiny_inpaint()
    features, target = torch.randn(2, 257, 32), torch.randn(2, 32)
    context, labels = model.condition(features, target)
    assert context.shape == (2, 258, 32)
    assert torch.equal(context[:, -1], target) and torch.equal(labels, target)
    torch.testing.assert_close(context[:, :257], model.image_proj_model_p(features))
    with pytest.raises(ValueError, match="needs the target's CLIP embedding"):
        model.condition(features, None)


def test_a_model_saved_and_loaded_predicts_the_same(tmp_path):
    model = tiny_inpaint().eval()
    model.pose_proj.conv_out.weight.data.normal_(std=0.1)
    model.save_pretrained(tmp_path / "inpaint")
    loaded = InpaintModel.from_pretrained(tmp_path / "inpaint").eval()
    assert json.loads((tmp_path / "inpaint" / "config.json").read_text())["unet_config"]["in_channels"] == 9
    with torch.no_grad():
        assert torch.equal(model(**inputs()), loaded(**inputs()))


def test_initialisation_from_stable_diffusion_follows_the_official_code(tmp_path, capsys):
    sd_unet = UNet2DConditionModel(**{**TINY_UNET, "in_channels": 4, "class_embed_type": None})
    sd_unet.save_pretrained(tmp_path / "sd" / "unet")
    model = InpaintModel.from_stable_diffusion(tmp_path / "sd", **{k: v for k, v in TINY.items() if k != "resolution"})
    ours, theirs = model.unet.state_dict(), sd_unet.state_dict()
    fresh = {key for key in ours if key not in theirs or ours[key].shape != theirs[key].shape}
    assert fresh == {
        "conv_in.weight",
        "class_embedding.linear_1.weight",
        "class_embedding.linear_1.bias",
        "class_embedding.linear_2.weight",
        "class_embedding.linear_2.bias",
    }
    assert all(torch.equal(ours[key], theirs[key]) for key in ours if key not in fresh)
    assert torch.equal(ours["conv_in.bias"], theirs["conv_in.bias"])  # the bias is SD's, the 9-channel weight new
    assert ours["conv_in.weight"].shape == (32, 9, 3, 3) and ours["conv_in.weight"].abs().sum() > 0
    assert "5 freshly initialised" in capsys.readouterr().out
    with pytest.raises(PcdmsError, match=r"not a Stable Diffusion folder"):
        InpaintModel.from_stable_diffusion(tmp_path)
