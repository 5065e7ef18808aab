"""The CPU render path of ``fast``: numba kernels march and composite, autograd glue for the colour MLP.

Split from ``fast.py`` by operation (as nerfacc splits estimator, marcher and renderer): the model owns its
grids and settings; here a ``DensityField`` record (what the marchers read) goes to one of two marchers,
``kernels.march_density`` (every step through occupied cells; bounded scenes) or ``kernels.march_proposal``
(a fixed number of samples a ray placed by a coarse pass; unbounded scenes), and the packed samples they
return are shaded and composited with a custom autograd Function whose backward runs per ray in numba.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from nerf_widgets.engine import kernels
from nerf_widgets.engine.render import ray_aabb, segment_sum

if TYPE_CHECKING:
    from nerf_widgets.engine.fast import FastModel

__all__ = ["DensityField", "render_fused"]


class DensityField(NamedTuple):
    """What a fused marcher reads of the density grid (numpy views of the model's tables)."""

    table: np.ndarray  # raw density at the grid corners [rx * ry * rz]
    dims: tuple[int, int, int]  # corners per axis
    lo: np.ndarray  # grid box corner [3] (contracted space for unbounded scenes)
    size: np.ndarray  # grid box size [3]
    occ: np.ndarray  # occupied cells [(rx-1)(ry-1)(rz-1)] bool
    warp: int  # how model-frame points map into the grid box (``contracted``: NONE, SPHERE, PERSPECTIVE)
    frame: np.ndarray  # PERSPECTIVE's reference camera [12] ([3,4] row-major), else zeros
    shift: float  # softplus shift of the raw density
    inv_ref: float  # 1 / the density's reference length
    stop_trans: float  # a ray ends once its transmittance is below this


def _np(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().numpy(), dtype=np.float32)


def march(model: FastModel, origins: torch.Tensor, dirs: torch.Tensor, u: torch.Tensor) -> tuple[np.ndarray, ...]:
    """Packed samples (starts, ray, t, dt, base, frac, raw, tau, trans, w) of the rays, from the marcher
    that fits the scene."""
    n = origins.shape[0]
    field = model.density_field()
    s, ds = model._schedule(origins.device)
    opt = model.opt
    if not model.bounded and int(opt["proposal_samples"]) > 0:
        return kernels.march_proposal(_np(origins), _np(dirs), _np(u), np.full(n, model.near, np.float32), _np(s),
                                      _np(ds), field, int(opt["proposal_k"]), int(opt["proposal_samples"]),
                                      float(opt["proposal_blend"]))
    if model.bounded:
        t0, t1 = ray_aabb(origins, dirs, model.march_box)
    else:
        t0, t1 = torch.full((n,), model.near), torch.full((n,), float(opt["far"]))
    return kernels.march_density(_np(origins), _np(dirs), _np(u), _np(t0), _np(t1), _np(s), _np(ds), field,
                                 model._blocks(), int(opt["coarse_k"]), bool(model.bounded))


def render_fused(model: FastModel, origins: torch.Tensor, dirs: torch.Tensor, background: torch.Tensor,
                 jitter: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """CPU path of ``FastModel.render_rays``: colour [N,3], opacity [N], depth [N], sample count, and with
    grad enabled for a model whose ``distortion_weight`` is set, each ray's distortion [N]."""
    n = origins.shape[0]
    u = jitter if jitter is not None else torch.full((n,), 0.5)
    starts, ray, t, dt, base, frac, raw, tau, trans, w = march(model, origins, dirs, u)
    kept = np.flatnonzero(w > float(model.opt["color_thresh"]))
    colour_row = np.full(w.shape[0], -1, dtype=np.int64)
    colour_row[kept] = np.arange(kept.shape[0])
    ray_k = torch.from_numpy(ray[kept])
    rgb_s = model._rgb(model.features.lookup_frac(base[kept], frac[kept]), dirs, ray_k)
    bg = background.expand(n, 3).contiguous()
    w_k = torch.from_numpy(w[kept])
    ctx = _FusedPack(model, starts, t, dt, base, frac, raw, tau, trans, w, colour_row, ray_k, w_k, bg)
    dist = torch.from_numpy(kernels.distortion(starts, t, dt, w)) if model.distortion_weight() and \
        torch.is_grad_enabled() else torch.zeros(n)
    rgb, dist = _FusedComposite.apply(rgb_s, dist, ctx)
    acc = segment_sum(w_k, ray_k, n)
    depth = segment_sum(w_k * torch.from_numpy(t[kept]), ray_k, n)
    return {"rgb": rgb, "acc": acc, "depth": depth, "samples": torch.tensor(float(w.shape[0])), "distortion": dist}


class _FusedPack:
    """What the fused composite needs in backward (numpy arrays from the marchers)."""

    def __init__(self, model: FastModel, starts: np.ndarray, t: np.ndarray, dt: np.ndarray, base: np.ndarray,
                 frac: np.ndarray, raw: np.ndarray, tau: np.ndarray, trans: np.ndarray, w: np.ndarray,
                 colour_row: np.ndarray, ray_k: torch.Tensor, w_k: torch.Tensor, bg: torch.Tensor) -> None:
        self.model, self.starts, self.t, self.dt, self.base, self.frac = model, starts, t, dt, base, frac
        self.raw, self.tau, self.trans, self.w, self.colour_row = raw, tau, trans, w, colour_row
        self.ray_k, self.w_k, self.bg = ray_k, w_k, bg


class _FusedComposite(torch.autograd.Function):
    """rgb = bg + sum_kept w_i (c_i - bg), and the rays' distortion (computed by the caller, passed through so
    its gradient arrives here); backward gives d/d colour and scatters d/d density of both into the grid."""

    @staticmethod
    def forward(ctx, rgb_s, dist, pack):  # type: ignore[override]
        ctx.pack = pack
        ctx.save_for_backward(rgb_s)
        delta = pack.w_k[:, None] * (rgb_s - pack.bg[pack.ray_k])
        return pack.bg + segment_sum(delta, pack.ray_k, pack.bg.shape[0]), dist.clone()

    @staticmethod
    def backward(ctx, g_rgb, g_dist):  # type: ignore[override]
        (rgb_s,) = ctx.saved_tensors
        p: _FusedPack = ctx.pack
        m = p.model
        g_dist = np.zeros(p.bg.shape[0], np.float32) if g_dist is None else _np(g_dist)
        g_rgb = torch.zeros_like(p.bg) if g_rgb is None else g_rgb
        g_raw, g_col = kernels.composite_backward(
            p.starts, p.w, p.tau, p.trans, p.dt, p.raw, p.colour_row, _np(rgb_s), _np(p.bg), _np(g_rgb),
            float(m.shift), float(1.0 / m.ref_len), p.t, g_dist)
        m.density.scatter_grad(p.base, p.frac, g_raw[:, None])
        return torch.from_numpy(g_col), None, None
