"""Pose files as other tools write them, and one joint-count rule at every entry point (issue 17's cases)."""

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import body_image, standing_pose
from pcdms.bundled import street_examples_path
from pcdms.cli import main
from pcdms.data import open_dataset, write_pose_files
from pcdms.errors import NoPersonError, PcdmsError, PcdmsWarning, PoseFileError, TooFewJointsError
from pcdms.pose import (
    MIN_POSE_JOINTS,
    check_enough_joints,
    load_pose,
    read_openpose_json,
    write_openpose_json,
    write_pose_json,
)
from pcdms.pose.openpose import main_person

CASES = Path(__file__).parent / "data" / "cases"


def run(capsys, *argv):
    status = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def openpose_file(path, people, **extra):
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": points} for points in people], **extra}))
    return path


def triples(keypoints):
    return np.c_[np.nan_to_num(keypoints.xy), keypoints.confidence].reshape(-1).tolist()


# Fractional coordinates ---------------------------------------------------------------------------------


def test_fractions_of_the_canvas_are_scaled_to_pixels():
    """OpenPose --keypoint_scale 3 / ComfyUI DWPose: read as pixels, the skeleton collapsed into a corner."""
    keypoints = load_pose(CASES / "normalised_coordinates.json")
    assert keypoints.image_size == (352, 512) and keypoints.present.all()
    assert keypoints.xy[0] == pytest.approx((0.5 * 352, 0.1562 * 512))  # the nose
    assert keypoints.xy[10] == pytest.approx((0.3977 * 352, 0.8906 * 512))  # the right ankle
    assert np.ptp(keypoints.xy[:, 1]) > 0.7 * 512  # a body's height, not 5 pixels


def test_fractions_without_a_canvas_size_need_one(tmp_path):
    data = json.loads((CASES / "normalised_coordinates.json").read_text())
    del data["canvas_width"], data["canvas_height"]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(data))
    with pytest.raises(
        PoseFileError, match=r"^.*bare.json: the coordinates are fractions of the canvas .*--image-size"
    ):
        load_pose(bare)
    assert load_pose(bare, image_size=(352, 512)).allclose(load_pose(CASES / "normalised_coordinates.json"))
    # OpenPose's --keypoint_scale 4 ([-1, 1]) is refused, not squeezed into the corner.
    data["people"][0]["pose_keypoints_2d"][0] = -0.2
    bare.write_text(json.dumps(data))
    with pytest.raises(PoseFileError, match=r"in \[-1, 1\] \(OpenPose's --keypoint_scale 4\)"):
        load_pose(bare, image_size=(352, 512))


def test_a_pcdms_pose_in_fractions_is_refused(tmp_path, pose):
    document = json.loads(write_pose_json(tmp_path / "p.json", pose).read_text())
    document["keypoints"] = {name: [p[0] / 176, p[1] / 256, 1.0] for name, p in document["keypoints"].items()}
    (tmp_path / "p.json").write_text(json.dumps(document))
    with pytest.raises(PoseFileError, match=r"p.json: every joint lies within a pixel of the corner"):
        load_pose(tmp_path / "p.json")


# Joints a little outside the frame ----------------------------------------------------------------------


def test_joints_a_little_outside_are_moved_onto_the_edge_with_a_warning(tmp_path, pose):
    xy = pose.xy.copy()
    xy[10] = (70, 262)  # the right ankle, 6 px below a 256-px image (cut off by the frame)
    xy[7] = (-8, 145)  # the left wrist, 8 px left of it
    points = np.c_[xy, pose.confidence].reshape(-1).tolist()
    path = openpose_file(tmp_path / "cut.json", [points], canvas_width=176, canvas_height=256)
    with pytest.warns(PcdmsWarning, match=r"cut.json: person 0: left_wrist, right_ankle slightly outside .* edge"):
        keypoints = load_pose(path)
    assert keypoints.present.all()
    assert tuple(keypoints.xy[10]) == (70, 255) and tuple(keypoints.xy[7]) == (0, 145)
    xy[10] = (70, 300)  # 44 px out: more than a tenth of the height, the numbers are wrong
    path = openpose_file(tmp_path / "far.json", [np.c_[xy, pose.confidence].reshape(-1).tolist()], canvas_width=176)
    path.write_text(path.read_text().replace('"canvas_width": 176', '"canvas_width": 176, "canvas_height": 256'))
    with pytest.raises(PoseFileError, match=r"right_ankle at \(70, 300\) lies outside the 176x256 image"):
        load_pose(path)


# Several people -----------------------------------------------------------------------------------------


def test_the_main_subject_is_taken_and_an_index_chooses(tmp_path, capsys):
    """A large subject (12 joints) and a small full-body passer-by (18): summed confidence took the passer-by."""
    with pytest.warns(PcdmsWarning, match=r"two_people.json: 2 people; took person 0 \(12 joints\), the largest"):
        subject = load_pose(CASES / "two_people.json")
    assert subject.present.sum() == 12 and subject.xy[0] == pytest.approx((393.6, 88.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a chosen person: nothing to warn about
        assert load_pose(CASES / "two_people.json", person=1).present.sum() == 18
    with pytest.raises(PoseFileError, match=r"two_people.json: no person 2; the file lists 2 \(0 to 1\)$"):
        load_pose(CASES / "two_people.json", person=2)
    with pytest.raises(PoseFileError, match=r"three_joints.json: holds one person; there is no person 1"):
        load_pose(CASES / "three_joints.json", person=1)
    # The command line: the same choice by --person, and the warning as one line.
    out = tmp_path / "p.json"
    status, _, err = run(capsys, "pose", "convert", CASES / "two_people.json", "--out", out)
    assert status == 0 and err.strip().startswith("pcdms: warning: ") and len(err.strip().splitlines()) == 1
    assert load_pose(out).present.sum() == 12
    assert run(capsys, "pose", "convert", CASES / "two_people.json", "--person", "1", "--out", out)[0] == 0
    assert load_pose(out).present.sum() == 18


def test_of_equally_large_people_the_most_central_is_the_main_one(pose):
    shifted = [pose.pad(100, 0, 0, 0).crop((0, 0, 276, 256)), pose.pad(50, 0, 50, 0)]  # same size, off / on centre
    assert main_person(shifted) == 1


# The variants of OpenPose JSON ---------------------------------------------------------------------------


def test_openpose_variants_real_tools_write(tmp_path, pose):
    expected = pose
    flat = triples(pose)
    # x y pairs without confidences; 0 0 is a missing joint.
    pairs = np.nan_to_num(pose.drop(np.arange(18) == 4).xy).reshape(-1).tolist()
    path = openpose_file(tmp_path / "pairs.json", [pairs], canvas_width=176, canvas_height=256)
    assert load_pose(path) == pose.drop(np.arange(18) == 4)
    # Lists of points, as some exporters nest them.
    nested = np.array(flat).reshape(18, 3).tolist()
    path = openpose_file(tmp_path / "nested.json", [nested], canvas_width=176, canvas_height=256)
    assert load_pose(path) == expected
    # ComfyUI: a list of frames (one per image of the batch); canvas sizes as floats; extra parts null.
    document = [
        {
            "people": [{"pose_keypoints_2d": flat, "face_keypoints_2d": None, "hand_left_keypoints_2d": None}],
            "canvas_width": 176.0,
            "canvas_height": 256.0,
        }
    ]
    (tmp_path / "comfy.json").write_text(json.dumps(document))
    assert load_pose(tmp_path / "comfy.json") == expected
    (tmp_path / "frames.json").write_text(json.dumps(document * 3))
    with pytest.raises(PoseFileError, match=r"frames.json: 3 frames of poses .* pcdms reads one frame"):
        load_pose(tmp_path / "frames.json")
    # OpenPose before 1.2 named the list pose_keypoints.
    (tmp_path / "old.json").write_text(
        json.dumps({"people": [{"pose_keypoints": flat}], "canvas_width": 176, "canvas_height": 256})
    )
    assert load_pose(tmp_path / "old.json") == expected
    # A person without body points (hands only) is an empty pose, kept in file order.
    path = openpose_file(tmp_path / "hands.json", [[], flat], canvas_width=176, canvas_height=256)
    people = read_openpose_json(path)
    assert people[0].present.sum() == 0 and people[1] == expected
    with pytest.warns(PcdmsWarning, match="took person 1"):
        assert load_pose(path) == expected
    # Nobody detected.
    empty = openpose_file(tmp_path / "empty.json", [], canvas_width=176, canvas_height=256)
    with pytest.raises(PoseFileError, match=r"empty.json: the OpenPose file lists no person$"):
        load_pose(empty)
    # BODY_25 with pairs: the mid-hip is dropped, the rest mapped.
    body25 = np.zeros((25, 2))
    body25[:, 0], body25[:, 1] = np.arange(25) + 10, 20
    path = openpose_file(tmp_path / "b25.json", [body25.reshape(-1).tolist()], canvas_width=64, canvas_height=64)
    assert load_pose(path).xy[8, 0] == 19  # right hip: BODY_25's point 9


# Huge frames, deep nesting ------------------------------------------------------------------------------


def test_huge_frames_are_refused_in_one_line(tmp_path, pose):
    with pytest.raises(
        PoseFileError, match=r"huge_frame.json: 2000000x4000000 pixels is too large for pcdms \(at most"
    ):
        load_pose(CASES / "huge_frame.json")
    path = openpose_file(tmp_path / "wide.json", [triples(pose)], canvas_width=100000, canvas_height=256)
    with pytest.raises(PoseFileError, match=r"wide.json: 100000x256 pixels is too large"):
        load_pose(path)
    write_pose_json(tmp_path / "p.json", pose)
    with pytest.raises(PoseFileError, match=r"p.json: 20000x20000 pixels is too large"):
        load_pose(tmp_path / "p.json", image_size=(20000, 20000))


def test_deeply_nested_json_is_refused_without_a_recursion_error(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(PoseFileError, match=r"deep.json: JSON nested more than 32 deep; not a pose file$"):
        load_pose(deep)
    status, _, err = run(capsys, "pose", "convert", deep, "--out", tmp_path / "x.json")
    assert status == 1 and err.count("\n") == 1 and "Recursion" not in err
    # Brackets inside strings are not nesting.
    path = openpose_file(tmp_path / "note.json", [triples(standing_pose())], canvas_width=176, canvas_height=256)
    path.write_text(path.read_text()[:-1] + ', "note": "' + "[" * 100 + '"}')
    assert load_pose(path) == standing_pose()


# One joint-count rule -----------------------------------------------------------------------------------


def test_the_rule_itself():
    three = load_pose(CASES / "three_joints.json")
    with pytest.raises(
        TooFewJointsError, match=r"^x: a pose with 3 of 18 joints is too few to pose a person \(at least 8\)$"
    ):
        check_enough_joints(three, "x")
    full = standing_pose()
    assert check_enough_joints(full.drop(np.arange(18) >= MIN_POSE_JOINTS), "x").present.sum() == MIN_POSE_JOINTS


def test_generate_refuses_too_few_joints_and_names_the_file(tmp_path, capsys):
    examples = street_examples_path()
    source = examples / "0086_c1s1_000635_00.jpg"
    common = ["generate", "--source", source, "--out", tmp_path / "out.png"]
    for target in (CASES / "three_joints.json", CASES / "all_minus_one_row" / "prepared_2side.txt"):
        status, _, err = run(capsys, *common, "--target-pose", target, "--target-size", "64x128")
        assert status == 1 and err.count("\n") == 1
        assert err.startswith(f"pcdms: error: {target}: a pose with ") and "too few to pose a person" in err
    status, _, err = run(
        capsys,
        *common,
        "--target-pose",
        examples / "0086_c1s1_000670_00.json",
        "--source-pose",
        CASES / "three_joints.json",
    )
    assert status == 1 and "three_joints.json: a pose with 3 of 18 joints" in err
    assert not (tmp_path / "out.png").exists()


def test_generate_names_the_photo_where_nobody_is_found(tmp_path, capsys, monkeypatch):
    import pcdms.pose.inputs

    def nobody(image, extractor=None):
        raise NoPersonError("no person found")

    monkeypatch.setattr(pcdms.pose.inputs, "extract_pose", nobody)
    tiny = tmp_path / "tiny.jpg"
    Image.new("RGB", (64, 128), (90, 90, 90)).save(tiny)
    target = street_examples_path() / "0086_c1s1_000670_00.json"
    status, _, err = run(capsys, "generate", "--source", tiny, "--target-pose", target, "--out", tmp_path / "o.png")
    assert status == 1 and err == f"pcdms: error: {tiny}: no person found\n"


def test_the_python_api_refuses_too_few_joints_and_tiny_sources(monkeypatch):
    from tiny_pcdms import tiny_pcdms

    pipeline = tiny_pcdms()
    source = body_image(standing_pose((64, 128)))
    with pytest.raises(TooFewJointsError, match=r"three_joints.json: a pose with 3 of 18 joints"):
        pipeline(source, str(CASES / "three_joints.json"), standing_pose((64, 128)))
    three = load_pose(CASES / "three_joints.json")
    with pytest.raises(TooFewJointsError, match=r"^target pose 2 of 2: a pose with 3"):
        pipeline([source, source], [standing_pose((64, 128)), three], [standing_pose((64, 128))] * 2)
    with pytest.raises(TooFewJointsError, match=r"^source pose: a pose with 3"):
        pipeline(source, standing_pose((64, 128)), three)
    with pytest.raises(PcdmsError, match=r"^source image: 1x1 pixels is too small"):
        pipeline(Image.new("RGB", (1, 1)), standing_pose((64, 128)), standing_pose((64, 128)))

    import pcdms.pipelines.pcdms

    def nobody(image, extractor=None):
        raise NoPersonError("no person found")

    monkeypatch.setattr(pcdms.pipelines.pcdms, "extract_pose", nobody)
    with pytest.raises(NoPersonError, match=r"^source image: no person found$"):
        pipeline(source, standing_pose((64, 128)))


def test_a_pair_with_an_all_minus_one_row_is_unusable_everywhere(tmp_path, capsys):
    """A PATN-layout folder whose annotation row for one image is all -1 (no joint detected)."""
    root = tmp_path / "df"
    shutil.copytree(CASES / "all_minus_one_row", root)
    dataset = open_dataset(root, "train")
    report = dataset.validate()
    assert report.unusable_pairs == [0] and not report.ok
    assert len(report.few_joint_poses) == 1 and "_2side.jpg: a pose with 0 of 18 joints" in report.few_joint_poses[0]
    status, out, _ = run(capsys, "data", "validate", root)
    assert status == 1 and "pairs: 2 (1 usable)" in out and "poses with too few joints: 1" in out
    summary = write_pose_files(dataset, tmp_path / "poses")
    assert summary.written == 2 and len(summary.failed) == 1 and "_2side.jpg: a pose with 0" in summary.failed[0]
    assert not list((tmp_path / "poses").rglob("*2side*"))  # no empty pose map, no all -1 txt
    status, out, _ = run(capsys, "data", "prepare-poses", root, "--out", tmp_path / "cli-poses")
    assert status == 1 and "1 without a usable pose" in out
    assert not list((tmp_path / "cli-poses").rglob("*2side*"))


def test_the_page_keeps_to_the_rule_too(tmp_path, pose):
    """The page (tests/test_app.py) refuses through the same function: its message is the rule's."""
    gr = pytest.importorskip("gradio")  # noqa: F841
    from pcdms.app import PoseTransferApp

    few = pose.drop(np.arange(18) >= 5)
    with pytest.raises(TooFewJointsError, match=r"^few.json: a pose with 5 of 18 joints is too few"):
        PoseTransferApp._enough_joints(few, "few.json")
    write_openpose_json(tmp_path / "op.json", few)  # written by another tool, read back the same
    assert load_pose(tmp_path / "op.json") == few


def test_a_cut_out_source_is_composed_on_white_in_the_python_api_too():
    """PCDMsPipeline (and its stage pipelines) read a PIL cut-out as load_image does: on white."""
    import torch

    from pcdms.io import to_rgb
    from tiny_pcdms import tiny_pcdms

    pipeline = tiny_pcdms()
    cutout = Image.open(CASES / "rgba_cutout.png").resize((64, 128))
    assert cutout.mode == "RGBA"
    pose, target = standing_pose((64, 128)), standing_pose((64, 128)).hflip()
    steps = {"prior_steps": 2, "inpaint_steps": 2, "refine_steps": 2, "output_type": "pt"}
    on_white = pipeline(to_rgb(cutout), target, pose, generator=torch.Generator().manual_seed(0), **steps).images
    given = pipeline(cutout, target, pose, generator=torch.Generator().manual_seed(0), **steps).images
    assert torch.equal(on_white, given)
    assert np.asarray(to_rgb(cutout))[0, 0].tolist() == [255, 255, 255]  # a transparent corner
