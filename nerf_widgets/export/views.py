"""Training photos as the export sees them: an image and a pinhole camera in the field's world frame.

The export never imports the engine, so the caller (the export job, a benchmark, a test) hands photos over
as ``PhotoView`` records. Cameras follow the engine's convention: ``c2w`` maps camera to world with the
camera looking down -Z, +Y up (OpenGL / Blender), intrinsics in pixels, pixel centres at (i + 0.5, j + 0.5),
OpenCV radial-tangential distortion (k1, k2, p1, p2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from nerf_widgets.core.errors import ValidationError

__all__ = ["PhotoView", "check_views"]


@dataclass(frozen=True)
class PhotoView:
    """image [H,W,3|4] uint8 (RGBA: alpha is the object's mask), c2w [4,4] (or [3,4]), intrinsics in pixels."""

    image: np.ndarray
    c2w: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    name: str = ""  # how a person knows the photo (its file name, "test view 3"); shown beside comparisons

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def resized(self, max_side: int) -> PhotoView:
        """This view with its longer side at most ``max_side`` pixels (box-filtered photo, intrinsics scaled)."""
        from PIL import Image

        scale = max_side / max(self.height, self.width)
        if scale >= 1:
            return self
        w, h = max(1, round(self.width * scale)), max(1, round(self.height * scale))
        mode = "RGBA" if self.image.shape[2] == 4 else "RGB"
        image = np.asarray(Image.fromarray(np.ascontiguousarray(self.image), mode).resize((w, h), Image.Resampling.BOX))
        sx, sy = w / self.width, h / self.height
        return replace(self, image=image, fx=self.fx * sx, fy=self.fy * sy, cx=self.cx * sx, cy=self.cy * sy)

    def on_background(self, background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
        """The photo [H,W,3] float32 in [0,1], its alpha (the object's mask) composited on ``background``."""
        x = self.image.astype(np.float32) / 255.0
        if x.shape[2] == 4:
            x = x[..., :3] * x[..., 3:] + np.asarray(background, np.float32) * (1.0 - x[..., 3:])
        return x

    def world_to_camera(self) -> np.ndarray:
        """[4,4] world -> camera (camera looks down -Z)."""
        m = np.eye(4)
        m[:3] = np.asarray(self.c2w, np.float64)[:3, :4]
        return np.linalg.inv(m)


def check_views(views: Sequence[PhotoView]) -> list[PhotoView]:
    """The views as a list, or ``ValidationError`` naming the first bad one (nothing is computed before)."""
    out = list(views)
    if not out:
        raise ValidationError("texture refinement needs at least one training photo; none were given", field="views")
    for i, v in enumerate(out):
        img, c2w = np.asarray(v.image), np.asarray(v.c2w)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (3, 4) or min(img.shape[:2]) < 1:
            raise ValidationError(f"photo {i}: image must be uint8 [H,W,3] or [H,W,4], got {img.dtype} {img.shape}",
                                  field="views")
        if c2w.shape not in ((4, 4), (3, 4)) or not np.all(np.isfinite(c2w)):
            raise ValidationError(f"photo {i}: c2w must be a finite 4x4 or 3x4 matrix", field="views")
        if not (v.fx > 0 and v.fy > 0 and np.isfinite([v.cx, v.cy]).all()):
            raise ValidationError(f"photo {i}: focal lengths must be positive, centre finite", field="views")
    return out
