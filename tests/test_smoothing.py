"""Animation's pose processing, without a model: One-Euro smoothing of jittered tracks, retargeting onto
a source body, and filling frames with no person."""

from pathlib import Path

import numpy as np
import pytest

from helpers import standing_pose
from pcdms.animation import OneEuroSettings, bone_lengths, one_euro, retarget_pose, retarget_sequence, smooth_poses
from pcdms.animation.driving import fill_missing
from pcdms.errors import NoPersonError
from pcdms.pose import Keypoints

FPS = 10.0


def jitter(count: int, seed: int = 0, scale: float = 0.005) -> np.ndarray:
    """Detector-like noise: 0.5% of the frame height per coordinate (in frame heights)."""
    return np.random.default_rng(seed).normal(0, scale, count)


def test_a_still_joints_jitter_drops_about_threefold():
    noisy = 0.5 + jitter(200)
    smoothed = one_euro(noisy, FPS)
    # The flicker a viewer sees: frame-to-frame steps, after the filter has settled.
    reduction = np.std(np.diff(noisy[10:])) / np.std(np.diff(smoothed[10:]))
    assert reduction > 2.5


def test_a_steady_motion_is_followed_with_under_a_frame_of_lag():
    speed = 0.25  # frame heights per second: a person walking across a street crop
    time = np.arange(100) / FPS
    truth = 0.1 + speed * time
    smoothed = one_euro(truth + jitter(100, seed=1), FPS)
    lag_frames = np.mean(truth[20:] - smoothed[20:]) / (speed / FPS)
    assert 0 < lag_frames < 1.0
    assert smoothed[-1] - smoothed[20] == pytest.approx(truth[-1] - truth[20], rel=0.05)  # the motion kept


def test_a_walking_swing_keeps_most_of_its_amplitude():
    time = np.arange(100) / FPS
    truth = 0.5 + 0.05 * np.sin(2 * np.pi * 1.0 * time)  # a 1 Hz step
    smoothed = one_euro(truth + jitter(100, seed=2), FPS)
    assert np.std(smoothed[20:]) / np.std(truth[20:]) > 0.7


def test_lower_min_cutoff_smooths_harder():
    noisy = 0.5 + jitter(200)
    soft = one_euro(noisy, FPS, OneEuroSettings(min_cutoff=2.0))
    hard = one_euro(noisy, FPS, OneEuroSettings(min_cutoff=0.3))
    assert np.std(np.diff(hard[10:])) < np.std(np.diff(soft[10:]))


def test_missing_samples_stay_missing_and_the_filter_resumes_after_them():
    values = np.full(20, 0.5)
    values[5:8] = np.nan
    values[8:] = 0.6  # the joint reappears elsewhere after the gap
    smoothed = one_euro(values, FPS)
    assert np.isnan(smoothed[5:8]).all() and not np.isnan(smoothed[8:]).any()
    assert smoothed[-1] == pytest.approx(0.6, abs=0.01)


def test_smoothing_poses_filters_each_joint_in_pixels_of_any_frame(pose):
    rng = np.random.default_rng(3)
    poses = [
        Keypoints(pose.xy + rng.normal(0, 0.005 * pose.height, pose.xy.shape), pose.confidence, pose.image_size)
        for _ in range(60)
    ]
    poses[30] = poses[30].drop(np.arange(18) == 4)  # the right wrist missed once
    smoothed = smooth_poses(poses, FPS)
    steps = lambda track: np.nanstd(np.diff(np.stack([p.xy for p in track[10:]]), axis=0))  # noqa: E731
    assert steps(poses) / steps(smoothed) > 2.5
    assert not smoothed[30].present[4] and smoothed[31].present[4]
    assert [p.image_size for p in smoothed] == [pose.image_size] * 60


def scaled(pose: Keypoints, factor: float, shift=(0.0, 0.0), size=None) -> Keypoints:
    return Keypoints(pose.xy * factor + shift, pose.confidence, size or pose.image_size)


def test_retargeting_gives_the_bones_the_sources_lengths_and_puts_the_neck_on_the_sources():
    source = standing_pose((64, 128))  # a short person in a small photo
    driver = scaled(standing_pose(), 2.0, (100, 50), (640, 720))  # a tall one elsewhere in a big frame
    moved = retarget_pose(source, driver)
    assert moved.image_size == source.image_size
    np.testing.assert_allclose(bone_lengths(moved), bone_lengths(source), rtol=1e-6)
    np.testing.assert_allclose(moved.xy[1], source.xy[1])
    assert not moved.outside_frame().any()


def test_retargeting_keeps_the_drivers_bone_directions(pose):
    source = standing_pose((64, 128))
    raised = pose.xy.copy()
    raised[4] = raised[3] + (0, -30)  # the right forearm points up
    moved = retarget_pose(source, Keypoints(raised, pose.confidence, pose.image_size))
    forearm = moved.xy[4] - moved.xy[3]
    assert forearm[0] == pytest.approx(0, abs=1e-6) and forearm[1] < 0


def test_retargeting_a_walk_moves_the_body_as_the_driver_scaled_and_keeps_it_in_frame(pose):
    source = scaled(pose, 0.5, size=(88, 128))  # the driver at half the size
    # The driver walks right by 40 pixels a frame: at half the size, 20 pixels, and soon out of an 88-pixel frame.
    walk = [scaled(pose, 1.0, (40.0 * frame, 0), (640, 256)) for frame in range(5)]
    moved = retarget_sequence(source, walk)
    assert moved[1].xy[1, 0] - moved[0].xy[1, 0] == pytest.approx(20.0)
    assert all(not each.outside_frame().any() for each in moved)
    for each in moved:  # the retargeted bones keep the source's lengths even where the body was shifted back
        np.testing.assert_allclose(bone_lengths(each), bone_lengths(source), rtol=1e-6)


def test_filling_frames_with_no_person_interpolates_between_neighbours(pose):
    later = scaled(pose, 1.0, (10.0, 0.0))
    poses, filled = fill_missing([pose, None, None, later, None], Path("walk.mp4"))
    assert filled == [1, 2, 4]
    np.testing.assert_allclose(poses[1].xy, pose.xy + (10 / 3, 0))
    np.testing.assert_allclose(poses[2].xy, pose.xy + (20 / 3, 0))
    assert poses[4] == later


def test_no_person_in_any_frame_is_one_line_naming_the_file():
    with pytest.raises(NoPersonError, match=r"^walk\.mp4: no person found in any of its 3 frames$"):
        fill_missing([None, None, None], Path("walk.mp4"))
