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
    assert np.median(hard_auto) < RADIUS + 0.5 * FOG and np.percentile(hard_auto, 95) < RADIUS + 0.7 * FOG
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


def _corner_cube_grid() -> DensityGrid:
    """40^3 nodes: a hard box on nodes x 2..7, y 16..23, z 3..10 (density 100) and a soft slab on x >= 24
    (density 2, opaque across): the slab's lines set the global level, the box's cross far above it, half a node
    outside its first and last nodes along each axis, rounded to them (x 2: block 0, its far side hidden by the
    slab; y 16 and 23: block 2; z 3 and 10: blocks 0, 1)."""
    values = np.zeros((40, 40, 40), np.float32)
    values[2:8, 16:24, 3:11] = 100.0
    values[24:, :, :] = 2.0
    return DensityGrid(values, np.zeros(3), 0.05)


def test_the_blocks_raised_are_the_hard_box_s_and_the_empty_ones_beside_them() -> None:
    grid = _corner_cube_grid()
    iso = auto_iso(grid)
    levels = block_levels(grid, iso)
    assert levels.shape == (5, 5, 5) and abs(iso - 2.0) < 0.2
    own = np.zeros(levels.shape, bool)
    own[:1, 2:3, :2] = True
    beside = np.zeros(levels.shape, bool)
    beside[:2, 1:4, :3] = True  # the empty blocks next to those take their level
    np.testing.assert_allclose(levels[own], CAP * iso)
    assert (levels[beside & ~own] == CAP * iso).all() and (levels[~beside] == iso).all()
    for order in ((1, 0, 2), (2, 1, 0), (0, 2, 1)):  # the axes play no favourites
        turned = DensityGrid(np.ascontiguousarray(grid.values.transpose(order)), grid.origin, grid.voxel)
        np.testing.assert_array_equal(block_levels(turned, iso), levels.transpose(order))


def test_levels_are_interpolated_between_block_centres() -> None:
    """Node 11 lies between the centres of x blocks 0 and 1 (3.5, 11.5), both raised: divided by CAP; node 12
    lies 1/16 of the way from block 1's centre to block 2's, which keeps the global level: CAP ** (15/16)."""
    grid = _corner_cube_grid()
    iso = auto_iso(grid)
    grid.values[11:13, 20, 3] = 1e-3  # faint probes in empty space (never opaque)
    raise_levels(grid, iso)
    np.testing.assert_allclose(grid.values[11:13, 20, 3], [1e-3 / CAP, 1e-3 / CAP ** (15 / 16)], rtol=1e-5)


def test_a_crossing_is_where_the_optical_depth_reaches_ln2() -> None:
    from nerf_widgets.export.grid import LN2, crossings

    lines = np.stack([np.full(50, 2.0), np.r_[np.zeros(10), np.full(40, 5.0)], np.full(50, 0.1)]).astype(np.float32)
    rows, level, at = crossings(lines, 0.05)
    assert list(rows) == [0, 1]  # the third never becomes opaque
    np.testing.assert_allclose(level, [2.0, 5.0], rtol=1e-5)
    np.testing.assert_allclose(at[0], LN2 / (2.0 * 0.05), rtol=1e-4)  # constant density: depth = c * x
    first = 0.5 * 5.0 * 0.05  # the ramp from node 9 to 10, then the plateau
    np.testing.assert_allclose(at[1], 10 + (LN2 - first) / (5.0 * 0.05), rtol=1e-4)
    rows, level, _ = crossings(np.array([[np.inf, np.inf, 1.0, 1.0]], np.float32), 0.05)
    assert len(rows) == 0 and np.isfinite(level).all()
