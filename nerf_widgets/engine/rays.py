"""Cameras and ray generation (pinhole and OpenCV radial-tangential distortion).

Convention: camera-to-world 4x4 in OpenGL (+X right, +Y up, looking down -Z). Pixel (i, j) is cast
through its centre (i + 0.5, j + 0.5). Directions are normalised; ``dirs_scale`` tells how long the
unnormalised (z = -1) ray is, so depth = t / dirs_scale if ever needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["Camera", "camera_rays", "pixel_rays", "undistort_points"]


@dataclass
class Camera:
    """One view: ``c2w`` [4,4] (or [3,4]) float, intrinsics in pixels, OpenCV distortion (k1, k2, p1, p2)."""

    c2w: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    distortion: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    name: str = ""
    near: float | None = None
    far: float | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def has_distortion(self) -> bool:
        return any(abs(k) > 0 for k in self.distortion)


def undistort_points(x: torch.Tensor, y: torch.Tensor, dist: torch.Tensor, iters: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Invert OpenCV radial-tangential distortion by fixed-point iteration.

    ``x, y`` are distorted normalised image coordinates [N]; ``dist`` is [4] or [N,4] (k1, k2, p1, p2).
    """
    k1, k2, p1, p2 = dist.unbind(-1)
    xu, yu = x.clone(), y.clone()
    for _ in range(iters):
        r2 = xu * xu + yu * yu
        radial = 1 + k1 * r2 + k2 * r2 * r2
        dx = 2 * p1 * xu * yu + p2 * (r2 + 2 * xu * xu)
        dy = p1 * (r2 + 2 * yu * yu) + 2 * p2 * xu * yu
        xu = (x - dx) / radial
        yu = (y - dy) / radial
    return xu, yu


def pixel_rays(
    c2w: torch.Tensor, intr: torch.Tensor, dist: torch.Tensor | None, px: torch.Tensor, py: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays through pixel centres: per-ray ``c2w`` [N,3,4], ``intr`` [N,4] (fx, fy, cx, cy), pixel coords [N].

    Returns origins [N,3] and unit directions [N,3] in world space.
    """
    fx, fy, cx, cy = intr.unbind(-1)
    x = (px.to(c2w.dtype) + 0.5 - cx) / fx
    y = (py.to(c2w.dtype) + 0.5 - cy) / fy
    if dist is not None and bool((dist != 0).any()):
        x, y = undistort_points(x, y, dist)
    d_cam = torch.stack([x, -y, -torch.ones_like(x)], -1)
    d = (c2w[:, :3, :3] @ d_cam[..., None])[..., 0]
    return c2w[:, :3, 3].expand_as(d).contiguous(), d / d.norm(dim=-1, keepdim=True)


def camera_rays(cam: Camera, transform: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All rays of a camera in row-major pixel order: origins and unit directions [H*W, 3] float32.

    ``transform`` ([4,4], optional) maps world into the model's normalised frame first.
    """
    c2w = np.asarray(cam.c2w, dtype=np.float64)[:3, :4]
    if transform is not None:
        c2w = (transform @ np.vstack([c2w, [0, 0, 0, 1]]))[:3]
    py, px = torch.meshgrid(torch.arange(cam.height), torch.arange(cam.width), indexing="ij")
    n = cam.height * cam.width
    c2w_t = torch.as_tensor(c2w, dtype=torch.float32).expand(n, 3, 4)
    intr = torch.tensor([cam.fx, cam.fy, cam.cx, cam.cy], dtype=torch.float32).expand(n, 4)
    dist = torch.tensor(cam.distortion, dtype=torch.float32) if cam.has_distortion else None
    return pixel_rays(c2w_t, intr, dist, px.reshape(-1), py.reshape(-1))
