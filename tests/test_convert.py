import numpy as np
import pytest

from pcdms.pose import KEYPOINT_NAMES, from_body25, from_coco17, from_coco_wholebody, from_mediapipe

JOINT = {name: index for index, name in enumerate(KEYPOINT_NAMES)}
# Where each of our joints comes from in MediaPipe's 33 landmarks and in COCO-17 (neck: shoulders' midpoint).
MEDIAPIPE = {
    "nose": 0,
    "left_eye": 2,
    "right_eye": 5,
    "left_ear": 7,
    "right_ear": 8,
    "left_shoulder": 11,
    "right_shoulder": 12,
    "left_elbow": 13,
    "right_elbow": 14,
    "left_wrist": 15,
    "right_wrist": 16,
    "left_hip": 23,
    "right_hip": 24,
    "left_knee": 25,
    "right_knee": 26,
    "left_ankle": 27,
    "right_ankle": 28,
}
COCO = {"nose": 0, "left_eye": 1, "right_eye": 2, "left_ear": 3, "right_ear": 4, "left_shoulder": 5,
        "right_shoulder": 6, "left_elbow": 7, "right_elbow": 8, "left_wrist": 9, "right_wrist": 10, "left_hip": 11,
        "right_hip": 12, "left_knee": 13, "right_knee": 14, "left_ankle": 15, "right_ankle": 16}  # fmt: skip


def mediapipe_landmarks():
    landmarks = np.zeros((33, 3))
    landmarks[:, 0] = np.arange(33) / 40  # x as a fraction of the width: tells the landmarks apart
    landmarks[:, 1] = 0.5
    landmarks[:, 2] = 0.9
    return landmarks


def test_mediapipe_mapping_and_neck():
    keypoints = from_mediapipe(mediapipe_landmarks(), (400, 300))
    for name, landmark in MEDIAPIPE.items():
        np.testing.assert_allclose(keypoints.xy[JOINT[name]], [landmark / 40 * 400 - 0.5, 149.5], err_msg=name)
    np.testing.assert_allclose(keypoints.xy[JOINT["neck"]], [(11 + 12) / 2 / 40 * 400 - 0.5, 149.5])
    assert keypoints.confidence[JOINT["neck"]] == pytest.approx(0.9)
    assert keypoints.present.all()


def test_mediapipe_drops_invisible_and_out_of_frame_landmarks():
    landmarks = mediapipe_landmarks()
    landmarks[14, 2] = 0.2  # right elbow barely visible
    landmarks[27, 1] = 1.3  # left ankle below the image
    landmarks[11, 2] = 0.1  # left shoulder hidden: no neck either
    keypoints = from_mediapipe(landmarks, (400, 300))
    missing = {KEYPOINT_NAMES[i] for i in np.flatnonzero(~keypoints.present)}
    assert missing == {"right_elbow", "left_ankle", "left_shoulder", "neck"}
    assert from_mediapipe(landmarks, (400, 300), min_visibility=0.15).present[JOINT["right_elbow"]]


def test_coco17_and_wholebody():
    points = np.stack([np.arange(17) * 3.0, np.full(17, 7.0)], axis=1)
    scores = np.full(17, 0.8)
    scores[COCO["right_knee"]] = 0.1
    scores[COCO["nose"]] = 1.4  # some detectors score above 1
    keypoints = from_coco17(points, scores, (64, 128))
    for name, index in COCO.items():
        if name != "right_knee":
            assert keypoints.xy[JOINT[name], 0] == index * 3.0, name
    assert not keypoints.present[JOINT["right_knee"]]
    assert keypoints.confidence[JOINT["nose"]] == 1.0
    assert keypoints.xy[JOINT["neck"]].tolist() == [(5 + 6) / 2 * 3.0, 7.0]
    wholebody = np.concatenate([points, np.full((116, 2), 3.0)])
    assert from_coco_wholebody(wholebody, np.r_[scores, np.full(116, 0.9)], (64, 128)) == keypoints


def test_body25_skips_mid_hip_and_feet():
    points = np.stack([np.arange(25.0), np.zeros(25)], axis=1)
    keypoints = from_body25(points, np.full(25, 0.5), (32, 32))
    assert keypoints.xy[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: from_mediapipe(np.zeros((17, 3)), (8, 8)), "33 landmarks"),
        (lambda: from_coco17(np.zeros((18, 2)), np.zeros(18), (8, 8)), "COCO-17 needs 17 points"),
        (lambda: from_coco17(np.full((17, 2), np.nan), np.ones(17), (8, 8)), "NaN"),
        (lambda: from_coco_wholebody(np.zeros((17, 2)), np.zeros(17), (8, 8)), "133 points"),
    ],
)
def test_wrong_arrays_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
