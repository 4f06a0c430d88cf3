"""The pose toolkit: one keypoint type, file formats, transforms, rendering and extraction."""

from .annotation_csv import read_annotation_csv, write_annotation_csv
from .convert import from_body25, from_coco17, from_coco_wholebody, from_mediapipe
from .extract import (
    MediaPipeExtractor,
    PoseExtractor,
    extract_pose,
    get_extractor,
    read_and_extract,
    write_extraction,
)
from .formats import load_pose, save_pose
from .inputs import as_keypoints
from .keypoints import KEYPOINT_NAMES, LIMBS, MIN_POSE_JOINTS, MIRROR, NUM_KEYPOINTS, Keypoints, check_enough_joints
from .openpose import read_openpose_json, write_openpose_json
from .pcdms_txt import read_pcdms_txt, read_pcdms_txt_vector, write_pcdms_txt
from .pose_json import read_pose_json, write_pose_json
from .pose_map import is_pose_map, read_pose_map
from .render import COLORS, draw_overlay, pose_map_tensor, render_pose
from .vector import CONVENTIONS, FRACTION, OFFICIAL, PoseConvention, get_convention, keypoints_from_vector, pose_vector

__all__ = [
    "COLORS",
    "CONVENTIONS",
    "FRACTION",
    "KEYPOINT_NAMES",
    "LIMBS",
    "MIN_POSE_JOINTS",
    "MIRROR",
    "NUM_KEYPOINTS",
    "OFFICIAL",
    "Keypoints",
    "MediaPipeExtractor",
    "PoseConvention",
    "PoseExtractor",
    "as_keypoints",
    "check_enough_joints",
    "draw_overlay",
    "extract_pose",
    "from_body25",
    "from_coco17",
    "from_coco_wholebody",
    "from_mediapipe",
    "get_convention",
    "get_extractor",
    "is_pose_map",
    "keypoints_from_vector",
    "load_pose",
    "pose_map_tensor",
    "pose_vector",
    "read_and_extract",
    "read_annotation_csv",
    "read_openpose_json",
    "read_pcdms_txt",
    "read_pcdms_txt_vector",
    "read_pose_json",
    "read_pose_map",
    "render_pose",
    "save_pose",
    "write_annotation_csv",
    "write_extraction",
    "write_openpose_json",
    "write_pcdms_txt",
    "write_pose_json",
]
