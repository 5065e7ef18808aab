"""A view-dependent colour: a per-texel term linear in the viewing direction, and how a file stores it.

A baked texture holds one colour per texel, but a surface looks different from different sides (gloss,
plastic's sheen, exposure that drifts between photos). ``ViewTerm`` is ``A(uv) d``: ``d`` the unit ray from the
camera to the surface point in the glTF file's Y-up frame, ``A`` a 3x3 matrix per texel on its own grid (half the
texture's side; ``view_fit`` fits it to the photos). The colour a viewer draws is ``clip(texture(uv) + A(uv) d,
0, 1)``; the texture itself is untouched, so every other program shows the best single colour.

In a glTF file the term is the object material's extension ``NERFW_view_dependence`` (``EXTENSION``): three RGB
textures holding A's rows (byte b -> (b - 128) / 127 * scale) and the scale (``formats`` writes it, ``gltf_read``
reads it). Only numpy here: the writers and the MeshViewer's reader import this, not the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nerf_widgets.export.texture import corners, lookup

__all__ = ["EXTENSION", "STEP", "ViewTerm", "ZERO", "quantise"]

EXTENSION = "NERFW_view_dependence"
ZERO = 128  # the byte that stores 0
STEP = 127.0  # bytes per scale


@dataclass
class ViewTerm:
    """A(uv) as an image [h,w,9] uint8 (row 0 = top; channels = A's rows, each x y z) and its scale."""

    image: np.ndarray
    scale: float

    def byte_code(self) -> tuple[float, float]:
        """(zero, step): a byte b stores (b - zero) * step, for a shader that reads the images."""
        return float(ZERO), self.scale / STEP

    def table(self) -> np.ndarray:
        """Coefficients [h*w, 9] float32."""
        flat = self.image.reshape(-1, 9).astype(np.float32)
        return (flat - ZERO) / STEP * np.float32(self.scale)

    def shade(self, uv: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """The term [B,3] at uv [B,2] (v up) for unit rays [B,3] in the file's frame."""
        idx, w = corners(uv, self.image.shape[0], self.image.shape[1])
        a = lookup(self.table(), idx, w).reshape(-1, 3, 3)
        return np.einsum("bck,bk->bc", a, direction.astype(np.float32))

    def turned(self, m: np.ndarray) -> ViewTerm:
        """The term for a mesh turned so that a ray ``d`` now reads as ``m^T d``: A becomes A m (file frame)."""
        a = self.table().reshape(-1, 3, 3) @ np.asarray(m, np.float32)
        return quantise(a.reshape(*self.image.shape[:2], 9))

    def images(self) -> list[np.ndarray]:
        """Three [h,w,3] uint8 images: A's first, second and third row."""
        return [np.ascontiguousarray(self.image[..., 3 * k : 3 * k + 3]) for k in range(3)]

    @classmethod
    def from_images(cls, images: list[np.ndarray], scale: float) -> ViewTerm:
        """The term from ``images``'s three RGB images of one size and its positive, finite ``scale``."""
        if len(images) != 3 or len({im.shape for im in images}) != 1 or images[0].ndim != 3 or images[0].shape[2] < 3:
            raise ValueError("a view term has three RGB images of one size")
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"a view term's scale must be a positive number, got {scale!r}")
        return cls(np.concatenate([np.asarray(im)[..., :3] for im in images], 2).astype(np.uint8), float(scale))


def quantise(coefficients: np.ndarray) -> ViewTerm:
    """[h,w,9] coefficients -> bytes, at a scale that fits the largest."""
    top = float(np.abs(coefficients).max()) if coefficients.size else 0.0
    scale = top if top > 1e-6 else 1.0
    return ViewTerm(np.clip(np.round(coefficients / scale * STEP) + ZERO, 1, 255).astype(np.uint8), scale)


