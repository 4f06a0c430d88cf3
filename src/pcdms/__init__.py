"""pcdms: Progressive Conditional Diffusion Models for pose-guided person image synthesis.

The main names are here::

    from pcdms import load_pcdms_pipeline, load_pose, evaluate

Importing ``pcdms`` is light: the errors are imported at once, everything else (torch, diffusers,
transformers behind it) on first use of its name (PEP 562), so that the command line's pose and data
commands start without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import DatasetError, NoPersonError, PcdmsError, PcdmsWarning, PoseFileError, TooFewJointsError

__version__ = "0.1.0"

# Each lazily imported name and the module that defines it.
_LAZY = {
    # the pipelines
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
    # poses
    "Keypoints": "pcdms.pose.keypoints",
    "load_pose": "pcdms.pose.formats",
    "save_pose": "pcdms.pose.formats",
    "extract_pose": "pcdms.pose.extract",
    "get_extractor": "pcdms.pose.extract",
    "render_pose": "pcdms.pose.render",
    # images
    "load_image": "pcdms.io",
    # evaluation
    "evaluate": "pcdms.evaluation.evaluate",
    "EvaluationReport": "pcdms.evaluation.evaluate",
    "get_protocol": "pcdms.evaluation.protocol",
}

# The public names: the errors, the version and every lazy name (tests/test_public_api.py checks they agree).
__all__ = [
    "DatasetError",
    "EvaluationReport",
    "InpaintOutput",
    "InpaintPipeline",
    "Keypoints",
    "NoPersonError",
    "PCDMsOutput",
    "PCDMsPipeline",
    "PcdmsError",
    "PcdmsWarning",
    "PoseFileError",
    "PriorOutput",
    "PriorPipeline",
    "RefineOutput",
    "RefinePipeline",
    "TooFewJointsError",
    "__version__",
    "evaluate",
    "extract_pose",
    "get_extractor",
    "get_protocol",
    "load_image",
    "load_inpaint_pipeline",
    "load_pcdms_pipeline",
    "load_pose",
    "load_prior_pipeline",
    "load_refine_pipeline",
    "render_pose",
    "save_pose",
]

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time __getattr__ imports each on first use
    from .evaluation.evaluate import EvaluationReport, evaluate
    from .evaluation.protocol import get_protocol
    from .io import load_image
    from .pipelines.inpaint import InpaintOutput, InpaintPipeline, load_inpaint_pipeline
    from .pipelines.pcdms import PCDMsOutput, PCDMsPipeline, load_pcdms_pipeline
    from .pipelines.prior import PriorOutput, PriorPipeline, load_prior_pipeline
    from .pipelines.refine import RefineOutput, RefinePipeline, load_refine_pipeline
    from .pose.extract import extract_pose, get_extractor
    from .pose.formats import load_pose, save_pose
    from .pose.keypoints import Keypoints
    from .pose.render import render_pose


def __getattr__(name: str):
    """A lazy name, imported from its module on first use and kept (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pcdms' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
