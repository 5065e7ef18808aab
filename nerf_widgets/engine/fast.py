"""``fast``: explicit voxel grids + tiny MLP, occupancy-skipping ray marching, packed samples (CPU first).

Design chosen by measurement on a 2-core CPU (see the engine report / tests/bench/train_lego.py):
- density: a dense [R^3, 1] grid (a forward-facing capture's perspective grid spreads the R^3 corners finer
  across than in depth), trilinear, softplus activation (DVGO); it doubles as the occupancy
  grid, so no network is evaluated to skip empty space;
- colour: a dense [R^3, 12] feature grid + view direction (spherical harmonics, degree 2) -> 1x64 MLP; only evaluated on
  samples whose compositing weight is above a threshold (most samples are behind surfaces or empty);
- marching in two levels: a coarse occupancy (K fine steps per cell) prunes candidate intervals, the fine
  occupancy prunes single samples; packed samples with ray indices;
- coarse-to-fine: the grids are resampled to higher resolution on a step schedule;
- unbounded scenes: mip-NeRF 360 contraction into a radius-2 ball (or, for a forward-facing capture, a
  reference camera's perspective space: ``contracted``), depth steps growing with distance, a fixed budget of
  samples a ray from a proposal pass (numba ``march_proposal``, ``proposal`` on CUDA), the distortion loss;
- on the CPU, ``engine.kernels`` (numba) walks each ray once (occupancy skip, density, transmittance,
  early termination) and differentiates compositing per ray; the PyTorch path below is the reference,
  runs on CUDA, and is what ``NERF_WIDGETS_KERNELS=0`` selects.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.engine import kernels
from nerf_widgets.engine.appearance import ViewAppearance
from nerf_widgets.engine.config import autocast_bf16, check_precision
from nerf_widgets.engine.contracted import (
    NONE,
    PERSPECTIVE,
    SPHERE,
    disparity_schedule,
    forward_frame,
    inverse_schedule,
    view_box,
    warp_points,
)
from nerf_widgets.engine.fast_fused import DensityField, _np, render_fused
from nerf_widgets.engine.grid import DenseGrid, trilinear_corners
from nerf_widgets.engine.kernels import Dims
from nerf_widgets.engine.pose_refine import PoseRefiner
from nerf_widgets.engine.proposal import march_proposal_torch
from nerf_widgets.engine.render import composite_packed, distortion_packed, ray_aabb, segment_sum, sh_basis
from nerf_widgets.engine.settings import FastSettings

__all__ = ["FastModel", "DEFAULTS"]

DEFAULTS: dict[str, Any] = FastSettings().to_json()


class FastModel(nn.Module):
    """Radiance field on dense grids in the model frame; ``aabb`` is the box (bounded) or [-2, 2]^3 (contracted)."""

    aabb: torch.Tensor
    march_box: torch.Tensor
    occ: torch.Tensor
    occ_coarse: torch.Tensor
    warp: torch.Tensor
    warp_frame: torch.Tensor

    def __init__(self, aabb: torch.Tensor, bounded: bool, near: float, options: dict[str, Any] | None = None,
                 views: int = 0) -> None:
        super().__init__()
        self.settings = FastSettings.from_options(options, "fast")
        self.opt = self.settings.to_json()
        check_precision(self.opt["mixed_precision"])
        if self.settings.appearance not in ("auto", "on", "off"):
            raise ValidationError(f"fast model setting appearance must be auto, on or off, not {self.settings.appearance!r}")
        if self.settings.forward_facing not in ("auto", "off"):
            raise ValidationError(f"fast model setting forward_facing must be auto or off, not {self.settings.forward_facing!r}")
        on = self.settings.appearance == "on" or (self.settings.appearance == "auto" and not bounded)
        self.appearance = ViewAppearance(views if on else 0)
        self.poses = PoseRefiner(views if self.settings.pose_refine else 0)
        self.bounded = bounded
        self.near = float(near)
        # a copy: carving and fit_views move the box in place, never the caller's tensor
        self.register_buffer("aabb", torch.as_tensor(aabb, dtype=torch.float32).reshape(2, 3).clone())
        self.register_buffer("march_box", self.aabb.clone())
        # grid space (``contracted``): SPHERE for unbounded scenes until ``fit_views`` finds a forward-facing capture
        self.register_buffer("warp", torch.tensor(NONE if bounded else SPHERE))
        self.register_buffer("warp_frame", torch.zeros(3, 4))
        if not bounded and "res_schedule" not in (options or {}):
            self.opt["res_schedule"] = self.opt["unbounded_res_schedule"]  # an explicit res_schedule applies to both
        res0 = int(self.opt["res_schedule"][0][1])
        extent = float((self.aabb[1] - self.aabb[0]).max())
        self.ref_len = extent / 256.0
        self.shift = math.log(math.expm1(-math.log(1 - self.opt["alpha_init"])))
        self.density = DenseGrid(res0, 1)
        self.features = DenseGrid(res0, int(self.opt["features"]))
        h, d_in = int(self.opt["hidden"]), int(self.opt["features"]) + 9
        layers: list[nn.Module] = []
        for _ in range(int(self.opt["layers"])):
            layers += [nn.Linear(d_in, h), nn.ReLU(inplace=True)]
            d_in = h
        self.mlp = nn.Sequential(*layers, nn.Linear(d_in, 3))
        self.register_buffer("occ", torch.ones((res0 - 1) ** 3, dtype=torch.bool))
        self.register_buffer("occ_coarse", torch.ones(math.prod(self._coarse_dims(self.dims)), dtype=torch.bool))
        self._block_src: torch.Tensor | None = None
        self._block_cache = np.ones(0, dtype=np.bool_)

    # ---- geometry ---------------------------------------------------------------------------------
    @property
    def dims(self) -> Dims:
        """Grid corners per axis."""
        return self.density.dims

    @property
    def res(self) -> int:
        """The schedule's resolution R of the grid (R^3 corners, however they are spread over the axes)."""
        return round(math.prod(self.dims) ** (1 / 3))

    def dims_for(self, res: int) -> Dims:
        """Corners per axis of schedule resolution ``res``: a cube, except in a forward-facing capture's perspective
        space, where the same ~res^3 corners are spread so that a cell covers as many pixels across as up and
        depth gets ``perspective_depth`` x res of them (as Plenoxels' 1408 x 1156 x 128 LLFF grids): fern's
        fronds are 2-3 pixels wide, and 128 disparity steps resolve its depth (parallax under a pixel a step)."""
        if int(self.warp) != PERSPECTIVE:
            return (res, res, res)
        ext = (self.aabb[1] - self.aabb[0]).tolist()
        rz = max(4, round(res * float(self.opt["perspective_depth"])))
        across = res**3 / rz
        rx = max(4, round(math.sqrt(across * ext[0] / ext[1])))
        ry = max(4, round(math.sqrt(across * ext[1] / ext[0])))
        return (rx, ry, rz)

    def _coarse_dims(self, dims: Dims) -> Dims:
        k = int(self.opt["coarse_k"])
        return (math.ceil((dims[0] - 1) / k), math.ceil((dims[1] - 1) / k), math.ceil((dims[2] - 1) / k))

    def _cells(self) -> Dims:
        return (self.dims[0] - 1, self.dims[1] - 1, self.dims[2] - 1)

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Model-frame points [M,3] -> [0,1]^3 grid space (warped first for unbounded scenes)."""
        x = warp_points(x, int(self.warp), self.warp_frame)
        return (x - self.aabb[0]) / (self.aabb[1] - self.aabb[0])

    def step_size(self) -> float:
        """Fine marching step: ``step_ratio`` of the longest cell edge (model units, or contracted ones)."""
        cell = max(float(e) / (r - 1) for e, r in zip((self.aabb[1] - self.aabb[0]).tolist(), self.dims, strict=True))
        return cell * float(self.opt["step_ratio"])

    def sigma(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw grid density -> volume density per model-frame length unit."""
        return F.softplus(raw + self.shift) / self.ref_len

    # ---- schedule hooks -----------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Compile (or load from numba's cache) every CPU kernel now: after an install the first launches
        compile for ~40 s, which would count toward ``max_minutes`` and its learning-rate decay. A throwaway
        8^3 copy renders, differentiates and steps a few rays, so this model's state is untouched."""
        if not kernels.used_for(self.aabb.device):
            return
        tiny = {**self.opt, "res_schedule": [[0, 8]], "unbounded_res_schedule": [[0, 8]]}
        probe = FastModel(self.aabb, self.bounded, self.near, tiny, views=1)
        probe.update_occupancy()
        dirs = F.normalize(torch.tensor([[0.3, 0.2, -1.0], [-0.2, 0.1, -1.0], [0.1, -0.3, -1.0]]), dim=-1)
        centre, extent = self.aabb.mean(0), float((self.aabb[1] - self.aabb[0]).max())
        out = probe.render_rays(centre - dirs * extent, dirs, torch.ones(3), torch.full((3,), 0.5),
                                image=torch.zeros(3, dtype=torch.long))
        out["rgb"].sum().backward()
        probe.grid_step(0.0)

    def before_step(self, step: int) -> None:
        """Coarse-to-fine resampling on the schedule; occupancy refresh every ``occ_every`` steps."""
        target = self.dims_for(int(max(r for s, r in self.opt["res_schedule"] if step >= s)))
        changed = target != self.dims
        if changed:
            self.density.resize_(target)
            self.features.resize_(target)
        if changed or step % int(self.opt["occ_every"]) == 0:
            self.update_occupancy()

    @torch.no_grad()
    def update_occupancy(self) -> None:
        """Cell occupied when its densest corner absorbs > occ_alpha over one fine step; coarse = dilated max."""
        tau_min = -math.log(1 - float(self.opt["occ_alpha"]))
        if kernels.used_for(self.density.table.device):
            # the same test on raw values: softplus is monotonic, so sigma * step > tau_min <=> raw > raw_min
            y = tau_min * self.ref_len / self.step_size()
            raw_min = (y + math.log(-math.expm1(-y)) if y < 20 else y) - self.shift
            flat = kernels.occupancy(self.density.table.view(-1).numpy(), self.dims, float(raw_min))
            occ = torch.from_numpy(flat).view(1, 1, *self._cells())
        else:
            sig = self.sigma(self.density.table).view(1, 1, *self.dims)
            occ = F.max_pool3d(sig, 2, stride=1) * self.step_size() > tau_min
        self.occ = occ.reshape(-1)
        coarse = self._pool_blocks(occ)
        self.occ_coarse = F.max_pool3d(coarse, 3, stride=1, padding=1).reshape(-1) > 0
        if self.bounded:
            self.march_box = self._box_around(occ[0, 0], corners=False)

    def _box_around(self, mask: torch.Tensor, corners: bool) -> torch.Tensor:
        """Model-frame box [2,3] around the true entries of a cell [nx,ny,nz] or corner [rx,ry,rz] grid, one
        cell of margin on each side, within ``aabb`` (the whole ``aabb`` when nothing is set)."""
        idx = mask.nonzero()
        if idx.numel() == 0:
            return self.aabb.clone()
        n = torch.tensor(mask.shape, device=idx.device) - (1 if corners else 0)  # corner i at i/n; cell i: [i, i+1]/n
        lo = (idx.amin(0).float() - 1).clamp(min=0) / n
        hi = (idx.amax(0).float() + (1 if corners else 2)).clamp(max=n) / n
        size = self.aabb[1] - self.aabb[0]
        return torch.stack([self.aabb[0] + lo * size, self.aabb[0] + hi * size])

    @torch.no_grad()
    def carve(self, c2w: torch.Tensor, intr: torch.Tensor, masks: torch.Tensor) -> float:
        """Space carving from alpha masks (object captures): a grid corner that projects onto background
        (dilated mask) in any view is made empty, so training starts from the visual hull instead of
        fog filling the box. With ``fit_box`` the grid box then shrinks to the hull's bounding box (DVGO
        fits its fine grid to the coarse geometry the same way): lego's hull box is 1.57 x 2.52 x 1.81 of
        Blender's 3^3, so the same R^3 cells become 1.2-1.9x finer per axis. ``c2w`` [N,3,4] model frame,
        ``intr`` [N,4], ``masks`` [N,H,W] bool. Returns the fraction of corners kept."""
        keep = self._hull(c2w, intr, masks)
        if self.opt["fit_box"] and self.bounded and bool(keep.any()):
            self.aabb.copy_(self._box_around(keep.view(*self.dims), corners=True))
            keep = self._hull(c2w, intr, masks)
        self.density.table[~keep] = -20.0
        self.update_occupancy()
        return float(keep.float().mean())

    @torch.no_grad()
    def fit_views(self, c2w: torch.Tensor, intr: torch.Tensor, size: tuple[int, int],
                  depths: tuple[float, float] | None = None) -> None:
        """Unbounded scenes with ``fit_box``: the grid box becomes the part of warped space the training
        views see (``contracted.view_box``), so its cells land where the cameras look; a forward-facing
        capture (``contracted.forward_frame``) switches to the perspective warp first. ``depths``: the views'
        known (near, far) content depths in the model frame (LLFF's), else the scene's near and ``far``."""
        if self.bounded or not self.opt["fit_box"]:
            return
        frame = forward_frame(c2w) if self.opt["forward_facing"] == "auto" else None
        near, far = self.near, float(self.opt["far"])
        if frame is not None:
            self.warp.fill_(PERSPECTIVE)
            self.warp_frame.copy_(frame)
            near = max(near, 0.9 * depths[0]) if depths else near
        self.aabb.copy_(view_box(c2w, intr, (int(size[0]), int(size[1])), near, far, warp=int(self.warp),
                                 frame=self.warp_frame))
        self.march_box = self.aabb.clone()  # ``ref_len`` (the density unit) stays that of the scene's box
        self.density.resize_(self.dims_for(self.res))  # the perspective box spreads its corners unevenly
        self.features.resize_(self.dims_for(self.res))
        self.update_occupancy()

    def _hull(self, c2w: torch.Tensor, intr: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Grid corners [R^3] bool that project inside every view's dilated mask (or outside its image)."""
        box = self.aabb.cpu()  # on the CPU, where the cameras and masks are
        axes = [torch.linspace(0, 1, r) for r in self.dims]
        unit = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        pts = box[0] + unit * (box[1] - box[0])
        keep = torch.ones(pts.shape[0], dtype=torch.bool)
        voxel = max(float(e) / (r - 1) for e, r in zip((box[1] - box[0]).tolist(), self.dims, strict=True))
        for cam, k, mask in zip(c2w, intr, masks, strict=True):
            p = (pts - cam[:, 3]) @ cam[:, :3]
            depth = (-p[:, 2]).clamp(min=1e-6)
            px = k[0] * p[:, 0] / depth + k[2]
            py = -k[1] * p[:, 1] / depth + k[3]
            rad = int(math.ceil(voxel * float(k[0]) / float(depth.min()))) + 1
            dil = dilate(mask, rad)
            h, w = mask.shape
            inside = (p[:, 2] < 0) & (px >= 0) & (px < w) & (py >= 0) & (py < h)
            hit = dil[py.long().clamp(0, h - 1), px.long().clamp(0, w - 1)]
            keep &= ~inside | hit
        return keep.to(self.aabb.device)

    # ---- marching -----------------------------------------------------------------------------------
    def _schedule(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Fine sample offsets along a ray (from its entry depth) and their lengths, [S] each: uniform in a box,
        uniform in disparity beyond ``t_lin`` in unbounded scenes (``contracted``)."""
        step = self.step_size()
        if self.bounded:
            diag = float((self.march_box[1] - self.march_box[0]).norm())
            n = int(math.ceil(diag / step)) + 1
            s = torch.arange(n, device=device, dtype=torch.float32) * step
            return s, torch.full_like(s, step)
        if int(self.warp) == PERSPECTIVE:  # one step per half depth cell, uniform in disparity like the cells
            inv_step = float(self.aabb[1, 2] - self.aabb[0, 2]) / (self.dims[2] - 1) * float(self.opt["step_ratio"])
            s, ds = inverse_schedule(self.near, inv_step, float(self.opt["far"]))
        else:
            s, ds = disparity_schedule(self.near, step, float(self.opt["t_lin"]), float(self.opt["far"]))
        return s.to(device), ds.to(device)

    def march(self, origins: torch.Tensor, dirs: torch.Tensor, jitter: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Packed samples of occupied space: ray_idx [M], t [M], dt [M], unit-grid coordinates [M,3]."""
        n = origins.shape[0]
        if self.bounded:
            t0, t1 = ray_aabb(origins, dirs, self.march_box)
        else:
            t0 = torch.full((n,), self.near, device=origins.device)
            t1 = torch.full((n,), float(self.opt["far"]), device=origins.device)
        s, ds = self._schedule(origins.device)
        k = int(self.opt["coarse_k"])
        pad = (-s.numel()) % k
        s = torch.cat([s, s[-1] + ds[-1] * torch.arange(1, pad + 1, device=s.device)]) if pad else s
        ds = torch.cat([ds, ds[-1].expand(pad)]) if pad else ds
        u = jitter if jitter is not None else torch.full((n,), 0.5, device=origins.device)
        sc, dsc = s.view(-1, k)[:, 0], ds.view(-1, k).sum(1)
        tc = t0[:, None] + sc + 0.5 * dsc
        alive = (t0[:, None] + sc) < t1[:, None]
        ray, ck = (alive & self._occupied(origins, dirs, tc, coarse=True)).nonzero().unbind(1)
        fi = (ck[:, None] * k + torch.arange(k, device=s.device)).reshape(-1)
        ray = ray.repeat_interleave(k)
        t = t0[ray] + s[fi] + u[ray] * ds[fi]
        keep = t < t1[ray]
        ray, t, dt = ray[keep], t[keep], ds[fi][keep]
        unit = self.to_unit(origins[ray] + dirs[ray] * t[:, None])
        keep = self._lookup_occ(unit, coarse=False)
        return {"ray_idx": ray[keep], "t": t[keep], "dt": dt[keep], "unit": unit[keep]}

    def _occupied(self, origins: torch.Tensor, dirs: torch.Tensor, t: torch.Tensor, coarse: bool) -> torch.Tensor:
        pts = origins[:, None, :] + dirs[:, None, :] * t[..., None]
        return self._lookup_occ(self.to_unit(pts.reshape(-1, 3)), coarse).view(t.shape)

    def _lookup_occ(self, unit: torch.Tensor, coarse: bool) -> torch.Tensor:
        """Occupancy at unit-grid points. Coarse checks are made at interval centres, which can lie just
        outside the box while the interval's first samples are inside: they clamp instead of failing."""
        n = torch.tensor(self._cells(), device=unit.device)
        cell = torch.minimum((unit * n).long().clamp(min=0), n - 1)
        if coarse:
            cell = cell // int(self.opt["coarse_k"])
            _, cy, cz = self._coarse_dims(self.dims)
            return self.occ_coarse[(cell[:, 0] * cy + cell[:, 1]) * cz + cell[:, 2]]
        inside = ((unit >= 0) & (unit <= 1)).all(-1)
        return self.occ[(cell[:, 0] * int(n[1]) + cell[:, 1]) * int(n[2]) + cell[:, 2]] & inside

    # ---- rendering ----------------------------------------------------------------------------------
    def render_rays(self, origins: torch.Tensor, dirs: torch.Tensor, background: torch.Tensor,
                    jitter: torch.Tensor | None = None, image: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Colour [N,3], opacity [N] and depth [N] of rays (unit ``dirs``); ``background`` [N,3] or [3];
        ``image`` [N] the training view of each ray (its appearance, its pose correction), None for the shared
        appearance and the poses as given. Rays that carry gradients (pose refinement) take the PyTorch path:
        the fused CPU kernels differentiate the grids, not the samples' positions."""
        if image is not None and self.poses.active and torch.is_grad_enabled():
            origins, dirs = self.poses(origins, dirs, image)
            if kernels.used_for(origins.device):
                out = self._render_split(origins, dirs, background, jitter)
                out["rgb"] = self.appearance(out["rgb"], image)
                return out
        if kernels.used_for(origins.device) and not dirs.requires_grad:
            out = render_fused(self, origins, dirs, background, jitter)
        else:
            out = self._render_torch(origins, dirs, background, jitter)
        out["rgb"] = self.appearance(out["rgb"], image)
        return out

    def _render_split(self, origins: torch.Tensor, dirs: torch.Tensor, background: torch.Tensor,
                      jitter: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Pose refinement on a CPU: the first ``pose_share`` of the (shuffled) rays on the PyTorch path, which
        differentiates their positions, the rest on the fused kernels with their corrected rays held fixed.
        All rays train the field; a few hundred a step are plenty for 6 numbers a view (fern, 2 cores: the
        whole batch on the PyTorch path ran 9x slower than without refinement)."""
        n = origins.shape[0]
        k = min(n, max(1, round(n * float(self.opt["pose_share"]))))
        bg = background if background.dim() == 1 else None

        def part(t: torch.Tensor | None, sl: slice) -> torch.Tensor | None:
            return None if t is None else t[sl]

        head, tail = slice(0, k), slice(k, n)
        a = self._render_torch(origins[head], dirs[head], bg if bg is not None else background[head], part(jitter, head))
        if k == n:
            return a
        b = render_fused(self, origins[tail].detach(), dirs[tail].detach(), bg if bg is not None else background[tail],
                         part(jitter, tail))
        out = {key: torch.cat([a[key], b[key]]) for key in ("rgb", "acc", "depth")}
        out["samples"] = a["samples"] + b["samples"]
        parts = [x["distortion"] for x in (a, b) if "distortion" in x]
        if parts:
            out["distortion"] = torch.cat(parts)
        return out

    def loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(photometric MSE + the appearance penalty + the distortion loss, MSE)."""
        mse = torch.mean((out["rgb"] - batch["rgb"]) ** 2)
        total = mse + float(self.opt["appearance_reg"]) * self.appearance.penalty()
        if self.poses.active:
            total = total + float(self.opt["pose_reg"]) * self.poses.penalty()
        if self.distortion_weight() and "distortion" in out:
            total = total + self.distortion_weight() * out["distortion"].mean()
        return total, mse.detach()

    def distortion_weight(self) -> float:
        """Weight of the distortion loss: unbounded scenes only (it pulls each ray's weights into one compact
        surface, so the floaters that few views leave in front of the cameras cost more than they explain)."""
        return 0.0 if self.bounded else float(self.opt["distortion"])

    def _render_torch(self, origins: torch.Tensor, dirs: torch.Tensor, background: torch.Tensor,
                      jitter: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Reference path of ``render_rays`` in PyTorch ops (CUDA, or ``NERF_WIDGETS_KERNELS=0``)."""
        n = origins.shape[0]
        moving = origins.requires_grad or dirs.requires_grad  # pose refinement: samples follow their rays
        o, d = (origins.detach(), dirs.detach()) if moving else (origins, dirs)
        if not self.bounded and int(self.opt["proposal_samples"]) > 0:
            smp = march_proposal_torch(self, o, d, jitter)
        else:
            smp = self.march(o, d, jitter)
        ray = smp["ray_idx"]
        unit = self.to_unit(origins[ray] + dirs[ray] * smp["t"][:, None]) if moving else smp["unit"]
        idx, w = trilinear_corners(unit, self.dims)
        tau = self.sigma(self.density.lookup(idx, w)[:, 0]) * smp["dt"]
        weights = all_w = composite_packed(tau, ray, n)
        keep = weights.detach() > float(self.opt["color_thresh"])
        ray, weights = ray[keep], weights[keep]
        rgb_s = self._rgb(self.features.lookup(idx[keep], w[keep]), dirs, ray)
        acc = segment_sum(weights, ray, n)
        rgb = segment_sum(weights[:, None] * rgb_s, ray, n) + (1.0 - acc)[:, None] * background
        depth = segment_sum(weights * smp["t"][keep], ray, n)
        out = {"rgb": rgb, "acc": acc, "depth": depth, "samples": torch.tensor(float(tau.numel()))}
        if self.distortion_weight() and torch.is_grad_enabled():
            out["distortion"] = distortion_packed(all_w, smp["t"], smp["dt"], smp["ray_idx"], n)
        return out

    def density_field(self) -> DensityField:
        """The density grid as the fused marchers read it (views of the live tables, no copies)."""
        return DensityField(
            table=self.density.table.detach().view(-1).numpy(), dims=self.dims, lo=_np(self.aabb[0]),
            size=_np(self.aabb[1] - self.aabb[0]), occ=self.occ.numpy(), warp=int(self.warp),
            frame=_np(self.warp_frame.reshape(-1)), shift=float(self.shift),
            inv_ref=float(1.0 / self.ref_len), stop_trans=float(self.opt["stop_trans"]))

    def _blocks(self) -> np.ndarray:
        """Occupied K^3 blocks of cells (not dilated), for the fused march's empty-space jumps; derived from
        ``occ`` when it changes (a restored checkpoint brings ``occ`` without them)."""
        if self._block_src is not self.occ:
            blocks = self._pool_blocks(self.occ.view(1, 1, *self._cells())) > 0
            self._block_cache, self._block_src = blocks.reshape(-1).numpy(), self.occ
        return self._block_cache

    def _pool_blocks(self, occ: torch.Tensor) -> torch.Tensor:
        """Cell occupancy [1,1,nx,ny,nz] -> occupied K^3 blocks [1,1,bx,by,bz] (float, 1 = occupied)."""
        k = int(self.opt["coarse_k"])
        return F.max_pool3d(occ.float(), k, stride=k, ceil_mode=True)

    def _rgb(self, feat: torch.Tensor, dirs: torch.Tensor, ray: torch.Tensor | None = None) -> torch.Tensor:
        """Colour [M,3] of samples with features ``feat`` [M,F] seen along ``dirs[ray]`` (``dirs`` [M,3] when
        ``ray`` is None). The first layer is split: its direction part runs once per ray, not per sample
        (per-sample SH and the concatenation took ~15 % of an unbounded step)."""
        first = self.mlp[0]
        assert isinstance(first, nn.Linear)
        nf = feat.shape[1]
        with autocast_bf16(feat.device, str(self.opt["mixed_precision"])):
            per_ray = F.linear(sh_basis(dirs), first.weight[:, nf:], first.bias)
            # index_select: its backward is an index_add, where indexing's (an accumulating index_put) is slower
            h = F.linear(feat, first.weight[:, :nf]) + (per_ray if ray is None else per_ray.index_select(0, ray))
            out = self.mlp[1:](h)
        return torch.sigmoid(out.float())

    # ---- training / export interface ------------------------------------------------------------------
    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """The MLP and appearance at ``lr``; the pose corrections, when refined, at their own ``base_lr`` (the
        trainer decays both by the same factor)."""
        groups: list[dict[str, Any]] = [{"params": list(self.mlp.parameters()) + list(self.appearance.parameters()),
                                         "lr": lr}]
        if self.poses.active:
            pose_lr = float(self.opt["pose_lr"])
            groups.append({"params": list(self.poses.parameters()), "lr": pose_lr, "base_lr": pose_lr})
        return groups

    def grid_step(self, lr: float) -> None:
        self.density.adam_step_(lr)
        self.features.adam_step_(lr)

    @torch.no_grad()
    def query_density(self, pts: torch.Tensor) -> torch.Tensor:
        """Volume density [N] at model-frame points [N,3] (zero outside the grid)."""
        unit = self.to_unit(pts)
        inside = ((unit >= 0) & (unit <= 1)).all(-1)
        idx, w = trilinear_corners(unit, self.dims)
        return self.sigma(self.density.lookup(idx, w)[:, 0]) * inside

    @torch.no_grad()
    def query_color(self, pts: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
        """Colour [N,3] in [0,1] at model-frame points seen along unit ``dirs``."""
        idx, w = trilinear_corners(self.to_unit(pts).clamp(0, 1), self.dims)
        return self._rgb(self.features.lookup(idx, w), dirs)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        for name in ("occ", "occ_coarse"):
            if prefix + name in state_dict:
                setattr(self, name, torch.zeros_like(state_dict[prefix + name], device=getattr(self, name).device))
        for name, param in self.appearance.named_parameters():  # runs saved before per-view appearance: identity
            state_dict.setdefault(f"{prefix}appearance.{name}", torch.zeros_like(param))
        state_dict.setdefault(f"{prefix}poses.delta", torch.zeros_like(self.poses.delta))  # before pose refinement
        # runs saved before the perspective warp: contracted (unbounded) or none
        state_dict.setdefault(prefix + "warp", torch.tensor(NONE if self.bounded else SPHERE))
        state_dict.setdefault(prefix + "warp_frame", torch.zeros(3, 4))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def dilate(mask: torch.Tensor, rad: int) -> torch.Tensor:
    """Square dilation of a [H,W] bool mask by ``rad`` pixels, as two 1-D max-pools: 2k instead of k^2
    work per pixel (carving lego's 100 masks: 37 s -> 8 s)."""
    out = F.max_pool2d(mask[None, None].float(), (2 * rad + 1, 1), stride=1, padding=(rad, 0))
    return F.max_pool2d(out, (1, 2 * rad + 1), stride=1, padding=(0, rad))[0, 0] > 0
