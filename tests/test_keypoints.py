import numpy as np
import pytest

from pcdms.pose import KEYPOINT_NAMES, LIMBS, MIRROR, NUM_KEYPOINTS, Keypoints


def test_layout_is_the_openpose_coco18_order():
    assert NUM_KEYPOINTS == 18
    assert KEYPOINT_NAMES[:5] == ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist")
    assert KEYPOINT_NAMES[14:] == ("right_eye", "left_eye", "right_ear", "left_ear")
    assert len(LIMBS) == 17
    # Mirroring swaps every right joint with its left twin and keeps nose and neck.
    for index, name in enumerate(KEYPOINT_NAMES):
        twin = KEYPOINT_NAMES[MIRROR[index]]
        assert twin == name.replace("right", "@").replace("left", "right").replace("@", "left")


def test_missing_joints_are_explicit(pose):
    xy = pose.xy.copy()
    xy[3, 0] = np.nan  # one coordinate NaN: the whole joint is missing
    confidence = pose.confidence.copy()
    confidence[3] = 0.0
    keypoints = Keypoints(xy, confidence, pose.image_size)
    assert not keypoints.present[3]
    assert np.isnan(keypoints.xy[3]).all()
    assert keypoints.confidence[3] == 0
    assert keypoints.present.sum() == 17


def test_missing_joint_confidence_is_zeroed():
    xy = np.full((18, 2), np.nan)
    keypoints = Keypoints(xy, np.full(18, 0.7), (10, 10))
    assert (keypoints.confidence == 0).all()


@pytest.mark.parametrize(
    ("xy", "confidence", "size", "message"),
    [
        (np.zeros((17, 2)), np.ones(17), (10, 10), "18 points"),
        (np.zeros((18, 2)), np.ones(17), (10, 10), "18 confidences"),
        (np.full((18, 2), np.inf), np.ones(18), (10, 10), "finite"),
        (np.zeros((18, 2)), np.full(18, 1.5), (10, 10), r"\[0, 1\]"),
        (np.zeros((18, 2)), np.zeros(18), (10, 10), "confidence 0"),
        (np.zeros((18, 2)), np.ones(18), (0, 10), "positive integers"),
    ],
)
def test_invalid_keypoints_are_refused(xy, confidence, size, message):
    with pytest.raises(ValueError, match=message):
        Keypoints(xy, confidence, size)


def test_keypoints_are_immutable(pose):
    with pytest.raises(ValueError):
        pose.xy[0, 0] = 5
    with pytest.raises(AttributeError):
        pose.image_size = (1, 1)


def test_from_named_and_equality(pose):
    partial = Keypoints.from_named({"nose": (1, 2), "neck": (3, 4, 0.5)}, (10, 10))
    assert partial.present.tolist() == [True, True] + [False] * 16
    assert partial.confidence[:2].tolist() == [1.0, 0.5]
    assert partial == Keypoints.from_named({"nose": (1, 2), "neck": (3, 4, 0.5)}, (10, 10))
    assert partial != Keypoints.from_named({"nose": (1, 2)}, (10, 10))
    assert partial != Keypoints.from_named({"nose": (1, 2), "neck": (3, 4, 0.5)}, (11, 10))
    with pytest.raises(ValueError, match="unknown joint"):
        Keypoints.from_named({"chin": (1, 2)}, (10, 10))


def test_resize_maps_pixel_centres(pose):
    doubled = pose.resize((352, 512))
    assert doubled.image_size == (352, 512)
    np.testing.assert_allclose(doubled.xy[0], [88 * 2 + 0.5, 40 * 2 + 0.5])
    assert doubled.resize((176, 256)).allclose(pose, atol=1e-9)


def test_pad_crop_flip_letterbox(pose):
    padded = pose.pad(40, 0, 40, 0)
    assert padded.image_size == (256, 256)
    np.testing.assert_allclose(padded.xy, pose.xy + [40, 0])

    upper = pose.crop((0, 0, 176, 160))
    assert upper.image_size == (176, 160)
    below = [KEYPOINT_NAMES.index(name) for name in ("right_knee", "right_ankle", "left_knee", "left_ankle")]
    assert not upper.present[below].any()
    assert upper.present.sum() == 14

    flipped = pose.hflip()
    right_wrist, left_wrist = KEYPOINT_NAMES.index("right_wrist"), KEYPOINT_NAMES.index("left_wrist")
    # The mirrored person's right wrist is where the original left wrist's mirror image is.
    np.testing.assert_allclose(flipped.xy[right_wrist], [175 - pose.xy[left_wrist, 0], pose.xy[left_wrist, 1]])
    assert flipped.hflip() == pose

    boxed = pose.letterbox((256, 256))
    assert boxed.allclose(padded, atol=1e-9)
    landscape = Keypoints.from_named({"nose": (0, 0)}, (200, 100)).letterbox((256, 256))
    np.testing.assert_allclose(landscape.xy[0], [(0 + 0.5) * 1.28 - 0.5, (0 + 0.5) * 1.28 - 0.5 + 64])


def test_threshold_and_outside_frame(pose):
    confidence = pose.confidence.copy()
    confidence[0] = 0.2
    keypoints = Keypoints(pose.xy, confidence, pose.image_size)
    assert not keypoints.threshold(0.3).present[0]
    assert keypoints.threshold(0.3).present.sum() == 17
    xy = pose.xy.copy()
    xy[1] = [176.0, 10]
    outside = Keypoints(xy, pose.confidence, pose.image_size)
    assert outside.outside_frame().tolist() == [False, True] + [False] * 16
    assert not outside.outside_frame(margin=1.0).any()
