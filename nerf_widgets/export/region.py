"""Exporting only the region of interest: density masked outside the (rotated) box, the mesh placed on the floor.

Marching cubes runs over the region's axis-aligned bounds; density outside the oriented box (and in the
floor slab when the floor is cut) reads as zero, so the surface closes at the box's faces and nothing of
the room outside reaches the mesh. Placement happens after baking (which samples the field in the world):
the box's up becomes +Z with the floor at z = 0, which the glTF/OBJ writers turn into +Y up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from nerf_widgets.core.region import FLOOR_SLAB, Region
from nerf_widgets.export.formats import MeshData, z_up_to_y_up

__all__ = ["clamp_to_region", "masked_density", "place_mesh", "place_points"]


def masked_density(density: Callable[[Any], Any], region: Region, cut_floor: bool) -> Callable[[Any], Any]:
    """``density`` with zero outside ``region`` (torch points [N,3] in, [N] out)."""
    import torch

    def masked(points: Any) -> Any:
        rot = torch.as_tensor(region.rotation, dtype=points.dtype, device=points.device)
        center = torch.as_tensor(region.center, dtype=points.dtype, device=points.device)
        half = torch.as_tensor(0.5 * region.size, dtype=points.dtype, device=points.device)
        local = (points - center) @ rot
        inside = (local.abs() <= half).all(dim=-1)
        if cut_floor:
            inside &= local[:, 2] >= -half[2] + FLOOR_SLAB * float(region.size[2])
        sigma = density(points)
        return torch.where(inside.reshape(sigma.shape), sigma, torch.zeros_like(sigma))

    return masked


def clamp_to_region(verts: np.ndarray, region: Region, cut_floor: bool) -> np.ndarray:
    """Move vertices that marching cubes put up to a voxel outside the box (where the mask cuts) onto its faces."""
    half = 0.5 * region.size
    low = -half.copy()
    if cut_floor:
        low[2] += FLOOR_SLAB * float(region.size[2])
    local = np.clip(region.to_local(verts), low, half)
    return np.asarray(region.center + local @ region.rotation.T, np.float64)


def place_points(region: Region, points: np.ndarray, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points and normals -> placed (floor at z = 0, the box's up along +Z, centred over the origin)."""
    return region.place(points), np.asarray(normals, np.float64) @ region.rotation


Y_UP = z_up_to_y_up(np.eye(3)).T  # the files' turn from the world's Z-up, as a matrix acting on columns


def place_mesh(region: Region, data: MeshData) -> MeshData:
    """``data`` placed (``place_points``); its tangents and its view-dependent term turned along."""
    verts, normals = place_points(region, data.verts, data.normals)
    data = replace(data, verts=verts, normals=normals)
    if data.view_term is not None:  # rays in the file's frame: d_before = Y_UP R Y_UP^T d_after
        data = replace(data, view_term=data.view_term.turned(Y_UP @ region.rotation @ Y_UP.T))
    if data.tangents is None:
        return data
    turned = np.concatenate([np.asarray(data.tangents[:, :3], np.float64) @ region.rotation, data.tangents[:, 3:]], 1)
    return replace(data, tangents=turned)  # a rotation keeps the handedness
