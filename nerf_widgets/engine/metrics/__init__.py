"""Image-quality metrics as leaf functions: PSNR, SSIM (Wang et al. 2004) and LPIPS (Zhang et al. 2018).

Inputs are float images in [0, 1] shaped [H, W, C] (or [N, H, W, C] for the ``*_batch`` variants), as torch
tensors (computed on their device) or numpy arrays (computed on the CPU); uint8 images are scaled by 1/255.
Imported lazily so ``import nerf_widgets.engine.metrics`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "psnr": "pixelwise",
    "psnr_batch": "pixelwise",
    "ssim": "structural",
    "ssim_batch": "structural",
    "lpips": "perceptual",
    "lpips_batch": "perceptual",
    "LpipsModel": "perceptual",
    "get_lpips_model": "perceptual",
    "lpips_available": "lpips_weights",
    "LPIPS_NETS": "lpips_weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nerf_widgets.engine.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nerf_widgets.engine.metrics.{module}"), name)
    globals()[name] = value
    return value
