import json

import numpy as np
import pytest
from PIL import Image

from helpers import body_image, nearest_joint_colour, pixel_at, standing_pose
from pcdms.data import (
    AnnotatedPairsDataset,
    Pair,
    PcdmsReleaseDataset,
    available_splits,
    detect_layout,
    open_dataset,
    write_pose_files,
)
from pcdms.errors import DatasetError
from pcdms.pose import Keypoints, read_pcdms_txt, render_pose, write_annotation_csv, write_pcdms_txt

NAMES = ("a.jpg", "b.jpg", "c.jpg")
PAIRS = (("a.jpg", "b.jpg"), ("b.jpg", "c.jpg"), ("c.jpg", "a.jpg"))


def person(shift: int, frame=(176, 256)) -> Keypoints:
    """The standing pose moved sideways, so each image of the dataset has its own pose."""
    pose = standing_pose()
    return Keypoints(pose.xy + [shift, 0], pose.confidence, pose.image_size).resize(frame)


POSES = {name: person(shift) for name, shift in zip(NAMES, (-20, 0, 20), strict=True)}


def make_csv_layout(root, prefix, frame, image_dir, image_size, split="train"):
    """A PATN-style dataset: pairs CSV, annotation CSV in ``frame``, images of ``image_size``."""
    (root / image_dir).mkdir(parents=True)
    annotations = {name: pose.resize(frame) for name, pose in POSES.items()}
    for name, pose in annotations.items():
        body_image(pose.resize(image_size), joint_radius=3).save(root / image_dir / name, quality=98)
    write_annotation_csv(root / f"{prefix}-annotation-{split}.csv", annotations)
    (root / f"{prefix}-pairs-{split}.csv").write_text("from,to\n" + "".join(f"{s},{t}\n" for s, t in PAIRS))
    return root


def make_pcdms_release(root, numbered_poses=False):
    (root / "all_data_png").mkdir(parents=True)
    (root / "normalized_pose_txt").mkdir()
    items = []
    for number, pose in enumerate(POSES.values(), start=1):
        body_image(pose, joint_radius=3).save(root / "all_data_png" / f"img{number}.png")
        txt = f"pose_coordinate{number}.txt" if numbered_poses else f"img{number}.txt"
        write_pcdms_txt(root / "normalized_pose_txt" / txt, pose)
        items.append(f"img{number}.jpg")
    pairs = [{"source_image": items[i], "target_image": items[(i + 1) % 3]} for i in range(3)]
    (root / "train_data.json").write_text(json.dumps(pairs))
    return root


def assert_on_body_parts(image, keypoints):
    assert image.size == keypoints.image_size
    for index in np.flatnonzero(keypoints.present):
        assert nearest_joint_colour(pixel_at(image, *keypoints.xy[index])) == index


@pytest.mark.parametrize(
    ("prefix", "image_dir", "image_size"),
    [
        ("fasion-resize", "train", (176, 256)),  # PATN
        ("fashion-resize", "train_highres", (352, 512)),  # CFLD: high-resolution images, 176x256 annotations
    ],
)
def test_deepfashion_pairs(tmp_path, prefix, image_dir, image_size):
    root = make_csv_layout(tmp_path, prefix, (176, 256), image_dir, image_size)
    assert detect_layout(root, "train") == "deepfashion"
    dataset = open_dataset(root, "train")
    assert isinstance(dataset, AnnotatedPairsDataset) and len(dataset) == 3
    pair = dataset[0]
    assert isinstance(pair, Pair)
    assert (pair.source_name, pair.target_name) == ("a.jpg", "b.jpg")
    assert pair.source_image.size == pair.source_pose.image_size == image_size
    assert pair.target_pose.allclose(POSES["b.jpg"].resize(image_size))
    assert_on_body_parts(pair.source_image, pair.source_pose)
    assert_on_body_parts(pair.target_image, pair.target_pose)


def test_market_pairs(tmp_path):
    root = make_csv_layout(tmp_path, "market", (64, 128), "bounding_box_train", (64, 128))
    dataset = open_dataset(root, "train")
    assert "Market-1501" in repr(dataset)
    pair = dataset[2]
    assert pair.source_image.size == (64, 128)
    assert pair.source_pose.allclose(POSES["c.jpg"].resize((64, 128)))


@pytest.mark.parametrize("numbered_poses", [False, True])
def test_pcdms_release(tmp_path, numbered_poses):
    root = make_pcdms_release(tmp_path, numbered_poses)
    dataset = open_dataset(root, "train")
    assert isinstance(dataset, PcdmsReleaseDataset)
    pair = dataset[0]
    assert pair.source_name == "img1.jpg"  # listed as .jpg, stored as .png
    assert pair.source_pose.allclose(POSES["a.jpg"], atol=1e-6)
    assert_on_body_parts(pair.target_image, pair.target_pose)
    assert dataset.validate().ok


def test_transform_turns_pairs_into_what_training_needs(tmp_path):
    root = make_csv_layout(tmp_path, "fasion-resize", (176, 256), "train", (176, 256))
    dataset = open_dataset(root, "train", transform=lambda pair: (pair.source_name, pair.target_pose.present.sum()))
    assert dataset[1] == ("b.jpg", 18)


def test_validation_counts_what_is_missing(tmp_path):
    root = make_csv_layout(tmp_path, "fasion-resize", (176, 256), "train", (176, 256))
    (root / "train" / "b.jpg").unlink()
    annotation = root / "fasion-resize-annotation-train.csv"
    annotation.write_text(
        "\n".join(line for line in annotation.read_text().splitlines() if not line.startswith("c.jpg"))
    )
    dataset = open_dataset(root, "train")
    report = dataset.validate()
    assert not report.ok
    assert report.missing_images == [str(root / "train" / "b.jpg")]
    assert report.missing_poses == ["c.jpg"]
    assert report.unusable_pairs == [0, 1, 2]
    assert report.error_line().endswith(
        f"3 of 3 pairs are unusable: 1 images missing (first: {root / 'train' / 'b.jpg'}); "
        "1 poses missing (first: c.jpg)"
    )
    with pytest.raises(DatasetError, match="3 of 3 pairs are unusable"):
        report.raise_if_unusable()
    assert "poses missing: 1" in report.summary()


def test_validation_finds_damaged_files_and_keeps_the_usable_pairs(tmp_path):
    root = make_pcdms_release(tmp_path)
    damaged = root / "all_data_png" / "img2.png"
    damaged.write_bytes(damaged.read_bytes()[:300])  # a valid header, the rest cut off
    (root / "normalized_pose_txt" / "img3.txt").write_text("1 2\n" * 5)
    dataset = open_dataset(root, "train")
    assert dataset.validate().ok is False  # the pose txt is read, images only checked for existence
    report = dataset.validate(check_images=True)
    assert len(report.unreadable_images) == 1 and "img2.png: " in report.unreadable_images[0]
    assert len(report.unreadable_poses) == 1 and "img3.txt: has 5 lines" in report.unreadable_poses[0]
    assert report.unusable_pairs == [0, 1, 2]
    body_image(POSES["b.jpg"]).save(damaged)
    usable = dataset.usable(dataset.validate(check_images=True))
    assert usable.pairs == [("img1.jpg", "img2.jpg")]
    assert len(dataset) == 3


def test_layout_errors_are_one_line(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        detect_layout(tmp_path / "nowhere", "train")
    with pytest.raises(DatasetError, match=r"no train split of a known layout: expected train_data.json"):
        open_dataset(tmp_path, "train")
    make_pcdms_release(tmp_path)
    make_csv_layout(tmp_path, "market", (64, 128), "train", (64, 128))
    with pytest.raises(DatasetError, match=r"several layouts \(pcdms, market\); choose one with --layout"):
        open_dataset(tmp_path, "train")
    assert len(open_dataset(tmp_path, "train", layout="market")) == 3
    (tmp_path / "market-pairs-train.csv").write_text("source,target\na.jpg,b.jpg\n")
    with pytest.raises(DatasetError, match="needs a header with 'from' and 'to'"):
        open_dataset(tmp_path, "train", layout="market")
    (tmp_path / "train_data.json").write_text('[{"source_image": "img1.jpg"')
    with pytest.raises(DatasetError, match=r"train_data.json: not valid JSON .* truncated"):
        open_dataset(tmp_path, "train", layout="pcdms")


def test_damaged_annotation_csv_fails_when_opening(tmp_path):
    root = make_csv_layout(tmp_path, "fasion-resize", (176, 256), "train", (176, 256))
    annotation = root / "fasion-resize-annotation-train.csv"
    annotation.write_text(annotation.read_text()[:-30])
    with pytest.raises(DatasetError, match=r"fasion-resize-annotation-train.csv, line 4: keypoints_x"):
        open_dataset(root, "train")


def test_pcdms_release_without_pose_folder_points_at_the_zip(tmp_path):
    root = make_pcdms_release(tmp_path)
    (root / "normalized_pose_txt").rename(root / "elsewhere")
    (root / "normalized_pose_txt.zip").write_bytes(b"PK")
    with pytest.raises(DatasetError, match=r"pose folder not found \(unzip normalized_pose_txt.zip there\)"):
        open_dataset(root, "train")


def test_available_splits(tmp_path):
    root = make_csv_layout(tmp_path, "fasion-resize", (176, 256), "train", (176, 256))
    assert available_splits(root) == ["train"]
    make_csv_layout(tmp_path / "other", "fasion-resize", (176, 256), "test", (176, 256), split="test")
    assert available_splits(tmp_path / "other") == ["test"]
    with pytest.raises(DatasetError, match="no train split"):
        available_splits(tmp_path / "other", splits=("train",))


def test_write_pose_files_for_the_official_code(tmp_path):
    root = make_csv_layout(tmp_path / "data", "fasion-resize", (176, 256), "train_highres", (352, 512))
    dataset = open_dataset(root, "train")
    out = tmp_path / "poses"
    summary = write_pose_files(dataset, out)
    assert (summary.written, summary.already_there, summary.failed) == (3, 0, [])
    pose_map = Image.open(out / "openpose_all_img" / "a_pose.jpg")
    expected = render_pose(POSES["a.jpg"].resize((352, 512)))
    assert pose_map.size == (352, 512)
    assert (
        np.abs(np.array(pose_map, dtype=int) - np.array(expected, dtype=int)).mean() < 3
    )  # JPEG, as the official maps
    txt_pose = read_pcdms_txt(out / "normalized_pose_txt" / "a.txt", (176, 256))
    assert txt_pose.allclose(POSES["a.jpg"], atol=1e-6)
    assert write_pose_files(dataset, out).already_there == 3
    (root / "fasion-resize-pairs-train.csv").write_text("from,to\na.jpg,z.jpg\n")
    summary = write_pose_files(open_dataset(root, "train"), tmp_path / "more", map_format="png", size=(64, 128))
    assert summary.written == 1 and summary.failed[0].startswith("z.jpg: ")
    assert Image.open(tmp_path / "more" / "openpose_all_img" / "a_pose.png").size == (64, 128)
