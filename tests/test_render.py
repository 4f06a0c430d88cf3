import math

import numpy as np
import pytest
import torch

from helpers import pixel_at, standing_pose
from pcdms.pose import COLORS, KEYPOINT_NAMES, LIMBS, Keypoints, draw_overlay, pose_map_tensor, render_pose
from pcdms.pose.render import LIMB_COLORS

JOINT = {name: index for index, name in enumerate(KEYPOINT_NAMES)}


def limb_index(start: str, end: str) -> int:
    return LIMBS.index((JOINT[start], JOINT[end]))


def test_background_is_black_and_size_is_the_images(pose):
    pixels = np.array(render_pose(pose))
    assert pixels.shape == (256, 176, 3)
    assert (pixels[:10, :10] == 0).all() and (pixels[-10:, -10:] == 0).all()


def test_joints_are_drawn_in_full_colour_with_radius_4(pose):
    pixels = np.array(render_pose(pose))
    for index, (x, y) in enumerate(pose.xy.astype(int)):
        assert tuple(pixels[y, x]) == COLORS[index], KEYPOINT_NAMES[index]
    # The right wrist's disc: pixels within 4 of the centre, none beyond on the side away from the arm.
    x, y = pose.xy[JOINT["right_wrist"]].astype(int)
    assert tuple(pixels[y, x - 4]) == COLORS[JOINT["right_wrist"]]
    assert tuple(pixels[y + 4, x]) == COLORS[JOINT["right_wrist"]]
    assert tuple(pixels[y + 5, x]) == (0, 0, 0)
    assert tuple(pixels[y + 3, x - 3]) == (0, 0, 0)  # 3² + 3² > 4²: outside the disc


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("right_shoulder", "right_elbow"),
        ("right_elbow", "right_wrist"),
        ("left_shoulder", "left_elbow"),
        ("left_elbow", "left_wrist"),
        ("right_hip", "right_knee"),
        ("right_knee", "right_ankle"),
        ("left_hip", "left_knee"),
        ("left_knee", "left_ankle"),
        ("neck", "right_hip"),
    ],
)
def test_limbs_are_drawn_at_60_percent_of_their_colour(pose, start, end):
    pixels = np.array(render_pose(pose))
    limb = limb_index(start, end)
    x, y = (pose.xy[JOINT[start]] + pose.xy[JOINT[end]]) / 2
    assert tuple(pixels[int(y), int(x)]) == LIMB_COLORS[limb] == tuple(int(c * 0.6) for c in COLORS[limb])
    # Half-width 4 across the limb: 3 pixels off the axis is still the limb, 6 is background.
    dx, dy = pose.xy[JOINT[end]] - pose.xy[JOINT[start]]
    normal = np.array([-dy, dx]) / math.hypot(dx, dy)
    inside = np.array([x, y]) + 3 * normal
    outside = np.array([x, y]) + 6 * normal
    assert tuple(pixels[round(inside[1]), round(inside[0])]) == LIMB_COLORS[limb]
    assert tuple(pixels[round(outside[1]), round(outside[0])]) == (0, 0, 0)


def test_missing_joints_and_their_limbs_are_skipped(pose):
    without_elbow = pose.drop(np.arange(18) == JOINT["right_elbow"])
    pixels = np.array(render_pose(without_elbow))
    x, y = pose.xy[JOINT["right_elbow"]].astype(int)
    assert (pixels[y - 4 : y + 5, x - 4 : x + 5] == 0).all()
    for start, end in (("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist")):
        mx, my = (pose.xy[JOINT[start]] + pose.xy[JOINT[end]]) / 2
        assert tuple(pixels[int(my), int(mx)]) == (0, 0, 0)
    wx, wy = pose.xy[JOINT["right_wrist"]].astype(int)
    assert tuple(pixels[wy, wx]) == COLORS[JOINT["right_wrist"]]
    assert np.array(render_pose(Keypoints.empty((40, 30)))).max() == 0


def test_low_confidence_joints_can_be_left_out(pose):
    confidence = pose.confidence.copy()
    confidence[JOINT["nose"]] = 0.2
    keypoints = Keypoints(pose.xy, confidence, pose.image_size)
    x, y = pose.xy[JOINT["nose"]].astype(int)
    assert tuple(pixel_at(render_pose(keypoints), x, y)) == COLORS[JOINT["nose"]]
    assert tuple(pixel_at(render_pose(keypoints, min_confidence=0.3), x, y)) == (0, 0, 0)


@pytest.mark.parametrize("size", [(352, 512), (512, 512), (64, 128), (400, 100)])
def test_any_size_and_aspect(pose, size):
    image = render_pose(pose, size)
    assert image.size == size
    scaled = pose.resize(size)
    pixels = np.array(image)
    for index in (JOINT["neck"], JOINT["right_ankle"], JOINT["left_wrist"]):
        x, y = scaled.xy[index].astype(int)
        assert tuple(pixels[y, x]) == COLORS[index]


def test_tensor_is_the_image_in_minus_one_to_one(pose):
    tensor = pose_map_tensor(pose, (88, 128))
    assert tensor.shape == (3, 128, 88) and tensor.dtype == torch.float32
    assert tensor.min() == -1.0 and tensor.max() == 1.0
    expected = torch.from_numpy(np.array(render_pose(pose, (88, 128)))).permute(2, 0, 1) / 127.5 - 1
    assert torch.equal(tensor, expected.float())


def test_overlay_draws_the_skeleton_over_the_dimmed_photo(pose):
    photo = render_pose(standing_pose(), joint_radius=0).point(lambda value: 200)
    overlay = np.array(draw_overlay(photo, pose))
    assert tuple(overlay[0, 0]) == (100, 100, 100)
    x, y = pose.xy[JOINT["neck"]].astype(int)
    assert tuple(overlay[y, x]) == COLORS[JOINT["neck"]]


def test_matches_the_opencv_drawer():
    """The OpenPose drawer of ControlNet / the official code, written with OpenCV, as a reference."""
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    for _ in range(5):
        keypoints = Keypoints(rng.integers(0, [176, 256], size=(18, 2)).astype(float), np.ones(18), (176, 256))
        reference = np.zeros((256, 176, 3), np.uint8)
        for limb, (start, end) in enumerate(LIMBS):
            (x0, y0), (x1, y1) = keypoints.xy[start], keypoints.xy[end]
            length = math.hypot(x0 - x1, y0 - y1)
            angle = math.degrees(math.atan2(y0 - y1, x0 - x1))
            polygon = cv2.ellipse2Poly(
                (int((x0 + x1) / 2), int((y0 + y1) / 2)), (int(length / 2), 4), int(angle), 0, 360, 1
            )
            cv2.fillConvexPoly(reference, polygon, [int(c * 0.6) for c in COLORS[limb]])
        for joint, (x, y) in enumerate(keypoints.xy):
            cv2.circle(reference, (int(x), int(y)), 4, COLORS[joint], thickness=-1)
        ours = np.array(render_pose(keypoints))
        drawn = (ours.max(axis=2) > 0) | (reference.max(axis=2) > 0)
        differ = (ours != reference).any(axis=2)
        assert differ.sum() / drawn.sum() < 0.01  # single edge pixels of the limb polygons
