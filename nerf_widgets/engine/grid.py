"""Dense voxel tables with trilinear lookup and a masked (sparse-row) Adam, built for the CPU.

Why not ``nn.Parameter`` + ``torch.optim.Adam``: a dense Adam step reads and writes every voxel of
every table on every step (hundreds of MB at 160^3), which dominates a CPU step. Here gradients are
scattered into a persistent buffer, the touched rows are remembered in a bitmap, and only those rows
get an Adam update (DVGO's "masked Adam"). Tables are channel-last [rx * ry * rz, C] so one corner is one
row; the axes may differ (a forward-facing capture's perspective grid is finer across than in depth).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from nerf_widgets.engine import kernels
from nerf_widgets.engine.kernels import Dims

__all__ = ["DenseGrid", "as_dims", "trilinear_corners"]

_B1, _B2, _EPS = 0.9, 0.99, 1e-15


def as_dims(res: int | Dims) -> Dims:
    """A resolution as corners per axis: an int is a cube."""
    if isinstance(res, int):
        return (res, res, res)
    return (int(res[0]), int(res[1]), int(res[2]))


def trilinear_corners(unit: torch.Tensor, dims: Dims) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit grid coordinates [M,3] in [0, 1] -> flat corner indices [M,8] (int64) and weights [M,8]."""
    n = torch.tensor(dims, dtype=unit.dtype, device=unit.device) - 1
    g = torch.minimum((unit * n).clamp(min=0.0), n - 0.0001)
    i0 = g.floor()
    w = g - i0
    i0 = i0.long()
    sy, sx = dims[2], dims[1] * dims[2]
    base = i0[:, 0] * sx + i0[:, 1] * sy + i0[:, 2]
    offs = torch.tensor([0, 1, sy, sy + 1, sx, sx + 1, sx + sy, sx + sy + 1], device=unit.device)
    wx, wy, wz = w.unbind(-1)
    ax = torch.stack([1 - wx, wx], -1)[:, :, None, None]
    ay = torch.stack([1 - wy, wy], -1)[:, None, :, None]
    az = torch.stack([1 - wz, wz], -1)[:, None, None, :]
    return base[:, None] + offs, (ax * ay * az).reshape(-1, 8)


class _Lookup(torch.autograd.Function):
    """out[m] = sum_k w[m,k] * table[idx[m,k]]; backward scatters into the grid's own grad buffer."""

    @staticmethod
    def forward(ctx, anchor, grid, idx, w):  # type: ignore[override]
        ctx.grid, ctx.anchor_device = grid, getattr(anchor, "device", None)  # anchor is None without grad
        ctx.save_for_backward(idx, w)
        if grid.table.shape[1] == 1:
            return (grid.table[idx, 0] * w).sum(1, keepdim=True)
        return F.embedding_bag(idx, grid.table, per_sample_weights=w, mode="sum")

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        idx, w = ctx.saved_tensors
        grid = ctx.grid
        flat = idx.reshape(-1)
        grid.grad.index_add_(0, flat, (w[..., None] * g[:, None, :]).reshape(-1, g.shape[1]))
        grid.touched[flat] = True
        grid.dirty = True
        # the samples' positions, when they carry gradients (pose refinement): d out / d w[m,k] = table[idx[m,k]]
        grad_w = (grid.table[idx] * g[:, None, :]).sum(-1) if ctx.needs_input_grad[3] else None
        # the anchor stays on the CPU (not a buffer): autograd refuses a gradient on another device
        return torch.zeros(1, device=ctx.anchor_device), None, None, grad_w


class _FracLookup(torch.autograd.Function):
    """Fused-kernel twin of ``_Lookup``: samples given as corner base index [M] + fractions [M,3] (numpy)."""

    @staticmethod
    def forward(ctx, anchor, grid, base, frac):  # type: ignore[override]
        ctx.grid, ctx.base, ctx.frac = grid, base, frac
        return torch.from_numpy(kernels.gather(grid.table.numpy(), base, frac, grid.dims))

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        ctx.grid.scatter_grad(ctx.base, ctx.frac, np.ascontiguousarray(g.detach().numpy(), dtype=np.float32))
        return torch.zeros(1), None, None, None


class DenseGrid(torch.nn.Module):
    """A [rx * ry * rz, channels] table of corner values with its own optimiser state (buffers, so checkpointed)."""

    table: torch.Tensor
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor
    adam_step: torch.Tensor
    grad: torch.Tensor
    touched: torch.Tensor

    def __init__(self, res: int | Dims, channels: int, init: float = 0.0) -> None:
        super().__init__()
        self.dims = as_dims(res)
        rows = math.prod(self.dims)
        self.register_buffer("table", torch.full((rows, channels), float(init)))
        self.register_buffer("exp_avg", torch.zeros(rows, channels))
        self.register_buffer("exp_avg_sq", torch.zeros(rows, channels))
        self.register_buffer("adam_step", torch.zeros((), dtype=torch.long))
        self.register_buffer("grad", torch.zeros(rows, channels), persistent=False)
        self.register_buffer("touched", torch.zeros(rows, dtype=torch.bool), persistent=False)
        self.register_buffer("grid_dims", torch.tensor(self.dims))  # the table's shape, for loading
        self._anchor = torch.zeros(1, requires_grad=True)
        self.dirty = False  # gradients were added since the last Adam step

    def lookup(self, idx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Interpolated values [M, C] for corner indices/weights from ``trilinear_corners``."""
        if not torch.is_grad_enabled():
            return _Lookup.forward(_NoCtx(), None, self, idx, w)
        return _Lookup.apply(self._anchor, self, idx, w)

    def lookup_frac(self, base: np.ndarray, frac: np.ndarray) -> torch.Tensor:
        """CPU fused path: values [M, C] at samples given by corner base index [M] and fractions [M,3]."""
        if not torch.is_grad_enabled():
            return torch.from_numpy(kernels.gather(self.table.numpy(), base, frac, self.dims))
        return _FracLookup.apply(self._anchor, self, base, frac)

    def scatter_grad(self, base: np.ndarray, frac: np.ndarray, g: np.ndarray) -> None:
        """CPU fused path: add trilinear-weighted per-sample gradients ``g`` [M, C] to the grid's buffer."""
        kernels.scatter(self.grad.numpy(), self.touched.numpy(), base, frac, g, self.dims)
        self.dirty = True

    @torch.no_grad()
    def adam_step_(self, lr: float) -> None:
        """Adam update of the rows touched since the last call; untouched rows keep value and moments."""
        if not self.dirty:  # a flag, not touched.any(): scanning 160^3 flags twice cost 15 ms of a 130 ms step
            return
        self.dirty = False
        self.adam_step += 1
        t = int(self.adam_step)
        step = lr * (1 - _B2**t) ** 0.5 / (1 - _B1**t)
        if kernels.used_for(self.table.device):
            kernels.masked_adam(self.table.numpy(), self.exp_avg.numpy(), self.exp_avg_sq.numpy(), self.grad.numpy(),
                                self.touched.numpy(), float(step), _B1, _B2, _EPS)
            return
        rows = self.touched.nonzero().squeeze(1)
        g = self.grad[rows]
        m = self.exp_avg[rows].mul_(_B1).add_(g, alpha=1 - _B1)
        v = self.exp_avg_sq[rows].mul_(_B2).addcmul_(g, g, value=1 - _B2)
        self.exp_avg[rows] = m
        self.exp_avg_sq[rows] = v
        self.table.index_add_(0, rows, m / (v.sqrt() + _EPS), alpha=-step)
        self.grad[rows] = 0.0
        self.touched[rows] = False

    def volume(self) -> torch.Tensor:
        """The table as a [C, rx, ry, rz] volume (x, y, z order), a view."""
        return self.table.view(*self.dims, -1).permute(3, 0, 1, 2)

    @torch.no_grad()
    def resize_(self, res: int | Dims) -> None:
        """Trilinearly resample the values to ``res``; optimiser moments restart (coarse-to-fine training)."""
        dims = as_dims(res)
        if dims == self.dims:
            return
        vol = F.interpolate(self.volume()[None], size=dims, mode="trilinear", align_corners=True)[0]
        self._set(dims, vol.permute(1, 2, 3, 0).reshape(math.prod(dims), -1).contiguous())

    def _set(self, dims: Dims, table: torch.Tensor) -> None:
        self.dims = dims
        rows, c, dev = math.prod(dims), table.shape[1], table.device  # the module's device (CUDA when moved there)
        self.table = table
        self.exp_avg = torch.zeros(rows, c, device=dev)
        self.exp_avg_sq = torch.zeros(rows, c, device=dev)
        self.grad = torch.zeros(rows, c, device=dev)
        self.touched = torch.zeros(rows, dtype=torch.bool, device=dev)
        self.grid_dims = torch.tensor(dims, device=dev)
        self.dirty = False

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        table = state_dict.get(prefix + "table")
        if table is not None:
            if prefix + "grid_dims" not in state_dict:  # saved before grids had their own shape: a cube
                state_dict[prefix + "grid_dims"] = torch.tensor(as_dims(round(table.shape[0] ** (1 / 3))))
            dims = as_dims(tuple(int(x) for x in state_dict[prefix + "grid_dims"]))  # type: ignore[arg-type]
            if dims != self.dims or table.shape != self.table.shape:
                self._set(dims, torch.zeros_like(table, device=self.table.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class _NoCtx:
    """Stand-in autograd context for no-grad lookups (no tensors saved)."""

    def save_for_backward(self, *tensors: torch.Tensor) -> None:
        return None
