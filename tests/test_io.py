import numpy as np
import pytest
from PIL import Image

from pcdms.errors import PcdmsError
from pcdms.io import atomic_write, image_size, load_image, save_image


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
    cutout = Image.new("RGBA", (4, 2), (10, 20, 30, 0))
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
    Image.new("L", (7, 5)).save(tmp_path / "grey.png")
    assert load_image(tmp_path / "grey.png").mode == "RGB"
    assert image_size(tmp_path / "grey.png") == (7, 5)


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
    image = Image.new("RGB", (3, 3), (1, 2, 3))
    assert load_image(save_image(image, tmp_path / "a.png")).getpixel((1, 1)) == (1, 2, 3)
    assert load_image(save_image(image, tmp_path / "a.JPG")).size == (3, 3)
    with pytest.raises(PcdmsError, match=r"unknown image extension '.img'"):
        save_image(image, tmp_path / "a.img")
    assert not (tmp_path / "a.img").exists()
