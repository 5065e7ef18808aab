"""Input checking shared by the metrics: one place turns arrays/tensors into validated float tensors."""

from __future__ import annotations

import numpy as np
import torch

from nerf_widgets.core.errors import ValidationError

ImageLike = torch.Tensor | np.ndarray

_RANGE_SLACK = 1e-3  # tolerated overshoot of [0, 1] (renderer round-off); larger means a wrong scale, e.g. 0..255


def as_tensor(image: ImageLike, name: str) -> torch.Tensor:
    """Any float/uint8 array or tensor -> float tensor in [0, 1] on its own device (numpy -> CPU); no copy if possible."""
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(np.ascontiguousarray(image))
    if not isinstance(image, torch.Tensor):
        raise ValidationError(f"{name} must be a torch tensor or numpy array, got {type(image).__name__}")
    if image.dtype == torch.uint8:
        return image.float() / 255.0
    if not image.is_floating_point():
        raise ValidationError(f"{name} must be float in [0, 1] or uint8, got {image.dtype}", dtype=str(image.dtype))
    if image.numel() == 0:
        raise ValidationError(f"{name} is empty", shape=list(image.shape))
    image = image.detach()
    lo, hi = float(image.min()), float(image.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValidationError(f"{name} contains NaN or infinite values")
    if lo < -_RANGE_SLACK or hi > 1 + _RANGE_SLACK:
        raise ValidationError(f"{name} must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]", min=lo, max=hi)
    return image


def image_pair(
    pred: ImageLike, target: ImageLike, ndim: int | None, channels: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a (pred, target) pair of equal shape (with ``ndim`` dims if given); target moves to pred's device."""
    p, t = as_tensor(pred, "pred"), as_tensor(target, "target")
    if p.shape != t.shape:
        raise ValidationError(f"pred and target shapes differ: {tuple(p.shape)} vs {tuple(t.shape)}")
    layout = "[H, W, C]" if ndim == 3 else "[N, H, W, C]"
    if ndim is not None and p.dim() != ndim:
        raise ValidationError(f"images must be shaped {layout}, got {tuple(p.shape)}", shape=list(p.shape))
    if channels is not None and p.shape[-1] != channels:
        raise ValidationError(f"images must have {channels} channels (RGB), got {p.shape[-1]}", shape=list(p.shape))
    return p, t.to(p.device)


def to_nchw(images: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[N, H, W, C] -> contiguous [N, C, H, W] in ``dtype`` (what torch convolutions want)."""
    return images.permute(0, 3, 1, 2).to(dtype).contiguous()
