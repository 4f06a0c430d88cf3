"""PCDMsPipeline's sources encoded once (issue 18, stable frames): ``encode_sources`` gives the DINOv2 tokens and
CLIP embeddings a call computes, framed as the call frames the source; given back as ``image_features=`` and
``source_embeds=`` they give the same images without running the encoders; wrong shapes are one line."""

import numpy as np
import pytest
import torch

from helpers import body_image, standing_pose
from pcdms.errors import PcdmsError
from pcdms.pipelines.framing import padded_source
from tiny_pcdms import tiny_pcdms

STEPS = {"prior_steps": 2, "inpaint_steps": 2, "refine_steps": 2}


@pytest.fixture(scope="module")
def pipeline():
    return tiny_pcdms()


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def pairs():
    """Two sources of the model's aspect (64x128) and one wider than it (96x128, padded to 1:2 by the call)."""
    sizes = [(64, 128), (64, 128), (96, 128)]
    poses = [standing_pose(size) for size in sizes]
    sources = [body_image(pose).resize(size) for pose, size in zip(poses, sizes, strict=True)]
    sources[1] = sources[1].rotate(5, fillcolor=(255, 255, 255))  # two different people of one aspect
    return sources, poses, [pose.hflip() for pose in poses]


class Counted:
    """How many times each encoder runs."""

    def __init__(self, pipeline):
        self.calls = {"image_encoder": 0, "clip_encoder": 0}
        self.hooks = [
            getattr(pipeline, name).register_forward_hook(lambda *_, name=name: self.count(name)) for name in self.calls
        ]

    def count(self, name):
        self.calls[name] += 1

    def __enter__(self):
        return self.calls

    def __exit__(self, *_):
        for hook in self.hooks:
            hook.remove()


def generate(pipeline, sources, targets, source_poses, **kwargs):
    outputs = pipeline(sources, targets, source_poses, generator=seeded(0), **STEPS, **kwargs).images
    return [np.asarray(image) for image in outputs]


def test_encodings_given_give_the_images_computed_ones_give_without_running_the_encoders(pipeline):
    sources, poses, targets = pairs()
    encodings = pipeline.encode_sources(sources)
    assert encodings["image_features"].shape == (3, 257, 32) and encodings["source_embeds"].shape == (3, 32)
    computed = generate(pipeline, sources, targets, poses)
    with Counted(pipeline) as calls:
        given = generate(pipeline, sources, targets, poses, **encodings)
    assert calls == {"image_encoder": 0, "clip_encoder": 0}
    assert all(np.array_equal(a, b) for a, b in zip(given, computed, strict=True))
    assert given[2].shape == (86, 64, 3)  # the wide source's result: the 64x128 frame cut back to its 3:4 aspect


def test_the_encodings_are_of_the_source_as_framed_for_the_model(pipeline):
    sources, _, _ = pairs()
    wide = sources[2]
    encoded = pipeline.encode_sources(wide)["image_features"]
    inpaint = pipeline.stage_pipeline("inpaint")
    assert torch.equal(encoded, inpaint.encode_images([padded_source(wide, (64, 128))]))
    assert not torch.allclose(encoded, inpaint.encode_images([wide]), atol=1e-3)  # not of the unpadded photo
    # At another frame (a square one) the wide source is padded otherwise, and a call at that frame agrees.
    square = pipeline.encode_sources(wide, width=64, height=64)
    assert torch.equal(square["image_features"], inpaint.encode_images([padded_source(wide, (64, 64))]))
    pose = standing_pose((96, 128))
    at_square = {"width": 64, "height": 64, "output_type": "np"}
    assert np.array_equal(
        generate(pipeline, wide, pose.hflip(), pose, **at_square, **square),
        generate(pipeline, wide, pose.hflip(), pose, **at_square),
    )


def test_the_given_encodings_are_the_ones_used(pipeline):
    sources, poses, targets = pairs()
    other = pipeline.encode_sources(sources[1])
    mine = generate(pipeline, sources[0], targets[0], poses[0])[0]
    assert not np.array_equal(generate(pipeline, sources[0], targets[0], poses[0], **other)[0], mine)
    only_features = {"image_features": other["image_features"]}
    assert not np.array_equal(generate(pipeline, sources[0], targets[0], poses[0], **only_features)[0], mine)
    only_embeds = {"source_embeds": other["source_embeds"]}
    assert not np.array_equal(generate(pipeline, sources[0], targets[0], poses[0], **only_embeds)[0], mine)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"image_features": torch.zeros(1, 10, 32)},
            "image_features: got shape (1, 10, 32), expected (2, 257, 32) (as pipeline.encode_sources gives them)",
        ),
        (
            {"image_features": torch.zeros(2, 257, 16)},
            "image_features: got shape (2, 257, 16), expected (2, 257, 32) (as pipeline.encode_sources gives them)",
        ),
        (
            {"source_embeds": torch.zeros(2, 32, 1)},
            "source_embeds: got shape (2, 32, 1), expected (2, 32) (as pipeline.encode_sources gives them)",
        ),
        (
            {"source_embeds": [[0.0] * 32] * 2},
            "source_embeds: a tensor of shape (2, 32), got list (as pipeline.encode_sources gives them)",
        ),
    ],
)
def test_encodings_of_the_wrong_shape_are_one_line_before_any_stage_runs(pipeline, given, message):
    sources, poses, targets = pairs()
    with Counted(pipeline) as calls, pytest.raises(PcdmsError) as raised:
        pipeline(sources[:2], targets[:2], poses[:2], **STEPS, **given)
    assert str(raised.value) == message
    assert calls == {"image_encoder": 0, "clip_encoder": 0}


def test_the_lite_model_has_no_clip_embeddings_and_refuses_them():
    lite = tiny_pcdms(lite=True)
    sources, poses, targets = pairs()
    encodings = lite.encode_sources(sources[0])
    assert encodings["source_embeds"] is None and encodings["image_features"].shape == (1, 257, 32)
    steps = {"inpaint_steps": 2, "output_type": "np"}
    assert np.array_equal(
        lite(sources[0], targets[0], poses[0], generator=seeded(0), **steps, **encodings).images,
        lite(sources[0], targets[0], poses[0], generator=seeded(0), **steps).images,
    )
    with pytest.raises(PcdmsError, match=r"^source_embeds: this pipeline has no stage 1 \(prior\), which is what"):
        lite(sources[0], targets[0], poses[0], source_embeds=torch.zeros(1, 32), **steps)
