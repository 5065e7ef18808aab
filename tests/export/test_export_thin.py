"""Thin structures survive the export (lego's tracks and plates): an analytic plate 3 voxels thick and a rod
2.5 voxels across, meshed at the default pipeline settings but a 128 grid; Chamfer distance per part."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from nerf_widgets.export import export_field
from tests.export.export_helpers import y_up_to_z_up

PLATE_HALF = np.array([0.5, 0.4, 0.015])  # a plate 0.03 thick
PLATE_CENTRE = np.array([0.0, 0.0, -0.2])
ROD_RADIUS, ROD_X = 0.012, 0.3  # a vertical rod on the plate, 0.024 across


class ThinField:
    """density = peak * sigmoid(-sdf / width) of a thin plate and a thin rod; grey."""

    aabb = np.array([[-1.0] * 3, [1.0] * 3])

    def parts(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = np.abs(p - PLATE_CENTRE) - PLATE_HALF
        plate = np.linalg.norm(np.maximum(q, 0), axis=1) - np.maximum(-q.max(1), 0)
        radial = np.hypot(p[:, 0] - ROD_X, p[:, 1]) - ROD_RADIUS
        rod = np.maximum(radial, np.abs(p[:, 2] - 0.1) - 0.3)  # from z=-0.2 (the plate) to z=0.4
        return plate, rod

    def sdf(self, p: np.ndarray) -> np.ndarray:
        return np.minimum(*self.parts(p))

    def density(self, points):  # type: ignore[no-untyped-def]
        import torch

        d = self.sdf(points.numpy().astype(np.float64))
        return torch.from_numpy(400.0 / (1.0 + np.exp(np.clip(d / 0.004, -60, 60)))).float()

    def color(self, points, dirs):  # type: ignore[no-untyped-def]
        import torch

        return torch.full((len(points), 3), 0.5)


def surface_samples(field: ThinField, which: int, n: int = 4_000) -> np.ndarray:
    """Points on one part's true surface (0 = plate, 1 = rod), by projecting random points along the gradient."""
    rng = np.random.default_rng(which)
    lo, hi = (PLATE_CENTRE - PLATE_HALF - 0.05, PLATE_CENTRE + PLATE_HALF + 0.05) if which == 0 else (
        np.array([ROD_X - 0.05, -0.05, -0.15]), np.array([ROD_X + 0.05, 0.05, 0.35]))
    p = rng.uniform(lo, hi, size=(n * 4, 3))
    for _ in range(8):  # Newton steps onto the part's zero level (finite-difference gradient)
        d = field.parts(p)[which]
        g = np.stack([(field.parts(p + e)[which] - d) / 1e-5 for e in np.eye(3) * 1e-5], 1)
        p = p - (d / np.maximum((g * g).sum(1), 1e-12))[:, None] * g
    d_part, d_all = field.parts(p)[which], field.sdf(p)
    keep = (np.abs(d_part) < 1e-5) & (np.abs(d_all) < 1e-5)  # on this part and not inside the other
    return p[keep][:n]


def test_thin_plate_and_rod_are_kept(tmp_path: Path) -> None:
    field = ThinField()
    res = export_field(field.density, field.color, field.aabb, tmp_path / "m.glb", format="glb", resolution=128,
                       texture=256)
    mesh = trimesh.load(res.path, force="mesh")
    on_mesh, _ = trimesh.sample.sample_surface(mesh, 60_000, seed=1)
    on_mesh = y_up_to_z_up(np.asarray(on_mesh))
    forward = np.abs(field.sdf(on_mesh))
    assert forward.mean() < 0.006, forward.mean()  # the mesh lies on the thin surfaces...
    tree = cKDTree(on_mesh)
    for which, name in ((0, "plate"), (1, "rod")):
        dist = tree.query(surface_samples(field, which))[0]
        assert dist.mean() < 0.008 and np.percentile(dist, 95) < 0.015, (name, dist.mean(), np.percentile(dist, 95))
