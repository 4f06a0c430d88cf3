"""SSIM and PSNR as the pose-transfer papers compute them (scikit-image's definitions), batched in torch.

The reported SSIM of PCDMs and of the GFLA/NTED/PIDM line is scikit-image's ``structural_similarity``
with ``gaussian_weights=True, use_sample_covariance=False``, per colour channel then averaged, and a
data range taken from the *prediction* (``max - min`` over the whole image) instead of the nominal
range: a quirk every paper of the line inherits, kept as a named setting. Only the pixels whose
Gaussian window lies inside the image are averaged, so no border mode is involved.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

K1, K2 = 0.01, 0.03
TRUNCATE = 3.5  # scikit-image's Gaussian window: radius int(3.5 * sigma + 0.5), 9 taps at sigma 1.2


def gaussian_taps(sigma: float, dtype=torch.float64) -> torch.Tensor:
    radius = int(TRUNCATE * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=dtype)
    taps = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return taps / taps.sum()


def _blur(images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of (N, C, H, W) images, keeping only the fully covered pixels."""
    channels = images.shape[1]
    rows = taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    columns = taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    return F.conv2d(F.conv2d(images, rows, groups=channels), columns, groups=channels)


def ssim(
    prediction: torch.Tensor,
    target: torch.Tensor,
    *,
    sigma: float = 1.2,
    data_range: float | None = None,
    nominal_range: float = 1.0,
) -> torch.Tensor:
    """Per-image SSIM of (N, C, H, W) images, computed in float64; each in [-1, 1] (1: identical).

    ``data_range``: the images' nominal range (1.0 for [0, 1] images); None takes it from each
    prediction, ``max - min`` over all its channels (the PCDMs/CFLD protocols' setting). A flat
    prediction (one colour) has no range of its own: with C1 = C2 = 0 its SSIM would be 0/0, so it gets
    ``nominal_range`` (1.0 for [0, 1] images, 255 for 8-bit ones), scikit-image's default for the images'
    type, and its SSIM is scikit-image's at that range: 1 against an identical flat image, near 0
    against a different one, never NaN. Raises ValueError for batches of different shapes or images
    smaller than the Gaussian window.
    """
    if prediction.shape != target.shape or prediction.dim() != 4:
        raise ValueError(f"ssim needs two (N, C, H, W) batches of one shape, got {prediction.shape} and {target.shape}")
    x, y = prediction.double(), target.double()
    taps = gaussian_taps(sigma)
    if min(x.shape[-2:]) < len(taps):
        raise ValueError(f"images of {x.shape[-1]}x{x.shape[-2]} are smaller than the {len(taps)}-pixel SSIM window")
    if data_range is None:
        flat = x.flatten(1)
        ranges = (flat.amax(1) - flat.amin(1)).view(-1, 1, 1, 1)
        ranges = torch.where(ranges > 0, ranges, torch.full_like(ranges, float(nominal_range)))
    else:
        ranges = torch.full((x.shape[0], 1, 1, 1), float(data_range), dtype=torch.float64)
    c1, c2 = (K1 * ranges) ** 2, (K2 * ranges) ** 2
    mean_x, mean_y = _blur(x, taps), _blur(y, taps)
    var_x = _blur(x * x, taps) - mean_x**2
    var_y = _blur(y * y, taps) - mean_y**2
    covariance = _blur(x * y, taps) - mean_x * mean_y
    similarity = ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    )
    return similarity.mean(dim=(1, 2, 3))


def psnr(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image peak signal-to-noise ratio in dB (infinite for identical images, as scikit-image)."""
    error = (prediction.double() - target.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / error)
