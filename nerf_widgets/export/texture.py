"""The bilinear texture lookup OpenGL does at the finest mip level, on the CPU.

Shared by texture refinement (which differentiates through it) and the comparison renderer (which draws
the mesh as a viewer would), so both see the texture exactly as a glTF viewer samples it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["corners", "lookup", "sample"]


def corners(uv: np.ndarray, size: int, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Texel centres at (i + 0.5) / size, edges clamped: uv [B,2] (v up) -> indices [B,4] into the row-major
    image (row 0 = top) of ``size`` rows and ``width`` columns (square when not given) and bilinear weights [B,4]."""
    cols = size if width is None else width
    x = uv[:, 0] * cols - 0.5
    y = (1.0 - uv[:, 1]) * size - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    xs = np.clip(np.stack([x0, x0 + 1, x0, x0 + 1], 1), 0, cols - 1).astype(np.int64)
    ys = np.clip(np.stack([y0, y0, y0 + 1, y0 + 1], 1), 0, size - 1).astype(np.int64)
    w = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], 1).astype(np.float32)
    return ys * cols + xs, w


def lookup(table: np.ndarray, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
    """table [S*S,C], idx/w [B,4] -> [B,C]."""
    return np.einsum("bkc,bk->bc", table[idx], w)


def sample(image: np.ndarray, uv: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """Bilinear colour [B,3] float32 in [0,1] of a texture image [H,W,3] uint8 at uv [B,2]."""
    size, width = image.shape[0], image.shape[1]
    table = image.reshape(-1, image.shape[2]).astype(np.float32) / 255.0
    out = np.empty((len(uv), table.shape[1]), np.float32)
    for s in range(0, len(uv), chunk):
        idx, w = corners(uv[s : s + chunk], size, width)
        out[s : s + chunk] = lookup(table, idx, w)
    return out
