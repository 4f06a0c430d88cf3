import errno
import json
import os
import shutil
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pcdms.errors import PcdmsError
from pcdms.io import atomic_folder, atomic_write, image_size, load_image, save_image, to_rgb

CASES = Path(__file__).parent / "data" / "cases"


def test_load_image_errors_name_the_file(tmp_path):
    with pytest.raises(PcdmsError, match=r"missing.png: no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(PcdmsError, match="not a file"):
        load_image(tmp_path)
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    with pytest.raises(PcdmsError, match=r"notes.jpg: not an image file"):
        load_image(text)
    photo = tmp_path / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(photo)
    photo.write_bytes(photo.read_bytes()[:400])
    with pytest.raises(PcdmsError, match=r"cut.jpg: damaged image file"):
        load_image(photo)


def test_load_image_is_rgb_upright_and_transparency_is_white(tmp_path):
    cutout = Image.new("RGBA", (16, 16), (10, 20, 30, 0))
    cutout.putpixel((0, 0), (10, 20, 30, 255))
    cutout.save(tmp_path / "cutout.png")
    image = load_image(tmp_path / "cutout.png")
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (10, 20, 30) and image.getpixel((1, 0)) == (255, 255, 255)

    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: turn a quarter clockwise to view
    Image.new("RGB", (40, 20)).save(tmp_path / "sideways.jpg", exif=exif)
    assert load_image(tmp_path / "sideways.jpg").size == (20, 40)
    assert image_size(tmp_path / "sideways.jpg") == (20, 40)
    Image.new("L", (17, 16)).save(tmp_path / "grey.png")
    assert load_image(tmp_path / "grey.png").mode == "RGB"
    assert image_size(tmp_path / "grey.png") == (17, 16)


def test_atomic_write_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as file:
        file.write("new but unfinished")
        raise RuntimeError("disk on fire")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with atomic_write(tmp_path / "sub" / "new.txt") as file:
        file.write("done")
    assert (tmp_path / "sub" / "new.txt").read_text() == "done"


def test_save_image_by_extension(tmp_path):
    image = Image.new("RGB", (16, 16), (1, 2, 3))
    assert load_image(save_image(image, tmp_path / "a.png")).getpixel((1, 1)) == (1, 2, 3)
    assert load_image(save_image(image, tmp_path / "a.JPG")).size == (16, 16)
    with pytest.raises(PcdmsError, match=r"unknown image extension '.img'"):
        save_image(image, tmp_path / "a.img")
    assert not (tmp_path / "a.img").exists()


# Every mode Pillow opens ------------------------------------------------------------------------------


def _ramp16() -> np.ndarray:
    return (np.arange(16 * 16, dtype=np.uint32).reshape(16, 16) * 257).astype(np.uint16)  # 0..65535 in 257 steps


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path, mode):
    levels = _ramp16()
    image = Image.fromarray(levels.astype(np.int32) if mode == "I" else levels)
    assert image.mode == mode.replace("B", "")
    if mode == "I;16B":
        image = Image.frombytes("I;16B", (16, 16), levels.astype(">u2").tobytes())
    expected = np.arange(256, dtype=np.uint8).reshape(16, 16)  # level v * 257 -> v
    np.testing.assert_array_equal(np.asarray(to_rgb(image))[..., 0], expected)
    if mode == "I;16":
        image.save(tmp_path / "deep.png")
        rgb = load_image(tmp_path / "deep.png")
        assert rgb.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(rgb)[..., 1], expected)


def test_the_gray16_case_is_the_picture_not_white():
    image = load_image(CASES / "gray16.png")
    raw = np.asarray(Image.open(CASES / "gray16.png")).astype(np.float64)
    gray = np.asarray(image)[..., 0]
    np.testing.assert_array_equal(gray, np.round(raw / 257).astype(np.uint8))
    assert (gray == 255).mean() < 0.05  # was clipped at 255: mostly white


def test_32_bit_and_float_images():
    wide = Image.fromarray(np.array([[0, 2**31 - 1] * 8] * 16, dtype=np.int32))
    assert np.asarray(to_rgb(wide))[0, :2, 0].tolist() == [0, 255]
    unit = Image.fromarray(np.full((16, 16), 0.5, dtype=np.float32))
    assert to_rgb(unit).getpixel((0, 0)) == (128, 128, 128)
    levels = Image.fromarray(np.full((16, 16), 200.0, dtype=np.float32))
    assert to_rgb(levels).getpixel((0, 0)) == (200, 200, 200)
    with pytest.raises(PcdmsError, match=r"^scan.tif: a float image with values from 0 to 1000"):
        to_rgb(Image.fromarray(np.linspace(0, 1000, 256, dtype=np.float32).reshape(16, 16)), "scan.tif")


def test_transparency_of_every_mode_is_composed_on_white(tmp_path):
    alpha = np.zeros((16, 16), dtype=np.uint8)
    alpha[0, 0] = 255
    gray = Image.fromarray(np.full((16, 16), 40, dtype=np.uint8))
    la = Image.merge("LA", (gray, Image.fromarray(alpha)))
    assert to_rgb(la).getpixel((0, 0)) == (40, 40, 40) and to_rgb(la).getpixel((1, 0)) == (255, 255, 255)
    palette = Image.new("P", (16, 16), 1)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    palette.putpixel((0, 0), 0)
    palette.info["transparency"] = 1  # colour 1 is transparent
    palette.save(tmp_path / "p.png")
    loaded = load_image(tmp_path / "p.png")
    assert loaded.getpixel((0, 0)) == (0, 0, 0) and loaded.getpixel((5, 5)) == (255, 255, 255)
    pa = palette.convert("PA")
    assert to_rgb(pa).getpixel((5, 5)) == (255, 255, 255)
    cutout = load_image(CASES / "rgba_cutout.png")
    raw = np.asarray(Image.open(CASES / "rgba_cutout.png"))
    clear = raw[..., 3] == 0
    assert clear.any() and (np.asarray(cutout)[clear] == 255).all()


def test_cmyk_and_bilevel_images(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "print.jpg")
    red = load_image(tmp_path / "print.jpg").getpixel((8, 8))
    assert red[0] > 240 and red[1] < 15 and red[2] < 15
    Image.new("1", (16, 16), 1).save(tmp_path / "fax.png")
    assert load_image(tmp_path / "fax.png").getpixel((3, 3)) == (255, 255, 255)


def test_too_small_images_are_refused():
    with pytest.raises(PcdmsError, match=r"one_pixel.png: 1x1 pixels is too small \(at least 16 pixels a side\)$"):
        load_image(CASES / "one_pixel.png")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("huge_12000.png", r"huge_12000.png: 12000x12000 pixels is too large"),
        ("huge_20000.png", r"huge_20000.png: 400 megapixels is too large"),
    ],
)
def test_huge_images_are_refused_from_the_header(name, message):
    tracemalloc.start()
    started = time.perf_counter()
    for read in (load_image, image_size):
        with pytest.raises(
            PcdmsError, match=message + r" for pcdms \(at most 16384 pixels a side and 40 megapixels\)$"
        ):
            read(CASES / name)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 2 and peak < 50_000_000  # decoding would take seconds and over a gigabyte


# Files written --------------------------------------------------------------------------------------


def _failing(error_number):
    def fail(*args, **kwargs):
        raise OSError(error_number, os.strerror(error_number))

    return fail


def test_a_full_disk_names_the_file_and_folder(tmp_path, monkeypatch):
    target = tmp_path / "results" / "OUT.png"
    image = Image.new("RGB", (16, 16))
    real_save = Image.Image.save

    def save_then_fill(self, file, *args, **kwargs):
        real_save(self, file, *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as file.write raises it: no file name

    monkeypatch.setattr(Image.Image, "save", save_then_fill)
    with pytest.raises(PcdmsError) as raised:
        save_image(image, target)
    assert str(raised.value) == f"{target}: no space left on device writing it (in {target.parent})"
    assert ".part" not in str(raised.value)
    assert list(target.parent.iterdir()) == []  # no half-written file, no temporary left


def test_a_read_only_file_system_names_the_file_not_the_temporary(tmp_path, monkeypatch):
    target = tmp_path / "OUT.json"
    real_open = open

    def read_only(file, mode="r", *args, **kwargs):
        if "w" in mode:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", read_only)
    read_only_message = rf"^{target}: cannot write it \(Read-only file system\)$"
    with pytest.raises(PcdmsError, match=read_only_message), atomic_write(target) as file:
        file.write("{}")
    monkeypatch.setattr(os, "replace", _failing(errno.ENOSPC))
    monkeypatch.setattr("builtins.open", real_open)
    with pytest.raises(PcdmsError, match=rf"^{target}: no space left on device"), atomic_write(target) as file:
        file.write("{}")


def test_a_folder_that_cannot_be_made_is_named(tmp_path, monkeypatch):
    target = tmp_path / "missing" / "OUT.png"

    def mkdir(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(PcdmsError, match=rf"^{target}: cannot create its folder {target.parent} \(Read-only"):
        save_image(Image.new("RGB", (16, 16)), target)


def test_atomic_folder_names_the_folder_and_its_files(tmp_path, monkeypatch):
    target = tmp_path / "model"
    with pytest.raises(PcdmsError) as raised, atomic_folder(target) as folder:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder / "weights.bin"))
    assert str(raised.value) == f"{target / 'weights.bin'}: no space left on device writing it (in {target})"
    assert list(tmp_path.iterdir()) == []
    # An error about some other file is not renamed.
    with pytest.raises(FileNotFoundError), atomic_folder(target):
        shutil.copy(tmp_path / "absent.txt", tmp_path / "b.txt")


def test_evaluation_reads_sixteen_bit_results_right(tmp_path):
    """The generated image equals the ground truth, saved as 16-bit gray: SSIM 1, not 0."""
    from pcdms.cli import main

    case = CASES / "sixteen_bit"
    out = tmp_path / "report.json"
    argv = ["evaluate", "--generated", str(case / "generated"), "--ground-truth", str(case / "gt")]
    argv += ["--skip", "lpips", "--skip", "fid", "--skip", "pckh", "--no-cache", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    assert json.loads(out.read_text())["metrics"]["ssim"] == pytest.approx(1.0, abs=1e-9)
