"""UV layouts: xatlas charts (few seams, good texel use) or triangle pairs (one square per two faces, O(F)).

xatlas' charting time grows faster than linearly with the face count (measured on 2 shared cores: 20k
faces ~2.5 s with small charts, 200k faces ~60 s), so ``auto`` runs it on the whole mesh up to
``XATLAS_MAX_FACES`` and beyond that on spatial pieces of ``TILE_FACES`` faces, each packed into its own
square tile of the texture (``tiles``). ``pairs`` (two faces per square, no xatlas) is the O(F) fallback.
All return ``UVLayout`` with UVs in OpenGL convention (v up, origin bottom-left).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["UVLayout", "XATLAS_MAX_FACES", "unwrap", "unwrap_pairs", "unwrap_tiles", "unwrap_xatlas"]

XATLAS_MAX_FACES = 30_000
TILE_FACES = 4_000


@dataclass
class UVLayout:
    """vmap[V'] -> source vertex index, faces[F,3] into the new vertices, uv[V',2] in [0,1]."""

    vmap: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    method: str


def unwrap_xatlas(verts: np.ndarray, faces: np.ndarray, size: int) -> UVLayout:
    """xatlas with charts capped near 100 faces each (much faster than its default) and ~2 texel padding."""
    import xatlas

    area = 0.5 * np.linalg.norm(np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]]), axis=1).sum()
    atlas = xatlas.Atlas()
    atlas.add_mesh(verts.astype(np.float32), faces.astype(np.uint32))
    charts = xatlas.ChartOptions()
    charts.max_iterations = 1
    charts.max_chart_area = float(area) * 100.0 / max(len(faces), 1)
    pack = xatlas.PackOptions()
    pack.resolution = size
    pack.padding = max(2, size // 512)
    pack.bilinear = True
    pack.blockAlign = True
    atlas.generate(charts, pack)
    vmap, new_faces, uv = atlas[0]
    uv = np.asarray(uv, np.float64)
    return UVLayout(np.asarray(vmap, np.int64), np.asarray(new_faces, np.int64), uv, "xatlas")


def unwrap_pairs(faces: np.ndarray, size: int) -> UVLayout:
    """Two faces per square cell (lower-left and upper-right right triangles), inset 1 texel against bleeding."""
    n = len(faces)
    cells = (n + 1) // 2
    side = int(np.ceil(np.sqrt(cells)))
    cell = size / side  # texels per cell
    inset = min(1.0, cell / 6) / size  # in uv units
    k = np.arange(n)
    c = k // 2
    x0, y0 = (c % side) * cell / size, (c // side) * cell / size
    w = cell / size
    upper = (k % 2).astype(bool)
    d = inset * 2.5  # keep the shared diagonal apart by more than the bilinear footprint
    lower_tri = np.stack([[x0 + inset, y0 + inset], [x0 + w - d, y0 + inset], [x0 + inset, y0 + w - d]], 0)
    upper_tri = np.stack([[x0 + w - inset, y0 + w - inset], [x0 + d, y0 + w - inset], [x0 + w - inset, y0 + d]], 0)
    tri = np.where(upper[None, None, :], upper_tri, lower_tri)  # [3 corners, 2, F]
    uv = np.transpose(tri, (2, 0, 1)).reshape(-1, 2)
    return UVLayout(faces.reshape(-1).astype(np.int64), np.arange(3 * n, dtype=np.int64).reshape(n, 3), uv, "pairs")


def _spatial_pieces(verts: np.ndarray, faces: np.ndarray, pieces: int) -> list[np.ndarray]:
    """Face index groups of about equal size, compact in space (cells of a pieces^(1/3) grid, then z)."""
    c = verts[faces].mean(1)
    cells = max(1, int(round(pieces ** (1 / 3))))
    span = np.maximum(np.ptp(c, axis=0), 1e-12)
    ij = np.minimum(((c - c.min(0)) / span * cells).astype(np.int64), cells - 1)
    order = np.lexsort((c[:, 2], ij[:, 1], ij[:, 0]))
    return np.array_split(order, pieces)


def unwrap_tiles(verts: np.ndarray, faces: np.ndarray, size: int, tile_faces: int = TILE_FACES) -> UVLayout:
    """xatlas on spatial pieces, each in its own square tile of the texture (inset 1 texel at tile borders)."""
    groups = _spatial_pieces(verts, faces, max(1, -(-len(faces) // tile_faces)))
    side = int(np.ceil(np.sqrt(len(groups))))
    tile = size // side
    vmaps, new_faces, uvs, offset = [], [], [], 0
    for k, group in enumerate(groups):
        used, local = np.unique(faces[group], return_inverse=True)
        part = unwrap_xatlas(verts[used], local.reshape(-1, 3), tile)
        inset = 1.0 / tile
        uv = (inset + part.uv * (1 - 2 * inset) + np.array([k % side, k // side])) * tile / size
        vmaps.append(used[part.vmap])
        new_faces.append(part.faces + offset)
        uvs.append(uv)
        offset += len(part.vmap)
    return UVLayout(np.concatenate(vmaps), np.concatenate(new_faces), np.concatenate(uvs), "tiles")


def unwrap(verts: np.ndarray, faces: np.ndarray, size: int, method: str = "auto") -> UVLayout:
    """Pick the layout: ``auto`` = xatlas up to XATLAS_MAX_FACES faces, xatlas tiles above."""
    if method == "xatlas" or (method == "auto" and len(faces) <= XATLAS_MAX_FACES):
        return unwrap_xatlas(verts, faces, size)
    if method == "pairs":
        return unwrap_pairs(faces, size)
    return unwrap_tiles(verts, faces, size)
