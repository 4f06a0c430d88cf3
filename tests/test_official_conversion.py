"""Building pipeline folders (``pcdms convert``) from official-layout checkpoints (random weights, tiny sizes) and local
public-model folders: every stage and the lite model convert and run; checkpoints of the wrong stage,
corrupt, truncated or holding arbitrary objects are named in one line and leave nothing behind; ``pcdms generate``
on a converted pipeline."""

import argparse
import json

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from PIL import Image

from helpers import body_image, save_official
from pcdms.cli import main
from pcdms.convert import assemble_trained, convert_official
from pcdms.data.toy import tiny_vae, write_tiny_clip, write_tiny_dinov2
from pcdms.errors import PcdmsError
from pcdms.pipelines.pcdms import load_pcdms_pipeline
from stage2 import TINY_UNET, OfficialStage2
from test_cli import assert_one_line_error, run
from test_refine_model import OfficialStage3
from tiny_pcdms import tiny_pcdms, tiny_prior


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """What a user downloads, at toy size: SD (vae/, unet/config.json), DINOv2, CLIP, and the checkpoints."""
    root = tmp_path_factory.mktemp("downloads")
    torch.manual_seed(0)
    UNet2DConditionModel(**{**TINY_UNET, "in_channels": 4, "class_embed_type": None}).save_config(root / "sd" / "unet")
    tiny_vae().save_pretrained(root / "sd" / "vae")
    write_tiny_dinov2(root / "dinov2")
    write_tiny_clip(root / "clip")
    save_official(root / "stage1" / "mp_rank_00_model_states.pt", tiny_prior(seed=1).state_dict())
    save_official(root / "stage2" / "mp_rank_00_model_states.pt", OfficialStage2().state_dict())
    save_official(root / "stage3" / "mp_rank_00_model_states.pt", OfficialStage3().state_dict())
    torch.save({"module": OfficialStage2(lite=True).state_dict()}, root / "PCDMs_ckpt.pt")
    return root


def official(folders, out, **changes):
    paths = {
        "prior": folders / "stage1",
        "inpaint": folders / "stage2",
        "refine": folders / "stage3",
        "stable_diffusion": folders / "sd",
        "dinov2": folders / "dinov2",
        "clip": folders / "clip",
        "dtype": torch.float32,
    }
    return convert_official(out, **{**paths, **changes})


def generate(pipeline, pose, **kwargs):
    pipeline.set_progress_bar_config(disable=True)
    source = body_image(pose).resize((64, 128))
    settings = {"prior_steps": 2, "inpaint_steps": 2, "refine_steps": 2, "output_type": "pt", **kwargs}
    return pipeline(
        source, pose.hflip(), pose, width=64, height=128, generator=torch.Generator().manual_seed(0), **settings
    )


def test_the_three_official_stages_convert_to_a_pipeline_that_runs(folders, tmp_path, pose):
    folder = official(folders, tmp_path / "pcdms")
    pipeline = load_pcdms_pipeline(folder)
    assert pipeline.stages == ("prior", "inpaint", "refine")
    checkpoints = {
        name: torch.load(folders / f"stage{number}" / "mp_rank_00_model_states.pt")["module"]
        for number, name in ((1, "prior"), (2, "inpaint"), (3, "refine"))
    }
    for name, state in checkpoints.items():  # every weight as released (fp16, written as float32)
        ours = getattr(pipeline, name).state_dict()
        assert ours.keys() == state.keys()
        assert all(torch.equal(ours[key], state[key].float()) for key in state)
    assert pipeline.prior.config.num_layers == 1 and pipeline.prior.config.pose_convention["name"] == "pcdms-official"
    assert list(pipeline.inpaint.config.pose_block_channels) == [4, 8, 8, 16]
    images = generate(pipeline, pose).images
    assert images.shape == (1, 3, 128, 64) and torch.isfinite(images).all()


def test_the_lite_checkpoint_converts_to_stage_2_alone(folders, tmp_path, pose):
    folder = official(folders, tmp_path / "lite", inpaint=folders / "PCDMs_ckpt.pt", prior=None, refine=None, clip=None)
    pipeline = load_pcdms_pipeline(folder)
    assert pipeline.stages == ("inpaint",) and pipeline.clip_encoder is None
    assert generate(pipeline, pose).images.shape == (1, 3, 128, 64)


def test_the_default_precision_is_half(folders, tmp_path):
    from safetensors import safe_open

    folder = official(folders, tmp_path / "half", dtype=torch.float16)
    with safe_open(folder / "inpaint" / "diffusion_pytorch_model.safetensors", "pt") as weights:
        assert weights.get_tensor("unet.conv_in.weight").dtype == torch.float16
    assert load_pcdms_pipeline(folder, dtype=torch.float32).inpaint.dtype == torch.float32


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # the official repository's issue #24: a "stage 2" download that holds the prior
        (
            {"inpaint": "stage1"},
            r"stage1/mp_rank_00_model_states.pt: given as the stage-2 inpainting checkpoint, but it is a stage-1 prior",
        ),
        ({"refine": "stage2"}, r"given as the stage-3 refining checkpoint, but it is a stage-2 inpainting"),
        ({"prior": "stage3"}, r"given as the stage-1 prior checkpoint, but it is a stage-3 refining"),
        ({"clip": None}, r"needs the stage-1 checkpoint \(--prior\) and CLIP \(--clip\)"),
        ({"inpaint": "PCDMs_ckpt.pt"}, r"the lite stage-2 model \(PCDMs_ckpt.pt\) runs alone"),
        ({"dinov2": "clip"}, r"clip: holds a clip_vision_model model, not a DINOv2 encoder \(dinov2\)"),
        ({"stable_diffusion": "dinov2"}, r"dinov2: not a Stable Diffusion folder"),
    ],
)
def test_wrong_files_are_named_in_one_line(folders, tmp_path, changes, message):
    with pytest.raises(PcdmsError, match=message) as error:
        official(folders, tmp_path / "out", **{key: value and folders / value for key, value in changes.items()})
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_corrupt_truncated_and_unsafe_checkpoints_are_refused(folders, tmp_path):
    data = (folders / "stage2" / "mp_rank_00_model_states.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "corrupt.pt").write_bytes(b"\x00garbage" * 100)
    # DeepSpeed can store the run's arguments beside the weights: an object that unpickling would construct
    torch.save({"module": OfficialStage2().state_dict(), "args": argparse.Namespace(lr=1e-4)}, tmp_path / "unsafe.pt")
    for name, message in (
        ("truncated.pt", "truncated or corrupt checkpoint"),
        ("corrupt.pt", "not a PyTorch checkpoint, or a corrupt one"),
        ("unsafe.pt", r"refusing to unpickle it: .* would import argparse.Namespace: objects other than tensors"),
    ):
        with pytest.raises(PcdmsError, match=message):
            official(folders, tmp_path / "out", inpaint=tmp_path / name)
        assert not (tmp_path / "out").exists()


def test_a_dinov2_of_another_width_is_named_before_anything_is_written(folders, tmp_path):
    from transformers import Dinov2Model

    from pcdms.models.encoders import tiny_dinov2_config

    Dinov2Model(tiny_dinov2_config(hidden_size=16)).save_pretrained(tmp_path / "dinov2-16")
    with pytest.raises(
        PcdmsError, match=r"the stage-2 model does not fit its encoders: DINOv2 gives 16-d tokens, the model takes 32-d"
    ):
        official(folders, tmp_path / "out", dinov2=tmp_path / "dinov2-16")
    assert not (tmp_path / "out").exists()


def test_training_runs_assemble_into_a_pipeline(tmp_path, pose):
    from pcdms.pipelines.inpaint import InpaintPipeline
    from pcdms.pipelines.prior import PriorPipeline
    from pcdms.pipelines.refine import RefinePipeline

    whole = tiny_pcdms()
    PriorPipeline(whole.prior, whole.prior_scheduler).save_pretrained(tmp_path / "prior")
    InpaintPipeline(whole.vae, whole.image_encoder, whole.inpaint, whole.inpaint_scheduler).save_pretrained(
        tmp_path / "inpaint"
    )
    RefinePipeline(whole.vae, whole.image_encoder, whole.refine, whole.refine_scheduler).save_pretrained(
        tmp_path / "refine"
    )
    whole.clip_encoder.save_pretrained(tmp_path / "clip")
    runs = {name: tmp_path / name for name in ("prior", "inpaint", "refine", "clip")}
    pipeline = load_pcdms_pipeline(assemble_trained(tmp_path / "pcdms", **runs))
    torch.testing.assert_close(generate(pipeline, pose).images, generate(whole, pose).images, rtol=0, atol=1e-5)

    # Written in float16 (half the bytes), read back as float32: the weights rounded to float16, nothing else.
    half = load_pcdms_pipeline(assemble_trained(tmp_path / "pcdms-fp16", **runs, dtype=torch.float16))
    weights = dict(pipeline.inpaint.named_parameters())
    for name, parameter in half.inpaint.named_parameters():
        assert parameter.dtype == torch.float32
        assert torch.equal(parameter, weights[name].half().float())
    torch.testing.assert_close(generate(half, pose).images, generate(whole, pose).images, rtol=0, atol=2e-2)

    other = RefinePipeline(tiny_vae(), whole.image_encoder, whole.refine, whole.refine_scheduler)
    other.save_pretrained(tmp_path / "refine-other-vae")
    with pytest.raises(PcdmsError, match=r"refine-other-vae: its vae differs from the stage-2 model's"):
        assemble_trained(tmp_path / "bad", **{**runs, "refine": tmp_path / "refine-other-vae"})


@pytest.fixture(scope="module")
def converted(folders, tmp_path_factory):
    return official(folders, tmp_path_factory.mktemp("converted") / "pcdms")


@pytest.fixture
def inputs(tmp_path, pose):
    from pcdms.pose import write_pose_json

    body_image(pose).resize((64, 128)).save(tmp_path / "person.png")
    write_pose_json(tmp_path / "person.json", pose.resize((64, 128)))
    write_pose_json(tmp_path / "target.json", pose.hflip())
    return tmp_path


def test_convert_official_on_the_command_line(folders, tmp_path, capsys):
    status, out, err = run(
        capsys, "convert", "official", "--prior", folders / "stage1", "--inpaint", folders / "stage2",
        "--refine", folders / "stage3", "--stable-diffusion", folders / "sd", "--dinov2", folders / "dinov2",
        "--clip", folders / "clip", "--out", tmp_path / "pcdms",
    )  # fmt: skip
    assert status == 0 and out.strip() == f"PCDMs pipeline: {tmp_path / 'pcdms'}" and err == ""
    assert load_pcdms_pipeline(tmp_path / "pcdms").stages == ("prior", "inpaint", "refine")
    status, _, err = run(
        capsys, "convert", "official", "--prior", folders / "stage2", "--inpaint", folders / "stage2",
        "--stable-diffusion", folders / "sd", "--dinov2", folders / "dinov2", "--clip", folders / "clip",
        "--out", tmp_path / "wrong",
    )  # fmt: skip
    assert status == 1
    assert_one_line_error(err, "given as the stage-1 prior checkpoint, but it is a stage-2 inpainting checkpoint")
    assert not (tmp_path / "wrong").exists()


def test_generate_one_pair_with_intermediates_and_per_stage_settings(converted, inputs, capsys):
    def generate_to(name, *options):
        out = inputs / name
        argv = ["generate", "--model", converted, "--source", inputs / "person.png", "--source-pose"]
        argv += [inputs / "person.json", "--target-pose", inputs / "target.json", "--out", out, "--size", "64x128"]
        status, printed, err = run(capsys, *argv, "--steps", "2", *options)
        assert status == 0, err
        return out, printed

    out, printed = generate_to("a.png", "--intermediates")
    coarse, embedding = inputs / "a_coarse.png", inputs / "a_embedding.npy"
    assert printed.split() == [str(out), str(coarse), str(embedding)]
    assert Image.open(out).size == (64, 128) and np.load(embedding).shape == (1, 32)
    again, _ = generate_to("b.png", "--intermediates")
    assert out.read_bytes() == again.read_bytes()  # the same seed, the same image
    refined_more, _ = generate_to("c.png", "--intermediates", "--steps", "refine=3")
    assert (inputs / "c_coarse.png").read_bytes() == coarse.read_bytes()  # stage 3's steps leave stage 2 alone
    assert refined_more.read_bytes() != out.read_bytes()
    reseeded, _ = generate_to("d.png", "--intermediates", "--seed", "refine=7")
    assert (inputs / "d_coarse.png").read_bytes() == coarse.read_bytes()
    assert reseeded.read_bytes() != out.read_bytes()
    stage2, _ = generate_to("e.png", "--stop-after", "inpaint")
    assert stage2.read_bytes() == coarse.read_bytes()


def test_generate_a_pairs_file_resumes_and_reports_bad_pairs(converted, inputs, capsys):
    from pcdms.pose import read_pose_json, render_pose

    render_pose(read_pose_json(inputs / "target.json")).save(inputs / "drawn.png")  # a pose image as the target
    (inputs / "pairs.csv").write_text(
        "# source, target pose, source pose\nperson.png,target.json,person.json\n"
        "person.png,drawn.png,person.json\nmissing.png,target.json,person.json\n"
    )
    argv = ["generate", "--model", converted, "--pairs", inputs / "pairs.csv", "--out", inputs / "out"]
    argv += ["--size", "64x128", "--steps", "2", "--batch-size", "2"]
    status, out, err = run(capsys, *argv)
    assert status == 1
    assert "missing.png" in err and "Traceback" not in err
    assert sorted(path.name for path in (inputs / "out").glob("*.png")) == [
        "person_to_drawn.png",
        "person_to_target.png",
    ]
    assert "2 pairs generated, 0 already there" in out
    status, out, _ = run(capsys, *argv[:-4], "--size", "64x128", "--steps", "2")
    assert "already there" in out and "2 already there" in out


def test_generate_errors_are_one_line(converted, inputs, capsys, monkeypatch):
    monkeypatch.setattr("pcdms.bundled.bundled_model_path", lambda: inputs / "no-bundled-model")
    status, _, err = run(
        capsys,
        "generate",
        "--source",
        inputs / "person.png",
        "--target-pose",
        inputs / "target.json",
        "--out",
        inputs / "x.png",
    )
    assert status == 1
    assert_one_line_error(err, "no-bundled-model: the bundled model is missing from this install; pass --model DIR")
    status, _, err = run(
        capsys,
        "generate",
        "--model",
        converted,
        "--source",
        inputs / "person.png",
        "--target-pose",
        inputs / "nowhere.json",
        "--out",
        inputs / "x.png",
        "--source-pose",
        inputs / "person.json",
    )
    assert status == 1
    assert_one_line_error(err, "nowhere.json")
    assert not (inputs / "x.png").exists()
    with pytest.raises(SystemExit) as usage_error:
        main(
            [
                "generate",
                "--source",
                "person.png",
                "--target-pose",
                "target.json",
                "--out",
                "x.png",
                "--steps",
                "stage4=2",
            ]
        )
    assert usage_error.value.code == 2
    assert "the stage is one of prior, inpaint, refine" in capsys.readouterr().err


class FakeProcess:
    """What ``accelerate.PartialState`` tells one of ``count`` processes."""

    def __init__(self, index, count):
        self.process_index, self.num_processes = index, count
        self.is_main_process = self.is_local_main_process = index == 0
        self.device = torch.device("cpu")

    def wait_for_everyone(self):
        pass


def pixels(path):
    return np.asarray(Image.open(path), dtype=np.int16)


def test_generate_pairs_gives_the_same_images_batched_resumed_or_sharded(converted, inputs, capsys, monkeypatch):
    from pcdms.pose import read_pose_json, write_pose_json

    write_pose_json(inputs / "raised.json", read_pose_json(inputs / "target.json").hflip())
    write_pose_json(inputs / "again.json", read_pose_json(inputs / "target.json"))
    (inputs / "pairs.csv").write_text(
        "person.png,target.json,person.json\nperson.png,raised.json,person.json\nperson.png,again.json,person.json\n"
    )

    def generate(out, *options):
        argv = ["generate", "--model", converted, "--pairs", inputs / "pairs.csv", "--out", inputs / out]
        status, printed, err = run(capsys, *argv, "--size", "64x128", "--steps", "2", *options)
        assert status == 0, err
        return printed

    generate("batched", "--batch-size", "3")
    names = sorted(path.name for path in (inputs / "batched").glob("*.png"))
    assert len(names) == 3
    # A pair's noise comes from its own generator: alone or in a batch of 3, the same image (batched matmuls
    # round differently in the last bits: at most one level of 255 here).
    generate("alone", "--batch-size", "1")
    for name in names:
        assert np.abs(pixels(inputs / "alone" / name) - pixels(inputs / "batched" / name)).max() <= 1
    # Two processes of an accelerate launch share the pairs out; together they write each pair once.
    for index in (0, 1):
        monkeypatch.setattr("accelerate.PartialState", lambda index=index, **_: FakeProcess(index, 2))
        printed = generate("sharded", "--batch-size", "3")
        assert f"{2 - index} pairs generated (process {index + 1} of 2)" in printed
    for name in names:
        assert np.abs(pixels(inputs / "sharded" / name) - pixels(inputs / "batched" / name)).max() <= 1
    monkeypatch.undo()
    # An interrupted run resumes with the missing pair only, and writes the image it would have written.
    (inputs / "batched" / names[1]).unlink()
    assert "1 pairs generated, 2 already there" in generate("batched", "--batch-size", "3")
    assert np.abs(pixels(inputs / "batched" / names[1]) - pixels(inputs / "alone" / names[1])).max() <= 1
    # Nor can a run with other settings add to the folder: its images would be labelled with settings they lack.
    (inputs / "batched" / names[1]).unlink()
    argv = ["generate", "--model", converted, "--pairs", inputs / "pairs.csv", "--out", inputs / "batched"]
    status, _, err = run(capsys, *argv, "--size", "64x128", "--steps", "3")
    assert status == 1 and not (inputs / "batched" / names[1]).exists()
    assert_one_line_error(
        err,
        f"{inputs / 'batched'}: holds images generated with other settings (steps ",
        '{"prior": 2, "inpaint": 2, "refine": 2} there, {"prior": 3, "inpaint": 3, "refine": 3} now); '
        "write to another folder, or resume with the same options",
    )
    assert json.loads((inputs / "batched" / "pcdms-generate.json").read_text())["steps"]["inpaint"] == 2
    # Whichever pairs file: a folder that holds any image keeps the settings it was made with.
    (inputs / "one.csv").write_text("person.png,target.json,person.json\n")
    (inputs / "other.csv").write_text("person.png,raised.json,person.json\n")
    argv = ["generate", "--model", converted, "--out", inputs / "mixed", "--size", "64x128"]
    assert run(capsys, *argv, "--pairs", inputs / "one.csv", "--steps", "2")[0] == 0
    status, _, err = run(capsys, *argv, "--pairs", inputs / "other.csv", "--steps", "3")
    assert status == 1 and len(list((inputs / "mixed").glob("*.png"))) == 1
    assert_one_line_error(err, "holds images generated with other settings (steps ")


def test_generate_best_of_is_an_oracle_selection_labelled_in_the_evaluation(converted, inputs, capsys):
    from pcdms.evaluation.ssim import ssim
    from pcdms.pose import read_pose_json

    truth = inputs / "truth"
    truth.mkdir()
    body_image(read_pose_json(inputs / "target.json")).resize((64, 128)).save(truth / "target.png")
    (inputs / "pairs.csv").write_text("person.png,target.json,person.json\n")
    argv = ["generate", "--model", converted, "--pairs", inputs / "pairs.csv", "--size", "64x128", "--steps", "2"]
    status, _, err = run(capsys, *argv, "--out", inputs / "best", "--best-of", "3", "--ground-truth", truth)
    assert status == 0, err
    status, _, err = run(capsys, *argv, "--out", inputs / "all", "--samples", "3")
    assert status == 0, err
    samples = [inputs / "all" / f"person_to_target_{index}.png" for index in range(3)]
    target = torch.from_numpy(pixels(truth / "target.png") / 255).permute(2, 0, 1)[None]
    scores = [ssim(torch.from_numpy(pixels(path) / 255).permute(2, 0, 1)[None], target).item() for path in samples]
    assert len(set(scores)) == 3
    best = samples[int(np.argmax(scores))]
    assert np.abs(pixels(inputs / "best" / "person_to_target.png") - pixels(best)).max() <= 1
    manifest = json.loads((inputs / "best" / "pcdms-generate.json").read_text())
    assert manifest["best_of"] == 3 and manifest["selection"].startswith("oracle: best of 3 samples per pair")
    status, out, err = run(
        capsys, "evaluate", "--generated", inputs / "best", "--ground-truth", truth, "--size", "64x128",
        "--skip", "pckh",
    )  # fmt: skip
    assert status == 0, err
    assert out.startswith("ORACLE SELECTION: best of 3 samples per pair, chosen by SSIM to the ground truth")
    report = json.loads((inputs / "best" / "pcdms-evaluate-pcdms-64x128.json").read_text())
    assert report["oracle_selection"]["best_of"] == 3 and report["pairs"] == 1
    assert report["skipped"] == {
        "lpips": "skipped: needs --alexnet FILE (torchvision's AlexNet weights)",
        "fid": "skipped: needs --real DIR (the training images)",
        "pckh": "skipped: --skip",
    }
    # The same folder cannot take images of another selection, nor --best-of go without the ground truth.
    status, _, err = run(capsys, *argv, "--out", inputs / "best", "--best-of", "2", "--ground-truth", truth)
    assert status == 1
    assert_one_line_error(err, "holds images chosen as best of 3, not 2; write to another folder")
    status, _, err = run(capsys, *argv, "--out", inputs / "x", "--best-of", "2")
    assert status == 1
    assert_one_line_error(err, "--best-of needs --pairs and --ground-truth")
