"""Export honours the region: an object in a room (floor, wall, a floater) exports as the object only, placed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import trimesh

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.core.region import Region
from nerf_widgets.export import export_field, make_request
from tests.export.export_helpers import y_up_to_z_up

SMALL = {"resolution": 64, "faces": 6000, "texture": 0, "min_component": 0.0}
OBJECT_CENTER, OBJECT_RADIUS = np.array([0.1, -0.05, 0.3]), 0.25
FLOATER = np.array([0.35, 0.3, 0.6])


class RoomField:
    """A ball on a floor inside a round wall, and a small floater near the ball (Z up, world units)."""

    aabb = np.array([[-1.5, -1.5, -0.3], [1.5, 1.5, 1.2]])

    def sdf(self, p: Any) -> Any:
        import torch

        ball = (p - torch.as_tensor(OBJECT_CENTER, dtype=p.dtype)).norm(dim=-1) - OBJECT_RADIUS
        floater = (p - torch.as_tensor(FLOATER, dtype=p.dtype)).norm(dim=-1) - 0.05
        floor = torch.maximum(p[:, 2] - 0.0, -0.1 - p[:, 2])  # a slab from z = -0.1 to 0
        r = p[:, :2].norm(dim=-1)
        wall = torch.maximum((r - 1.2).abs() - 0.05, p[:, 2] - 1.0)
        return torch.minimum(torch.minimum(ball, floater), torch.minimum(floor, wall))

    def density(self, p: Any) -> Any:
        import torch

        return 400.0 * torch.sigmoid(-self.sdf(p) / 0.004)

    def color(self, p: Any, d: Any) -> Any:
        return 0.5 + 0.3 * p.sin()


REGION = {"center": [0.05, 0.0, 0.4], "size": [0.9, 0.9, 0.8], "yaw_deg": 30.0, "floor_cut": True}


@pytest.fixture(scope="module")
def room() -> RoomField:
    import torch

    torch.set_num_threads(2)
    return RoomField()


def test_without_a_region_the_room_comes_along(room, tmp_path) -> None:
    res = export_field(room.density, room.color, room.aabb, tmp_path / "all.ply", format="ply", **SMALL)
    verts = trimesh.load(res.path, force="mesh", process=False).vertices
    assert np.linalg.norm(verts[:, :2], axis=1).max() > 1.1  # the wall is in the mesh


def test_region_exports_only_the_object_placed_on_the_floor(room, tmp_path) -> None:
    res = export_field(room.density, room.color, room.aabb, tmp_path / "obj.ply", format="ply", region=REGION,
                       keep_largest=True, **SMALL)
    verts = np.asarray(trimesh.load(res.path, force="mesh", process=False).vertices)
    region = Region.from_dict(REGION)
    placed_center = region.place(OBJECT_CENTER[None])[0]
    dist = np.linalg.norm(verts - placed_center, axis=1)
    assert np.abs(dist - OBJECT_RADIUS).max() < 0.03  # every vertex is on the ball: no wall, floor or floater
    assert abs(verts[:, 2].min() - (OBJECT_CENTER[2] - OBJECT_RADIUS)) < 0.02  # floor at height 0


def test_floater_stays_unless_largest_part_asked_and_floor_kept_when_not_cut(room, tmp_path) -> None:
    res = export_field(room.density, room.color, room.aabb, tmp_path / "f.ply", format="ply", region=REGION,
                       remove_floor=False, place=False, **SMALL)
    verts = np.asarray(trimesh.load(res.path, force="mesh", process=False).vertices)
    assert np.linalg.norm(verts - FLOATER, axis=1).min() < 0.07  # the floater is inside the box: kept
    assert (np.abs(verts[:, 2]) < 0.02).sum() > 100  # the floor's top inside the box is kept too


def test_glb_of_a_region_is_y_up_with_the_floor_at_zero(room, tmp_path) -> None:
    res = export_field(room.density, room.color, room.aabb, tmp_path / "obj.glb", format="glb", region=REGION,
                       keep_largest=True, **SMALL)
    raw = np.asarray(trimesh.load(res.path, force="mesh", process=False).vertices)  # file coordinates: Y up
    assert abs(raw[:, 1].min() - (OBJECT_CENTER[2] - OBJECT_RADIUS)) < 0.02
    top = y_up_to_z_up(raw)[:, 2].max()
    assert abs(top - (OBJECT_CENTER[2] + OBJECT_RADIUS)) < 0.02


@pytest.mark.parametrize(("options", "match"), [
    ({"region": {"center": [0, 0, 0], "size": [0, 1, 1]}}, "size must be positive"),
    ({"region": {"center": [0, 0, float("nan")], "size": [1, 1, 1]}}, "center contains NaN"),
    ({"region": "everything"}, "region must be a mapping"),
    ({"keep_largest": "yes"}, "keep_largest must be True or False"),
    ({"remove_floor": 1}, "remove_floor must be True, False or None"),
])
def test_bad_region_options_are_refused(options, match, tmp_path) -> None:
    with pytest.raises(ValidationError, match=match):
        make_request("glb", tmp_path / "m.glb", [[-1, -1, -1], [1, 1, 1]], **options)


@pytest.mark.parametrize("fmt,extra", [("ply", {}), ("points", {"points": 5000})])
def test_a_cut_stays_flat_on_the_box_after_smoothing(room, tmp_path, fmt, extra) -> None:
    """Smoothing and decimation move vertices; where the box cuts the ball, none may end up past its faces."""
    box = {"center": [0.1, -0.05, 0.3], "size": [0.3, 0.3, 0.3], "yaw_deg": 20.0}
    res = export_field(room.density, room.color, room.aabb, tmp_path / f"{fmt}.ply", format=fmt, region=box,
                       smooth=20, **{**SMALL, **extra})
    verts = np.asarray(trimesh.load(res.path, process=False).vertices)
    local = verts - np.array([0.0, 0.0, 0.15])  # placed: centred over the origin, its floor at height 0
    assert len(verts) > 100 and np.abs(local).max() <= 0.15 + 1e-6, np.abs(local).max() - 0.15
