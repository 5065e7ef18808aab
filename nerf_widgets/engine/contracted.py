"""Unbounded scenes: where samples go along a ray, and which part of contracted space the views see.

The model frame puts the cameras about one unit from the point they look at (``data.scene_normalization``),
and mip-NeRF 360's contraction maps everything beyond the unit ball into the shell of radius 1..2.
- Sample spacing: a step of ``dt`` at distance ``r > 1`` moves ``dt / r^2`` in contracted space, so steps
  that grow with ``t^2`` (uniform in disparity, as mip-NeRF 360 spaces its samples) keep about one sample
  per contracted voxel all the way out; steps growing like ``t`` (a cone) put hundreds of samples into the
  last few voxels of the shell.
- Grid box: a forward-facing capture (fern) sees a frustum, a fraction of the [-2, 2]^3 cube; a box around
  what the training views see puts the same R^3 cells there (fern: 1.6-1.9x finer per axis).
- Warp: the sphere contraction spends its cells evenly in all directions around the centre. When every camera
  looks the same way (LLFF's forward-facing captures), the grid lives instead in the perspective space of a
  reference camera (x/z, y/z, 1/z; NeRF's NDC, as DVGO, Plenoxels and TensoRF train LLFF): one cell covers
  about the same number of pixels at every depth, depth cells are uniform in disparity out to infinity, and
  the box holds only the frusta the views see (fern at 200^3: ~3.7 px a cell across instead of ~5.5).
"""

from __future__ import annotations

import math

import torch

from nerf_widgets.engine.render import contract

__all__ = ["NONE", "PERSPECTIVE", "SPHERE", "disparity_schedule", "forward_frame", "inverse_schedule", "unwarp_points",
           "view_box", "warp_points"]

NONE, SPHERE, PERSPECTIVE = 0, 1, 2  # how model-frame points map into the grid box (numba's ``to_grid`` too)


def warp_points(x: torch.Tensor, warp: int, frame: torch.Tensor) -> torch.Tensor:
    """Model-frame points [M,3] -> the grid box's space: as they are, contracted, or (x/z, y/z, 1/z) in the
    reference camera ``frame`` [3,4] (camera-to-model; points less than 1e-3 in front of it map to -1)."""
    if warp == SPHERE:
        return contract(x)
    if warp != PERSPECTIVE:
        return x
    p = (x - frame[:, 3]) @ frame[:, :3]
    depth = -p[:, 2:3]
    ahead = depth >= 1e-3
    out = torch.cat([p[:, :2], torch.ones_like(depth)], 1) / depth.clamp(min=1e-3)
    return torch.where(ahead, out, torch.full_like(out, -1.0))


def unwarp_points(u: torch.Tensor, warp: int, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse of ``warp_points``: grid-space points [M,3] -> (model-frame points [M,3], valid [M]). Points with
    no finite preimage (the contracted shell's outer sphere and beyond, or at and behind the reference camera's
    plane) are not valid and come back as zeros."""
    if warp == SPHERE:
        n = u.norm(dim=-1, keepdim=True)
        valid = n[:, 0] < 2.0
        outer = u / (n * (2.0 - n)).clamp(min=1e-9)
        x = torch.where(n <= 1.0, u, outer)
        return torch.where(valid[:, None], x, torch.zeros_like(x)), valid
    if warp != PERSPECTIVE:
        return u, torch.ones(u.shape[0], dtype=torch.bool, device=u.device)
    valid = u[:, 2] > 0
    depth = 1.0 / u[:, 2:3].clamp(min=1e-9)
    p = torch.cat([u[:, :2] * depth, -depth], 1)
    x = p @ frame[:, :3].T + frame[:, 3]
    return torch.where(valid[:, None], x, torch.zeros_like(x)), valid


def forward_frame(c2w: torch.Tensor, max_angle: float = 30.0, max_spread: float = 0.5) -> torch.Tensor | None:
    """The reference camera [3,4] of a forward-facing capture: every view within ``max_angle`` degrees of the
    mean viewing direction and every centre within ``max_spread`` of their mean (the model frame puts the cameras
    about one unit from what they look at); None for captures around something (the sphere contraction's)."""
    fwd = torch.nn.functional.normalize(-c2w[:, :, 2], dim=1)  # the model frame's c2w carry its scale
    mean = torch.nn.functional.normalize(fwd.mean(0), dim=0)
    centre = c2w[:, :, 3].mean(0)
    if float((fwd @ mean).min()) < math.cos(math.radians(max_angle)) or \
            float((c2w[:, :, 3] - centre).norm(dim=1).max()) > max_spread:
        return None
    back = -mean
    up_mean = torch.nn.functional.normalize(c2w[:, :, 1], dim=1).mean(0)
    right = torch.nn.functional.normalize(torch.linalg.cross(up_mean, back), dim=0)
    up = torch.linalg.cross(back, right)
    return torch.stack([right, up, back, centre], 1)


def inverse_schedule(near: float, step: float, far: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample depths uniform in disparity from ``near``: offsets from ``near`` and lengths [S] with 1/t
    falling by ``step`` a sample (PERSPECTIVE's depth cells), up to ``far``."""
    n = max(int(math.ceil((1.0 / near - 1.0 / far) / step)), 1)
    inv = 1.0 / near - torch.arange(n + 1, dtype=torch.float64) * step
    t = (1.0 / inv.clamp(min=1.0 / far)).float()
    return t[:-1] - near, t[1:] - t[:-1]


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
             margin: float = 0.04, pixels: int = 24, depths: int = 96, warp: int = SPHERE,
             frame: torch.Tensor | None = None) -> torch.Tensor:
    """Box [2,3] in the warped space (``warp_points``) around the points the views see between ``near`` and
    ``far`` (a ``pixels`` x ``pixels`` grid of rays per view, ``depths`` depths uniform in disparity), grown by
    ``margin`` (and kept within [-2, 2]^3 when contracted). ``c2w`` [N,3,4] and ``intr`` [N,4] (fx, fy, cx, cy)
    in the model frame; ``size`` is (height, width)."""
    h, w = size
    ys, xs = torch.meshgrid(torch.linspace(0, h, pixels), torch.linspace(0, w, pixels), indexing="ij")
    lo, hi = torch.full((3,), math.inf), torch.full((3,), -math.inf)
    disp = torch.linspace(1.0 / near, 1.0 / far, depths)
    ref = frame if frame is not None else torch.zeros(3, 4)
    for cam, k in zip(c2w, intr, strict=True):
        d_cam = torch.stack([(xs - k[2]) / k[0], -(ys - k[3]) / k[1], -torch.ones_like(xs)], -1).reshape(-1, 3)
        d = d_cam @ cam[:, :3].T
        # the perspective warp: near and far are depths (z), LLFF's bounds, else distances along the rays
        d = d / (d.norm(dim=-1, keepdim=True) if warp != PERSPECTIVE else cam[:, 2].norm())
        pts = warp_points((cam[:, 3] + d[:, None, :] / disp[None, :, None]).reshape(-1, 3), warp, ref)
        lo, hi = torch.minimum(lo, pts.amin(0)), torch.maximum(hi, pts.amax(0))
    if warp == SPHERE:
        return torch.stack([(lo - margin).clamp(min=-2.0), (hi + margin).clamp(max=2.0)])
    return torch.stack([lo - margin, hi + margin])
