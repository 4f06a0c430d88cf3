"""Animation: one person driven by a pose sequence (a video, a folder of poses, a sequence file), to a video.

- :mod:`.driving`: the driving poses, frames with no person filled from their neighbours;
- :mod:`.smoothing`: One-Euro filtering of the keypoints over time (detector jitter is not flicker);
- :mod:`.retarget`: the driving skeleton moved and scaled onto the source's body;
- :mod:`.animate`: the frames generated with shared noise, in batches, resumably;
- :mod:`.video`: reading and writing videos (imageio with ffmpeg, the ``video`` extra);
- :mod:`.make`: all of it from files to a video (``pcdms animate``, the web page).

Light to import: torch is imported when frames are generated.
"""

from .animate import AnimationFrames, AnimationSettings, animate_frames, initial_noise, side_by_side
from .driving import Driving, fill_missing, read_driving, read_pose_sequence, write_pose_sequence
from .make import Animation, frames_folder, make_animation, model_identity, target_poses
from .retarget import bone_lengths, retarget_pose, retarget_sequence
from .smoothing import OneEuroSettings, one_euro, smooth_poses
from .video import read_video, write_video

__all__ = [
    "Animation",
    "AnimationFrames",
    "AnimationSettings",
    "Driving",
    "OneEuroSettings",
    "animate_frames",
    "bone_lengths",
    "fill_missing",
    "frames_folder",
    "initial_noise",
    "make_animation",
    "model_identity",
    "one_euro",
    "read_driving",
    "read_pose_sequence",
    "read_video",
    "retarget_pose",
    "retarget_sequence",
    "side_by_side",
    "smooth_poses",
    "target_poses",
    "write_pose_sequence",
    "write_video",
]
