"""The command line: results on success, and on bad input one line naming the file, no traceback."""

import json

import numpy as np
import pytest
from PIL import Image, ImageFilter

from pcdms.bundled import example_image_path, street_examples_path
from pcdms.cli import main
from pcdms.pose import load_pose, read_annotation_csv, render_pose, write_pose_json
from test_data import make_csv_layout


def run(capsys, *argv):
    status = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pcdms: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_demo_runs_the_bundled_model_as_generate_does(tmp_path, capsys):
    status, out, err = run(capsys, "demo", "--out", tmp_path / "demo")
    assert status == 0, err
    name = "0086_c1s1_000635_00_to_0086_c1s1_000670_00"
    image, grid = tmp_path / "demo" / f"{name}.png", tmp_path / "demo" / f"{name}_grid.png"
    assert str(image) in out and str(grid) in out
    assert Image.open(image).size == (64, 128)
    assert Image.open(grid).size[0] > 5 * 128  # five columns at twice the size
    examples = street_examples_path()
    status, _, err = run(
        capsys,
        "generate",
        "--source",
        examples / "0086_c1s1_000635_00.jpg",
        "--target-pose",
        examples / "0086_c1s1_000670_00.json",
        "--source-pose",
        examples / "0086_c1s1_000635_00.json",
        "--out",
        tmp_path / "generated.png",
    )
    assert status == 0, err
    assert np.array_equal(np.asarray(Image.open(image)), np.asarray(Image.open(tmp_path / "generated.png")))


def test_pose_extract(tmp_path, capsys):
    pytest.importorskip("mediapipe")
    blank = tmp_path / "wall.png"
    Image.new("RGB", (128, 128), (90, 90, 90)).save(blank)
    status, out, err = run(capsys, "pose", "extract", example_image_path(), blank, "--out", tmp_path / "out", "--txt")
    assert status == 1  # one of the two had nobody in it
    assert_one_line_error(err, "wall.png: no person found")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "astronaut.json",
        "astronaut.txt",
        "astronaut_overlay.png",
        "astronaut_pose.png",
    ]
    assert "astronaut.jpg: " in out


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["pose", "extract", "{tmp}/missing.jpg", "--out", "{tmp}/o"], ["missing.jpg: no such file"]),
        (
            ["pose", "render", "{tmp}/pose.txt", "--out", "{tmp}/map.png"],
            ["pose.txt: a PCDMs pose txt does not record"],
        ),
        (["pose", "render", "{tmp}/pose.json", "--out", "{tmp}/map.tiff2"], ["map.tiff2: unknown image extension"]),
        (["pose", "convert", "{tmp}/broken.json", "--out", "{tmp}/x.json"], ["broken.json: invalid JSON"]),
        (["data", "validate", "{tmp}/nowhere"], ["nowhere: no such folder"]),
        (["pose", "extract", "{tmp}/a/x.png", "{tmp}/b/x.png", "--out", "{tmp}/o"], ["named x.*"]),
        (["serve", "--poses", "{tmp}/nowhere"], ["nowhere: no such folder of pose files"]),
        (["serve", "--model", "{tmp}"], ["model_index.json"]),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, pose, argv, fragments):
    write_pose_json(tmp_path / "pose.json", pose)
    (tmp_path / "pose.txt").write_text("1 2\n" * 18)
    (tmp_path / "broken.json").write_text('{"people": [')
    status, _, err = run(capsys, *(arg.format(tmp=tmp_path) for arg in argv))
    assert status == 1
    assert_one_line_error(err, *fragments)
    assert not (tmp_path / "map.tiff2").exists() and not (tmp_path / "x.json").exists()


def test_unwritable_output_is_one_line(tmp_path, capsys, pose):
    write_pose_json(tmp_path / "pose.json", pose)
    (tmp_path / "file").write_text("")
    status, _, err = run(capsys, "pose", "render", tmp_path / "pose.json", "--out", tmp_path / "file" / "map.png")
    assert status == 1
    assert_one_line_error(err, "file")


def test_bad_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["pose", "render", "p.json", "--out", "m.png", "--size", "12"])
    assert exit_info.value.code == 2
    assert "is not WIDTHxHEIGHT" in capsys.readouterr().err


def test_pose_render_and_convert(tmp_path, capsys, pose):
    write_pose_json(tmp_path / "pose.json", pose)
    status, out, _ = run(
        capsys, "pose", "render", tmp_path / "pose.json", "--out", tmp_path / "map.png", "--size", "352x512"
    )
    assert status == 0 and out.strip() == str(tmp_path / "map.png")
    assert np.array_equal(np.array(Image.open(tmp_path / "map.png")), np.array(render_pose(pose, (352, 512))))

    photo = tmp_path / "photo.png"
    Image.new("RGB", (88, 128), (200, 200, 200)).save(photo)
    assert run(capsys, "pose", "render", tmp_path / "pose.json", "--out", tmp_path / "on.png", "--on", photo)[0] == 0
    assert Image.open(tmp_path / "on.png").size == (88, 128)

    assert run(capsys, "pose", "convert", tmp_path / "pose.json", "--out", tmp_path / "pose.txt")[0] == 0
    args = ("pose", "convert", tmp_path / "pose.txt", "--image-size", "176x256", "--out", tmp_path / "op.json")
    assert run(capsys, *args, "--format", "openpose")[0] == 0
    assert len(json.loads((tmp_path / "op.json").read_text())["people"]) == 1
    assert load_pose(tmp_path / "op.json").allclose(pose, atol=1e-6)


def test_data_commands(tmp_path, capsys):
    root = make_csv_layout(tmp_path / "df", "fasion-resize", (176, 256), "train", (176, 256))
    status, out, _ = run(capsys, "data", "validate", root)
    assert status == 0 and "pairs: 3 (3 usable)" in out
    status, out, _ = run(capsys, "data", "prepare-poses", root, "--out", tmp_path / "poses")
    assert status == 0 and "3 written" in out
    assert len(list((tmp_path / "poses" / "openpose_all_img").iterdir())) == 3
    (root / "train" / "a.jpg").unlink()
    status, out, _ = run(capsys, "data", "validate", root, "--check-images")
    assert status == 1 and "images missing: 1" in out and "pairs: 3 (1 usable)" in out


def test_toy_train_and_sample_prior(tmp_path, capsys):
    assert (
        run(capsys, "toy", tmp_path / "toy", "--people", "3", "--poses", "3", "--test-people", "1", "--vae-steps", "2")[
            0
        ]
        == 0
    )
    config = tmp_path / "prior.yaml"
    config.write_text(
        f"stage: prior\noutput_dir: {tmp_path / 'run'}\ndata: {{root: {tmp_path / 'toy' / 'data'}}}\n"
        "training: {max_steps: 200, batch_size: 12, learning_rate: 1.0e-3, checkpoint_every: 100}\n"
        f"prior: {{image_encoder: {tmp_path / 'toy' / 'clip'}, clip_mean: auto, clip_std: auto,\n"
        "  architecture: {num_layers: 2, num_attention_heads: 2, attention_head_dim: 16, pose_hidden_dim: 32}}\n"
    )
    status, out, err = run(capsys, "train", "prior", "--config", config, "--set", "training.max_steps=300")
    assert status == 0, err
    assert f"trained prior: {tmp_path / 'run' / 'model'}" in out
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-100", "step-200", "step-300"]

    model = ("--model", tmp_path / "run" / "model", "--image-encoder", tmp_path / "toy" / "clip")
    status, out, err = run(
        capsys,
        "sample",
        "prior",
        *model,
        "--data",
        tmp_path / "toy" / "data",
        "--split",
        "train",
        "--out",
        tmp_path / "npy",
        "--device",
        "cpu",
    )
    assert status == 0, err
    similarity, copying = (
        float(value)
        for value in out.split("targets' CLIP embeddings: ")[1].replace(")", "").split(" (copying the source's: ")
    )
    assert similarity > 0.9 > copying
    embedding = np.load(tmp_path / "npy" / "p000_00_to_p000_01.npy")
    assert embedding.shape == (1, 32) and np.isfinite(embedding).all()

    annotations = read_annotation_csv(tmp_path / "toy" / "data" / "market-annotation-train.csv", (64, 128))
    write_pose_json(tmp_path / "source.json", annotations["p000_00.png"])
    write_pose_json(tmp_path / "target.json", annotations["p000_01.png"])
    photos = tmp_path / "toy" / "data" / "train"
    one = ("--source", photos / "p000_00.png", "--source-pose", tmp_path / "source.json", "--out", tmp_path / "one.npy")
    status, out, err = run(
        capsys,
        "sample",
        "prior",
        *model,
        *one,
        "--target-pose",
        tmp_path / "target.json",
        "--target",
        photos / "p000_01.png",
    )
    assert status == 0, err
    assert np.load(tmp_path / "one.npy").shape == (1, 32)
    assert float(out.split("cosine similarity to the target's CLIP embedding: ")[1]) > 0.9
    status, _, err = run(capsys, "sample", "prior", *model, *one, "--target-pose", tmp_path / "nowhere.json")
    assert status == 1
    assert_one_line_error(err, "nowhere.json: no such file")


def test_toy_train_and_sample_inpaint(tmp_path, capsys):
    toy = tmp_path / "toy"
    status, out, _ = run(capsys, "toy", toy, "--people", "2", "--poses", "3", "--test-people", "1", "--vae-steps", "2")
    assert status == 0 and f"tiny VAE: {toy / 'vae'}" in out
    unet = (
        "{block_out_channels: [32, 64], layers_per_block: 1, down_block_types: [CrossAttnDownBlock2D, DownBlock2D], "
        "up_block_types: [UpBlock2D, CrossAttnUpBlock2D], attention_head_dim: 4, norm_num_groups: 8, "
        "cross_attention_dim: 32, projection_class_embeddings_input_dim: 32}"
    )
    config = tmp_path / "inpaint.yaml"
    config.write_text(
        f"stage: inpaint\noutput_dir: {tmp_path / 'run'}\ndata: {{root: {toy / 'data'}}}\n"
        "training: {max_steps: 4, batch_size: 2, checkpoint_every: 2}\n"
        f"inpaint: {{dinov2: {toy / 'dinov2'}, clip: {toy / 'clip'}, vae: {toy / 'vae'}, size: [64, 128],\n"
        f"  architecture: {{unet_config: {unet}, image_feature_dim: 32, pose_block_channels: [4, 8, 8, 16]}}}}\n"
    )
    status, out, err = run(capsys, "train", "inpaint", "--config", config)
    assert status == 0, err
    assert f"trained inpaint: {tmp_path / 'run' / 'model'}" in out

    model = ("--model", tmp_path / "run" / "model", "--steps", "2", "--device", "cpu")
    data = ("--data", toy / "data", "--split", "train", "--clip", toy / "clip", "--out", tmp_path / "coarse")
    status, out, err = run(capsys, "sample", "inpaint", *model, *data)
    assert status == 0, err
    assert "6 pairs sampled, 0 already there" in out and "mean absolute pixel error to the targets" in out
    assert Image.open(tmp_path / "coarse" / "p000_00_to_p000_01.png").size == (64, 128)
    assert "0 pairs sampled, 6 already there" in run(capsys, "sample", "inpaint", *model, *data)[1]  # resumes
    status, out, err = run(capsys, "sample", "inpaint", *model, *data[:-1], tmp_path / "some", "--max-pairs", "2")
    assert "2 pairs sampled, 0 already there" in out
    assert sorted(path.name for path in (tmp_path / "some").glob("*.png")) == [
        "p000_00_to_p000_01.png",  # pairs 0 and 3 of 6: spread over the list
        "p000_01_to_p000_02.png",
    ]

    photos = toy / "data" / "train"
    np.save(tmp_path / "embedding.npy", np.ones((1, 32), dtype=np.float32))
    one = ("--source", photos / "p000_00.png")
    annotations = read_annotation_csv(toy / "data" / "market-annotation-train.csv", (64, 128))
    write_pose_json(tmp_path / "target.json", annotations["p000_01.png"])
    write_pose_json(tmp_path / "source.json", annotations["p000_00.png"])
    poses = ("--source-pose", tmp_path / "source.json", "--target-pose", tmp_path / "target.json")
    status, out, err = run(
        capsys,
        "sample",
        "inpaint",
        *model,
        *one,
        *poses,
        "--embedding",
        tmp_path / "embedding.npy",
        "--size",
        "44x100",
        "--samples",
        "2",
        "--out",
        tmp_path / "one.png",
    )
    assert status == 0, err
    assert [Image.open(tmp_path / f"one_{index}.png").size for index in range(2)] == [(44, 100)] * 2
    status, _, err = run(
        capsys,
        "sample",
        "inpaint",
        *model,
        *one,
        *poses,
        "--target",
        photos / "p000_01.png",
        "--clip",
        toy / "clip",
        "--out",
        tmp_path / "gt.png",
    )
    assert status == 0, err
    assert Image.open(tmp_path / "gt.png").size == (64, 128)
    status, _, err = run(capsys, "sample", "inpaint", *model, *one, *poses, "--out", tmp_path / "no.png")
    assert status == 1
    assert_one_line_error(err, "needs the target's CLIP embedding: --embedding FILE.npy")
    assert not (tmp_path / "no.png").exists()


def test_train_errors_are_one_line(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "stage: prior\noutput_dir: out\ndata: {root: x}\nprior: {image_encoder: c}\ntraining: {batch: 3}\n"
    )
    status, _, err = run(capsys, "train", "prior", "--config", config)
    assert status == 1
    assert_one_line_error(err, "bad.yaml: training: unknown setting 'batch' (did you mean batch_size?)")
    config.write_text(
        f"stage: prior\noutput_dir: {tmp_path / 'out'}\ndata: {{root: {tmp_path / 'nothing'}}}\nprior: {{image_encoder: c}}\n"
    )
    status, _, err = run(capsys, "train", "prior", "--config", config)
    assert status == 1
    assert_one_line_error(err, "nothing: no such folder")
    with pytest.raises(SystemExit):
        main(["train", "prior", "--config", str(config), "--set", "novalue"])


def test_toy_train_and_sample_refine(tmp_path, capsys):
    toy = tmp_path / "toy"
    assert run(capsys, "toy", toy, "--people", "2", "--poses", "3", "--test-people", "1", "--vae-steps", "2")[0] == 0
    photos = toy / "data" / "train"
    names = [(f"p000_0{s}", f"p000_0{t}") for s in range(3) for t in range(3) if s != t]

    def blurred(path):  # a stand-in for stage 2's image of a training pair
        return Image.open(path).filter(ImageFilter.GaussianBlur(2))

    coarse = tmp_path / "coarse"
    coarse.mkdir()
    for source, target in names[1:]:
        blurred(photos / f"{target}.png").save(coarse / f"{source}_to_{target}.png")
    unet = (
        "{block_out_channels: [32, 64], layers_per_block: 1, down_block_types: [CrossAttnDownBlock2D, DownBlock2D], "
        "up_block_types: [UpBlock2D, CrossAttnUpBlock2D], attention_head_dim: 4, norm_num_groups: 8, "
        "cross_attention_dim: 32}"
    )
    config = tmp_path / "refine.yaml"
    config.write_text(
        f"stage: refine\noutput_dir: {tmp_path / 'run'}\ndata: {{root: {toy / 'data'}}}\n"
        "training: {max_steps: 4, batch_size: 2, checkpoint_every: 2}\n"
        f"refine: {{dinov2: {toy / 'dinov2'}, vae: {toy / 'vae'}, coarse_images: {coarse}, size: [64, 128],\n"
        f"  architecture: {{unet_config: {unet}, image_feature_dim: 32}}}}\n"
    )
    status, _, err = run(capsys, "train", "refine", "--config", config)
    assert status == 1
    assert_one_line_error(
        err,
        f"1 of 6 training pairs have no stage-2 image (first: {coarse / 'p000_00_to_p000_01.png'})",
        f"pcdms sample inpaint --model STAGE2 --clip CLIP --data {toy / 'data'} --split train --out {coarse}",
    )
    blurred(photos / "p000_01.png").save(coarse / "p000_00_to_p000_01.png")
    status, out, err = run(capsys, "train", "refine", "--config", config)
    assert status == 0, err
    assert f"trained refine: {tmp_path / 'run' / 'model'}" in out

    model = ("--model", tmp_path / "run" / "model", "--steps", "2", "--device", "cpu")
    data = ("--data", toy / "data", "--split", "train", "--coarse-images", coarse, "--out", tmp_path / "refined")
    status, out, err = run(capsys, "sample", "refine", *model, *data)
    assert status == 0, err
    assert "6 pairs refined, 0 already there" in out
    assert "mean absolute pixel error to the targets (0-1 scale): " in out and "(the coarse images: " in out
    assert Image.open(tmp_path / "refined" / "p000_00_to_p000_01.png").size == (64, 128)
    assert "0 pairs refined, 6 already there" in run(capsys, "sample", "refine", *model, *data)[1]  # resumes
    status, _, err = run(capsys, "sample", "refine", *model, *data[:4], "--coarse-images", tmp_path, "--out", tmp_path)
    assert status == 1
    assert_one_line_error(err, "p000_00_to_p000_01.png: no stage-2 image for this pair (6 of 6 missing")

    one = ("--source", photos / "p000_00.png", "--coarse", coarse / "p000_00_to_p000_01.png")
    status, out, err = run(
        capsys, "sample", "refine", *model, *one, "--size", "44x100", "--samples", "2", "--out", tmp_path / "one.png"
    )
    assert status == 0, err
    assert [Image.open(tmp_path / f"one_{index}.png").size for index in range(2)] == [(44, 100)] * 2
    status, _, err = run(capsys, "sample", "refine", *model, one[0], one[1], "--out", tmp_path / "x.png")
    assert status == 1
    assert_one_line_error(err, "sample refine needs --source, --coarse and --out")
