"""SSIM of Wang et al. 2004: 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, data range 1.

Local statistics use population (biased) covariances and only windows fully inside the image, then the SSIM
map is averaged over pixels and channels: the same numbers as scikit-image's ``structural_similarity(...,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.engine.metrics._image import ImageLike, image_pair, to_nchw

__all__ = ["WINDOW", "SIGMA", "K1", "K2", "ssim", "ssim_batch"]

WINDOW = 11
SIGMA = 1.5
K1 = 0.01
K2 = 0.03


def _gaussian_1d(device: torch.device) -> torch.Tensor:
    """Normalised [WINDOW] Gaussian taps (float32)."""
    x = torch.arange(WINDOW, dtype=torch.float32, device=device) - (WINDOW - 1) / 2
    g = torch.exp(-(x**2) / (2 * SIGMA**2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filter per channel: [N, C, H, W] -> [N, C, H-10, W-10]."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, WINDOW).expand(c, 1, 1, WINDOW), groups=c)
    return F.conv2d(x, g.view(1, 1, WINDOW, 1).expand(c, 1, WINDOW, 1), groups=c)


def _ssim_per_image(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """[N, H, W, C] pair -> [N] mean SSIM.

    float32 (float64 convolutions are ~10x slower on CPU); moments are taken about each channel's mean so that
    variances, which are differences of moments, keep their precision (agrees with float64 to ~1e-6).
    """
    if min(p.shape[1], p.shape[2]) < WINDOW:
        raise ValidationError(f"SSIM needs images of at least {WINDOW}x{WINDOW} pixels, got {tuple(p.shape[1:3])}")
    x, y = to_nchw(p, torch.float32), to_nchw(t, torch.float32)
    x_mean, y_mean = x.mean(dim=(2, 3), keepdim=True), y.mean(dim=(2, 3), keepdim=True)
    x, y = x - x_mean, y - y_mean
    c = x.shape[1]
    moments = _blur(torch.cat([x, y, x * x, y * y, x * y], dim=1), _gaussian_1d(x.device))
    mx, my, exx, eyy, exy = moments.split(c, dim=1)
    vx, vy, cxy = exx - mx * mx, eyy - my * my, exy - mx * my
    mx, my = mx + x_mean, my + y_mean
    c1, c2 = K1**2, K2**2
    ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return ssim_map.mean(dim=(1, 2, 3), dtype=torch.float64)


@torch.no_grad()
def ssim(pred: ImageLike, target: ImageLike) -> float:
    """Mean SSIM of two [H, W, C] images in [0, 1] (1 = identical)."""
    p, t = image_pair(pred, target, ndim=3)
    return float(_ssim_per_image(p[None], t[None])[0])


@torch.no_grad()
def ssim_batch(pred: ImageLike, target: ImageLike) -> list[float]:
    """Per-image SSIM of [N, H, W, C] stacks in [0, 1]."""
    p, t = image_pair(pred, target, ndim=4)
    return [float(v) for v in _ssim_per_image(p, t)]
