"""PSNR and SSIM: definitions, agreement with scikit-image, input checking."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.engine.metrics import psnr, psnr_batch, ssim, ssim_batch


def _scene(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth structured RGB image in [0, 1], [h, w, 3] float64."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    freq = rng.uniform(2, 9, size=(3, 2))
    phase = rng.uniform(0, 2 * np.pi, size=3)
    chans = [0.5 + 0.4 * np.sin(2 * np.pi * (f[0] * yy + f[1] * xx) + p) for f, p in zip(freq, phase, strict=True)]
    return np.stack(chans, axis=-1)


def _degrade(img: np.ndarray, seed: int, noise: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shifted = np.roll(img, shift=1, axis=1) * 0.9 + 0.05
    return np.clip(shifted + rng.normal(0, noise, img.shape), 0, 1)


def _skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(
        structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1
        )
    )


def test_psnr_of_a_known_error_follows_the_definition() -> None:
    target = _scene(32, 40, seed=0) * 0.8 + 0.1
    pred = target.copy()
    pred[::2] += 0.05  # half the rows off by 0.05 -> MSE = 0.05**2 / 2
    assert psnr(pred, target) == pytest.approx(-10 * math.log10(0.05**2 / 2), abs=1e-9)
    assert psnr(target, target) == math.inf


def test_psnr_accepts_torch_numpy_uint8_and_ray_batches() -> None:
    target = _scene(24, 24, seed=1)
    pred = _degrade(target, seed=2, noise=0.05)
    ref = psnr(pred, target)
    assert psnr(torch.from_numpy(pred).float(), torch.from_numpy(target).float()) == pytest.approx(ref, abs=1e-4)
    assert psnr(pred.reshape(-1, 3), target.reshape(-1, 3)) == pytest.approx(ref, abs=1e-12)
    p8, t8 = np.round(pred * 255).astype(np.uint8), np.round(target * 255).astype(np.uint8)
    assert psnr(p8, t8) == pytest.approx(psnr(p8 / 255.0, t8 / 255.0), abs=1e-4)


def test_batched_variants_equal_the_single_image_values() -> None:
    targets = np.stack([_scene(30, 36, seed=s) for s in range(3)])
    preds = np.stack([_degrade(t, seed=10 + i, noise=0.02 * (i + 1)) for i, t in enumerate(targets)])
    assert psnr_batch(preds, targets) == pytest.approx(
        [psnr(p, t) for p, t in zip(preds, targets, strict=True)], abs=1e-9
    )
    assert ssim_batch(preds, targets) == pytest.approx(
        [ssim(p, t) for p, t in zip(preds, targets, strict=True)], abs=1e-7
    )
    assert len(set(np.round(psnr_batch(preds, targets), 6))) == 3


@pytest.mark.parametrize(("h", "w", "noise"), [(48, 48, 0.05), (37, 61, 0.2), (11, 20, 0.1), (64, 50, 0.0)])
def test_ssim_matches_scikit_image(h: int, w: int, noise: float) -> None:
    target = _scene(h, w, seed=h)
    pred = _degrade(target, seed=w, noise=noise)
    expected = _skimage_ssim(pred, target)
    assert ssim(pred, target) == pytest.approx(expected, abs=1e-5)
    assert ssim(torch.from_numpy(pred).float(), torch.from_numpy(target).float()) == pytest.approx(expected, abs=1e-5)


def test_ssim_matches_scikit_image_on_a_white_background_object() -> None:
    target = np.ones((60, 70, 3))
    target[15:45, 20:50] = _scene(30, 30, seed=9) * 0.5  # dark textured object on white, like a Blender scene
    pred = np.ones_like(target)
    pred[16:46, 19:49] = _degrade(target[15:45, 20:50], seed=10, noise=0.03)
    assert ssim(pred, target) == pytest.approx(_skimage_ssim(pred, target), abs=1e-5)


def test_ssim_of_an_image_with_itself_is_one_and_drops_with_noise() -> None:
    target = _scene(40, 40, seed=3)
    assert ssim(target, target) == pytest.approx(1.0, abs=1e-6)
    values = [ssim(_degrade(target, seed=4, noise=n), target) for n in (0.01, 0.05, 0.2)]
    assert values[0] > values[1] > values[2]


def test_ssim_handles_single_channel_like_scikit_image() -> None:
    target = _scene(33, 29, seed=5)[..., :1]
    pred = _degrade(target, seed=6, noise=0.1)
    assert ssim(pred, target) == pytest.approx(_skimage_ssim(pred, target), abs=1e-5)


@pytest.mark.parametrize(
    ("pred", "target", "match"),
    [
        (np.zeros((8, 8, 3)), np.zeros((8, 9, 3)), "shapes differ"),
        (np.full((16, 16, 3), 255.0), np.zeros((16, 16, 3)), r"\[0, 1\]"),
        (np.full((16, 16, 3), np.nan), np.zeros((16, 16, 3)), "NaN"),
        (np.zeros((16, 16, 3), dtype=np.int64), np.zeros((16, 16, 3), dtype=np.int64), "float"),
        (np.zeros((10, 40, 3)), np.zeros((10, 40, 3)), "at least 11x11"),
        (np.zeros((16, 16)), np.zeros((16, 16)), r"\[H, W, C\]"),
        (np.zeros((0, 16, 3)), np.zeros((0, 16, 3)), "empty"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_error(pred: np.ndarray, target: np.ndarray, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        ssim(pred, target)


def test_psnr_rejects_lists() -> None:
    with pytest.raises(ValidationError, match="torch tensor or numpy array"):
        psnr([0.0, 1.0], np.zeros(2))  # type: ignore[arg-type]


@pytest.mark.gpu
def test_cuda_tensors_give_the_cpu_values() -> None:
    target = torch.from_numpy(_scene(40, 44, seed=7)).float()
    pred = torch.from_numpy(_degrade(target.numpy(), seed=8, noise=0.05)).float()
    assert ssim(pred.cuda(), target.cuda()) == pytest.approx(ssim(pred, target), abs=1e-6)
    assert psnr(pred.cuda(), target.cuda()) == pytest.approx(psnr(pred, target), abs=1e-6)


def test_importing_the_metrics_package_does_not_import_torch() -> None:
    code = "import sys, nerf_widgets.engine.metrics as m; assert 'torch' not in sys.modules; print(m.__all__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "lpips" in out and "ssim" in out
