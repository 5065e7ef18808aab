"""Chunked, gradient-free calls into the field's density and colour functions.

The export layer only knows two callables (``density(points[N,3]) -> [N]``, ``color(points, dirs) -> [N,3]``);
this wrapper feeds them float32 torch tensors in bounded chunks and hands numpy back, so memory stays
bounded whatever the grid or texture size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nerf_widgets.core.errors import stop_if_asked

__all__ = ["FieldQuery"]

StopFn = Callable[[], bool]


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


class FieldQuery:
    """Density/colour lookups over numpy arrays, ``chunk`` points per call, checking ``should_stop`` per chunk."""

    def __init__(self, density: Callable, color: Callable, *, chunk: int = 1 << 18, should_stop: StopFn | None = None):
        self._density = density
        self._color = color
        self.chunk = chunk
        self.should_stop = should_stop
        self.calls = 0  # points evaluated, for the benchmark

    def _run(self, fn: Callable, arrays: tuple[np.ndarray, ...], width: int) -> np.ndarray:
        import torch

        n = len(arrays[0])
        out = np.empty((n, width) if width > 1 else (n,), np.float32)
        with torch.no_grad():
            for start in range(0, n, self.chunk):
                stop_if_asked(self.should_stop, "export cancelled")
                parts = [torch.from_numpy(np.ascontiguousarray(a[start : start + self.chunk], np.float32)) for a in arrays]
                res = _to_numpy(fn(*parts))
                out[start : start + self.chunk] = res.reshape(out[start : start + self.chunk].shape)
        self.calls += n
        return out

    def density(self, points: np.ndarray) -> np.ndarray:
        """points [N,3] world -> density [N] (>= 0, NaN mapped to 0)."""
        sigma = self._run(self._density, (points,), 1)
        return np.nan_to_num(np.maximum(sigma, 0.0), nan=0.0, posinf=1e6)

    def color(self, points: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """points [N,3], unit view directions [N,3] -> linear-ish RGB [N,3] clipped to [0, 1]."""
        return np.clip(np.nan_to_num(self._run(self._color, (points, dirs), 3)), 0.0, 1.0)
