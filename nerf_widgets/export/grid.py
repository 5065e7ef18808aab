"""Density on a regular grid, the occupied box, and an iso-level that matches what the NeRF renders.

The automatic iso-level is calibrated on the grid itself: every grid line is a ray, and the density at
the point where its transmittance falls to 1/2 (optical depth ln 2) is where a rendered depth map would
put the surface. The level is a low quantile (``ISO_QUANTILE``) of those densities over all opaque lines, in
all six axis directions: soft surfaces (dark, thin or fuzzy parts) cross half transmittance at a lower
density than hard ones, and a median level leaves holes wherever they are. Measured on a 5-minute lego
run, mesh-render PSNR on 6 test views by quantile: 0.1: 21.3, 0.15: 21.9, 0.2: 21.9, 0.3: 20.6, 0.5: 16.0 dB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.export.query import FieldQuery

__all__ = ["DensityGrid", "auto_iso", "crossings", "occupied_box", "sample_grid"]

ProgressFn = Callable[[float], None]
LN2 = float(np.log(2.0))
ISO_QUANTILE = 0.2
EMPTY_FIELD = ("the field is empty inside the export bounds: no line through them becomes opaque. A short training "
               "is still fog: train longer (resume the run) and export again; with a region, check that it holds "
               "the object (project.region(), or export with region=None); or pass iso= to choose the surface "
               "density yourself")


@dataclass
class DensityGrid:
    """values[X,Y,Z] sampled at nodes ``origin + voxel * (i, j, k)`` (world units)."""

    values: np.ndarray
    origin: np.ndarray  # [3]
    voxel: float


def sample_grid(query: FieldQuery, lo: np.ndarray, hi: np.ndarray, resolution: int,
                progress: ProgressFn | None = None) -> DensityGrid:
    """Sample density at (resolution+1) nodes along the longest side of [lo, hi], slab by slab along x."""
    voxel = float(np.max(hi - lo)) / resolution
    shape = np.maximum(np.ceil((hi - lo) / voxel - 1e-6).astype(int) + 1, 2)
    axes = [lo[i] + voxel * np.arange(shape[i]) for i in range(3)]
    yz = np.stack(np.meshgrid(axes[1], axes[2], indexing="ij"), -1).reshape(-1, 2).astype(np.float32)
    values = np.empty(tuple(shape), np.float32)
    per_call = max(1, query.chunk // len(yz))
    for i0 in range(0, shape[0], per_call):
        xs = axes[0][i0 : i0 + per_call].astype(np.float32)
        pts = np.concatenate([np.repeat(xs, len(yz))[:, None], np.tile(yz, (len(xs), 1))], axis=1)
        values[i0 : i0 + len(xs)] = query.density(pts).reshape(len(xs), shape[1], shape[2])
        if progress is not None:
            progress(min(1.0, (i0 + len(xs)) / shape[0]))
    return DensityGrid(values, np.asarray(lo, np.float64), voxel)


def crossings(lines: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lines [L, n] densities along rays -> (rows of the lines that become opaque, the density where their
    optical depth first reaches ln 2, and where: a node index along the line, fractional).

    Opaque: optical depth 2 ln 2 by the line's end. Trapezoid integration; inside the crossing segment density
    is linear, so the crossing solves a quadratic.
    """
    tau = np.zeros(lines.shape, np.float32)  # optical depth at each node; filled in place (a large grid's lines)
    np.cumsum(0.5 * (lines[:, 1:] + lines[:, :-1]) * step, axis=1, out=tau[:, 1:])
    rows = np.nonzero(tau[:, -1] >= 2 * LN2)[0]
    k = np.argmax(tau >= LN2, axis=1)[rows]  # first node past the crossing (k >= 1)
    a, b = lines[rows, k - 1].astype(np.float64), lines[rows, k].astype(np.float64)
    need = (LN2 - tau[rows, k - 1]) / step  # = a*s + (b-a)*s^2/2, s in (0, 1]
    with np.errstate(divide="ignore", invalid="ignore"):  # inf - inf, x / 0: dropped below
        slope = b - a
        s = np.where(np.abs(slope) > 1e-9, (-a + np.sqrt(np.maximum(a * a + 2 * slope * need, 0))) / slope, need / a)
    s = np.clip(s, 0, 1)
    level = a + slope * s
    ok = np.isfinite(level)  # a segment with no density (x/0) or infinite ones: such lines are left out
    return rows[ok], level[ok], (k - 1 + s)[ok]


def auto_iso(grid: DensityGrid) -> float:
    """``ISO_QUANTILE`` of the densities at the half-transmittance points of the opaque grid lines (6 directions)."""
    samples = []
    stride = max(1, max(grid.values.shape) // 128)  # every line up to 128^2 per direction; a sample beyond
    for axis in range(3):
        sub = grid.values[tuple(slice(None) if a == axis else slice(None, None, stride) for a in range(3))]
        lines = np.moveaxis(sub, axis, -1).reshape(-1, grid.values.shape[axis])
        for direction in (lines, lines[:, ::-1]):
            samples.append(crossings(direction, grid.voxel)[1])
    levels = np.concatenate(samples)
    if len(levels) == 0:
        raise ValidationError(EMPTY_FIELD)
    return float(max(np.quantile(levels, ISO_QUANTILE), 1e-6))


def occupied_box(grid: DensityGrid, iso: float, margin: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """World box [lo, hi] of the nodes at or above ``iso / 2``, grown by ``margin`` voxels and kept in the grid."""
    idx = np.argwhere(grid.values >= 0.5 * iso)
    if len(idx) == 0:
        raise ValidationError(f"no density reaches the iso-level {iso:g} inside the bounds: pass a lower iso=, "
                              "or train longer")
    top = np.array(grid.values.shape) - 1
    first = np.clip(idx.min(0) - margin, 0, top)
    last = np.clip(idx.max(0) + margin, 0, top)
    return grid.origin + grid.voxel * first, grid.origin + grid.voxel * last
