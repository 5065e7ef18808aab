"""Unbounded scenes: where samples go along a ray, and which part of contracted space the views see.

The model frame puts the cameras about one unit from the point they look at (``data.scene_normalization``),
and mip-NeRF 360's contraction maps everything beyond the unit ball into the shell of radius 1..2.
- Sample spacing: a step of ``dt`` at distance ``r > 1`` moves ``dt / r^2`` in contracted space, so steps
  that grow with ``t^2`` (uniform in disparity, as mip-NeRF 360 spaces its samples) keep about one sample
  per contracted voxel all the way out; steps growing like ``t`` (a cone) put hundreds of samples into the
  last few voxels of the shell.
- Grid box: a forward-facing capture (fern) sees a frustum, a fraction of the [-2, 2]^3 cube; a box around
  what the training views see puts the same R^3 cells there (fern: 1.6-1.9x finer per axis).
"""

from __future__ import annotations

import math

import torch

from nerf_widgets.engine.render import contract

__all__ = ["disparity_schedule", "view_box"]


def disparity_schedule(near: float, step: float, t_lin: float, far: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample depths for every ray: offsets from ``near`` and step lengths [S] each. Steps are ``step`` up to
    ``t_lin`` and ``step * (t / t_lin)^2`` beyond it, up to ``far``."""
    t_lin = max(t_lin, near + step)
    n_lin = max(int(math.ceil((t_lin - near) / step)), 1)
    t_first = torch.arange(n_lin + 1, dtype=torch.float64) * ((t_lin - near) / n_lin) + near
    # uniform in 1/t beyond t_lin: 1/t_k = 1/t_lin - k * step / t_lin^2
    n_geo = int(math.ceil((1.0 / t_lin - 1.0 / far) * t_lin * t_lin / step))
    inv = 1.0 / t_lin - torch.arange(1, n_geo + 1, dtype=torch.float64) * (step / (t_lin * t_lin))
    t_far = 1.0 / inv.clamp(min=1.0 / far)
    t = torch.cat([t_first, t_far]).float()
    return t[:-1] - near, t[1:] - t[:-1]


@torch.no_grad()
def view_box(c2w: torch.Tensor, intr: torch.Tensor, size: tuple[int, int], near: float, far: float,
             margin: float = 0.04, pixels: int = 24, depths: int = 96) -> torch.Tensor:
    """Box [2,3] in contracted space around the points the views see between ``near`` and ``far``
    (a ``pixels`` x ``pixels`` grid of rays per view, ``depths`` depths uniform in disparity), grown by
    ``margin`` and kept within [-2, 2]^3. ``c2w`` [N,3,4] and ``intr`` [N,4] (fx, fy, cx, cy) in the model frame;
    ``size`` is (height, width)."""
    h, w = size
    ys, xs = torch.meshgrid(torch.linspace(0, h, pixels), torch.linspace(0, w, pixels), indexing="ij")
    lo, hi = torch.full((3,), 2.0), torch.full((3,), -2.0)
    disp = torch.linspace(1.0 / near, 1.0 / far, depths)
    for cam, k in zip(c2w, intr, strict=True):
        d_cam = torch.stack([(xs - k[2]) / k[0], -(ys - k[3]) / k[1], -torch.ones_like(xs)], -1).reshape(-1, 3)
        d = d_cam @ cam[:, :3].T
        d = d / d.norm(dim=-1, keepdim=True)
        pts = contract(cam[:, 3] + d[:, None, :] / disp[None, :, None]).reshape(-1, 3)
        lo, hi = torch.minimum(lo, pts.amin(0)), torch.maximum(hi, pts.amax(0))
    return torch.stack([(lo - margin).clamp(min=-2.0), (hi + margin).clamp(max=2.0)])
