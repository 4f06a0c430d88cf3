import pytest

from pcdms.errors import PcdmsError
from pcdms.training.config import load_config

BASE = "stage: prior\noutput_dir: runs/x\ndata: {root: data}\nprior: {image_encoder: clip}\n"


def write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_settings_are_read_with_defaults_and_overrides(tmp_path):
    path = write(tmp_path, BASE + "training: {learning_rate: 1e-4, max_steps: 10}\n")
    config = load_config(path, {"training.batch_size": 4, "prior.clip_mean": "auto"})
    assert config.training.learning_rate == 1e-4  # YAML reads 1e-4 as text; it becomes a number
    assert (config.training.max_steps, config.training.batch_size) == (10, 4)
    assert config.training.max_grad_norm == 10.0 and config.training.lr_scheduler == "constant"  # official stage 1
    assert config.prior.clip_mean == "auto" and config.prior.clip_std == 0.415
    assert config.prior.drop_source_image == config.prior.drop_source_pose == config.prior.drop_target_pose == 0.1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("training: {lerning_rate: 1}", "training: unknown setting 'lerning_rate' \\(did you mean learning_rate\\?\\)"),
        ("training: {max_steps: 1.5}", "training.max_steps: expected a whole number, got 1.5"),
        ("training: {max_steps: 0}", "training.max_steps must be at least 1"),
        ("training: {gradient_checkpointing: 1}", "training.gradient_checkpointing: expected true or false"),
        ("training: {mixed_precision: fp8}", "training.mixed_precision must be one of no, fp16, bf16"),
        ("training: {lr_scheduler: cosine_annealing}", "training.lr_scheduler must be one of linear, cosine"),
        ("prior: {image_encoder: c, clip_std: wide}", "prior.clip_std must be one of auto, got 'wide'"),
        ("prior: {image_encoder: c, drop_target_pose: 2}", "prior.drop_target_pose is a probability"),
        (
            "prior: {image_encoder: c, pose_convention: pixels}",
            "prior.pose_convention must be one of pcdms-official, fraction",
        ),
        ("prior: {}", "prior.image_encoder is not set"),
        ("colour: blue", "unknown setting 'colour'"),
    ],
)
def test_bad_settings_are_named(tmp_path, extra, message):
    text = BASE.replace("prior: {image_encoder: clip}\n", "") if extra.startswith("prior") else BASE
    with pytest.raises(PcdmsError, match=message):
        load_config(write(tmp_path, text + extra + "\n"))


def test_file_level_errors(tmp_path):
    with pytest.raises(PcdmsError, match=r"nowhere.yaml: no such file"):
        load_config(tmp_path / "nowhere.yaml")
    with pytest.raises(PcdmsError, match=r"run.yaml: not valid YAML at line 2"):
        load_config(write(tmp_path, "stage: prior\n  output_dir: [\n"))
    with pytest.raises(PcdmsError, match="stage must be one of vae, prior, inpaint, refine"):
        load_config(write(tmp_path, BASE.replace("stage: prior", "stage: gan")))
    with pytest.raises(PcdmsError, match="a prior run needs a 'prior:' section"):
        load_config(write(tmp_path, "stage: prior\noutput_dir: x\ndata: {root: d}\n"))
    with pytest.raises(PcdmsError, match=r"data.root is not set"):
        load_config(write(tmp_path, "stage: prior\noutput_dir: x\nprior: {image_encoder: c}\n"))


def test_the_committed_configs_are_valid():
    from pathlib import Path

    configs = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        config = load_config(path)
        assert config.stage == path.name.split("-")[0]
        assert getattr(config, config.stage) is not None
