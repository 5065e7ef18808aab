"""Ray generation, compositing and sampling against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import torch

from nerf_widgets.engine.rays import Camera, camera_rays, pixel_rays, undistort_points
from nerf_widgets.engine.render import (
    composite_packed,
    composite_padded,
    contract,
    ray_aabb,
    sample_pdf,
    stratified_samples,
)


def test_pinhole_rays_match_hand_computed_directions() -> None:
    c2w = np.eye(4)
    c2w[:3, 3] = [1.0, 2.0, 3.0]
    cam = Camera(c2w, fx=2.0, fy=2.0, cx=2.0, cy=2.0, width=4, height=4)
    origins, dirs = camera_rays(cam)
    assert torch.allclose(origins, torch.tensor([1.0, 2.0, 3.0]).expand(16, 3))
    # pixel (0, 0): centre (0.5, 0.5) -> ((0.5-2)/2, -(0.5-2)/2, -1) = (-0.75, 0.75, -1)
    expected = torch.tensor([-0.75, 0.75, -1.0]) / math.sqrt(0.75**2 * 2 + 1)
    assert torch.allclose(dirs[0], expected, atol=1e-6)
    # pixel (i=3, j=1) is row 1, column 3
    expected = torch.tensor([0.75, 0.25, -1.0]) / math.sqrt(0.75**2 + 0.25**2 + 1)
    assert torch.allclose(dirs[1 * 4 + 3], expected, atol=1e-6)


def test_rotation_applies_to_directions() -> None:
    # rotation of 90 degrees about +Y: camera -Z (viewing axis) maps to world -X
    c2w = torch.tensor([[[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0]]])
    intr = torch.tensor([[10.0, 10.0, 5.0, 5.0]])
    _, d = pixel_rays(c2w, intr, None, torch.tensor([4.5]), torch.tensor([4.5]))  # centre 5.0 = (cx, cy)
    assert torch.allclose(d[0], torch.tensor([-1.0, 0.0, 0.0]), atol=1e-6)


def test_undistortion_inverts_opencv_distortion() -> None:
    k1, k2, p1, p2 = 0.1, -0.05, 0.01, -0.02
    xu, yu = torch.tensor([0.3, -0.2, 0.0]), torch.tensor([0.1, 0.25, -0.3])
    r2 = xu**2 + yu**2
    radial = 1 + k1 * r2 + k2 * r2**2
    xd = xu * radial + 2 * p1 * xu * yu + p2 * (r2 + 2 * xu**2)
    yd = yu * radial + p1 * (r2 + 2 * yu**2) + 2 * p2 * xu * yu
    x, y = undistort_points(xd, yd, torch.tensor([k1, k2, p1, p2]), iters=20)
    assert torch.allclose(x, xu, atol=1e-5) and torch.allclose(y, yu, atol=1e-5)


def test_ray_aabb_entry_and_exit() -> None:
    box = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    o = torch.tensor([[-3.0, 0.0, 0.0], [-3.0, 5.0, 0.0]])
    d = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    near, far = ray_aabb(o, d, box)
    assert near[0] == 2.0 and far[0] == 4.0
    assert far[1] < near[1]


def test_padded_compositing_matches_hand_computation() -> None:
    sigma = torch.tensor([[1.0, 2.0]])
    rgb = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    t = torch.tensor([[0.0, 0.5]])
    colour, acc, w = composite_padded(sigma, rgb, t, far_delta=0.25)
    a0, a1 = 1 - math.exp(-0.5), 1 - math.exp(-0.5)
    assert torch.allclose(w[0], torch.tensor([a0, (1 - a0) * a1]), atol=1e-6)
    assert torch.allclose(colour[0], torch.tensor([a0, (1 - a0) * a1, 0.0]), atol=1e-6)
    assert math.isclose(float(acc[0]), a0 + (1 - a0) * a1, rel_tol=1e-6)


def test_packed_compositing_equals_padded() -> None:
    g = torch.Generator().manual_seed(0)
    sigma = torch.rand(3, 5, generator=g) * 3
    dt = torch.rand(3, 5, generator=g) * 0.3
    t = torch.cumsum(dt, 1)
    _, _, w_pad = composite_padded(sigma, torch.zeros(3, 5, 3), t)
    keep = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 1], [0, 0, 0, 0]], dtype=torch.bool)  # ray 2 has no samples
    delta = (t[:, 1:] - t[:, :-1])
    ray_idx = torch.arange(3)[:, None].expand(3, 4)[keep]
    w_packed = composite_packed((sigma[:, :-1] * delta)[keep], ray_idx, 3)
    # dropping a sample removes its absorption from the later samples of that ray
    keep5 = torch.cat([keep, torch.ones(3, 1, dtype=torch.bool)], 1)
    ref = composite_padded(sigma * keep5, torch.zeros(3, 5, 3), t)[2][:, :4][keep]
    assert torch.allclose(w_packed, ref, atol=1e-6)
    assert torch.allclose(w_packed[:4], w_pad[0, :4], atol=1e-6)


def test_stratified_samples_stay_in_their_bins() -> None:
    near, far = torch.tensor([2.0, 1.0]), torch.tensor([6.0, 3.0])
    t = stratified_samples(near, far, 8, True, torch.Generator().manual_seed(1))
    bins = torch.floor((t - near[:, None]) / ((far - near)[:, None] / 8))
    assert torch.equal(bins, torch.arange(8.0).expand(2, 8))


def test_inverse_cdf_samples_follow_the_pdf() -> None:
    bins = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]])
    weights = torch.tensor([[0.1, 0.6, 0.0, 0.3]])
    t = sample_pdf(bins, weights, 20000, True, torch.Generator().manual_seed(0))
    hist = torch.histc(t, bins=4, min=0, max=4) / t.numel()
    pdf = (weights + 1e-5) / (weights + 1e-5).sum()
    assert torch.allclose(hist, pdf[0], atol=0.01)
    # deterministic mode puts samples at the CDF quantiles: u = 0.5/n ... of the piecewise-linear CDF
    t_det = sample_pdf(bins, weights, 4, False)
    cdf = torch.tensor([0.0, 0.1, 0.7, 0.7, 1.0])
    u = torch.tensor([0.125, 0.375, 0.625, 0.875])
    inv = torch.tensor(np.interp(u.numpy(), cdf.numpy(), bins[0].numpy()), dtype=torch.float32)
    assert torch.allclose(t_det[0], inv, atol=1e-3)


def test_contraction_is_identity_inside_and_bounded_outside() -> None:
    x = torch.tensor([[0.5, 0.0, 0.0], [10.0, 0.0, 0.0], [1e6, 1e6, 0.0]])
    y = contract(x)
    assert torch.allclose(y[0], x[0])
    assert math.isclose(float(y[1, 0]), 2 - 0.1, rel_tol=1e-6)
    assert float(y[2].norm()) < 2.0
