"""Hard surfaces at their own level (``export.levels``): a fog skirt in front of a hard ball is not meshed, while
a soft ball, whose own crossings set the global level, keeps its surface; a level given by hand is used as is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from nerf_widgets.export import export_field
from nerf_widgets.export.grid import DensityGrid, auto_iso
from nerf_widgets.export.levels import CAP, block_levels, raise_levels
from tests.export.export_helpers import y_up_to_z_up

HARD, SOFT, RADIUS, FOG = np.array([-0.45, 0.0, 0.0]), np.array([0.45, 0.0, 0.0]), 0.3, 0.05
AABB = np.array([[-1.0] * 3, [1.0] * 3])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def densities(p: np.ndarray) -> np.ndarray:
    """A hard ball (a step to 400) in a fog shell FOG thick (density 10: optical depth 0.5, never opaque), and a
    soft ball (20 * sigmoid, 0.05 wide: its lines reach half transmittance at about the global level)."""
    hard = np.linalg.norm(p - HARD, axis=1)
    soft = np.linalg.norm(p - SOFT, axis=1) - RADIUS
    fog = (hard >= RADIUS) & (hard < RADIUS + FOG)
    return 400.0 * _sigmoid((RADIUS - hard) / 0.004) + 10.0 * fog + 20.0 * _sigmoid(-soft / 0.05)


def density(points):  # type: ignore[no-untyped-def]
    import torch

    return torch.from_numpy(densities(points.numpy().astype(np.float64))).float()


def color(points, dirs):  # type: ignore[no-untyped-def]
    import torch

    return torch.full((len(points), 3), 0.5)


def radii(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Distances of the mesh's vertices from the hard ball's centre (x < 0) and the soft ball's (x > 0)."""
    verts = y_up_to_z_up(np.asarray(trimesh.load(path, force="mesh").vertices))
    left = verts[:, 0] < 0
    return np.linalg.norm(verts[left] - HARD, axis=1), np.linalg.norm(verts[~left] - SOFT, axis=1)


def test_the_fog_before_a_hard_surface_is_left_out_and_a_soft_surface_kept(tmp_path: Path) -> None:
    auto = export_field(density, color, AABB, tmp_path / "auto.glb", format="glb", resolution=128, texture=0)
    given = export_field(density, color, AABB, tmp_path / "given.glb", format="glb", resolution=128, texture=0,
                         iso=auto.iso)  # the same global level, given by hand: used everywhere
    assert auto.iso < 10.0 < CAP * auto.iso  # the fog lies between the global level and the cap
    hard_auto, soft_auto = radii(auto.path)
    hard_given, soft_given = radii(given.path)
    assert np.median(hard_given) > RADIUS + 0.8 * FOG  # the fog's outside, at the global level
    assert np.median(hard_auto) < RADIUS + 0.5 * FOG and np.percentile(hard_auto, 95) < RADIUS + 0.6 * FOG
    assert abs(np.median(soft_auto) - np.median(soft_given)) < 0.01  # the soft ball where the global level puts it


def test_levels_only_rise_and_stop_at_the_cap() -> None:
    n = 65
    axis = np.linspace(-1.0, 1.0, n)
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    grid = DensityGrid(densities(points).reshape(n, n, n).astype(np.float32), AABB[0].copy(), 2.0 / (n - 1))
    iso = auto_iso(grid)
    levels = block_levels(grid, iso)
    assert levels.min() >= iso and levels.max() <= CAP * iso + 1e-9 and (levels > iso).any()
    before = grid.values.copy()
    share = raise_levels(grid, iso)
    assert 0 < share < 1 and (grid.values <= before + 1e-6).all()  # divided by levels >= iso: never grows
    fog = DensityGrid(np.full((20, 20, 20), 0.1, np.float32), AABB[0].copy(), 0.1)  # no line turns opaque
    assert (block_levels(fog, 0.05) == 0.05).all() and raise_levels(fog, 0.05) == 0.0
    assert (fog.values == np.float32(0.1)).all()
