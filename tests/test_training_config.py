import pytest

from pcdms.errors import PcdmsError
from pcdms.training.config_file import load_config

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
        # every number checked when the file is read: NaN, infinity, sign, zero, type
        ("training: {learning_rate: .nan}", "training.learning_rate: expected a finite number, got nan"),
        ("training: {learning_rate: nan}", "training.learning_rate: expected a finite number, got 'nan'"),
        ("training: {max_grad_norm: .inf}", "training.max_grad_norm: expected a finite number, got inf"),
        ("training: {learning_rate: -3.0e-4}", "training.learning_rate must be above 0, got -0.0003"),
        ("training: {learning_rate: 0}", "training.learning_rate must be above 0, got 0.0"),
        ("training: {learning_rate: fast}", "training.learning_rate: expected a number, got 'fast'"),
        ("training: {learning_rate: true}", "training.learning_rate: expected a number, got True"),
        ("training: {weight_decay: -0.01}", "training.weight_decay must be at least 0, got -0.01"),
        ("training: {adam_beta2: 1}", "training.adam_beta2 must be at least 0 and below 1, got 1.0"),
        ("training: {adam_epsilon: 0}", "training.adam_epsilon must be above 0, got 0.0"),
        ("training: {warmup_steps: -5}", "training.warmup_steps must be at least 0, got -5"),
        ("training: {max_grad_norm: -1}", "training.max_grad_norm must be at least 0, got -1.0"),
        ("training: {ema_decay: 1.5}", "training.ema_decay must be above 0 and below 1, got 1.5"),
        ("training: {checkpoints_to_keep: 0}", "training.checkpoints_to_keep must be at least 1, got 0"),
        ("training: {checkpoints_to_keep: -1}", "training.checkpoints_to_keep must be at least 1, got -1"),
        ("training: {num_workers: -2}", "training.num_workers must be at least 0, got -2"),
        ("training: {batch_size: '8'}", "training.batch_size: expected a whole number, got '8'"),
        ("seed: -1", "seed must be between 0 and 4294967295, got -1"),
        ("prior: {image_encoder: c, clip_std: 0}", "prior.clip_std must be above 0, got 0.0"),
        ("prior: {image_encoder: c, noise_offset: -0.1}", "prior.noise_offset must be at least 0, got -0.1"),
        ("prior: {image_encoder: c, embedding_batch_size: 0}", "prior.embedding_batch_size must be at least 1"),
        ("prior: {image_encoder: c, clip_mean: .inf}", "prior.clip_mean: expected a finite number, got inf"),
        (
            "prior: {image_encoder: c, architecture: {num_layer: 2}}",
            "prior.architecture: PosePriorTransformer has no argument 'num_layer' \\(did you mean num_layers\\?\\)",
        ),
        ("prior: {image_encoder: c, architecture: {dropout: .nan}}", "prior.architecture.dropout: expected finite"),
    ],
)
def test_bad_settings_are_named(tmp_path, extra, message):
    text = BASE.replace("prior: {image_encoder: clip}\n", "") if extra.startswith("prior") else BASE
    with pytest.raises(PcdmsError, match=message) as error:
        load_config(write(tmp_path, text + extra + "\n"))
    assert str(error.value).startswith(f"{tmp_path / 'run.yaml'}: ") and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("negative_lr.yaml", "negative_lr.yaml: training.learning_rate must be above 0, got -0.0003"),
        ("keep_negative.yaml", "keep_negative.yaml: training.checkpoints_to_keep must be at least 1, got -1"),
    ],
)
def test_the_cases_are_refused_before_any_data_is_read(capsys, name, message):
    """Both name a toy dataset that does not exist here: the setting is named, not the data."""
    from pathlib import Path

    from test_cli import assert_one_line_error, run

    config = Path(__file__).parent / "data" / "cases" / name
    status, _, err = run(capsys, "train", "prior", "--config", config)
    assert status != 0
    assert_one_line_error(err, message)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("seed.x=1", "--set seed.x=1: seed is a setting, not a section"),
        ("data.root.x=1", "--set data.root.x=1: data.root is a setting ('data' in "),
        ("training.max_steps.x=1", "--set training.max_steps.x=1: training.max_steps is a setting (10 in "),
        (".x=1", "--set .x=1: expected section.name=value"),
        ("training.=1", "--set training.=1: expected section.name=value"),
        ("training.learning_rate=.nan", "training.learning_rate: expected a finite number, got nan"),
        ("training.learning_rate=-1", "training.learning_rate must be above 0, got -1.0"),
        ("training.checkpoints_to_keep=0", "training.checkpoints_to_keep must be at least 1, got 0"),
        ("training.colour=blue", "training: unknown setting 'colour'"),
        ("training=3", "training: expected a mapping of settings, got 3"),
    ],
)
def test_bad_set_options_are_one_line(tmp_path, capsys, setting, message):
    from test_cli import assert_one_line_error, run

    path = write(tmp_path, BASE + "training: {max_steps: 10}\n")
    status, _, err = run(capsys, "train", "prior", "--config", path, "--set", setting)
    assert status != 0
    assert_one_line_error(err, message)


def test_set_fills_an_empty_section(tmp_path):
    path = write(tmp_path, BASE.replace("prior: {image_encoder: clip}", "prior:"))
    assert load_config(path, {"prior.image_encoder": "clip"}).prior.image_encoder == "clip"


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
