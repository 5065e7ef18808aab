"""PSNR with a peak value of 1: ``-10 log10(MSE)`` in dB (infinite for identical images)."""

from __future__ import annotations

import math

import torch

from nerf_widgets.engine.metrics._image import ImageLike, image_pair

__all__ = ["psnr", "psnr_batch", "psnr_from_mse"]


def psnr_from_mse(mse: float) -> float:
    """dB for images in [0, 1]; ``inf`` when the MSE is 0."""
    return math.inf if mse <= 0.0 else -10.0 * math.log10(mse)


@torch.no_grad()
def psnr(pred: ImageLike, target: ImageLike) -> float:
    """PSNR over all elements of two equally shaped arrays in [0, 1] (an image [H,W,3] or a ray batch [R,3])."""
    p, t = image_pair(pred, target, ndim=None)
    return psnr_from_mse(float(torch.mean((p.double() - t.double()) ** 2)))


@torch.no_grad()
def psnr_batch(pred: ImageLike, target: ImageLike) -> list[float]:
    """Per-image PSNR of [N, H, W, C] stacks (average these, not the MSE, to get the usual mean PSNR)."""
    p, t = image_pair(pred, target, ndim=4)
    mse = torch.mean((p.double() - t.double()) ** 2, dim=(1, 2, 3))
    return [psnr_from_mse(float(m)) for m in mse]
