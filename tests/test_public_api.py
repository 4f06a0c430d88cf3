"""The top-level names: ``from pcdms import ...`` gives the main objects, and ``import pcdms`` stays light."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import pcdms
from pcdms.errors import PcdmsError

# Each public name and the module that defines it.
EXPECTED = {
    "PCDMsPipeline": "pcdms.pipelines.pcdms",
    "PCDMsOutput": "pcdms.pipelines.pcdms",
    "load_pcdms_pipeline": "pcdms.pipelines.pcdms",
    "PriorPipeline": "pcdms.pipelines.prior",
    "PriorOutput": "pcdms.pipelines.prior",
    "load_prior_pipeline": "pcdms.pipelines.prior",
    "InpaintPipeline": "pcdms.pipelines.inpaint",
    "InpaintOutput": "pcdms.pipelines.inpaint",
    "load_inpaint_pipeline": "pcdms.pipelines.inpaint",
    "RefinePipeline": "pcdms.pipelines.refine",
    "RefineOutput": "pcdms.pipelines.refine",
    "load_refine_pipeline": "pcdms.pipelines.refine",
    "Keypoints": "pcdms.pose.keypoints",
    "load_pose": "pcdms.pose.formats",
    "save_pose": "pcdms.pose.formats",
    "extract_pose": "pcdms.pose.extract",
    "get_extractor": "pcdms.pose.extract",
    "render_pose": "pcdms.pose.render",
    "load_image": "pcdms.io",
    "evaluate": "pcdms.evaluation.evaluate",
    "EvaluationReport": "pcdms.evaluation.evaluate",
    "get_protocol": "pcdms.evaluation.protocol",
    "PcdmsError": "pcdms.errors",
    "PcdmsWarning": "pcdms.errors",
    "PoseFileError": "pcdms.errors",
    "NoPersonError": "pcdms.errors",
    "DatasetError": "pcdms.errors",
    "TooFewJointsError": "pcdms.errors",
}


def fresh_python(code: str) -> dict:
    """What ``code`` prints as JSON, run in a new interpreter (nothing imported before it)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_import_pcdms_does_not_import_torch_and_each_name_imports_on_first_use():
    result = fresh_python(
        "import json, sys\n"
        "import pcdms\n"
        "light = sorted(name for name in ('torch', 'diffusers', 'transformers', 'numpy') if name in sys.modules)\n"
        "listed = 'PCDMsPipeline' in dir(pcdms)\n"
        "from pcdms import load_pose\n"
        "after_pose = 'diffusers' in sys.modules\n"
        "from pcdms import PCDMsPipeline\n"
        "print(json.dumps([light, listed, after_pose, 'diffusers' in sys.modules]))\n"
    )
    assert result == [[], True, False, True]


def test_every_public_name_is_the_object_its_module_defines():
    import importlib

    assert sorted(pcdms.__all__) == sorted([*EXPECTED, "__version__"])
    for name, module in EXPECTED.items():
        assert getattr(pcdms, name) is getattr(importlib.import_module(module), name), name
    assert pcdms.evaluate.__module__ == "pcdms.evaluation.evaluate" and callable(pcdms.evaluate)
    namespace = {}
    exec("from pcdms import *", namespace)  # the star import resolves every lazy name
    assert set(pcdms.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'PCDMSPipeline'"):
        pcdms.PCDMSPipeline  # noqa: B018


def test_evaluate_takes_folders_and_a_protocol_name(tmp_path):
    generated, truth = tmp_path / "generated", tmp_path / "truth"
    generated.mkdir()
    truth.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (256, 176, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(truth / "b.png")
    Image.fromarray(pixels).save(generated / "a_to_b.png")
    report = pcdms.evaluate(str(generated), str(truth), progress=False)  # the "pcdms" protocol, 176x256
    assert report.protocol["protocol"] == "pcdms" and report.pairs == 1
    assert report.metrics["ssim"] == pytest.approx(1.0) and np.isinf(report.metrics["psnr"])
    assert set(report.skipped) == {"lpips", "fid", "pckh"}
    assert pcdms.evaluate(generated, truth, "cfld", progress=False).protocol["protocol"] == "cfld"
    with pytest.raises(PcdmsError, match=r"^unknown evaluation protocol 'gfla': one of pcdms, cfld$"):
        pcdms.evaluate(generated, truth, "gfla", progress=False)
