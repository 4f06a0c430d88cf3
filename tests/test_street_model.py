"""The bundled street model: it ships within the size budget with its Inception encoders, loads, gives the same image every time at
the crops' size, and on the bundled test pairs scores what benchmarks/results/street.json reports."""

import json
from pathlib import Path

import numpy as np
import pytest

from pcdms.bundled import bundled_model, read_pairs_file, street_examples_path
from pcdms.cli import main
from pcdms.generation import run_street_examples
from pcdms.pipelines import load_pcdms_pipeline

RESULTS = Path(__file__).parents[1] / "benchmarks" / "results" / "street.json"
EXAMPLES = read_pairs_file(street_examples_path() / "pairs.csv")


@pytest.fixture(scope="module")
def pipeline():
    pipeline = load_pcdms_pipeline(bundled_model())
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def generate(pipeline, examples):
    return run_street_examples(pipeline, examples)[0]


def test_the_bundled_model_is_whole_and_within_60_mb_with_its_encoders(pipeline):
    weights = sum(path.stat().st_size for path in bundled_model().rglob("*.safetensors"))
    assert weights <= 60 * 10**6
    assert pipeline.stages == ("prior", "inpaint", "refine")
    # Its encoders are the ImageNet Inception's, in CLIP's and DINOv2's places, and say so
    assert type(pipeline.clip_encoder).__name__ == "InceptionClipEncoder"
    assert type(pipeline.image_encoder).__name__ == "InceptionTokenEncoder"
    assert tuple(pipeline.inpaint.config.resolution) == (64, 128)
    # The sampling settings chosen on training pairs (docs/street-benchmark.md), recorded in its folder
    assert pipeline.config.sampling == {"inpaint_guidance": 1.0, "refine_strength": 0.1}


def test_it_gives_the_same_image_every_time_at_the_crops_size(pipeline):
    first, again = generate(pipeline, EXAMPLES[:1])[0], generate(pipeline, EXAMPLES[:1])[0]
    assert first.size == (64, 128)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert np.asarray(first).std() > 10  # a picture, not a flat or black image


def test_its_ssim_on_the_bundled_pairs_is_the_reported_one(pipeline, tmp_path, capsys):
    for image, (source, target, _) in zip(generate(pipeline, EXAMPLES), EXAMPLES, strict=True):
        image.save(tmp_path / f"{source.stem}_to_{target.stem}.png")
    report = tmp_path / "report.json"
    argv = ["evaluate", "--generated", tmp_path, "--ground-truth", street_examples_path(), "--size", "64x128"]
    assert main([str(arg) for arg in [*argv, "--skip", "fid", "--skip", "pckh", "--out", report]]) == 0
    measured = json.loads(report.read_text())["metrics"]
    reported = json.loads(RESULTS.read_text())["examples"]["metrics"]
    assert measured["ssim"] == pytest.approx(reported["ssim"], abs=0.005)
    assert measured["psnr"] == pytest.approx(reported["psnr"], abs=0.1)
