import numpy as np
import pytest
import torch
from PIL import Image

from helpers import body_image, nearest_joint_colour, pixel_at
from pcdms.data.canvas import CanvasLayout, image_tensor
from pcdms.pose import pose_map_tensor


def gradient_image(size):
    width, height = size
    x, y = np.meshgrid(np.arange(width), np.arange(height))
    return Image.fromarray(np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], -1).astype(np.uint8))


def test_the_official_square_layout_needs_no_padding():
    layout = CanvasLayout(512, 512)
    assert layout.padded_size == (512, 512) and layout.padding == (0, 0, 0, 0)
    assert layout.canvas_size == (1024, 512)
    source, target = gradient_image((176, 256)), gradient_image((176, 256)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    canvas = layout.image_canvas(source, target)
    assert canvas.shape == (3, 512, 1024)
    # Each half is the image stretched to 512x512 with bicubic resampling, as the official code does.
    assert torch.equal(canvas[:, :, :512], image_tensor(source.resize((512, 512), Image.Resampling.BICUBIC)))
    assert torch.equal(canvas[:, :, 512:], image_tensor(target.resize((512, 512), Image.Resampling.BICUBIC)))
    masked = layout.image_canvas(source, None)
    assert torch.equal(masked[:, :, :512], canvas[:, :, :512]) and torch.all(masked[:, :, 512:] == -1)


def test_the_mask_is_one_on_the_source_half():
    mask = CanvasLayout(512, 512).latent_mask(8)
    assert mask.shape == (1, 1, 64, 128)
    assert torch.all(mask[..., :64] == 1) and torch.all(mask[..., 64:] == 0)


@pytest.mark.parametrize(
    ("size", "padded", "padding"), [((176, 256), (192, 256), (8, 0, 8, 0)), ((352, 512), (384, 512), (16, 0, 16, 0))]
)
def test_native_aspect_halves_are_padded_and_cropped_back(size, padded, padding):
    layout = CanvasLayout(*size)
    assert layout.padded_size == padded and layout.padding == padding
    source, target = gradient_image(size), gradient_image(size).rotate(180)
    canvas = layout.image_canvas(source, target)
    assert canvas.shape == (3, padded[1], 2 * padded[0])
    # The generated half, cropped, is the target pixel for pixel: no stretching, no shift.
    assert torch.equal(layout.crop_target(canvas[None])[0], image_tensor(target))
    # Padding repeats the edge columns.
    left = padding[0]
    assert torch.equal(canvas[:, :, 0], canvas[:, :, left]) and torch.equal(canvas[:, :, left - 1], canvas[:, :, left])
    mask = layout.latent_mask(8)
    assert mask.shape == (1, 1, padded[1] // 8, 2 * padded[0] // 8)
    assert torch.all(mask[..., : padded[0] // 8] == 1) and torch.all(mask[..., padded[0] // 8 :] == 0)


def test_odd_sizes_pad_unevenly_and_still_crop_exactly():
    layout = CanvasLayout(45, 100, multiple=16)
    assert layout.padded_size == (48, 112) and layout.padding == (1, 6, 2, 6)
    target = gradient_image((45, 100))
    assert torch.equal(layout.crop_target(layout.image_canvas(target, target)), image_tensor(target))


def test_poses_land_on_their_joints_in_the_pose_canvas(pose):
    layout = CanvasLayout(176, 256)
    photo = body_image(pose)  # each joint painted in its own colour
    placed_photo, placed_pose = layout.place_image(photo), layout.place_pose(pose)
    assert placed_pose.image_size == layout.padded_size
    for joint, (x, y) in enumerate(placed_pose.xy):
        assert nearest_joint_colour(pixel_at(placed_photo, x, y)) == joint
    canvas = layout.pose_canvas(pose, pose.hflip())
    assert torch.equal(canvas[:, :, :192], pose_map_tensor(placed_pose))
    assert torch.equal(canvas[:, :, 192:], pose_map_tensor(layout.place_pose(pose.hflip())))
    assert canvas.min() == -1 and canvas.max() == 1


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="canvas half size"):
        CanvasLayout(0, 512)
