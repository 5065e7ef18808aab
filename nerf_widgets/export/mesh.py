"""Marching cubes on the density grid, then cleanup: floaters, smoothing, decimation, normals.

Meshes travel as plain arrays: vertices [V,3] float64 (world units), faces [F,3] int64, counter-clockwise
seen from outside (normals point away from high density).
"""

from __future__ import annotations

import numpy as np

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.export.grid import DensityGrid

__all__ = ["decimate", "extract_surface", "keep_large_components", "orient_outward", "taubin_smooth", "vertex_normals"]


def extract_surface(grid: DensityGrid, iso: float, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Iso-surface of ``grid`` at ``iso``, closed where it meets the grid border or the box [lo, hi].

    The grid's last nodes can lie up to a voxel past ``hi`` (whole voxels from ``lo``): they are emptied
    (in place) and the surface's vertices clamped into the box, so a cut is capped flat on the box's face,
    not left open (dropping the faces that reach past it left holes, and watertight exports refused).
    """
    import mcubes

    _empty_outside(grid, lo, hi)
    padded = np.pad(grid.values, 1, mode="constant", constant_values=0.0)
    verts, faces = mcubes.marching_cubes(padded, float(iso))
    if len(faces) == 0:
        raise ValidationError(f"no surface at iso-level {iso:g}: the density never reaches it inside the bounds")
    verts = grid.origin + (verts - 1.0) * grid.voxel
    top = np.minimum(np.asarray(hi, np.float64), grid.origin + grid.voxel * (np.array(grid.values.shape) - 1))
    return np.clip(verts, np.maximum(np.asarray(lo, np.float64), grid.origin), top), faces.astype(np.int64)


def _empty_outside(grid: DensityGrid, lo: np.ndarray, hi: np.ndarray) -> None:
    """Zero the grid's nodes outside [lo, hi] (plus a hair for rounding), slab by slab along each axis."""
    eps = 1e-6 * float(np.max(np.asarray(hi) - np.asarray(lo)))
    for axis in range(3):
        coords = grid.origin[axis] + grid.voxel * np.arange(grid.values.shape[axis])
        outside = np.flatnonzero((coords < lo[axis] - eps) | (coords > hi[axis] + eps))
        if len(outside):
            index: list[slice | np.ndarray] = [slice(None)] * 3
            index[axis] = outside
            grid.values[tuple(index)] = 0.0


def compact(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove vertices no face uses and renumber."""
    used, inverse = np.unique(faces, return_inverse=True)
    return verts[used], inverse.reshape(-1, 3).astype(np.int64)


def orient_outward(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Flip all faces if the signed volume is negative (normals must point out of the object)."""
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    volume = float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum())
    return faces[:, ::-1].copy() if volume < 0 else faces


def keep_large_components(verts: np.ndarray, faces: np.ndarray, min_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep connected components with at least ``min_fraction`` of the largest one's faces (floaters go)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(edges), np.int8), (edges[:, 0], edges[:, 1])), shape=(len(verts), len(verts)))
    _, labels = connected_components(graph, directed=False)
    face_label = labels[faces[:, 0]]
    counts = np.bincount(face_label)
    keep = counts[face_label] >= min_fraction * counts.max()
    return compact(verts, faces[keep])


def taubin_smooth(verts: np.ndarray, faces: np.ndarray, iterations: int) -> np.ndarray:
    """Taubin lambda/mu smoothing: removes marching-cubes terracing without the shrinkage of Laplacian smoothing."""
    if iterations <= 0:
        return verts
    import trimesh

    mesh = trimesh.Trimesh(verts.copy(), faces, process=False)
    trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=0.53, iterations=iterations)
    return np.asarray(mesh.vertices)


def decimate(verts: np.ndarray, faces: np.ndarray, target_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadric-error simplification down to about ``target_faces`` (no-op when already below)."""
    if len(faces) <= target_faces:
        return verts, faces
    import fast_simplification

    v, f = fast_simplification.simplify(verts.astype(np.float32), faces.astype(np.int64), target_count=int(target_faces))
    return compact(np.asarray(v, np.float64), np.asarray(f, np.int64))


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals [V,3] (+Z where a vertex's faces have no area)."""
    cross = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    normals = np.zeros_like(verts)
    for corner in range(3):
        for axis in range(3):
            normals[:, axis] += np.bincount(faces[:, corner], weights=cross[:, axis], minlength=len(verts))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = normals / np.where(length > 0, length, 1.0)
    # corners of zero-area faces alone: any unit vector (glTF requires unit normals; the face draws nothing)
    normals[length[:, 0] == 0] = (0.0, 0.0, 1.0)
    return normals
