"""A trained field with one part taken out, so what lies behind it can be rendered (an export's background).

An export meshes the part of an unbounded scene near its centre; the room or the sky around it is drawn from
a viewpoint inside that part. Its density has to go first, or the background layer would only show the
foreground's back. ``fast`` keeps its density on a grid, so a copy of the model with the corners inside the
part set to zero density (and its occupancy recomputed) renders exactly the rest of the scene.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.engine.contracted import unwarp_points

__all__ = ["without"]

_SLAB = 1 << 20  # corners unwarped at a time (a 512^3 grid holds 134M)
M = TypeVar("M")


@torch.no_grad()
def without(model: M, inside: Callable[[torch.Tensor], torch.Tensor]) -> M:
    """A copy of a grid model (``fast``) whose density is zero at every grid corner whose model-frame point
    ``inside(points[M,3]) -> bool[M]`` says is part of what to leave out; the model itself is untouched
    (the live preview may be drawing it)."""
    if not hasattr(model, "density") or not hasattr(model, "warp"):
        raise ValidationError(f"a {type(model).__name__} field cannot leave a part out: only grid fields can")
    source: Any = model
    # share every tensor but the density table (features, MLP, optimiser state: read-only here), so the copy
    # costs one grid, not the model's several grids and their Adam moments
    keep = source.density.table
    memo = {id(t): t for t in [*source.parameters(), *source.buffers()] if t is not keep}
    out: Any = copy.deepcopy(model, memo)
    dims = out.dims
    lo, hi = out.aabb[0], out.aabb[1]
    table = out.density.table.view(-1)
    # the emptiest value the field has itself (at most ~1e-9 of its density scale): the grid is interpolated before
    # its activation, so a far lower value would also empty the cells around the box's boundary
    empty = min(float(table.min()), -20.0 - float(getattr(out, "shift", 0.0)))
    dev = out.aabb.device  # corners are unwarped where the grid lives (a GPU's model: there)
    steps = [torch.linspace(0.0, 1.0, n, device=dev) for n in dims]
    plane = dims[1] * dims[2]
    gy, gz = torch.meshgrid(steps[1], steps[2], indexing="ij")
    yz = torch.stack([gy.reshape(-1), gz.reshape(-1)], 1)
    per = max(1, _SLAB // plane)
    for x0 in range(0, dims[0], per):  # flat index = (x * ry + y) * rz + z, as trilinear_corners
        xs = steps[0][x0 : x0 + per]
        unit = torch.cat([xs.repeat_interleave(plane)[:, None], yz.repeat(len(xs), 1)], 1)
        model_pts, valid = unwarp_points(lo + unit * (hi - lo), int(out.warp), out.warp_frame)
        hide = valid & inside(model_pts)
        rows = torch.nonzero(hide)[:, 0].to(table.device) + x0 * plane
        table[rows] = empty
    if hasattr(out, "update_occupancy"):
        out.update_occupancy()
    result: M = out
    return result
