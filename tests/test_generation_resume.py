"""A results folder keeps the settings its images were made with (pcdms generate --pairs): how the model is
recorded, and which earlier manifests a run may resume."""

import json
import os

import pytest

from pcdms.bundled import BUNDLED_MODEL, bundled_model, model_record
from pcdms.errors import PcdmsError
from pcdms.evaluation.evaluate import read_generation_manifest
from pcdms.generation import check_same_settings


def test_the_bundled_model_is_recorded_by_name_however_it_was_reached(tmp_path, monkeypatch):
    assert model_record(BUNDLED_MODEL) == model_record(bundled_model()) == BUNDLED_MODEL
    monkeypatch.chdir(bundled_model().parent)
    assert model_record(BUNDLED_MODEL) == BUNDLED_MODEL  # a relative path to the same folder
    assert model_record(tmp_path) == str(tmp_path.resolve())


SETTINGS = {"model": BUNDLED_MODEL, "preset": None, "steps": {"prior": 20, "inpaint": 20, "refine": 20}, "samples": 1}


def test_the_same_settings_resume(tmp_path):
    check_same_settings(tmp_path, json.loads(json.dumps(SETTINGS)), SETTINGS)
    # a folder written by an older pcdms: the bundled model as a path, and no preset recorded
    older = {key: value for key, value in SETTINGS.items() if key != "preset"}
    check_same_settings(tmp_path, {**older, "model": str(bundled_model())}, SETTINGS)
    check_same_settings(tmp_path, {**older, "model": os.path.relpath(bundled_model())}, SETTINGS)


def test_other_settings_are_named_in_one_line(tmp_path):
    earlier = {**SETTINGS, "preset": "fast", "model": "/elsewhere/model"}
    with pytest.raises(PcdmsError) as error:
        check_same_settings(tmp_path, earlier, SETTINGS)
    assert str(error.value) == (
        f'{tmp_path}: holds images generated with other settings (model "/elsewhere/model" there, '
        f'"{BUNDLED_MODEL}" now; preset "fast" there, null now); write to another folder, or resume with the '
        "same options"
    )


@pytest.mark.parametrize("text", ["[1]", '"settings"', "", "{"])
def test_a_manifest_that_is_not_an_object_of_settings_is_one_line(tmp_path, text):
    (tmp_path / "pcdms-generate.json").write_text(text)
    with pytest.raises(PcdmsError, match=r"pcdms-generate.json: not the JSON that pcdms generate writes"):
        read_generation_manifest(tmp_path)
