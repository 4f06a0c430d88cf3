"""--preset and --threads on the command line (issue 20): the preset reaches the pipeline with its own defaults
under the options given, and the thread count reaches torch before the command runs."""

import json

import pytest
import torch

from helpers import body_image, standing_pose
from pcdms.cli import main
from pcdms.commands.common import PRESET_NAMES
from pcdms.pipelines import pcdms as pcdms_module
from pcdms.pipelines.presets import PRESETS
from pcdms.pose import save_pose
from tiny_pcdms import tiny_pcdms


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "tiny"
    tiny_pcdms().save_pretrained(folder)
    return folder


@pytest.fixture
def calls(monkeypatch):
    """The keyword arguments of every PCDMsPipeline call, which then runs as usual."""
    seen = []
    call = pcdms_module.PCDMsPipeline.__call__

    def recording(self, *args, **kwargs):
        seen.append(kwargs)
        return call(self, *args, **kwargs)

    monkeypatch.setattr(pcdms_module.PCDMsPipeline, "__call__", recording)
    return seen


def generate(model, tmp_path, pose, *options):
    body_image(pose).resize((64, 128)).save(tmp_path / "person.png")
    save_pose(tmp_path / "target.json", pose.hflip())
    argv = ["generate", "--model", model, "--source", tmp_path / "person.png", "--source-pose"]
    argv += [tmp_path / "target.json", "--target-pose", tmp_path / "target.json", "--out", tmp_path / "out.png"]
    return main([str(part) for part in [*argv, "--steps", "prior=2", *options]])


def test_the_command_line_knows_every_preset():
    assert tuple(PRESETS) == PRESET_NAMES


def test_generate_passes_the_preset_with_its_steps(model, tmp_path, pose, calls):
    assert generate(model, tmp_path, pose, "--preset", "fast", "--steps", "refine=3") == 0
    (kwargs,) = calls
    assert kwargs["preset"] == "fast"
    assert (kwargs["inpaint_steps"], kwargs["refine_steps"], kwargs["prior_steps"]) == (8, 3, 2)
    assert kwargs["inpaint_guidance"] == 2.0  # the model's (here the official) guidance: fast leaves it
    assert (tmp_path / "out.png").is_file()


def test_generate_without_a_preset_uses_the_model_s_settings(model, tmp_path, pose, calls):
    assert generate(model, tmp_path, pose, "--steps", "2") == 0
    assert calls[0]["preset"] is None and calls[0]["inpaint_steps"] == 2


def test_an_unknown_preset_is_a_usage_error(model, tmp_path, pose, capsys):
    with pytest.raises(SystemExit) as exit_:
        generate(model, tmp_path, pose, "--preset", "quick")
    assert exit_.value.code == 2 and "invalid choice: 'quick'" in capsys.readouterr().err


def test_threads_reach_torch_before_the_command_runs(monkeypatch, capsys):
    from pcdms import devices

    counts = []
    monkeypatch.setattr(torch, "set_num_threads", counts.append)
    monkeypatch.setattr(devices, "usable_cpus", lambda: list(range(8)))
    assert main(["generate", "--out", "x.png", "--threads", "3"]) == 1  # then refused: no --source
    assert counts == [3]
    assert "generate needs --source" in capsys.readouterr().err
    for bad in ("0", "9", "99999"):  # none, or more threads than CPUs, which only wait for each other
        assert main(["generate", "--out", "x.png", "--threads", bad]) == 1
        assert capsys.readouterr().err.strip() == (
            f"pcdms: error: --threads must be a whole number from 1 to the 8 CPUs this process may use, got {bad}"
        )
    assert counts == [3]


def test_animate_records_its_preset(tmp_path):
    from pcdms.animation.animate import AnimationSettings, recorded_settings

    assert "preset" not in recorded_settings(AnimationSettings())  # folders from before presets still resume
    assert recorded_settings(AnimationSettings(preset="fast"))["preset"] == "fast"
    assert json.dumps(recorded_settings(AnimationSettings(preset="fast")))


class StandingPose:
    """A stand-in extractor: the standing pose in the image's frame."""

    def __call__(self, image):
        return standing_pose(image.size)


def test_the_page_s_preset_fills_its_settings_and_reaches_the_pipeline(tmp_path, pose, calls):
    from pcdms.app import PoseTransferApp, Settings
    from pcdms.pose.pose_json import pose_to_dict

    app = PoseTransferApp(tiny_pcdms(), [], [], extractor=StandingPose())
    fast = app.recommended_settings("fast")
    assert (fast.inpaint_steps, fast.refine_steps, fast.inpaint_guidance, fast.preset) == (8, 8, 2.0, "fast")
    assert app.recommended_settings() == Settings(20, 20, 20, 2.0, 2.0, refine_strength=1.0)
    body_image(pose).resize((64, 128)).save(tmp_path / "person.png")
    settings = Settings(prior_steps=2, inpaint_steps=2, refine_steps=2, preset="fastest")
    app.generate(str(tmp_path / "person.png"), None, pose_to_dict(pose.hflip()), settings)
    assert calls[0]["preset"] == "fastest" and calls[0]["inpaint_steps"] == 2
