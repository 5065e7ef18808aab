"""A plain volume renderer over the export's two callables, for fields that bring no renderer of their own.

The comparison beside an export shows the field as the trainer renders it when the field has a ``render``
(the engine's, with its own sampler); an analytic field or a script's callables only have density and
colour, so they are rendered here: ``samples`` evenly spaced points per pixel ray across the box, composited
front to back. Slow and exact enough for a few small pictures, not a replacement for the engine's renderer.
"""

from __future__ import annotations

import numpy as np

from nerf_widgets.export.query import FieldQuery
from nerf_widgets.export.views import PhotoView

__all__ = ["pixel_rays", "render_volume"]


def pixel_rays(view: PhotoView) -> tuple[np.ndarray, np.ndarray]:
    """World origins and unit directions [H*W,3] through pixel centres (pinhole; distortion ignored)."""
    j, i = np.meshgrid(np.arange(view.height), np.arange(view.width), indexing="ij")
    d_cam = np.stack([(i + 0.5 - view.cx) / view.fx, -(j + 0.5 - view.cy) / view.fy, -np.ones(i.shape)], -1)
    c2w = np.asarray(view.c2w, np.float64)
    d = d_cam.reshape(-1, 3) @ c2w[:3, :3].T
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.broadcast_to(c2w[:3, 3], d.shape).copy(), d


def render_volume(query: FieldQuery, aabb: np.ndarray, view: PhotoView, *, samples: int = 192,
                  background: tuple[float, float, float] = (1.0, 1.0, 1.0), rays_per_chunk: int = 4096) -> np.ndarray:
    """The field seen from ``view``: [H,W,3] float32 in [0,1] over ``background``."""
    o, d = pixel_rays(view)
    lo, hi = np.asarray(aabb, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t0, t1 = (lo - o) / d, (hi - o) / d
    near = np.nan_to_num(np.minimum(t0, t1), nan=-np.inf).max(1).clip(0)
    far = np.nan_to_num(np.maximum(t0, t1), nan=np.inf).min(1)
    out = np.tile(np.asarray(background, np.float32), (len(o), 1))
    hit = np.nonzero(far > near)[0]
    mid = (np.arange(samples) + 0.5) / samples
    for s in range(0, len(hit), rays_per_chunk):
        r = hit[s : s + rays_per_chunk]
        step = (far[r] - near[r]) / samples
        t = near[r, None] + mid[None] * (far[r] - near[r])[:, None]
        pts = (o[r, None] + t[..., None] * d[r, None]).reshape(-1, 3)
        sigma = query.density(pts).reshape(len(r), samples)
        alpha = 1.0 - np.exp(-sigma * step[:, None])
        trans = np.cumprod(np.concatenate([np.ones((len(r), 1)), 1.0 - alpha[:, :-1] + 1e-10], 1), 1)
        weight = alpha * trans
        live = weight.reshape(-1) > 1e-4  # colour only where it shows
        rgb = np.zeros((len(pts), 3), np.float32)
        if live.any():
            dirs = np.repeat(d[r], samples, 0)[live]
            rgb[live] = query.color(pts[live], dirs)
        color = (weight[..., None] * rgb.reshape(len(r), samples, 3)).sum(1)
        out[r] = color + (1.0 - weight.sum(1))[:, None] * out[r]
    return out.reshape(view.height, view.width, 3).clip(0, 1).astype(np.float32)
