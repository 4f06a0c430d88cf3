import numpy as np
import pytest

from pcdms.pose import FRACTION, OFFICIAL, Keypoints, PoseConvention, get_convention, keypoints_from_vector, pose_vector


def test_official_vector_is_interleaved_pixels_of_the_padded_256_frame(pose):
    vector = pose_vector(pose, OFFICIAL)
    assert vector.shape == (36,)
    # x0, y0, x1, y1, ...: the 176-wide image sits 40 pixels into the 256x256 frame.
    np.testing.assert_allclose(vector[:4], [88 + 40, 40, 88 + 40, 70])
    np.testing.assert_allclose(vector.reshape(18, 2), pose.xy + [40, 0])


def test_missing_joints_become_minus_one(pose):
    vector = pose_vector(pose.drop(np.arange(18) == 3), OFFICIAL)
    assert vector[6:8].tolist() == [-1.0, -1.0]
    assert (vector[:6] != -1).all()


def test_same_body_point_gives_same_numbers_at_any_resolution(pose):
    large = pose.resize((352, 512))
    np.testing.assert_allclose(pose_vector(large, OFFICIAL), pose_vector(pose, OFFICIAL), atol=1e-9)
    np.testing.assert_allclose(pose_vector(large, FRACTION), pose_vector(pose, FRACTION), atol=1e-12)
    np.testing.assert_allclose(pose_vector(pose, FRACTION)[:2], [88.5 / 176, 40.5 / 256])


@pytest.mark.parametrize("convention", [OFFICIAL, FRACTION], ids=lambda c: c.name)
@pytest.mark.parametrize("size", [(176, 256), (352, 512), (300, 200)])
def test_vector_round_trip(pose, convention, size):
    keypoints = pose.resize(size).drop(np.arange(18) == 7)
    back = keypoints_from_vector(pose_vector(keypoints, convention), size, convention)
    assert back.allclose(keypoints, atol=1e-9)


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        (np.zeros(34), "expected 36 numbers"),
        (np.r_[np.nan, np.zeros(35)], "NaN"),
        (np.r_[-1.0, 5.0, np.zeros(34)], r"nose\) has only one coordinate"),
        (np.r_[300.0, 5.0, np.zeros(34)], "outside the 256x256 frame"),
    ],
)
def test_bad_vectors_are_refused(vector, message):
    with pytest.raises(ValueError, match=message):
        keypoints_from_vector(vector, (176, 256), OFFICIAL)


def test_convention_round_trips_through_a_config_dict():
    for convention in (OFFICIAL, FRACTION, PoseConvention("mine", (512, 512), "fraction", -2.0)):
        assert PoseConvention.from_dict(convention.to_dict()) == convention
    assert get_convention("pcdms-official") is OFFICIAL
    with pytest.raises(ValueError, match="unknown pose convention"):
        get_convention("pixels")
    with pytest.raises(ValueError, match="unit"):
        PoseConvention("bad", None, "inch")


def test_vector_carries_no_confidence(pose):
    keypoints = Keypoints(pose.xy, np.full(18, 0.5), pose.image_size)
    back = keypoints_from_vector(pose_vector(keypoints, FRACTION), pose.image_size, FRACTION)
    assert (back.confidence == 1).all()
