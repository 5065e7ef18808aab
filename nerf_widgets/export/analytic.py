"""Analytic fields with known geometry and colour, for tests, benchmarks and demos without a trained run.

``SphereBoxField``: a sphere and a box (plus an optional small floater) as a steep sigmoid of the signed
distance, so the surface is known exactly, with a smooth position-dependent colour pattern.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SphereBoxField"]


class SphereBoxField:
    """density(points) = peak * sigmoid(-sdf / width); colour = 0.5 + 0.4 * sin(freq * p + phase) per channel.

    Coordinates are world units, Z up. ``sdf`` and ``pattern`` take and return numpy for checks.
    """

    def __init__(self, *, radius: float = 0.45, center: tuple[float, float, float] = (-0.15, 0.0, 0.0),
                 box_center: tuple[float, float, float] = (0.35, 0.1, -0.1),
                 box_half: tuple[float, float, float] = (0.25, 0.2, 0.3), floater: bool = True,
                 peak: float = 400.0, width: float = 0.004, freq: float = 4.0):
        self.radius, self.center = radius, np.array(center)
        self.box_center, self.box_half = np.array(box_center), np.array(box_half)
        self.floater = np.array([0.7, -0.7, 0.7]) if floater else None
        self.peak, self.width, self.freq = peak, width, freq
        self.aabb = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])

    def sdf(self, p: Any) -> Any:
        """Signed distance [N] (negative inside) for numpy or torch points [N,3]."""
        lib = _lib(p)
        sphere = lib.sqrt(((p - _like(self.center, p)) ** 2).sum(-1)) - self.radius
        q = lib.abs(p - _like(self.box_center, p)) - _like(self.box_half, p)
        outside = lib.sqrt((_relu(q, lib) ** 2).sum(-1))
        inside = _relu(-_amax(q, lib), lib)
        d = lib.minimum(sphere, outside - inside)
        if self.floater is not None:
            d = lib.minimum(d, lib.sqrt(((p - _like(self.floater, p)) ** 2).sum(-1)) - 0.04)
        return d

    def pattern(self, p: Any) -> Any:
        """View-independent colour [N,3] in [0.1, 0.9]."""
        lib = _lib(p)
        phase = _like(np.array([0.0, 2.0, 4.0]), p)
        return 0.5 + 0.4 * lib.sin(self.freq * p[:, [0, 1, 2]] + p[:, [1, 2, 0]] * 2.0 + phase)

    def density(self, points: Any) -> Any:
        lib = _lib(points)
        x = -self.sdf(points) / self.width
        return self.peak / (1.0 + lib.exp(-lib.clip(x, -60.0, 60.0)))

    def color(self, points: Any, dirs: Any) -> Any:
        return self.pattern(points)


def _lib(p: Any) -> Any:
    if hasattr(p, "detach"):
        import torch

        return torch
    return np


def _like(a: np.ndarray, p: Any) -> Any:
    if hasattr(p, "detach"):
        import torch

        return torch.as_tensor(a, dtype=p.dtype, device=p.device)
    return a


def _relu(x: Any, lib: Any) -> Any:
    return lib.clip(x, 0.0, None)


def _amax(q: Any, lib: Any) -> Any:
    return q.amax(-1) if hasattr(q, "amax") else q.max(-1)
