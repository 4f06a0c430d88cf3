import numpy as np

from pcdms.data import open_dataset
from pcdms.data.toy import BACKGROUND, write_tiny_clip, write_toy_dataset
from pcdms.io import load_image
from pcdms.models import ClipImageEncoder
from pcdms.pose import KEYPOINT_NAMES

JOINT = {name: index for index, name in enumerate(KEYPOINT_NAMES)}


def test_toy_dataset_goes_through_the_market_reader(tmp_path):
    write_toy_dataset(tmp_path, people=3, poses=4, test_people=1, seed=5)
    train, test = open_dataset(tmp_path, "train"), open_dataset(tmp_path, "test")
    assert "Market-1501" in repr(train)
    assert (len(train), len(test)) == (2 * 4 * 3, 4 * 3)  # ordered pairs of different poses of one person
    assert train.validate().ok and test.validate().ok
    people = lambda dataset: {name[:4] for pair in dataset.pairs for name in pair}  # noqa: E731
    assert people(train) == {"p000", "p001"} and people(test) == {"p002"}
    for source, target in train.pairs:
        assert source[:4] == target[:4] and source != target


def test_figures_are_drawn_where_their_poses_say(tmp_path):
    write_toy_dataset(tmp_path, people=2, poses=3, test_people=1)
    pair = open_dataset(tmp_path, "train")[0]
    pixels = np.array(pair.source_image).astype(int)
    xy = pair.source_pose.xy
    for joint in ("nose", "right_knee", "left_ankle", "right_elbow"):
        x, y = xy[JOINT[joint]].round().astype(int)
        assert tuple(pixels[y, x]) != BACKGROUND, joint  # every joint is on the drawn body
    assert pair.source_image.size == (64, 128)


def test_tiny_clip_tells_toy_images_apart(tmp_path):
    write_toy_dataset(tmp_path / "data", people=3, poses=3, test_people=1)
    encoder = ClipImageEncoder.from_pretrained(write_tiny_clip(tmp_path / "clip"))
    dataset = open_dataset(tmp_path / "data", "train")
    embeds = encoder.encode([load_image(dataset.image_path(name)) for name in dataset.image_names()])
    assert embeds.shape == (6, 32)
    normalised = embeds / embeds.norm(dim=1, keepdim=True)
    cosine = normalised @ normalised.T
    assert cosine[~np.eye(6, dtype=bool)].mean() < 0.9
