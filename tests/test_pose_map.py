import colorsys
import io
import re

import numpy as np
import pytest
from PIL import Image, ImageDraw

from helpers import standing_pose
from pcdms.bundled import example_image_path
from pcdms.errors import NoPersonError, PcdmsError, PoseFileError
from pcdms.pose import (
    COLORS,
    KEYPOINT_NAMES,
    Keypoints,
    as_keypoints,
    is_pose_map,
    load_pose,
    read_pose_map,
    render_pose,
    save_pose,
)

JOINT = {name: index for index, name in enumerate(KEYPOINT_NAMES)}
DISC_AREA = 49  # the pixels of a drawn disc of radius 4
TOLERANCE = {"png": 1.5, "jpeg": 2.5}
# A joint showing less than this share of its disc (the rest under later discs) may be missing: JPEG
# blurs a thin crescent away.
MAY_MISS = {"png": 0.4, "jpeg": 0.6}
SIZES = [(64, 128), (176, 256), (352, 512), (400, 100), (1024, 1024)]


def encoded(image: Image.Image, image_format: str) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **({"quality": 90} if image_format == "jpeg" else {}))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def shown(pose_map: Image.Image, joint: int) -> float:
    """The share of a joint's disc left visible by the discs drawn after it."""
    return (np.asarray(pose_map) == COLORS[joint]).all(axis=2).sum() / DISC_AREA


def assert_read_back(read: Keypoints, truth: Keypoints, pose_map: Image.Image, image_format: str) -> None:
    """Every joint within tolerance of the truth, missing ones missing, hidden ones possibly missing."""
    assert read.image_size == pose_map.size
    assert not (read.present & ~truth.present).any(), "a joint that was not drawn was found"
    error = np.linalg.norm(read.xy - truth.xy, axis=1)
    for joint in np.flatnonzero(truth.present):
        name = KEYPOINT_NAMES[joint]
        if read.present[joint]:
            assert error[joint] <= TOLERANCE[image_format], f"{name} is {error[joint]:.2f} px off"
        else:
            share = shown(pose_map, joint)
            assert share < MAY_MISS[image_format], f"{name} is missing though {share:.0%} of it shows"


def jittered_pose(size, seed: int) -> Keypoints:
    """The standing pose at ``size`` moved by fractions of a pixel, with two joints missing."""
    rng = np.random.default_rng(seed)
    pose = standing_pose(size)
    xy = np.clip(pose.xy + rng.uniform(-0.9, 0.9, pose.xy.shape), 0, np.array(size) - 1)
    return Keypoints(xy, pose.confidence, size).drop(
        np.isin(np.arange(18), [JOINT["right_wrist"], JOINT["left_ankle"]])
    )


@pytest.mark.parametrize("image_format", ["png", "jpeg"])
@pytest.mark.parametrize("size", SIZES)
def test_reads_back_what_render_pose_drew(size, image_format):
    truth = jittered_pose(size, seed=size[0])
    drawn = render_pose(truth)
    pose_map = encoded(drawn, image_format)
    assert is_pose_map(pose_map)
    read = read_pose_map(pose_map)
    assert_read_back(read, truth, drawn, image_format)
    if size[0] >= 176:  # at 64x128 the face is too small for its five discs to show
        assert read.present.sum() == 16


@pytest.mark.parametrize("image_format", ["png", "jpeg"])
def test_random_poses(image_format):
    rng = np.random.default_rng(3)
    for _ in range(6):
        size = tuple(int(side) for side in rng.integers(96, 480, 2))
        xy = np.clip(rng.normal(0.5, 0.2, (18, 2)) * size, 0, np.array(size) - 1)
        truth = Keypoints(xy, np.ones(18), size).drop(rng.random(18) < 0.2)
        drawn = render_pose(truth)
        read = read_pose_map(encoded(drawn, image_format), min_joints=0)
        assert_read_back(read, truth, drawn, image_format)


def test_a_whole_disc_gives_the_middle_of_its_pixel():
    """Drawing truncates coordinates, so a joint drawn on pixel c lay in [c, c + 1): it is read as c + 1/2,
    at most half a pixel off on each axis (where no disc hides another)."""
    truth = jittered_pose((352, 512), seed=0)
    read = read_pose_map(render_pose(truth))
    assert np.array_equal(read.present, truth.present)
    assert np.nanmax(np.abs(read.xy - truth.xy)) <= 0.5


@pytest.mark.parametrize("angle", [0, 90, 200, 315])
def test_a_joint_half_hidden_by_a_later_one(pose, angle):
    """The right elbow 3 px from the right knee, whose disc (drawn later) covers half of the elbow's."""
    xy = pose.xy.copy()
    xy[JOINT["right_elbow"]] = (40.3, 120.6)
    direction = np.radians(angle)
    xy[JOINT["right_knee"]] = xy[JOINT["right_elbow"]] + 3 * np.array([np.cos(direction), np.sin(direction)])
    truth = Keypoints(xy, pose.confidence, pose.image_size)
    drawn = render_pose(truth)
    assert shown(drawn, JOINT["right_elbow"]) < 0.55
    read = read_pose_map(drawn)
    assert read.present.all()
    assert_read_back(read, truth, drawn, "png")
    assert_read_back(read_pose_map(encoded(drawn, "jpeg")), truth, drawn, "jpeg")


def test_a_joint_entirely_hidden_is_missing(pose):
    xy = pose.xy.copy()
    xy[JOINT["right_elbow"]] = xy[JOINT["right_knee"]]
    read = read_pose_map(render_pose(Keypoints(xy, pose.confidence, pose.image_size)))
    assert not read.present[JOINT["right_elbow"]] and read.present[JOINT["right_knee"]]


# DWPose's 21 hand points: the wrist, then four along each finger.
HAND_EDGES = [
    (0 if step == 0 else 4 * finger + step, 4 * finger + step + 1) for finger in range(5) for step in range(4)
]


def dwpose_like(pose: Keypoints, dot_radius: int, line_width: int, dot_color) -> Image.Image:
    """render_pose, then hands and a face the way DWPose / controlnet_aux draw them: hand bones as lines
    in 20 hues, hand points as dots, face points as white dots of radius 3."""
    image = render_pose(pose)
    draw = ImageDraw.Draw(image)
    scale = pose.height / 60  # a finger bone's length
    for wrist in (JOINT["right_wrist"], JOINT["left_wrist"]):
        root = pose.xy[wrist] + (0, 0.8 * scale)
        angles = np.radians(40 + 25 * np.arange(5))
        fingers = [root + np.array([np.cos(a), np.sin(a)]) * scale * (1.2 + step) for a in angles for step in range(4)]
        points = np.array([root, *fingers])
        for number, (start, end) in enumerate(HAND_EDGES):
            color = tuple(int(255 * channel) for channel in colorsys.hsv_to_rgb(number / len(HAND_EDGES), 1.0, 1.0))
            draw.line([tuple(points[start]), tuple(points[end])], fill=color, width=line_width)
        for x, y in points.astype(int):
            draw.ellipse((x - dot_radius, y - dot_radius, x + dot_radius, y + dot_radius), fill=dot_color)
    nose = pose.xy[JOINT["nose"]]
    for angle in np.radians(np.linspace(10, 170, 17)):  # the jaw line, below the eyes
        x, y = (nose + np.array([np.cos(angle), np.sin(angle)]) * scale * 2.5).astype(int)
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=(255, 255, 255))
    return image


@pytest.mark.parametrize(
    ("dot_radius", "line_width", "dot_color"),
    [(1, 1, (0, 0, 255)), (4, 2, (0, 0, 255)), (4, 2, (255, 0, 0))],
    ids=["dwpose", "controlnet-openpose", "red-hand-points"],
)
@pytest.mark.parametrize("image_format", ["png", "jpeg"])
def test_hands_and_face_do_not_disturb_the_body(dot_radius, line_width, dot_color, image_format):
    """Hand points of radius 4 in the left knee's blue (or the nose's red) outnumber that joint's disc."""
    truth = standing_pose((352, 512))
    drawn = dwpose_like(truth, dot_radius, line_width, dot_color)
    pose_map = encoded(drawn, image_format)
    assert is_pose_map(pose_map)
    read = read_pose_map(pose_map)
    assert read.present.all()
    error = np.linalg.norm(read.xy - truth.xy, axis=1)
    assert error.max() <= TOLERANCE[image_format], KEYPOINT_NAMES[error.argmax()]


def test_photos_and_plain_images_are_not_pose_maps():
    assert not is_pose_map(Image.open(example_image_path()))
    for color in ((0, 0, 0), (255, 255, 255), COLORS[0]):
        assert not is_pose_map(Image.new("RGB", (256, 256), color)), color


def test_skimage_photos_are_not_pose_maps():
    data = pytest.importorskip("skimage.data")
    for name in ("astronaut", "camera", "coffee", "hubble_deep_field"):
        assert not is_pose_map(Image.fromarray(getattr(data, name)())), name


def test_too_few_joints_is_a_one_line_error(tmp_path, pose):
    path = tmp_path / "three.png"
    render_pose(pose.drop(np.arange(18) >= 3)).save(path)
    message = f"{path}: only 3 of 18 joints found in the pose map, 4 needed"
    with pytest.raises(PoseFileError, match=f"^{re.escape(message)}$"):
        as_keypoints(path)
    assert read_pose_map(Image.open(path), min_joints=3).present.sum() == 3


# as_keypoints ---------------------------------------------------------------------------------------


class FixedExtractor:
    """Stands in for MediaPipe: the same pose for every photo, in the photo's frame."""

    def __init__(self, pose: Keypoints):
        self.pose, self.seen = pose, []

    def __call__(self, image: Image.Image) -> Keypoints:
        self.seen.append(image.size)
        return self.pose.resize(image.size)


def test_as_keypoints_takes_keypoints_and_pose_files(tmp_path, pose):
    assert as_keypoints(pose) is pose
    json_path = save_pose(tmp_path / "pose.json", pose)
    assert as_keypoints(json_path) == pose
    assert as_keypoints(str(json_path), image_size=(352, 512)) == load_pose(json_path, image_size=(352, 512))
    txt_path = save_pose(tmp_path / "pose.txt", pose)
    assert as_keypoints(txt_path, image_size=pose.image_size).allclose(pose, atol=1e-3)
    with pytest.raises(PoseFileError, match="does not record the image size"):
        as_keypoints(txt_path)


def test_as_keypoints_reads_pose_images(tmp_path, pose):
    extractor = FixedExtractor(pose)
    pose_map = render_pose(pose)
    expected = read_pose_map(pose_map)
    assert as_keypoints(pose_map, extractor=extractor) == expected
    for suffix in (".png", ".jpg"):
        path = tmp_path / f"target{suffix}"
        pose_map.save(path)
        read = as_keypoints(path, image_size=(500, 500), extractor=extractor)
        assert read.image_size == pose.image_size  # an image's pose is in the image's own frame
        assert read.allclose(expected, atol=TOLERANCE["jpeg"])
    assert extractor.seen == []


def test_as_keypoints_extracts_the_pose_of_photos(pose):
    extractor = FixedExtractor(pose)
    photo = Image.open(example_image_path())
    assert as_keypoints(photo, extractor=extractor) == pose.resize(photo.size)
    assert as_keypoints(example_image_path(), extractor=extractor) == pose.resize(photo.size)
    assert extractor.seen == [photo.size, photo.size]


def test_as_keypoints_errors_name_the_input(tmp_path):
    def nobody(image):
        raise NoPersonError("no person found")

    wall = tmp_path / "wall.png"
    Image.new("RGB", (64, 64), (128, 128, 128)).save(wall)
    with pytest.raises(NoPersonError, match=f"^{re.escape(str(wall))}: no person found$"):
        as_keypoints(wall, extractor=nobody)
    with pytest.raises(NoPersonError, match=r"^target pose: no person found$"):
        as_keypoints(Image.open(wall), extractor=nobody, where="target pose")
    with pytest.raises(PcdmsError, match=r"missing\.png: no such file"):
        as_keypoints(tmp_path / "missing.png")
    (tmp_path / "broken.jpg").write_text("not a picture")
    with pytest.raises(PcdmsError, match=r"broken\.jpg: not an image file"):
        as_keypoints(tmp_path / "broken.jpg")
    with pytest.raises(PoseFileError, match=r"unknown pose file type '\.pose'"):
        as_keypoints(tmp_path / "x.pose")
    with pytest.raises(TypeError, match="not ndarray"):
        as_keypoints(np.zeros((18, 2)))
