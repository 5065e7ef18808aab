"""Volume rendering and sampling primitives, independent of any model.

Packed layout (nerfacc style): samples of all rays are one flat list sorted by ray then depth, with
``ray_idx`` [M] saying which ray each belongs to. Padded layout ([rays, samples]) is used by ``vanilla``.
"""

from __future__ import annotations

import torch

__all__ = [
    "composite_padded",
    "composite_packed",
    "contract",
    "distortion_packed",
    "positional_encoding",
    "ray_aabb",
    "sample_pdf",
    "segment_sum",
    "sh_basis",
    "stratified_samples",
]


def positional_encoding(x: torch.Tensor, n_freqs: int, include_input: bool = True) -> torch.Tensor:
    """NeRF's gamma(x): [..., D] -> [..., D * (2 * n_freqs + include_input)] with frequencies 2^k (k < n_freqs)."""
    freqs = 2.0 ** torch.arange(n_freqs, dtype=x.dtype, device=x.device)
    xb = (x[..., None, :] * freqs[:, None]).flatten(-2)
    parts = [x] if include_input else []
    return torch.cat(parts + [torch.sin(xb), torch.cos(xb)], -1)


def composite_padded(sigma: torch.Tensor, rgb: torch.Tensor, t: torch.Tensor, dirs_norm: torch.Tensor | None = None,
                     far_delta: float = 1e10) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Alpha compositing of [R,S] samples at depths ``t`` (sigma >= 0, rgb [R,S,3]).

    Returns (rgb [R,3], accumulated opacity [R], weights [R,S]); the last interval extends to ``far_delta``.
    """
    delta = torch.cat([t[:, 1:] - t[:, :-1], torch.full_like(t[:, :1], far_delta)], -1)
    if dirs_norm is not None:
        delta = delta * dirs_norm[:, None]
    alpha = 1.0 - torch.exp(-sigma * delta)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-10], -1), -1)[:, :-1]
    weights = alpha * trans
    return (weights[..., None] * rgb).sum(1), weights.sum(1), weights


def segment_sum(values: torch.Tensor, ray_idx: torch.Tensor, n_rays: int) -> torch.Tensor:
    """Sum packed per-sample ``values`` [M, ...] into their rays -> [n_rays, ...]."""
    out = torch.zeros((n_rays,) + values.shape[1:], dtype=values.dtype, device=values.device)
    return out.index_add_(0, ray_idx, values)


def composite_packed(tau: torch.Tensor, ray_idx: torch.Tensor, n_rays: int) -> torch.Tensor:
    """Weights of packed samples from optical thickness ``tau`` = sigma * dt [M] (sorted by ray, then depth).

    w_i = (1 - exp(-tau_i)) * exp(-sum_{j<i, same ray} tau_j); cumulative sums run in float64 so long
    sample lists do not lose the per-ray offsets.
    """
    if tau.numel() == 0:
        return tau
    cs = torch.cumsum(tau.double(), 0)
    excl = cs - tau.double()
    counts = torch.bincount(ray_idx, minlength=n_rays)
    starts = (torch.cumsum(counts, 0) - counts).clamp(max=tau.numel() - 1)
    trans = torch.exp(-(excl - excl[starts][ray_idx]).to(tau.dtype))
    return trans * (1.0 - torch.exp(-tau))


def distortion_packed(weights: torch.Tensor, t: torch.Tensor, dt: torch.Tensor, ray_idx: torch.Tensor,
                      n_rays: int) -> torch.Tensor:
    """mip-NeRF 360's distortion loss per ray [n_rays] of packed samples (sorted by ray, then depth; midpoints
    ``t``, lengths ``dt``): sum_ij w_i w_j |m_i - m_j| + 1/3 sum_i w_i^2 d_i, with distances in s = t / (1 + t)
    (the numba kernel's ``ray_s``): 2 sum_i w_i (m_i W_<i - (wm)_<i) by exclusive per-ray cumulative sums."""
    if weights.numel() == 0:
        return weights.new_zeros(n_rays)
    s0, s1 = [torch.where(x > 0, x / (1.0 + x.clamp(min=0.0)), 0.0) for x in (t - 0.5 * dt, t + 0.5 * dt)]
    m = 0.5 * (s0 + s1)
    counts = torch.bincount(ray_idx, minlength=n_rays)
    starts = (torch.cumsum(counts, 0) - counts).clamp(max=weights.numel() - 1)

    def before(v: torch.Tensor) -> torch.Tensor:  # sum over the earlier samples of the same ray
        excl = torch.cumsum(v.double(), 0) - v.double()
        return (excl - excl[starts][ray_idx]).to(v.dtype)

    per_sample = 2.0 * weights * (m * before(weights) - before(weights * m)) + weights.square() * (s1 - s0) / 3.0
    return segment_sum(per_sample, ray_idx, n_rays)


def ray_aabb(origins: torch.Tensor, dirs: torch.Tensor, aabb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Slab test: entry and exit depth [N] of rays with the box ``aabb`` [2,3]; exit < entry means a miss."""
    inv = 1.0 / torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0, t1 = (aabb[0] - origins) * inv, (aabb[1] - origins) * inv
    near = torch.minimum(t0, t1).amax(-1).clamp(min=0.0)
    far = torch.maximum(t0, t1).amin(-1)
    return near, far


def contract(x: torch.Tensor) -> torch.Tensor:
    """mip-NeRF 360 scene contraction: identity inside the unit ball, ``(2 - 1/|x|) x/|x|`` outside (radius < 2)."""
    n = x.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    return torch.where(n <= 1.0, x, (2.0 - 1.0 / n) * x / n)


def stratified_samples(near: torch.Tensor, far: torch.Tensor, n: int, perturb: bool,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` depths per ray [R,n]: one uniform draw in each of n equal bins (bin centres when not perturbed)."""
    u = torch.linspace(0.0, 1.0, n + 1, device=near.device)[:-1]
    if perturb:
        u = u + torch.rand(near.shape[0], n, device=near.device, generator=generator) / n
    else:
        u = u + 0.5 / n
    return near[:, None] + (far - near)[:, None] * u


def sample_pdf(bins: torch.Tensor, weights: torch.Tensor, n: int, perturb: bool,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Inverse-CDF sampling: ``n`` depths [R,n] from the piecewise-constant pdf ``weights`` [R,B] on ``bins`` [R,B+1]."""
    w = weights + 1e-5
    pdf = w / w.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1)
    if perturb:
        u = torch.rand(cdf.shape[0], n, device=cdf.device, generator=generator)
    else:
        u = torch.linspace(0.5 / n, 1.0 - 0.5 / n, n, device=cdf.device).expand(cdf.shape[0], n)
    u = u.contiguous()
    hi = torch.searchsorted(cdf, u, right=True).clamp(1, cdf.shape[-1] - 1)
    lo = hi - 1
    c0, c1 = cdf.gather(1, lo), cdf.gather(1, hi)
    b0, b1 = bins.gather(1, lo), bins.gather(1, hi)
    frac = ((u - c0) / (c1 - c0).clamp(min=1e-10)).clamp(0.0, 1.0)
    return b0 + frac * (b1 - b0)


def sh_basis(d: torch.Tensor) -> torch.Tensor:
    """Real spherical harmonics up to degree 2 of unit directions [N,3] -> [N,9] (cheaper than PE for a tiny MLP)."""
    x, y, z = d.unbind(-1)
    return torch.stack([
        torch.full_like(x, 0.28209479), -0.48860251 * y, 0.48860251 * z, -0.48860251 * x,
        1.09254843 * x * y, -1.09254843 * y * z, 0.31539157 * (3 * z * z - 1), -1.09254843 * x * z,
        0.54627422 * (x * x - y * y)], -1)
