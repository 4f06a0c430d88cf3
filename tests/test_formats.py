import json

import numpy as np
import pytest

from pcdms.errors import PcdmsWarning, PoseFileError
from pcdms.pose import (
    KEYPOINT_NAMES,
    OFFICIAL,
    Keypoints,
    load_pose,
    read_annotation_csv,
    read_openpose_json,
    read_pcdms_txt,
    read_pcdms_txt_vector,
    read_pose_json,
    save_pose,
    write_annotation_csv,
    write_openpose_json,
    write_pcdms_txt,
    write_pose_json,
)


@pytest.fixture
def detected(pose):
    """A pose as a detector gives it: fractional coordinates, confidences, one joint missing."""
    xy = pose.xy + np.linspace(0.1, 0.9, 18)[:, None]
    confidence = np.linspace(0.35, 0.99, 18)
    return Keypoints(xy, confidence, pose.image_size).drop(np.arange(18) == 4)


# Round trips ---------------------------------------------------------------------------------------


def test_pcdms_json_round_trip_is_exact(tmp_path, detected):
    path = write_pose_json(tmp_path / "pose.json", detected)
    assert read_pose_json(path) == detected
    document = json.loads(path.read_text())
    assert document["image_size"] == [176, 256]
    assert document["keypoints"]["right_wrist"] is None
    assert document["keypoints"]["nose"] == pytest.approx([88.1, 40.1, 0.35])


def test_openpose_round_trip_keeps_confidences_and_missing_joints(tmp_path, detected, pose):
    path = write_openpose_json(tmp_path / "op.json", [detected, pose])
    people = read_openpose_json(path)
    assert people[0] == detected
    assert people[1] == pose
    triples = json.loads(path.read_text())["people"][0]["pose_keypoints_2d"]
    assert len(triples) == 54
    assert triples[12:15] == [0.0, 0.0, 0.0]  # OpenPose's mark for a missing joint


def test_annotation_csv_round_trip_and_text(tmp_path, pose, detected):
    missing_elbow = pose.drop(np.arange(18) == 3)
    path = write_annotation_csv(tmp_path / "ann.csv", {"a.jpg": missing_elbow, "b.jpg": detected})
    lines = path.read_text().splitlines()
    assert lines[0] == "name:keypoints_y:keypoints_x"
    # y list first, then x; integers stay integers; -1 marks the missing elbow.
    assert lines[1].startswith("a.jpg: [40, 70, 72, -1, 145, ")
    assert ": [88, 88, 62, -1, 50, " in lines[1]
    annotations = read_annotation_csv(path, (176, 256))
    assert annotations["a.jpg"] == missing_elbow
    # The CSV has no confidences: a present joint reads back with confidence 1.
    assert annotations["b.jpg"].allclose(Keypoints(detected.xy, np.where(detected.present, 1.0, 0.0), (176, 256)))


def test_annotation_csv_reads_the_patn_text(tmp_path):
    line = (
        "fashionMENDenimid0000008001_1front.jpg: [14, 37, 38, 78, -1, 36, 80, 121, 118, 181, 247, 117, 180, 245,"
        " 8, 9, 11, 13]: [84, 84, 62, 58, -1, 107, 114, 116, 70, 68, 65, 100, 101, 104, 80, 89, 74, 97]"
    )
    path = tmp_path / "fasion-resize-annotation-test.csv"
    path.write_text("name:keypoints_y:keypoints_x\n" + line + "\n")
    keypoints = read_annotation_csv(path, (176, 256))["fashionMENDenimid0000008001_1front.jpg"]
    assert keypoints.xy[0].tolist() == [84, 14]
    assert not keypoints.present[4]
    assert keypoints.xy[KEYPOINT_NAMES.index("left_ear")].tolist() == [97, 13]


def test_pcdms_txt_round_trip(tmp_path, detected):
    path = write_pcdms_txt(tmp_path / "img1.txt", detected, OFFICIAL)
    rows = path.read_text().splitlines()
    assert len(rows) == 18
    assert rows[4] == f"{-1:.18e} {-1:.18e}"
    np.testing.assert_allclose(read_pcdms_txt_vector(path).reshape(18, 2)[0], detected.xy[0] + [40, 0])
    back = read_pcdms_txt(path, detected.image_size, OFFICIAL)
    assert back.allclose(Keypoints(detected.xy, np.where(detected.present, 1.0, 0.0), (176, 256)), atol=1e-9)


def test_load_and_save_by_file_type(tmp_path, pose):
    assert load_pose(save_pose(tmp_path / "p.json", pose)) == pose
    assert load_pose(save_pose(tmp_path / "p.txt", pose), image_size=(176, 256)).allclose(pose, atol=1e-9)
    assert load_pose(tmp_path / "p.json", image_size=(352, 512)).allclose(pose.resize((352, 512)))
    with pytest.raises(PoseFileError, match="does not record the image size"):
        load_pose(tmp_path / "p.txt")
    with pytest.raises(PoseFileError, match=r"cannot write a pose as '.csv'"):
        save_pose(tmp_path / "p.csv", pose)
    (tmp_path / "p.yaml").write_text("nose: 1")
    with pytest.raises(PoseFileError, match="unknown pose file type"):
        load_pose(tmp_path / "p.yaml")


# OpenPose specifics ---------------------------------------------------------------------------------


def _openpose_file(path, people, **extra):
    path.write_text(json.dumps({"version": 1.3, "people": [{"pose_keypoints_2d": p} for p in people], **extra}))
    return path


def test_body25_maps_to_18_points(tmp_path):
    body25 = np.zeros((25, 3))
    body25[:, 0] = np.arange(25)  # x = the BODY_25 index, so the mapping is visible
    body25[:, 1] = 5
    body25[:, 2] = 0.8
    body25[10, 2] = 0  # right knee missing
    path = _openpose_file(tmp_path / "b.json", [body25.reshape(-1).tolist()])
    (keypoints,) = read_openpose_json(path, image_size=(64, 64))
    expected_x = [0, 1, 2, 3, 4, 5, 6, 7, 9, np.nan, 11, 12, 13, 14, 15, 16, 17, 18]
    np.testing.assert_array_equal(keypoints.xy[:, 0], expected_x)
    assert keypoints.present.sum() == 17


def test_openpose_file_frame_and_person_choice(tmp_path, pose, detected):
    people = [np.c_[np.nan_to_num(p.xy), p.confidence].reshape(-1).tolist() for p in (detected.threshold(0.6), pose)]
    bare = _openpose_file(tmp_path / "bare.json", people)
    with pytest.raises(PoseFileError, match="does not record the image size"):
        read_openpose_json(bare)
    with pytest.warns(PcdmsWarning, match="2 people; took person 1"):
        assert load_pose(bare, image_size=(176, 256)) == pose  # the larger person
    canvas = _openpose_file(tmp_path / "canvas.json", people, canvas_width=176, canvas_height=256)
    assert load_pose(canvas, person=1) == pose
    assert load_pose(canvas, image_size=(352, 512), person=1).allclose(pose.resize((352, 512)))
    empty = _openpose_file(tmp_path / "empty.json", [])
    assert read_openpose_json(empty, (10, 10)) == []
    with pytest.raises(PoseFileError, match="lists no person"):
        load_pose(empty, image_size=(10, 10))


# Bad files ------------------------------------------------------------------------------------------


def test_truncated_files_are_named(tmp_path, pose):
    for name in ("p.json", "op.json"):
        path = tmp_path / name
        if name == "p.json":
            write_pose_json(path, pose)
        else:
            write_openpose_json(path, pose)
        path.write_text(path.read_text()[:60])
        with pytest.raises(PoseFileError, match=rf"{name}: invalid JSON .* truncated"):
            load_pose(path)
    txt = write_pcdms_txt(tmp_path / "p.txt", pose)
    txt.write_text("\n".join(txt.read_text().splitlines()[:11]))
    with pytest.raises(PoseFileError, match=r"p.txt: has 11 lines, expected 18"):
        read_pcdms_txt(txt, (176, 256))
    csv = write_annotation_csv(tmp_path / "a.csv", {"a.jpg": pose})
    csv.write_text(csv.read_text()[:-40])
    with pytest.raises(PoseFileError, match=r"a.csv, line 2: keypoints_x is not a list of numbers \(truncated"):
        read_annotation_csv(csv, (176, 256))


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([1.0] * 51, "51 numbers; expected 54"),
        ([float("nan")] + [1.0] * 53, "NaN"),
        ([500.0, 5.0, 1.0] + [1.0] * 51, "nose at \\(500, 5\\) lies outside the 176x256 image"),
        ([5.0, 5.0, -1.0] + [1.0] * 51, "negative confidence"),
        (["a"] * 54, "must be a list of numbers"),
    ],
)
def test_bad_openpose_values(tmp_path, points, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": points}]}).replace('"NaN"', "NaN"))
    with pytest.raises(PoseFileError, match=message):
        read_openpose_json(path, (176, 256))


@pytest.mark.parametrize(
    ("ys", "xs", "message"),
    [
        ([1] * 17, [1] * 18, "keypoints_y has 17 numbers, expected 18"),
        ([1] * 18, [1] * 19, "keypoints_x has 19 numbers, expected 18"),
        ([-1] + [1] * 17, [3] + [1] * 17, "nose has only one coordinate equal to -1"),
        ([1] * 18, [1] * 17 + [400], "left_ear at \\(400, 1\\) lies outside"),
        ([1] * 18, "[NaN" + ", 1" * 17 + "]", "keypoints_x contains NaN"),
    ],
)
def test_bad_annotation_rows(tmp_path, ys, xs, message):
    path = tmp_path / "ann.csv"
    path.write_text(f"name:keypoints_y:keypoints_x\nx.jpg: {ys}: {xs}\n")
    with pytest.raises(PoseFileError, match=r"ann.csv, line 2: " + message):
        read_annotation_csv(path, (176, 256))


def test_annotation_csv_header_and_duplicates(tmp_path):
    path = tmp_path / "ann.csv"
    path.write_text("from,to\na.jpg,b.jpg\n")
    with pytest.raises(PoseFileError, match="not an annotation CSV"):
        read_annotation_csv(path, (176, 256))
    row = "a.jpg: " + str([1] * 18) + ": " + str([2] * 18)
    path.write_text("name:keypoints_y:keypoints_x\n" + row + "\n" + row + "\n")
    assert len(read_annotation_csv(path, (176, 256))) == 1
    path.write_text("name:keypoints_y:keypoints_x\n" + row + "\n" + row.replace("2", "3") + "\n")
    with pytest.raises(PoseFileError, match=r"line 3: a.jpg is annotated twice, differently"):
        read_annotation_csv(path, (176, 256))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2 3\n" * 18, "line 1: expected two numbers"),
        ("1 x\n" * 18, "line 1: '1 x' is not two numbers"),
        ("1 2\n" * 17 + "nan 2\n", "line 18: NaN"),
        ("1 2\n" * 19, "has 19 lines"),
        ("300 2\n" + "1 2\n" * 17, r"nose\) at \(300, 2\) lies outside the 256x256 frame"),
        ("-1 2\n" + "1 2\n" * 17, "only one coordinate equal to -1"),
    ],
)
def test_bad_pcdms_txt(tmp_path, text, message):
    path = tmp_path / "pose.txt"
    path.write_text(text)
    with pytest.raises(PoseFileError, match=message):
        read_pcdms_txt(path, (176, 256))


def test_pcdms_txt_tolerates_a_trailing_blank_line(tmp_path):
    path = tmp_path / "pose.txt"
    path.write_text("100 20\n" * 18 + "\n")
    assert read_pcdms_txt(path, (176, 256)).xy[0].tolist() == [60, 20]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="other"), "not a pcdms pose"),
        (lambda d: d.update(version=2), "version 2 is not supported"),
        (lambda d: d.update(image_size=[176]), "image_size must be"),
        (lambda d: d["keypoints"].pop("neck"), r"absent \['neck'\]"),
        (lambda d: d["keypoints"].update(chin=None), r"unknown \['chin'\]"),
        (lambda d: d["keypoints"].update(nose=[1, 2, 0]), "confidence 0, outside"),
        (lambda d: d["keypoints"].update(nose=[1, 2]), "nose has 2 numbers, expected 3"),
        (lambda d: d["keypoints"].update(nose=[-30, 2, 1]), "nose at \\(-30, 2\\) lies outside"),
    ],
)
def test_bad_pcdms_json(tmp_path, pose, change, message):
    path = write_pose_json(tmp_path / "pose.json", pose)
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    with pytest.raises(PoseFileError, match=message):
        read_pose_json(path)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(PoseFileError, match=r"nowhere.json: no such file"):
        load_pose(tmp_path / "nowhere.json")
    binary = tmp_path / "x.txt"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(PoseFileError, match=r"x.txt: not a text file"):
        read_pcdms_txt(binary, (10, 10))


def test_writers_leave_no_half_written_file(tmp_path, pose):
    path = write_pose_json(tmp_path / "pose.json", pose)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        write_openpose_json(path, [])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pose.json"]
