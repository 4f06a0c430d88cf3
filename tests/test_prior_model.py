import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import save_official
from pcdms.checkpoints import detect_stage, load_official_state_dict
from pcdms.errors import PcdmsError
from pcdms.models import PosePriorTransformer
from pcdms.pose import FRACTION, OFFICIAL, pose_vector

TINY = {"num_attention_heads": 2, "attention_head_dim": 8, "num_layers": 2, "embedding_dim": 12, "pose_hidden_dim": 10}


def official_layout() -> dict[str, tuple[int, ...]]:
    """The stage-1 keys and shapes of the official checkpoints (spec table 1.3), written out independently."""
    width, embedding, hidden = 2048, 1024, 512
    layout = {}
    for encoder in ("pose_encoder", "pose_encoder1"):
        layout |= {
            f"{encoder}.net.0.weight": (hidden, 36),
            f"{encoder}.net.0.bias": (hidden,),
            f"{encoder}.net.3.weight": (hidden,),
            f"{encoder}.net.3.bias": (hidden,),
            f"{encoder}.net.4.weight": (embedding, hidden),
            f"{encoder}.net.4.bias": (embedding,),
            f"{encoder}.net.6.weight": (embedding,),
            f"{encoder}.net.6.bias": (embedding,),
        }
    for linear in ("time_embedding.linear_1", "time_embedding.linear_2"):
        layout |= {f"{linear}.weight": (width, width), f"{linear}.bias": (width,)}
    for linear in ("proj_in", "embedding_proj", "encoder_hidden_states_proj", "encoder_hidden_states_proj1"):
        layout |= {f"{linear}.weight": (width, embedding), f"{linear}.bias": (width,)}
    layout |= {"positional_embedding": (1, 6, width), "prd_embedding": (1, 1, width)}
    for block in range(20):
        prefix = f"transformer_blocks.{block}"
        for norm in ("norm1", "norm3"):
            layout |= {f"{prefix}.{norm}.weight": (width,), f"{prefix}.{norm}.bias": (width,)}
        for linear in ("to_q", "to_k", "to_v", "to_out.0"):
            layout |= {f"{prefix}.attn1.{linear}.weight": (width, width), f"{prefix}.attn1.{linear}.bias": (width,)}
        layout |= {
            f"{prefix}.ff.net.0.proj.weight": (4 * width, width),
            f"{prefix}.ff.net.0.proj.bias": (4 * width,),
            f"{prefix}.ff.net.2.weight": (width, 4 * width),
            f"{prefix}.ff.net.2.bias": (width,),
        }
    layout |= {"norm_out.weight": (width,), "norm_out.bias": (width,)}
    layout |= {"proj_to_clip_embeddings.weight": (embedding, width), "proj_to_clip_embeddings.bias": (embedding,)}
    return layout


def test_full_size_matches_the_official_layout():
    with torch.device("meta"):
        model = PosePriorTransformer()
    state = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert state == official_layout()
    assert sum(value.numel() for value in model.parameters()) == pytest.approx(1.027e9, rel=1e-3)
    assert model.config.clip_mean == -0.016 and model.config.clip_std == 0.415
    assert model.pose_convention == OFFICIAL


def random_model(seed: int = 0, **config) -> PosePriorTransformer:
    torch.manual_seed(seed)
    model = PosePriorTransformer(**{**TINY, **config})
    with torch.no_grad():  # the positional and read-out embeddings start at zero: make every weight count
        for parameter in model.parameters():
            parameter.normal_(0, 0.3)
    return model.eval()


def reference_forward(state, heads, noisy, timesteps, source, source_pose, target_pose):
    """The official stage-1 forward from the spec, in plain torch on a state dict."""

    def linear(x, name):
        return x @ state[f"{name}.weight"].T + state[f"{name}.bias"]

    def norm(x, name):
        return F.layer_norm(x, x.shape[-1:], state[f"{name}.weight"], state[f"{name}.bias"], eps=1e-5)

    def pose_mlp(x, name):
        return norm(linear(norm(F.gelu(linear(x, f"{name}.net.0")), f"{name}.net.3"), f"{name}.net.4"), f"{name}.net.6")

    width = state["prd_embedding"].shape[-1]
    half = width // 2
    angles = timesteps.float()[:, None] * torch.exp(-math.log(10000) * torch.arange(half) / half)[None]
    time = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)  # flip_sin_to_cos
    time = linear(F.silu(linear(time, "time_embedding.linear_1")), "time_embedding.linear_2")
    batch = noisy.shape[0]
    tokens = torch.stack(
        [
            linear(pose_mlp(source_pose, "pose_encoder"), "encoder_hidden_states_proj"),
            linear(pose_mlp(target_pose, "pose_encoder1"), "encoder_hidden_states_proj1"),
            linear(source, "embedding_proj"),
            time,
            linear(noisy, "proj_in"),
            state["prd_embedding"][0, 0].expand(batch, width),
        ],
        dim=1,
    )
    x = tokens + state["positional_embedding"]
    blocks = 1 + max(int(key.split(".")[1]) for key in state if key.startswith("transformer_blocks."))
    for block in range(blocks):
        prefix = f"transformer_blocks.{block}"
        h = norm(x, f"{prefix}.norm1")
        q, k, v = (
            linear(h, f"{prefix}.attn1.to_{name}").reshape(batch, 6, heads, -1).transpose(1, 2) for name in "qkv"
        )
        attention = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1) @ v  # no mask
        x = x + linear(attention.transpose(1, 2).reshape(batch, 6, width), f"{prefix}.attn1.to_out.0")
        h = norm(x, f"{prefix}.norm3")
        x = x + linear(F.gelu(linear(h, f"{prefix}.ff.net.0.proj")), f"{prefix}.ff.net.2")
    return linear(norm(x, "norm_out")[:, -1], "proj_to_clip_embeddings")


def inputs(batch: int = 3, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, 12, generator=generator),
        torch.tensor([0, 500, 999])[:batch],
        torch.randn(batch, 12, generator=generator),
        torch.rand(batch, 36, generator=generator),
        torch.rand(batch, 36, generator=generator),
    )


def test_forward_is_the_official_one():
    model = random_model()
    with torch.no_grad():
        ours = model(*inputs())
        reference = reference_forward(model.state_dict(), TINY["num_attention_heads"], *inputs())
    assert ours.shape == (3, 12)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)
    # The official code passes (batch, 1, dim) tensors and one timestep for the batch; same result.
    noisy, _, source, source_pose, target_pose = inputs()
    with torch.no_grad():
        official_shapes = model(
            noisy[:, None], torch.tensor(500), source[:, None], source_pose[:, None], target_pose[:, None]
        )
        per_sample = model(noisy, torch.tensor([500, 500, 500]), source, source_pose, target_pose)
    torch.testing.assert_close(official_shapes, per_sample)


def test_attention_is_bidirectional():
    """The first token (source pose) sees the later ones: with the official code's unused causal mask it
    could not, and its state would not move when the noisy embedding (token 5) does."""
    model = random_model()
    first_token = []
    model.transformer_blocks[-1].register_forward_hook(lambda module, args, output: first_token.append(output[:, 0]))
    noisy, timesteps, source, source_pose, target_pose = inputs()
    with torch.no_grad():
        model(noisy, timesteps, source, source_pose, target_pose)
        model(noisy + 1.0, timesteps, source, source_pose, target_pose)
    assert not torch.allclose(*first_token)


def test_official_checkpoint_loads_strictly_and_round_trips(tmp_path):
    source = random_model(seed=3)
    checkpoint = save_official(tmp_path / "5000" / "mp_rank_00_model_states.pt", source.state_dict())
    model = PosePriorTransformer.from_official(tmp_path / "5000", **TINY)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value.half().float())
    assert model.pose_convention == OFFICIAL
    model.save_pretrained(tmp_path / "ours")
    again = PosePriorTransformer.from_pretrained(tmp_path / "ours")
    with torch.no_grad():
        torch.testing.assert_close(again(*inputs()), model.eval()(*inputs()))
    # Back to the official layout: the same keys and values.
    assert load_official_state_dict(checkpoint).keys() == again.state_dict().keys()
    assert detect_stage(again.state_dict()) == "prior"


def test_bad_checkpoints_say_what_is_wrong(tmp_path):
    state = random_model().state_dict()
    stage2 = save_official(
        tmp_path / "stage2.pt", {"unet.conv_in.weight": torch.zeros(1), "pose_proj.conv_in.weight": torch.zeros(1)}
    )
    with pytest.raises(
        PcdmsError, match=r"stage2.pt: this is a stage-2 inpainting checkpoint .* not a stage-1 prior one"
    ):
        PosePriorTransformer.from_official(stage2, **TINY)
    partial = save_official(tmp_path / "partial.pt", {k: v for k, v in state.items() if not k.startswith("norm_out")})
    with pytest.raises(PcdmsError, match=r"2 missing \(first: norm_out.weight\)"):
        PosePriorTransformer.from_official(partial, **TINY)
    with pytest.raises(
        PcdmsError, match=r"of the wrong shape \(first: pose_encoder.net.0.weight \(10, 36\) \(model: \(12, 36\)\)"
    ):
        PosePriorTransformer.from_official(
            save_official(tmp_path / "small.pt", state), **{**TINY, "pose_hidden_dim": 12}
        )
    whole = save_official(tmp_path / "whole.pt", state)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(PcdmsError, match=r"truncated.pt: truncated or corrupt checkpoint"):
        PosePriorTransformer.from_official(truncated, **TINY)
    with pytest.raises(PcdmsError, match="no such checkpoint file"):
        PosePriorTransformer.from_official(tmp_path / "absent", **TINY)


class Unsafe:
    """Stands for any object a pickle could smuggle in."""


def test_checkpoints_with_arbitrary_objects_are_refused(tmp_path):
    path = save_official(tmp_path / "pickled.pt", random_model().state_dict(), extra_object=Unsafe())
    with pytest.raises(
        PcdmsError, match=r"pickled.pt: refusing to unpickle it: .* would import test_prior_model.Unsafe: objects other"
    ):
        PosePriorTransformer.from_official(path, **TINY)


def test_gradient_checkpointing_gives_the_same_gradients():
    gradients = []
    for checkpointing in (False, True):
        model = random_model().train()
        if checkpointing:
            model.enable_gradient_checkpointing()
        model(*inputs()).square().sum().backward()
        gradients.append(model.transformer_blocks[0].attn1.to_q.weight.grad.clone())
    torch.testing.assert_close(*gradients)


def test_poses_are_converted_to_the_models_convention(pose):
    model = random_model(pose_convention=FRACTION.to_dict())
    tensor = model.pose_tensor([pose, pose.resize((352, 512))])
    assert tensor.shape == (2, 36)
    np.testing.assert_allclose(tensor[0].numpy(), pose_vector(pose, FRACTION), rtol=1e-6)
    torch.testing.assert_close(tensor[0], tensor[1])
    with pytest.raises(ValueError, match="36 numbers"):
        model.pose_tensor(torch.zeros(2, 34))
