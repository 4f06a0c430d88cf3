"""Training checkpoints that can always be resumed from and never run code: saves are atomic (a temporary
folder renamed when complete), ``latest`` falls back past damaged checkpoints to the newest whole one and
continues exactly, and every file of a checkpoint is read weights-only (a pickle that would run code is
refused, naming the file, and the code never runs)."""

# ruff: noqa: F811 (the tests take the imported toy fixture as an argument)

import os
import pickle
import shutil
import warnings

import pytest
import torch

from pcdms.errors import PcdmsError
from pcdms.training import load_config, run_training
from pcdms.training import state as training_state
from test_prior_training import final_state, toy, write_config  # noqa: F401 (toy: a fixture the tests take)

SETTINGS = {"max_steps": 6, "batch_size": 4, "gradient_accumulation_steps": 2, "checkpoint_every": 2, "ema_decay": 0.9}


class RunsCode:
    """Unpickling this creates ``path``: the side effect that must never happen."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.fixture(scope="module")
def straight(tmp_path_factory, toy):
    """A run of 6 steps that was never stopped: what every resumed run must end equal to."""
    folder = tmp_path_factory.mktemp("straight")
    run_training(load_config(write_config(folder, toy, **SETTINGS)))
    return folder / "run"


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, toy):
    """A run stopped (Ctrl-C) after step 4, with checkpoints at steps 2 and 4."""
    folder = tmp_path_factory.mktemp("stopped")
    config = load_config(write_config(folder, toy, **SETTINGS))

    def interrupt(done, loss):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(config, on_step=interrupt)
    return folder / "run"


def stopped_run(folder, toy, stopped):
    """A copy of the stopped run in ``folder``: its config and its checkpoints folder."""
    config = load_config(write_config(folder, toy, **SETTINGS))
    shutil.copytree(stopped, folder / "run")
    return config, folder / "run" / "checkpoints"


def assert_same_run(straight, resumed):
    model_a, optimizer_a = final_state(straight)
    model_b, optimizer_b = final_state(resumed)
    for key in model_a:
        assert torch.equal(model_a[key], model_b[key]), key  # the EMA, as exported
    for index, state in optimizer_a["state"].items():
        assert torch.equal(state["exp_avg"], optimizer_b["state"][index]["exp_avg"])


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda folder: truncate(folder / "optimizer.bin"), "optimizer.bin: truncated or unreadable"),
        (lambda folder: (folder / "random_states_0.pkl").unlink(), "incomplete, random_states_0.pkl is missing"),
    ],
    ids=["truncated-optimizer", "missing-random-state"],
)
def test_resume_falls_back_to_the_newest_whole_checkpoint_and_continues_exactly(
    tmp_path, toy, straight, stopped, capsys, damage, reason
):
    config, checkpoints = stopped_run(tmp_path, toy, stopped)
    assert sorted(path.name for path in checkpoints.iterdir()) == ["step-2", "step-4"]
    damage(checkpoints / "step-4")
    # a save of step 6 killed half-way (an older version, or a kill -9 between the files)
    shutil.copytree(checkpoints / "step-2", checkpoints / "step-6.tmp")
    truncate(checkpoints / "step-6.tmp" / "optimizer.bin")
    capsys.readouterr()

    steps = []
    run_training(config, on_step=lambda step, loss: steps.append(step))
    out = capsys.readouterr().out
    assert steps == [3, 4, 5, 6]
    assert f"skipped {checkpoints / 'step-6.tmp'}: incomplete, its save was interrupted" in out
    assert f"skipped {checkpoints / 'step-4'}: " in out and reason in out
    assert f"resumed from {checkpoints / 'step-2'} at step 2" in out
    assert_same_run(straight, tmp_path / "run")
    # the damaged step-4 was replaced by a whole one, and the interrupted save's folder is gone
    assert sorted(path.name for path in checkpoints.iterdir()) == ["step-2", "step-4", "step-6"]
    training_state.check_checkpoint(checkpoints / "step-4")


@pytest.mark.parametrize(
    ("name", "damage", "reason"),
    [
        ("model.safetensors", truncate, "truncated or unreadable"),
        ("ema.safetensors", truncate, "truncated or unreadable"),
        ("scheduler.bin", lambda path: path.write_bytes(b""), "truncated or unreadable"),
        ("random_states_0.pkl", lambda path: path.write_bytes(b"\x80\x02}q\x00"), "truncated or unreadable"),
        ("model.safetensors", lambda path: path.unlink(), "incomplete, it holds no model state"),
    ],
)
def test_each_damaged_file_is_named(tmp_path, stopped, name, damage, reason):
    folder = tmp_path / "step-4"
    shutil.copytree(stopped / "checkpoints" / "step-4", folder)
    damage(folder / name)
    with pytest.raises(training_state.BrokenCheckpoint, match=reason) as error:
        training_state.check_checkpoint(folder)
    assert str(error.value).startswith(str(folder / name) if "incomplete" not in reason else str(folder))


def test_a_save_that_fails_half_way_leaves_the_last_checkpoint_whole(tmp_path, toy, straight, monkeypatch):
    config = load_config(write_config(tmp_path, toy, **SETTINGS, checkpoints_to_keep=1))
    original = training_state.save_ema

    def failing_save(ema, folder):
        if folder.name.startswith("step-4"):
            raise OSError(28, "No space left on device")  # after accelerate wrote its files
        original(ema, folder)

    monkeypatch.setattr(training_state, "save_ema", failing_save)
    with pytest.raises(OSError):
        run_training(config)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(path.name for path in checkpoints.iterdir()) == ["step-2", "step-4.tmp"]
    monkeypatch.setattr(training_state, "save_ema", original)
    steps = []
    run_training(config, on_step=lambda step, loss: steps.append(step))
    assert steps == [3, 4, 5, 6]
    assert_same_run(straight, tmp_path / "run")
    assert [path.name for path in checkpoints.iterdir()] == ["step-6"]  # keep 1: the newest, nothing else


def test_when_no_checkpoint_is_whole_resume_says_so(tmp_path, toy, stopped):
    config, checkpoints = stopped_run(tmp_path, toy, stopped)
    for name in ("step-2", "step-4"):
        truncate(checkpoints / name / "optimizer.bin")
    with pytest.raises(PcdmsError, match=r"checkpoints: no checkpoint can be resumed \(step-4, step-2 are damaged\)"):
        run_training(config)
    with pytest.raises(PcdmsError, match=r"step-2/optimizer.bin: truncated or unreadable"):
        run_training(config, resume=str(checkpoints / "step-2"))  # a folder named: no fall-back


@pytest.mark.parametrize(
    "name", ["custom_checkpoint_0.pkl", "optimizer.bin", "scheduler.bin", "random_states_0.pkl", "extra.pt"]
)
def test_a_pickle_that_would_run_code_is_refused_and_never_run(tmp_path, toy, stopped, name):
    config, checkpoints = stopped_run(tmp_path, toy, stopped)
    witness = tmp_path / "code-ran"
    torch.save({"state": RunsCode(witness)}, checkpoints / "step-4" / name)
    with pytest.raises(PcdmsError) as error:
        run_training(config)
    message = str(error.value)
    assert message.startswith(f"{checkpoints / 'step-4' / name}: refusing to unpickle it")
    assert "would import posix.system" in message or "would import nt.system" in message
    assert "\n" not in message
    assert not witness.exists()


def test_a_plain_pickle_as_the_ema_state_is_refused_and_never_run(tmp_path, toy, stopped):
    """accelerate's EMA file written with pickle itself (protocol 5), as a tampered folder would hold it."""
    config, checkpoints = stopped_run(tmp_path, toy, stopped)
    witness = tmp_path / "code-ran"
    (checkpoints / "step-4" / "custom_checkpoint_0.pkl").write_bytes(pickle.dumps(RunsCode(witness), protocol=5))
    warnings.filterwarnings("ignore", "Detected pickle protocol")  # torch's, before it refuses the file
    with pytest.raises(PcdmsError, match=r"custom_checkpoint_0.pkl: refusing to unpickle it: .* would import"):
        run_training(config)
    assert not witness.exists()


def test_an_ema_state_in_accelerates_pickle_format_is_refused(tmp_path, toy, stopped):
    """Even a harmless one: accelerate would read it with weights_only=False; pcdms writes ema.safetensors."""
    config, checkpoints = stopped_run(tmp_path, toy, stopped)
    torch.save({"decay": 0.9, "shadow_params": [torch.zeros(2)]}, checkpoints / "step-4" / "custom_checkpoint_0.pkl")
    with pytest.raises(PcdmsError, match=r"custom_checkpoint_0.pkl: refusing to unpickle it: accelerate reads"):
        run_training(config)


def test_resuming_with_or_without_an_ema_other_than_saved_is_named(tmp_path, toy, stopped):
    config, _ = stopped_run(tmp_path, toy, stopped)
    config.training.ema_decay = None
    with pytest.raises(PcdmsError, match=r"step-4: saved with an EMA of the weights; resume with the training.ema_d"):
        run_training(config)


def test_the_checkpoint_written_on_ctrl_c_during_a_save_is_whole(tmp_path, toy, monkeypatch):
    """Ctrl-C while accelerate writes step 4: the interrupt handler's save replaces the partial folder."""
    config = load_config(write_config(tmp_path, toy, **SETTINGS))
    calls = []
    real_save_state = training_state.Accelerator.save_state

    def interrupted_save_state(self, output_dir=None, **kwargs):
        calls.append(output_dir)
        result = real_save_state(self, output_dir, **kwargs)
        if len(calls) == 2:
            (training_state.Path(output_dir) / "optimizer.bin").write_bytes(b"")
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(training_state.Accelerator, "save_state", interrupted_save_state)
    with pytest.raises(KeyboardInterrupt):
        run_training(config)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert [name.rsplit("/", 1)[-1] for name in calls] == ["step-2.tmp", "step-4.tmp", "step-4.tmp"]
    assert sorted(path.name for path in checkpoints.iterdir()) == ["step-2", "step-4"]
    training_state.check_checkpoint(checkpoints / "step-4")
