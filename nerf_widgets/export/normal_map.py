"""Normal maps: the detail decimation removed, baked from the full-resolution mesh onto the exported one.

A 10k-face web mesh keeps its silhouette but loses the studs and grooves the field showed; lit in Blender or a
game engine it looks smooth. The normal map carries the full mesh's normals in the low mesh's tangent space,
the convention of glTF (``normalTexture`` with a ``TANGENT`` attribute) and of Blender's normal-map node:
per vertex the tangent follows +u, the bitangent +v (OpenGL, v up) with handedness ``w``, and a texel stores
``(n.T, n.B, n.N) * 0.5 + 0.5``.

For each texel of the low mesh, the high mesh's normal is read at the nearest of its vertices on the same side
(vertex normal within 90 degrees of the low normal, so a thin plate's far face is never taken), weighted by
inverse distance: marching-cubes vertices lie half a voxel apart, closer than a texel of the exported maps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nerf_widgets.core.errors import stop_if_asked
from nerf_widgets.export.bake import dilate, rasterize_uv
from nerf_widgets.export.mesh import vertex_normals

__all__ = ["bake_normal_map", "decode", "frames", "oriented_points", "tangents"]

NEIGHBOURS = 8  # high-mesh vertices considered per texel
SAME_SIDE = 0.0  # a neighbour's normal must make less than 90 degrees with the low normal
CHUNK = 1 << 18


def oriented_points(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the bake reads of the full mesh: its vertices and unit vertex normals, float32 [V,3] each. Kept
    instead of the mesh itself: a real capture's full mesh has ~12M faces, 285 MB of indices the bake does not need."""
    return verts.astype(np.float32), vertex_normals(verts, faces).astype(np.float32)


def tangents(verts: np.ndarray, faces: np.ndarray, uv: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Per-vertex tangents [V,4] (xyz unit, orthogonal to ``normals``; w = +-1, bitangent = w * normal x tangent).

    Face tangents from the UV gradient (dP/du, dP/dv), summed per vertex (weighted by face area through the
    unnormalised gradient), made orthogonal to the vertex normal. Vertices without a usable UV gradient get any
    unit tangent orthogonal to the normal.
    """
    p0, p1, p2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    t0, t1, t2 = uv[faces[:, 0]], uv[faces[:, 1]], uv[faces[:, 2]]
    e1, e2 = p1 - p0, p2 - p0
    d1, d2 = t1 - t0, t2 - t0
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    ok = np.abs(det) > 1e-20
    r = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)[:, None]
    face_t = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) * r * np.abs(det)[:, None]  # dP/du, weighted by UV area
    face_b = (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) * r * np.abs(det)[:, None]  # dP/dv
    t, b = np.zeros_like(verts, np.float64), np.zeros_like(verts, np.float64)
    for corner in range(3):
        for axis in range(3):
            t[:, axis] += np.bincount(faces[:, corner], weights=face_t[:, axis], minlength=len(verts))
            b[:, axis] += np.bincount(faces[:, corner], weights=face_b[:, axis], minlength=len(verts))
    n = np.asarray(normals, np.float64)
    t -= n * (n * t).sum(1, keepdims=True)
    length = np.linalg.norm(t, axis=1, keepdims=True)
    bad = length[:, 0] < 1e-12
    if bad.any():  # any direction across the normal
        helper = np.where(np.abs(n[bad, 0:1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        t[bad] = np.cross(n[bad], helper)
        length[bad] = np.linalg.norm(t[bad], axis=1, keepdims=True)
    t /= np.maximum(length, 1e-20)
    w = np.where((np.cross(n, t) * b).sum(1) < 0, -1.0, 1.0)
    return np.concatenate([t, w[:, None]], 1)


def frames(verts: np.ndarray, faces: np.ndarray, normals: np.ndarray, tan: np.ndarray, face_id: np.ndarray,
            bary: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Surface point, tangent, bitangent and normal [M,3] at fragments (face ids [M], barycentrics [M,3]),
    interpolated from the vertices as a viewer's shader does (then made orthonormal)."""
    tri = faces[face_id]
    w = bary[..., None].astype(np.float64)
    p = (verts[tri] * w).sum(1)
    n = (normals[tri] * w).sum(1)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
    t = (tan[tri, :3] * w).sum(1)
    t -= n * (n * t).sum(1, keepdims=True)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-20)
    sign = np.where((tan[tri, 3] * w[..., 0]).sum(1) < 0, -1.0, 1.0)
    return p, t, np.cross(n, t) * sign[:, None], n


def _high_normals(tree: object, high_normals: np.ndarray, points: np.ndarray, low: np.ndarray) -> np.ndarray:
    """The high mesh's normal near each point [M,3]: its nearest vertices on the low normal's side, by inverse
    distance; the low normal where none is on that side."""
    dist, idx = tree.query(points, k=NEIGHBOURS, workers=-1)  # type: ignore[attr-defined]
    cand = high_normals[idx]  # [M,K,3]
    same = (cand * low[:, None, :]).sum(2) > SAME_SIDE
    w = same / np.maximum(dist, 1e-12)
    out = (cand * w[..., None]).sum(1)
    length = np.linalg.norm(out, axis=1, keepdims=True)
    return np.where(length > 1e-12, out / np.maximum(length, 1e-20), low)


def bake_normal_map(verts: np.ndarray, faces: np.ndarray, uv: np.ndarray, normals: np.ndarray, size: int | tuple[int, int],
                    high_points: np.ndarray, high_normals: np.ndarray,
                    progress: Callable[[float], None] | None = None,
                    should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(tangent-space normal map [H,W,3] uint8, row 0 = top; tangents [V,4]) of the low mesh (verts [V,3],
    faces [F,3], uv [V,2] OpenGL, unit normals [V,3]) against the high mesh it was decimated from, given as its
    vertices and their normals (``oriented_points``).

    Texels outside every UV triangle get their nearest covered texel's value, so seams and mipmaps stay flat.
    ``should_stop`` is asked between chunks of texels (CancelledError).
    """
    from scipy.spatial import cKDTree

    rows, cols = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if rows != cols:
        raise ValueError(f"normal maps are baked on square atlases, not {rows} x {cols}")
    tan = tangents(verts, faces, uv, normals)
    face_id, bary = rasterize_uv(uv, faces, rows)
    covered = face_id >= 0
    image = np.zeros((rows, cols, 3), np.float32)
    image[..., 2] = 1.0
    tree = cKDTree(high_points)
    where = np.nonzero(covered.reshape(-1))[0]
    flat = image.reshape(-1, 3)
    for s in range(0, len(where), CHUNK):
        stop_if_asked(should_stop, "export cancelled while baking the normal map", stage="normals")
        cells = where[s : s + CHUNK]
        p, t, b, n = frames(verts, faces, normals, tan, face_id.reshape(-1)[cells], bary.reshape(-1, 3)[cells])
        h = _high_normals(tree, high_normals, p, n)
        flat[cells] = np.stack([(h * t).sum(1), (h * b).sum(1), (h * n).sum(1)], 1)
        if progress is not None:
            progress(min(1.0, (s + CHUNK) / max(len(where), 1)))
    image = dilate(image, covered)
    return (np.clip(image * 0.5 + 0.5, 0, 1) * 255 + 0.5).astype(np.uint8), tan


def decode(normal_map: np.ndarray, uv: np.ndarray, t: np.ndarray, b: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The shading normal a viewer computes [M,3] from the map at uv [M,2] and the interpolated frame [M,3] x 3
    (bilinear lookup, as ``texture.sample``)."""
    from nerf_widgets.export.texture import sample

    m = sample(normal_map, uv) * 2.0 - 1.0
    out = m[:, 0:1] * t + m[:, 1:2] * b + m[:, 2:3] * n
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-20)
