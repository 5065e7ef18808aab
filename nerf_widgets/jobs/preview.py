"""On-demand renders of a run's current model from an orbit around the scene (cached, bounded size).

Loading a model from its checkpoint costs far more than rendering one small view, so loaded fields
are cached per run folder and reloaded only when a newer checkpoint appears. Renders are capped at
``MAX_SIDE`` pixels so a click never ties up the CPU for long while training runs beside it.
"""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from nerf_widgets.core.errors import NotFoundError, ValidationError

__all__ = ["MAX_SIDE", "orbit_c2w", "render_orbit_view"]

MAX_SIDE = 256
_CACHE_SIZE = 2
_cache: OrderedDict[str, tuple[float, Any]] = OrderedDict()
_cache_lock = threading.Lock()


def orbit_c2w(center: np.ndarray, radius: float, azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Camera-to-world [4,4] (OpenGL: looks down -Z, +Y up) on a sphere around ``center``; world up is +Z."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    eye = center + radius * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    back = (eye - center) / np.linalg.norm(eye - center)  # camera +Z points away from the target
    right = np.cross([0.0, 0.0, 1.0], back)
    right = right / (np.linalg.norm(right) or 1.0) if np.linalg.norm(right) > 1e-6 else np.array([1.0, 0.0, 0.0])
    up = np.cross(back, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, back, eye
    return c2w


def _latest_checkpoint_mtime(run_dir: Path) -> float:
    from nerf_widgets.engine.checkpoint import list_checkpoints

    ckpts = list_checkpoints(run_dir)  # the engine's names only: a half-written temp file is not a model
    if not ckpts:
        raise NotFoundError("This run has no checkpoint yet; the first one is written after a few hundred steps.")
    return max(p.stat().st_mtime for p in ckpts)


def _field(run_dir: Path) -> Any:
    from nerf_widgets import engine

    key, mtime = str(run_dir), _latest_checkpoint_mtime(run_dir)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] >= mtime:
            _cache.move_to_end(key)
            return hit[1]
    field = engine.load_field(run_dir)
    with _cache_lock:
        _cache[key] = (mtime, field)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return field


def render_orbit_view(run_dir: Path, *, azimuth: float, elevation: float, size: int = 128,
                      fov_deg: float = 45.0) -> bytes:
    """PNG bytes of the run's latest model seen from (azimuth, elevation) degrees, ``size`` px square."""
    if not 16 <= size <= MAX_SIDE:
        raise ValidationError(f"Preview size must be between 16 and {MAX_SIDE} pixels, got {size}.")
    if not -89 <= elevation <= 89:
        raise ValidationError("Elevation must be between -89 and 89 degrees.")
    from nerf_widgets.engine import Camera

    field = _field(Path(run_dir))
    aabb = np.asarray(field.aabb.cpu() if hasattr(field.aabb, "cpu") else field.aabb, dtype=np.float64)
    center, half = aabb.mean(axis=0), (aabb[1] - aabb[0]) / 2
    radius = float(np.linalg.norm(half)) * 1.6
    focal = 0.5 * size / math.tan(math.radians(fov_deg) / 2)
    cam = Camera(c2w=orbit_c2w(center, radius, azimuth, elevation), fx=focal, fy=focal, cx=size / 2, cy=size / 2,
                 width=size, height=size)
    return _png(field.render(cam))


def _png(image: Any) -> bytes:
    from PIL import Image

    arr = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr[..., :3]).save(buf, format="PNG")
    return buf.getvalue()
