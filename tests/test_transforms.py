"""Transforms must keep every joint on its body part: the stand-in photo paints each joint's disc in its
own colour, and after a transform the pixel under each transformed joint must still be that colour."""

import numpy as np
import pytest
from PIL import Image

from helpers import body_image, nearest_joint_colour, pixel_at, standing_pose
from pcdms.pose import KEYPOINT_NAMES, MIRROR
from pcdms.pose.transforms import crop, hflip, letterbox, pad, resize


def assert_on_body_parts(image, keypoints, expected=None):
    assert image.size == keypoints.image_size
    for index in np.flatnonzero(keypoints.present):
        x, y = keypoints.xy[index]
        found = nearest_joint_colour(pixel_at(image, x, y))
        want = index if expected is None else expected[index]
        assert found == want, f"{KEYPOINT_NAMES[index]} landed on {KEYPOINT_NAMES[found]}"


@pytest.mark.parametrize("size", [(352, 512), (176, 256), (512, 512), (300, 300), (704, 1024)])
def test_resize(size):
    large = standing_pose((352, 512))  # discs of radius 6 that do not touch, even between eye and ear
    assert_on_body_parts(*resize(body_image(large), large, size))


def test_pad_is_white_and_keeps_joints(pose):
    image, keypoints = pad(body_image(pose), pose, 40, 0, 40, 0)
    assert image.size == (256, 256)
    assert tuple(np.array(image)[0, 0]) == (255, 255, 255)
    assert_on_body_parts(image, keypoints)


@pytest.mark.parametrize("size", [(256, 256), (512, 512), (128, 64)])
def test_letterbox(pose, size):
    image, keypoints = letterbox(body_image(pose), pose, size)
    assert image.size == size
    assert_on_body_parts(image, keypoints)


def test_letterbox_of_deepfashion_is_the_40_pixel_white_padding(pose):
    photo = body_image(pose)
    boxed, boxed_pose = letterbox(photo, pose, (256, 256))
    padded, padded_pose = pad(photo, pose, 40, 0, 40, 0)
    assert np.array_equal(np.array(boxed), np.array(padded))
    assert boxed_pose.allclose(padded_pose)


def test_crop_drops_the_joints_it_cuts_off(pose):
    image, keypoints = crop(body_image(pose), pose, (20, 10, 150, 200))
    assert image.size == (130, 190)
    ankles = [KEYPOINT_NAMES.index("right_ankle"), KEYPOINT_NAMES.index("left_ankle")]
    assert not keypoints.present[ankles].any()
    assert keypoints.present.sum() == 16
    assert_on_body_parts(image, keypoints)
    with pytest.raises(ValueError, match="empty"):
        crop(body_image(pose), pose, (10, 10, 10, 20))


def test_hflip_swaps_left_and_right(pose):
    image, keypoints = hflip(body_image(pose), pose)
    # The mirrored person's right wrist is the original left wrist's disc.
    assert_on_body_parts(image, keypoints, expected=MIRROR)
    right, left = KEYPOINT_NAMES.index("right_shoulder"), KEYPOINT_NAMES.index("left_shoulder")
    assert keypoints.xy[right, 0] < keypoints.xy[left, 0]  # still facing the camera: right side on the image's left
    twice, back = hflip(image, keypoints)
    assert back == pose and np.array_equal(np.array(twice), np.array(body_image(pose)))


def test_composed_transforms(pose):
    image, keypoints = body_image(pose), pose
    image, keypoints = letterbox(image, keypoints, (256, 256))
    image, keypoints = resize(image, keypoints, (384, 384))
    image, keypoints = crop(image, keypoints, (30, 0, 350, 384))
    image, keypoints = hflip(image, keypoints)
    assert_on_body_parts(image, keypoints, expected=MIRROR)


def test_image_and_keypoints_must_agree(pose):
    with pytest.raises(ValueError, match="keypoints are for a"):
        resize(Image.new("RGB", (10, 10)), pose, (20, 20))
