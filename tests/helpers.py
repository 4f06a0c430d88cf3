"""Shared test material: a known pose, images that show where each joint went, official-layout checkpoints."""

import socket

import numpy as np
import torch

from pcdms.errors import NoPersonError
from pcdms.pose import COLORS, Keypoints, render_pose

# A person standing and facing the camera in a DeepFashion-sized 176x256 image: the person's right
# side is on the image's left.
STANDING = {
    "nose": (88, 40),
    "neck": (88, 70),
    "right_shoulder": (62, 72),
    "right_elbow": (55, 110),
    "right_wrist": (50, 145),
    "left_shoulder": (114, 72),
    "left_elbow": (121, 110),
    "left_wrist": (126, 145),
    "right_hip": (74, 150),
    "right_knee": (72, 195),
    "right_ankle": (70, 240),
    "left_hip": (102, 150),
    "left_knee": (104, 195),
    "left_ankle": (106, 240),
    "right_eye": (82, 34),
    "left_eye": (94, 34),
    "right_ear": (76, 38),
    "left_ear": (100, 38),
}


def standing_pose(size=(176, 256)) -> Keypoints:
    return Keypoints.from_named(STANDING, (176, 256)).resize(size)


def body_image(keypoints: Keypoints, joint_radius: int = 6):
    """A stand-in photo: each joint a disc of its own colour, so a transformed image shows where each joint went."""
    return render_pose(keypoints, joint_radius=joint_radius)


def three_pairs(pose: Keypoints, size=(64, 128)):
    """Three different (source images, source poses, target poses) for batches, sources at ``size``."""
    poses = [pose.hflip(), pose, pose.crop((10, 20, 166, 250)).resize(pose.image_size)]
    return [body_image(each).resize(size) for each in poses], poses, poses[1:] + poses[:1]


def generators(*seeds: int) -> list[torch.Generator]:
    """One seeded generator per pair."""
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def nearest_joint_colour(pixel) -> int:
    """The joint whose colour is closest to ``pixel``."""
    distances = np.abs(np.array(COLORS, dtype=float) - np.asarray(pixel, dtype=float)).sum(axis=1)
    return int(distances.argmin())


def pixel_at(image, x: float, y: float):
    return np.array(image)[round(y), round(x)]


def save_official(path, state, **extra):
    """A checkpoint in the layout DeepSpeed wrote: the weights (fp16) under "module", with client state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "module": {key: value.half() for key, value in state.items()},
            "epoch": 3,
            "last_global_step": 5000,
            "ds_version": "0.10.0",
            "param_shapes": [{key: value.shape for key, value in state.items()}],
            **extra,
        },
        path,
    )
    return path


def free_port() -> int:
    """A localhost port nothing listens on, for a test server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FoundPose:
    """A stand-in pose extractor: the standing pose in the image's frame, or nobody in a grey image."""

    def __call__(self, image):
        if np.asarray(image).std() == 0:
            raise NoPersonError("no person found")
        return standing_pose(image.size)
