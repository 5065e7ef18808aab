"""The proposal sampler of unbounded scenes in whole-batch PyTorch ops (CUDA), the twin of numba's
``march_proposal`` (``_numba_kernels``: ``propose`` + ``fine_walk``), decision for decision.

Why a twin: on CUDA the PyTorch path used to march every step of the occupied cells of an unbounded scene
(hundreds of samples a ray in a new scene's fog); this places the same fixed budget a ray as the CPU does.
- coarse pass: one jittered point per interval of ``proposal_k`` fine steps; an occupied cell's pdf mass is
  the visibility so far times the opacity of its densest corner (an upper bound, so a thin surface between
  two points is not stepped over), visibility uses the interpolated density; the pass ends after the
  interval where visibility falls below ``stop_trans``;
- the pdf is blended toward uniform over the intervals seen; ``proposal_samples`` + 1 stratified quantiles
  (inverse CDF, linear inside an interval) bound the fine intervals, whose midpoints are the samples;
- samples in unoccupied cells are dropped, and those behind the point where visibility falls below
  ``stop_trans``.
No Python loop over rays or samples: [rays, intervals] tensors, ``searchsorted`` for the inverse CDF.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from nerf_widgets.engine.grid import trilinear_corners

if TYPE_CHECKING:
    from nerf_widgets.engine.fast import FastModel

__all__ = ["march_proposal_torch"]


def _grid_points(model: FastModel, pts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unit-grid coordinates [M,3], whether each point is in an occupied cell [M], and its corners/weights."""
    unit = model.to_unit(pts)
    inside = ((unit >= 0) & (unit <= 1)).all(-1)
    occupied = model._lookup_occ(unit, coarse=False)
    return unit, occupied, inside


def _coarse(model: FastModel, origins: torch.Tensor, dirs: torch.Tensor, u: torch.Tensor,
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Interval bounds [C] (both), the blended pdf [N,C] over the intervals each ray saw, the last interval it
    saw [N], and which rays saw any occupied cell [N]."""
    s, ds = model._schedule(origins.device)
    kc, nf = int(model.opt["proposal_k"]), s.numel()
    a = torch.arange(0, nf, kc, device=s.device)
    b = (a + kc).clamp(max=nf) - 1
    ta, tb = model.near + s[a], model.near + s[b] + ds[b]
    n, c = origins.shape[0], a.numel()
    tp = ta + u[:, None] * (tb - ta)
    pts = (origins[:, None, :] + dirs[:, None, :] * tp[..., None]).reshape(-1, 3)
    unit, occupied, _ = _grid_points(model, pts)
    idx, w = trilinear_corners(unit.clamp(0, 1), model.dims)
    raw = model.density.table[idx, 0]  # [M, 8]
    scale = (tb - ta) / model.ref_len
    tau_max = F.softplus(raw.amax(1) + model.shift).view(n, c) * scale
    tau = F.softplus((raw * w).sum(1) + model.shift).view(n, c) * scale
    occupied = occupied.view(n, c)
    tau, tau_max = tau * occupied, tau_max * occupied
    csum = torch.cumsum(tau.double(), 1)
    visible = torch.exp(-(csum - tau.double()))  # before each interval
    weight = visible * (1 - torch.exp(-tau_max.double())) * occupied
    # intervals seen: up to and including the first whose end visibility is below stop_trans
    ended = torch.exp(-csum) < float(model.opt["stop_trans"])
    last = torch.where(ended.any(1), ended.float().argmax(1), torch.full((n,), c - 1, device=ended.device))
    seen = torch.arange(c, device=last.device)[None, :] <= last[:, None]
    weight = weight * seen
    total = weight.sum(1, keepdim=True)
    blend = float(model.opt["proposal_blend"])
    pdf = ((1 - blend) * weight / total.clamp(min=1e-300) + blend / (last[:, None] + 1).double()) * seen
    return ta, tb, pdf, last, total[:, 0] > 0


@torch.no_grad()
def march_proposal_torch(model: FastModel, origins: torch.Tensor, dirs: torch.Tensor,
                         jitter: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Packed samples (ray_idx [M], t [M], dt [M], unit [M,3]) of ``proposal_samples`` a ray, as ``march``."""
    n = origins.shape[0]
    u = jitter if jitter is not None else torch.full((n,), 0.5, device=origins.device)
    ta, tb, pdf, last, hit = _coarse(model, origins, dirs, u)
    k = int(model.opt["proposal_samples"])
    q = ((torch.arange(k + 1, device=u.device)[None, :] + u[:, None].double()) / (k + 1.0)).clamp(max=1.0)
    cdf = torch.cumsum(pdf, 1)
    # the first interval whose cumulative mass reaches q, at most the last one seen (as the numba walk searches)
    i = torch.minimum(torch.searchsorted(cdf.contiguous(), q.contiguous()), last[:, None])
    before = cdf.gather(1, i) - pdf.gather(1, i)
    f = ((q - before) / pdf.gather(1, i).clamp(min=1e-12)).clamp(0.0, 1.0)
    edges = ta[i] + f * (tb[i] - ta[i])  # [N, k+1], float64 like the numba walk's
    t, dt = (0.5 * (edges[:, 1:] + edges[:, :-1])).float(), (edges[:, 1:] - edges[:, :-1]).float()
    ray = torch.arange(n, device=u.device)[:, None].expand(n, k)
    keep = (edges[:, 1:] > edges[:, :-1]) & hit[:, None]
    ray, t, dt = ray[keep], t[keep], dt[keep]
    unit, occupied, _ = _grid_points(model, origins[ray] + dirs[ray] * t[:, None])
    ray, t, dt, unit = ray[occupied], t[occupied], dt[occupied], unit[occupied]
    # early termination: drop samples whose visibility (before them) is already below stop_trans
    idx, w = trilinear_corners(unit, model.dims)
    tau = F.softplus((model.density.table[idx, 0] * w).sum(1) + model.shift) / model.ref_len * dt
    cs = torch.cumsum(tau.double(), 0)
    excl = cs - tau.double()
    counts = torch.bincount(ray, minlength=n)
    starts = (torch.cumsum(counts, 0) - counts).clamp(max=max(tau.numel() - 1, 0))
    alive = torch.exp(-(excl - excl[starts][ray])) >= float(model.opt["stop_trans"]) if tau.numel() else tau > 0
    return {"ray_idx": ray[alive], "t": t[alive], "dt": dt[alive], "unit": unit[alive]}
