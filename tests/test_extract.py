import sys
from pathlib import Path

import pytest
from PIL import Image

from pcdms.bundled import example_image_path
from pcdms.errors import NoPersonError, PcdmsError
from pcdms.pose import KEYPOINT_NAMES, extract_pose, get_extractor, read_pose_json, write_extraction

pytest.importorskip("mediapipe")
JOINT = {name: index for index, name in enumerate(KEYPOINT_NAMES)}
MESSI = Path("/usr/share/doc/opencv-doc/examples/data/messi5.jpg")


@pytest.fixture(scope="module")
def mediapipe():
    return get_extractor("mediapipe")


def test_astronaut_skeleton_sits_on_the_body(mediapipe):
    keypoints = extract_pose(example_image_path(), mediapipe)
    assert keypoints.image_size == (512, 512)
    face = ("nose", "right_eye", "left_eye", "right_ear", "left_ear")
    for name in (*face, "neck", "right_shoulder", "left_shoulder"):
        assert keypoints.present[JOINT[name]], name
    x, y = keypoints.xy[JOINT["nose"]]
    assert 180 < x < 270 and 90 < y < 170  # on her face
    assert keypoints.xy[JOINT["right_eye"], 1] < y < keypoints.xy[JOINT["neck"], 1]
    # Facing the camera: her right side is on the image's left.
    assert keypoints.xy[JOINT["right_shoulder"], 0] < x < keypoints.xy[JOINT["left_shoulder"], 0]
    assert not keypoints.outside_frame().any()
    assert (keypoints.confidence[keypoints.present] >= 0.5).all()


@pytest.mark.skipif(not MESSI.exists(), reason="Debian's opencv-doc is not installed")
def test_full_body_photo(mediapipe):
    keypoints = extract_pose(MESSI, mediapipe)
    assert keypoints.present.all()
    for side in ("right", "left"):
        hip, knee, ankle = (keypoints.xy[JOINT[f"{side}_{part}"], 1] for part in ("hip", "knee", "ankle"))
        assert keypoints.xy[JOINT["neck"], 1] < hip < knee
        assert ankle > hip


def test_no_person_is_one_clear_error(tmp_path, mediapipe):
    blank = tmp_path / "wall.png"
    Image.new("RGB", (256, 256), (128, 128, 128)).save(blank)
    with pytest.raises(NoPersonError, match=r"wall.png: no person found"):
        extract_pose(blank, mediapipe)


def test_extraction_files(tmp_path, mediapipe):
    image = Image.open(example_image_path()).convert("RGB")
    keypoints = extract_pose(image, mediapipe)
    written = write_extraction(image, keypoints, tmp_path, "astronaut")
    assert read_pose_json(written["pose"]) == keypoints
    assert Image.open(written["pose_map"]).size == Image.open(written["overlay"]).size == (512, 512)


PLUGIN = '''
import numpy as np
from pcdms.pose import from_coco17

class FixedDetector:
    """Stands in for DWPose, RTMPose or another detector that gives COCO-17 keypoints."""
    def __call__(self, image):
        points = np.stack([np.linspace(10, 40, 17), np.linspace(5, 60, 17)], axis=1)
        return from_coco17(points, np.full(17, 0.9), image.size)
'''


def test_other_detectors_plug_in_by_name(tmp_path, monkeypatch):
    (tmp_path / "my_detector.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    extractor = get_extractor("my_detector:FixedDetector")
    keypoints = extract_pose(Image.new("RGB", (64, 64)), extractor)
    assert keypoints.present.all() and keypoints.image_size == (64, 64)
    with pytest.raises(PcdmsError, match="unknown pose extractor 'openpifpaf'"):
        get_extractor("openpifpaf")
    with pytest.raises(PcdmsError, match="cannot be loaded"):
        get_extractor("my_detector:Missing")
    sys.modules.pop("my_detector", None)


def test_missing_mediapipe_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe.python.solutions", None)
    with pytest.raises(
        PcdmsError, match=r"needs MediaPipe, an optional dependency: pip install -e '\.\[pose\]' in the pcdms clone"
    ):
        get_extractor("mediapipe")
