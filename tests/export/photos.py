"""Synthetic training photos of an analytic field: sphere-traced hits coloured by a known pattern, with alpha.

Independent of the export's rasteriser: rays through pixel centres (the engine's convention) march the
field's signed distance, so a photo shows the true surface, not the marching-cubes mesh.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nerf_widgets.export import PhotoView, SphereBoxField


def look_at(eye: np.ndarray) -> np.ndarray:
    """c2w [4,4], camera looking down -Z at the origin (OpenGL convention), +Z world up."""
    up = np.array([0.0, 0.0, 1.0])
    back = eye.astype(np.float64)
    back = back / np.linalg.norm(back)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(back, right), back, eye
    return m


def ring_cameras(n: int, radius: float = 3.0, seed: int = 0) -> list[np.ndarray]:
    """``n`` cameras spread over a sphere (golden spiral, all heights), looking at the origin."""
    rng = np.random.default_rng(seed)
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = k * np.pi * (3 - np.sqrt(5)) + rng.uniform(0, 0.3)
    r = np.sqrt(1 - z * z)
    return [look_at(radius * np.array([r[i] * np.cos(phi[i]), r[i] * np.sin(phi[i]), z[i]])) for i in range(n)]


def stripes(p: np.ndarray) -> np.ndarray:
    """A fine pattern [N,3] in [0.1, 0.9] (period ~0.13 world units) a coarse bake blurs away."""
    s = np.sin(48.0 * p[:, 0]) * np.sin(48.0 * p[:, 1] + 1.0) * np.sin(48.0 * p[:, 2] + 2.0)
    base = np.array([0.5, 0.45, 0.4])
    return np.clip(base + 0.4 * np.sign(s)[:, None] * np.array([1.0, 0.8, 0.6]), 0.1, 0.9)


def photo(field: SphereBoxField, c2w: np.ndarray, side: int, focal: float,
          pattern: Callable[[np.ndarray], np.ndarray] = stripes, supersample: int = 2) -> PhotoView:
    """RGBA photo [side,side,4] of ``field``'s surface coloured by ``pattern`` (box-filtered supersamples)."""
    s = side * supersample
    j, i = np.meshgrid(np.arange(s), np.arange(s), indexing="ij")
    f = focal * supersample
    d_cam = np.stack([(i + 0.5 - s / 2) / f, -(j + 0.5 - s / 2) / f, -np.ones_like(i, float)], -1).reshape(-1, 3)
    d = d_cam @ c2w[:3, :3].T
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    o = np.broadcast_to(c2w[:3, 3], d.shape)
    t, live = np.full(len(d), 1.0), np.arange(len(d))
    for _ in range(64):
        step = field.sdf(o[live] + t[live, None] * d[live])
        t[live] += step
        live = live[(step > 1e-4) & (t[live] < 6.0)]
    p = o + t[:, None] * d
    hit = np.abs(field.sdf(p)) < 1e-3
    rgba = np.zeros((len(d), 4))
    rgba[hit, :3] = pattern(p[hit])
    rgba[hit, 3] = 1.0
    rgba = rgba.reshape(side, supersample, side, supersample, 4).mean((1, 3))
    rgb = rgba[..., :3] / np.maximum(rgba[..., 3:], 1e-6)  # straight (not premultiplied) colour, as PNGs store it
    image = (np.concatenate([rgb, rgba[..., 3:]], -1).clip(0, 1) * 255 + 0.5).astype(np.uint8)
    return PhotoView(image, c2w, focal, focal, side / 2, side / 2)
