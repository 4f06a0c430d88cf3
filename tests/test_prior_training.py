"""Stage-1 training on the shared loop, on the toy dataset with a tiny random CLIP: it learns, it
resumes exactly, it caches what it can, and it initialises from Kandinsky 2.2 as the official code."""

import shutil

import numpy as np
import pytest
import torch
from diffusers import PriorTransformer
from safetensors.torch import load_file

from pcdms.checkpoints import load_matching, read_diffusers_weights
from pcdms.data import embeddings
from pcdms.data.embeddings import CACHE_FILE
from pcdms.data.toy import write_tiny_clip, write_toy_dataset
from pcdms.errors import PcdmsError
from pcdms.models import PosePriorTransformer
from pcdms.models.encoders import clip_pixels
from pcdms.pipelines import PriorPipeline, load_prior_pipeline, sample_pairs, unclip_scheduler
from pcdms.training import load_config, run_training
from pcdms.training.config import DataConfig, PriorConfig
from pcdms.training.prior import PriorTask, build_prior

ARCHITECTURE = {"num_layers": 2, "num_attention_heads": 2, "attention_head_dim": 16, "pose_hidden_dim": 32}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Two people in three poses each for training (12 pairs), one more person for the test split."""
    root = tmp_path_factory.mktemp("toy")
    write_toy_dataset(root / "data", people=3, poses=3, test_people=1)
    write_tiny_clip(root / "clip")
    return root


def write_config(folder, toy, **training):
    settings = {"max_steps": 300, "batch_size": 12, "learning_rate": 1e-3, "checkpoint_every": 100, "log_every": 10}
    settings.update(training)
    lines = [
        "stage: prior",
        f"output_dir: {folder / 'run'}",
        f"data: {{root: {toy / 'data'}}}",
        "training: {" + ", ".join(f"{key}: {value}" for key, value in settings.items()) + "}",
        "prior:",
        f"  image_encoder: {toy / 'clip'}",
        f"  architecture: {ARCHITECTURE}",
        "  clip_mean: auto",
        "  clip_std: auto",
    ]
    path = folder / "prior.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_tiny_prior_learns_its_pairs(tmp_path, toy):
    config = load_config(write_config(tmp_path, toy))
    losses = []
    final = run_training(config, on_step=lambda step, loss: losses.append(loss))
    assert len(losses) == 300
    assert np.mean(losses[-30:]) < np.mean(losses[:10]) / 10

    pipeline = load_prior_pipeline(final)
    pipeline.set_progress_bar_config(disable=True)
    task = PriorTask(config.prior, config.data, config.output_dir)
    predicted = sample_pairs(pipeline, task.dataset, null_embeds=task.null_embeds)
    embeds, pairs = task.dataset.embeds, task.dataset.pairs
    similarity = torch.nn.functional.cosine_similarity(predicted, embeds[pairs[:, 1]])
    copying = torch.nn.functional.cosine_similarity(embeds[pairs[:, 0]], embeds[pairs[:, 1]])
    assert similarity.min() > 0.9
    assert copying.mean() < 0.6  # the toy encoder tells images apart: the task is not trivial
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-100", "step-200", "step-300"]


def final_state(output_dir):
    model = load_prior_pipeline(output_dir / "model").prior
    optimizer = torch.load(output_dir / "checkpoints" / "step-6" / "optimizer.bin", weights_only=True)
    return model.state_dict(), optimizer


@pytest.mark.parametrize(
    ("stop_after", "saved"),
    [(2, 2), (3, 3), (4.5, 3)],
    ids=["at-an-epoch-end", "mid-epoch", "inside-an-accumulation"],
)
def test_an_interrupted_run_resumes_exactly(tmp_path, toy, monkeypatch, stop_after, saved):
    """Stop after step 2 or 3, or half-way through step 5 (one of its two micro-batches done), then resume.

    12 pairs in batches of 4 and 2 batches a step: 2 steps an epoch, the second on the leftover batch.
    """
    settings = {"max_steps": 6, "batch_size": 4, "gradient_accumulation_steps": 2, "checkpoint_every": 100}
    straight = load_config(write_config(tmp_path / "straight", toy, **settings))
    run_training(straight)

    broken = load_config(write_config(tmp_path / "broken", toy, **settings))
    losses = 0
    original = PriorTask.loss

    def interrupting_loss(self, model, batch, generator):
        nonlocal losses
        losses += 1
        # Batches 1-6 made steps 1-4; the 7th, first of step 5's two, stops just after accelerate counted it.
        if stop_after == 4.5 and losses == 7:
            raise KeyboardInterrupt
        return original(self, model, batch, generator)

    def interrupt(step, loss):
        if step == stop_after:
            raise KeyboardInterrupt

    monkeypatch.setattr(PriorTask, "loss", interrupting_loss)
    with pytest.raises(KeyboardInterrupt):
        run_training(broken, on_step=interrupt)
    monkeypatch.setattr(PriorTask, "loss", original)
    saved_at = 4 if stop_after == 4.5 else saved
    assert [p.name for p in (tmp_path / "broken" / "run" / "checkpoints").iterdir()] == [f"step-{saved_at}"]
    steps = []
    run_training(broken, on_step=lambda step, loss: steps.append(step))
    assert steps == list(range(saved_at + 1, 7))

    model_a, optimizer_a = final_state(tmp_path / "straight" / "run")
    model_b, optimizer_b = final_state(tmp_path / "broken" / "run")
    for key in model_a:
        assert torch.equal(model_a[key], model_b[key]), key
    assert optimizer_a["state"].keys() == optimizer_b["state"].keys()
    for index, state in optimizer_a["state"].items():
        assert state["step"] == optimizer_b["state"][index]["step"] == 6
        assert torch.equal(state["exp_avg"], optimizer_b["state"][index]["exp_avg"])
        assert torch.equal(state["exp_avg_sq"], optimizer_b["state"][index]["exp_avg_sq"])


def test_embeddings_are_cached_and_refreshed(tmp_path, toy, monkeypatch):
    config = PriorConfig(image_encoder=str(toy / "clip"), architecture=ARCHITECTURE)
    data = DataConfig(root=str(toy / "data"))
    first = PriorTask(config, data, tmp_path)
    cache = tmp_path / "cache" / CACHE_FILE
    assert cache.is_file()
    encoded = []
    monkeypatch.setattr(
        embeddings,
        "clip_pixels",
        lambda images, processor: encoded.append(len(images)) or clip_pixels(images, processor),
    )
    again = PriorTask(config, data, tmp_path)
    assert encoded == []  # nothing re-encoded
    torch.testing.assert_close(again.dataset.embeds, first.dataset.embeds)
    image = toy / "data" / "train" / "p000_01.png"
    image.write_bytes(image.read_bytes())  # touched: a new modification time
    PriorTask(config, data, tmp_path)
    assert encoded == [1]  # only that image was read and encoded again


def test_unusable_pairs_stop_training_before_it_starts(tmp_path, toy):
    data = tmp_path / "data"
    shutil.copytree(toy / "data", data)
    (data / "train" / "p000_00.png").unlink()
    config = PriorConfig(image_encoder=str(toy / "clip"), architecture=ARCHITECTURE)
    with pytest.raises(PcdmsError, match=r"4 of 12 pairs are unusable: 1 images missing .* data.unusable_pairs: skip"):
        PriorTask(config, DataConfig(root=str(data)), tmp_path)
    task = PriorTask(config, DataConfig(root=str(data), unusable_pairs="skip"), tmp_path)
    assert len(task.dataset) == 8


def test_initialisation_from_kandinsky_follows_the_official_code(tmp_path, capsys):
    """A Kandinsky-2.2-style prior (diffusers' PriorTransformer, 77 text tokens, wider embeddings):
    blocks, time embedding, read-out token, output norm and the projection biases are taken;
    projection weights, the output head, the positional embedding and the pose modules are new;
    Kandinsky's learnt clip_mean and clip_std are dropped."""
    torch.manual_seed(0)
    kandinsky = PriorTransformer(
        num_attention_heads=2, attention_head_dim=16, num_layers=2, embedding_dim=40, num_embeddings=77,
        additional_embeddings=4, time_embed_act_fn="silu", added_emb_type="prd", encoder_hid_proj_type="linear",
    )  # fmt: skip
    folder = tmp_path / "kandinsky-2-2-prior"
    kandinsky.save_pretrained(folder / "prior")
    report = load_matching(
        PosePriorTransformer(**ARCHITECTURE, embedding_dim=24), read_diffusers_weights(folder, "prior")
    )
    pose_modules = {key for key in report.fresh if key.startswith("pose_encoder")}
    assert len(pose_modules) == 16
    assert set(report.fresh) - pose_modules == {
        "proj_in.weight", "embedding_proj.weight", "encoder_hidden_states_proj.weight",
        "encoder_hidden_states_proj1.weight", "encoder_hidden_states_proj1.bias", "positional_embedding",
        "proj_to_clip_embeddings.weight", "proj_to_clip_embeddings.bias",
    }  # fmt: skip
    assert set(report.unused) == {"clip_mean", "clip_std"}

    config = PriorConfig(image_encoder="unused", kandinsky=str(folder), architecture=ARCHITECTURE)
    model = build_prior(config, torch.randn(5, 24))
    assert (
        f"initialised from the Kandinsky 2.2 prior at {folder}: {len(report.loaded)} tensors loaded"
        in capsys.readouterr().out
    )
    ours, theirs = model.state_dict(), kandinsky.state_dict()
    for key in report.loaded:
        assert torch.equal(ours[key], theirs[key]), key
    assert "proj_in.bias" in report.loaded and "transformer_blocks.1.ff.net.2.weight" in report.loaded
    assert torch.equal(ours["positional_embedding"], torch.zeros(1, 6, 32))


def test_the_ema_of_the_weights_is_what_gets_exported(tmp_path, toy):
    config = load_config(write_config(tmp_path, toy, max_steps=5, ema_decay=0.5))
    exported = load_prior_pipeline(run_training(config)).prior
    checkpoint = tmp_path / "run" / "checkpoints" / "step-5"
    ema = load_file(checkpoint / "ema.safetensors")  # safetensors: resuming never unpickles the EMA
    assert not list(checkpoint.glob("*.pkl"))[1:]  # the random state alone is a (weights-only) pickle
    shadow = [ema[f"shadow_params.{index}"] for index in range(len(ema))]
    for parameter, average in zip(exported.parameters(), shadow, strict=True):
        assert torch.equal(parameter, average)
    raw = load_file(checkpoint / "model.safetensors")
    assert not torch.equal(raw["proj_in.weight"], exported.state_dict()["proj_in.weight"])


def test_training_can_continue_from_a_saved_prior(tmp_path):
    torch.manual_seed(0)
    saved = PosePriorTransformer(**ARCHITECTURE, embedding_dim=24)
    PriorPipeline(saved, unclip_scheduler()).save_pretrained(tmp_path / "model")  # as a run's model/ folder
    continued = build_prior(PriorConfig(image_encoder="unused", pretrained=str(tmp_path / "model")), torch.randn(5, 24))
    for key, value in saved.state_dict().items():
        assert torch.equal(continued.state_dict()[key], value)
    with pytest.raises(PcdmsError, match="the prior takes 24-d embeddings, the image encoder gives 16-d"):
        build_prior(PriorConfig(image_encoder="unused", pretrained=str(tmp_path / "model")), torch.randn(5, 16))
    with pytest.raises(PcdmsError, match=r"prior.architecture: .*unexpected keyword argument 'depth'"):
        build_prior(PriorConfig(image_encoder="unused", architecture={"depth": 3}), torch.randn(5, 16))


def test_a_run_repeats_whether_or_not_the_embedding_cache_exists(tmp_path, toy):
    config = load_config(write_config(tmp_path, toy, max_steps=3))
    first = load_prior_pipeline(run_training(config, resume="none")).prior.state_dict()
    assert (tmp_path / "run" / "cache" / CACHE_FILE).is_file()
    second = load_prior_pipeline(run_training(config, resume="none")).prior.state_dict()  # from the cache
    for key in first:
        assert torch.equal(first[key], second[key]), key
