"""Checkpoints saved by other wrappers load as the model they hold (``module.`` of DDP / DeepSpeed,
``_orig_mod.`` of torch.compile); a pickle that would run code is refused as such, naming the file,
whatever torch's wording, without the code ever running; and a pipeline folder whose component config
is of another class or size is named with that component and its config file."""

import json
import os
import pickle
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from helpers import save_official
from pcdms.checkpoints import check_pipeline_folder, detect_stage, load_official_state_dict, read_state_dict
from pcdms.convert import _checkpoint
from pcdms.errors import PcdmsError
from pcdms.models import PosePriorTransformer
from pcdms.pickle_scan import pickle_imports
from test_cli import assert_one_line_error, run
from test_prior_model import TINY, random_model

CASES = Path(__file__).parent / "data" / "cases"


class RunsCode:
    """Unpickling this creates ``path``: the side effect that must never happen."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_the_module_prefix_case_loads_as_the_stage_2_checkpoint_it_is(tmp_path):
    """An official-layout stage-2 checkpoint whose keys carry DDP / DeepSpeed's ``module.``."""
    state = _checkpoint(CASES / "module_prefix.pt", "inpaint")
    assert sorted(state) == ["pose_proj.conv_in.weight", "unet.conv_in.weight"]
    assert detect_stage(state) == "inpaint"
    with pytest.raises(PcdmsError, match="given as the stage-3 refining checkpoint, but it is a stage-2 inpainting"):
        _checkpoint(CASES / "module_prefix.pt", "refine")


def wrapped(state, prefix):
    """``state`` as a wrapper saves it: ``prefix`` before every key, ``"compiled-part"`` for one compiled block."""
    if prefix == "compiled-part":
        return {key.replace("transformer_blocks.1.", "transformer_blocks.1._orig_mod."): v for key, v in state.items()}
    return {prefix + key: value for key, value in state.items()}


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod.", "module.module.", "compiled-part"])
def test_wrapper_prefixes_are_stripped_by_every_loader(tmp_path, prefix):
    model = random_model(seed=2)
    state = wrapped(model.state_dict(), prefix)
    official = save_official(tmp_path / "mp_rank_00_model_states.pt", state)
    loaded = PosePriorTransformer.from_official(official, **TINY)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value.half().float()), key
    save_file(state, tmp_path / "weights.safetensors")
    torch.save(state, tmp_path / "weights.pt")
    for path in (tmp_path / "weights.safetensors", tmp_path / "weights.pt"):
        assert read_state_dict(path).keys() == model.state_dict().keys()
    assert load_official_state_dict(official).keys() == model.state_dict().keys()


def test_a_prefix_on_some_keys_only_is_named(tmp_path):
    state = {"module.unet.conv_in.weight": torch.zeros(1), "pose_proj.conv_in.weight": torch.zeros(1)}
    path = save_official(tmp_path / "mixed.pt", state)
    with pytest.raises(PcdmsError, match=r"not a PCDMs checkpoint of any stage \(1 of its 2 keys carry a wrapper's"):
        _checkpoint(path, "inpaint")


def malicious_files(folder, witness):
    """The same code-running object as torch.save writes it (a zip) and as pickle writes it (every protocol)."""
    torch.save({"module": {"unet.conv_in.weight": torch.zeros(1)}, "hook": RunsCode(witness)}, folder / "zip.pt")
    paths = [folder / "zip.pt"]
    for protocol in (2, 4, 5):
        path = folder / f"pickle{protocol}.pt"
        path.write_bytes(pickle.dumps({"module": RunsCode(witness)}, protocol=protocol))
        paths.append(path)
    return paths


def test_a_pickle_that_would_run_code_is_named_as_such_and_never_run(tmp_path, capsys):
    witness = tmp_path / "code-ran"
    warnings.filterwarnings("ignore", "Detected pickle protocol")  # torch's, before it refuses the file
    for path in malicious_files(tmp_path, witness):
        assert pickle_imports(path) == [f"{os.system.__module__}.system"]
        with pytest.raises(PcdmsError) as error:
            load_official_state_dict(path)
        message = str(error.value)
        assert message.startswith(f"{path}: refusing to unpickle it: it is a pickle that would import ")
        assert "system: objects other than tensors" in message
        assert "if you trust the file" not in message  # no advice to load a file that calls os.system
        status, _, err = run(
            capsys, "convert", "official", "--inpaint", path, "--stable-diffusion", tmp_path, "--dinov2", tmp_path,
            "--out", tmp_path / "out",
        )  # fmt: skip
        assert status != 0
        assert_one_line_error(err, str(path), "refusing to unpickle it")
    assert not witness.exists() and not (tmp_path / "out").exists()


def test_a_file_that_is_no_pickle_is_not_called_unsafe(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00garbage" * 100)
    assert pickle_imports(garbage) is None
    with pytest.raises(PcdmsError, match=r"garbage.pt: not a PyTorch checkpoint, or a corrupt one"):
        load_official_state_dict(garbage)
    cut = tmp_path / "cut.pt"
    shutil.copy(garbage, cut)
    torch.save({"module": {"w": torch.zeros(100)}}, cut)
    cut.write_bytes(cut.read_bytes()[:200])
    with pytest.raises(PcdmsError, match=r"cut.pt: truncated or corrupt checkpoint"):
        load_official_state_dict(cut)


@pytest.fixture(scope="module")
def saved_pipeline(tmp_path_factory):
    from tiny_pcdms import tiny_pcdms

    folder = tmp_path_factory.mktemp("pipeline") / "pcdms"
    tiny_pcdms().save_pretrained(folder)
    return folder


def edit_config(path, **changes):
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, **{key: change(config[key]) for key, change in changes.items()}}))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda f: shutil.copy(f / "refine" / "config.json", f / "inpaint" / "config.json"),
            r"inpaint/config.json: the inpaint component's config is for RefineModel, not InpaintModel$",
        ),
        (
            lambda f: shutil.copy(f / "inpaint" / "config.json", f / "vae" / "config.json"),
            r"vae/config.json: the vae component's config is for InpaintModel, not AutoencoderKL$",
        ),
        (
            lambda f: shutil.copy(f / "image_encoder" / "config.json", f / "clip_encoder" / "config.json"),
            r"clip_encoder/config.json: the clip_encoder component's config is for dinov2, not clip_vision_model$",
        ),
        (
            lambda f: edit_config(f / "inpaint" / "config.json", image_proj_hidden_dim=lambda width: width * 2),
            r"inpaint \(the inpaint component\): does not match the sizes of .*inpaint/config.json: 5 of the wrong "
            r"shape \(first: image_proj_model_p.net.0.weight \(16, 32\) \(model: \(32, 32\)\)\)",
        ),
        (  # one block more than the weights hold: never initialised at random without a word
            lambda f: edit_config(f / "prior" / "config.json", num_layers=lambda layers: layers + 1),
            r"prior \(the prior component\): does not match the sizes of .*prior/config.json: 16 missing",
        ),
        (
            lambda f: edit_config(f / "image_encoder" / "config.json", hidden_size=lambda width: width * 2),
            r"image_encoder \(the image_encoder component\): does not match the sizes of .*image_encoder/config.json",
        ),
        (
            lambda f: (f / "refine" / "config.json").write_text("{"),
            r"refine/config.json: the refine component's config is not readable JSON",
        ),
        (
            lambda f: edit_config(f / "vae" / "config.json", block_out_channels=lambda channels: "wide"),
            r"vae/config.json: cannot build the vae component from it",
        ),
    ],
    ids=[
        "stage-3-config-as-stage-2",
        "model-as-vae",
        "dinov2-as-clip",
        "wider",
        "deeper",
        "dinov2-wider",
        "json",
        "bad",
    ],
)
def test_a_component_config_of_the_wrong_class_or_size_is_named(saved_pipeline, tmp_path, capsys, edit, message):
    from pcdms.pipelines.pcdms import load_pcdms_pipeline

    folder = tmp_path / "pcdms"
    shutil.copytree(saved_pipeline, folder)
    edit(folder)
    with pytest.raises(PcdmsError, match=message) as error:
        load_pcdms_pipeline(folder)
    assert str(error.value).startswith(str(folder)) and "\n" not in str(error.value)


def test_a_whole_pipeline_folder_passes_the_check(saved_pipeline):
    from pcdms.pipelines.pcdms import PCDMsPipeline, load_pcdms_pipeline

    check_pipeline_folder(PCDMsPipeline, saved_pipeline)
    assert load_pcdms_pipeline(saved_pipeline).stages == ("prior", "inpaint", "refine")
