"""Which triangle each pixel of a photo sees: a z-buffer rasteriser on the CPU (numba, serial).

Texture refinement needs, per training view, the visible face and its perspective-correct barycentrics at
every pixel centre; the mesh is fixed while texels are optimised, so each view is rasterised once and
nothing here needs a gradient. Vertices are projected with the view's pinhole intrinsics and OpenCV
distortion (per vertex: small triangles make that exact enough), triangles are filled with edge functions
and the nearest surface wins (1/z interpolated linearly in screen space).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from nerf_widgets.export.views import PhotoView

__all__ = ["Fragments", "project", "rasterize"]

NEAR = 1e-4  # triangles with a vertex closer than this (world units, in front of the camera) are skipped


class Fragments:
    """face_id [H,W] int32 (-1 = nothing), bary [H,W,3] float32 (perspective-correct), depth [H,W] (inf)."""

    def __init__(self, face_id: np.ndarray, bary: np.ndarray, depth: np.ndarray) -> None:
        self.face_id, self.bary, self.depth = face_id, bary, depth

    @property
    def covered(self) -> np.ndarray:
        return self.face_id >= 0


def project(verts: np.ndarray, view: PhotoView) -> np.ndarray:
    """World points [V,3] -> [V,3]: pixel column, pixel row (centres at +0.5) and depth in front of the camera."""
    w2c = view.world_to_camera()
    cam = verts.astype(np.float64) @ w2c[:3, :3].T + w2c[:3, 3]
    depth = -cam[:, 2]
    safe = np.where(np.abs(depth) < 1e-12, 1e-12, depth)
    x, y = cam[:, 0] / safe, -cam[:, 1] / safe  # OpenCV normalised coordinates (y down)
    k1, k2, p1, p2 = view.distortion
    if any(view.distortion):
        r2 = x * x + y * y
        radial = 1 + k1 * r2 + k2 * r2 * r2
        x, y = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x), y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([view.cx + view.fx * x, view.cy + view.fy * y, depth], 1)


def rasterize(verts: np.ndarray, faces: np.ndarray, view: PhotoView, scale: int = 1) -> Fragments:
    """The nearest face at every pixel centre of ``view`` for mesh (verts [V,3] world, faces [F,3]).

    ``scale`` > 1 rasterises ``scale`` x ``scale`` sub-pixels per pixel: sub-pixel (j, i) is centred at
    ((i + 0.5) / scale, (j + 0.5) / scale) in the photo's pixel coordinates.
    """
    h, w = view.height * scale, view.width * scale
    face_id = np.full((h, w), -1, np.int32)
    bary = np.zeros((h, w, 3), np.float32)
    depth = np.full((h, w), np.inf, np.float32)
    screen = project(verts, view)
    screen[:, :2] *= scale
    _fill(screen, np.ascontiguousarray(faces, np.int64), face_id, bary, depth, NEAR)
    return Fragments(face_id, bary, depth)


@njit(cache=True, nogil=True)
def _fill(screen: np.ndarray, faces: np.ndarray, face_id: np.ndarray, bary: np.ndarray, depth: np.ndarray,
          near: float) -> None:  # pragma: no cover - compiled
    h, w = face_id.shape
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        za, zb, zc = screen[a, 2], screen[b, 2], screen[c, 2]
        if za < near or zb < near or zc < near:
            continue
        ax, ay, bx, by, cx, cy = screen[a, 0], screen[a, 1], screen[b, 0], screen[b, 1], screen[c, 0], screen[c, 1]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) < 1e-12:
            continue
        x0 = max(int(np.ceil(min(ax, bx, cx) - 0.5)), 0)
        x1 = min(int(np.floor(max(ax, bx, cx) - 0.5)), w - 1)
        y0 = max(int(np.ceil(min(ay, by, cy) - 0.5)), 0)
        y1 = min(int(np.floor(max(ay, by, cy) - 0.5)), h - 1)
        for j in range(y0, y1 + 1):
            py = j + 0.5
            for i in range(x0, x1 + 1):
                px = i + 0.5
                w0 = ((bx - px) * (cy - py) - (by - py) * (cx - px)) / area
                w1 = ((cx - px) * (ay - py) - (cy - py) * (ax - px)) / area
                w2 = 1.0 - w0 - w1
                if w0 < -1e-7 or w1 < -1e-7 or w2 < -1e-7:
                    continue
                inv = w0 / za + w1 / zb + w2 / zc
                z = 1.0 / inv
                if z >= depth[j, i]:
                    continue
                depth[j, i] = z
                face_id[j, i] = f
                bary[j, i, 0] = w0 / za * z
                bary[j, i, 1] = w1 / zb * z
                bary[j, i, 2] = w2 / zc * z
