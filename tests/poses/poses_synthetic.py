"""A tiny textured scene ray-cast in numpy with known cameras, so estimation tests need no shipped data.

The scene is a sphere and a box covered in multi-octave colour value noise (blob-like detail SIFT
finds reliably), on a transparent background; cameras sit on two rings of the upper hemisphere and
look at the origin (world +Z up, OpenGL camera convention, like the Blender scenes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

Array = NDArray[np.float64]


def look_at(eye: Array, target: Array) -> Array:
    """OpenGL camera-to-world [4,4] at ``eye`` looking at ``target``, world +Z up."""
    up = np.array([0.0, 0.0, 1.0])
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, np.cross(back, right), back, eye
    return c2w


def ring_cameras(n: int, radius: float = 3.2, elevations: tuple[float, ...] = (20.0, 45.0)) -> list[Array]:
    """``n`` cameras spread over rings at the given elevations (degrees), all looking at the origin."""
    cams = []
    per_ring = int(np.ceil(n / len(elevations)))
    for k, elev in enumerate(elevations):
        for i in range(per_ring):
            az = np.radians(360.0 * i / per_ring + 15.0 * k)
            el = np.radians(elev)
            eye = radius * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
            cams.append(look_at(eye, np.zeros(3)))
    return cams[:n]


class NoiseTexture:
    """Colour value noise: sum of trilinearly interpolated random lattices at several cell sizes."""

    def __init__(self, seed: int = 0, cells: tuple[float, ...] = (0.16, 0.08, 0.04), extent: float = 2.0) -> None:
        rng = np.random.default_rng(seed)
        self.cells, self.extent = cells, extent
        self.grids = [rng.random((int(2 * extent / c) + 2,) * 3 + (3,)) for c in cells]

    def __call__(self, p: Array) -> Array:
        out = np.zeros((len(p), 3))
        for cell, grid in zip(self.cells, self.grids, strict=False):
            q = (p + self.extent) / cell
            i = np.clip(np.floor(q).astype(int), 0, grid.shape[0] - 2)
            f = np.clip(q - i, 0.0, 1.0)
            for corner in np.ndindex(2, 2, 2):
                w = np.prod(np.where(np.array(corner) == 1, f, 1.0 - f), axis=1)
                out += w[:, None] * grid[i[:, 0] + corner[0], i[:, 1] + corner[1], i[:, 2] + corner[2]]
        return np.clip((out / len(self.cells) - 0.5) * 2.2 + 0.5, 0.0, 1.0)  # stretch: averaging flattens contrast


def _hit_sphere(o: Array, d: Array, centre: Array, r: float) -> Array:
    oc = o - centre
    b = (oc * d).sum(1)
    disc = b * b - ((oc * oc).sum(1) - r * r)
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    return np.where((disc > 0) & (t > 0), t, np.inf)


def _hit_box(o: Array, d: Array, lo: Array, hi: Array) -> tuple[Array, Array]:
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - o) / d, (hi - o) / d
    tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
    t_near, t_far = tmin.max(1), tmax.min(1)
    hit = (t_near <= t_far) & (t_near > 0)
    return np.where(hit, t_near, np.inf), tmin.argmax(1)


def render(c2w: Array, size: int, focal: float, tex: NoiseTexture) -> NDArray[np.uint8]:
    """RGBA uint8 [size,size,4] of the scene seen by OpenGL camera ``c2w``; background is transparent black."""
    j, i = np.mgrid[0:size, 0:size].reshape(2, -1) + 0.5
    d_cam = np.stack([(i - size / 2) / focal, -(j - size / 2) / focal, -np.ones_like(i)], 1)
    d = d_cam @ c2w[:3, :3].T
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    o = np.broadcast_to(c2w[:3, 3], d.shape)
    centre, lo, hi = np.array([-0.3, 0.2, 0.1]), np.array([0.1, -0.9, -0.6]), np.array([0.9, 0.1, 0.3])
    t_s = _hit_sphere(o, d, centre, 0.75)
    t_b, axis = _hit_box(o, d, lo, hi)
    t = np.minimum(t_s, t_b)
    hit = np.isfinite(t)
    p = o + d * np.where(hit, t, 0.0)[:, None]
    n_s = (p - centre) / 0.75
    n_b = np.zeros_like(p)
    n_b[np.arange(len(p)), axis] = -np.sign(d[np.arange(len(p)), axis])
    normal = np.where((t_s <= t_b)[:, None], n_s, n_b)
    light = np.clip(normal @ np.array([0.4, 0.3, 0.87]), 0.0, 1.0)
    rgba = np.zeros((len(p), 4))
    rgba[hit, :3] = tex(p[hit]) * (0.45 + 0.55 * light[hit, None])
    rgba[hit, 3] = 1.0
    return (np.clip(rgba, 0, 1) * 255 + 0.5).astype(np.uint8).reshape(size, size, 4)


def make_scene(folder: Path, n: int = 24, size: int = 240, focal: float = 260.0, seed: int = 0) -> list[Array]:
    """Render ``n`` views into ``folder/view_XX.png`` (RGBA); return their camera-to-world matrices."""
    folder.mkdir(parents=True, exist_ok=True)
    tex = NoiseTexture(seed)
    cams = ring_cameras(n)
    for k, c2w in enumerate(cams):
        Image.fromarray(render(c2w, size, focal, tex), "RGBA").save(folder / f"view_{k:02d}.png")
    return cams
