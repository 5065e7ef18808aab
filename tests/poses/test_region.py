"""Region proposal on synthetic captures made here, and the checks that refuse bad regions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.core.region import Region
from nerf_widgets.poses.region import check_seen, find_floor, propose_region, region_from_aabb
from tests.poses.region_synthetic import FLOOR_Z, OBJECT_HALF, make_capture


@pytest.mark.parametrize("tilt", [0.0, 7.0])
def test_proposal_holds_the_object_and_leaves_the_clutter_out(tilt: float) -> None:
    cap = make_capture(tilt_deg=tilt)
    region = propose_region(cap.c2w, cap.points)
    assert region.contains(cap.object_points).mean() > 0.99
    assert region.contains(cap.clutter).sum() == 0
    # tight: no side more than 1.5x the object's, so the walls and most of the floor stay out
    assert np.all(np.sort(region.size) <= 1.5 * np.sort(2 * OBJECT_HALF))
    assert region.floor_cut and region.source == "proposed"


@pytest.mark.parametrize("tilt", [0.0, 7.0])
def test_floor_plane_is_found_within_a_degree(tilt: float) -> None:
    cap = make_capture(tilt_deg=tilt)
    region = propose_region(cap.c2w, cap.points)
    assert region.floor is not None
    normal = np.array(region.floor[:3])
    assert np.degrees(np.arccos(np.clip(normal @ cap.floor_normal, -1, 1))) < 1.0
    # the box sits on the floor: its bottom face lies in the plane, its up is the floor normal
    bottom = region.center - 0.5 * region.size[2] * region.rotation[:, 2]
    assert abs(bottom @ normal + region.floor[3]) < 0.01
    assert abs(region.floor[3] + FLOOR_Z) < 0.02  # the plane passes through the floor's height at the origin


def test_the_flat_top_of_an_object_is_not_taken_for_the_ground() -> None:
    """No floor photographed: a box (flat top, many points) beside a ball that reaches lower than the box's top."""
    cap = make_capture()
    rng = np.random.default_rng(3)
    top = np.stack([rng.uniform(0.1, 0.9, 1500), rng.uniform(-0.9, 0.1, 1500), np.full(1500, 0.3)], 1)
    side = np.stack([rng.uniform(0.1, 0.9, 300), np.full(300, -0.9), rng.uniform(-0.6, 0.3, 300)], 1)
    ball = rng.normal(size=(1200, 3))
    ball = np.array([-0.3, 0.2, 0.1]) + 0.75 * ball / np.linalg.norm(ball, axis=1, keepdims=True)
    obj = np.concatenate([top, side, ball])
    region = propose_region(cap.c2w, obj)
    assert region.floor is None and not region.floor_cut
    assert region.contains(obj).mean() > 0.95 and region.contains(np.zeros((1, 3)))[0]


def test_a_colmap_run_on_a_box_beside_a_ball_has_no_floor() -> None:
    """COLMAP's own points for the pose tests' scene (no floor): the plane through the box's top face holds a
    fifth of them, with most of the rest above it; the ball and box sides below it make it an object's top."""
    data = json.loads((Path(__file__).parent / "data" / "colmap_sphere_box.json").read_text())
    c2w, points = np.array(data["c2w"]), np.array(data["points"])
    region = propose_region(c2w, points)
    assert region.floor is None and not region.floor_cut
    assert region.contains(np.zeros((1, 3)))[0]  # the objects sit at the cameras' focus
    assert region.contains(points).mean() > 0.9


def test_without_a_floor_the_unseen_underside_is_kept() -> None:
    """Cameras above see only the top half of a ball at their focus: the box still reaches its bottom."""
    cap = make_capture()
    rng = np.random.default_rng(4)
    ball = rng.normal(size=(2000, 3))
    ball = 0.6 * ball / np.linalg.norm(ball, axis=1, keepdims=True)
    region = propose_region(cap.c2w, ball[ball[:, 2] > 0.05])
    assert region.floor is None and region.contains(ball).mean() > 0.97


def test_floor_fit_ignores_a_steep_plane() -> None:
    rng = np.random.default_rng(1)
    wall = np.stack([np.zeros(400), rng.uniform(-1, 1, 400), rng.uniform(-1, 1, 400)], 1)
    assert find_floor(wall, np.array([0.0, 0.0, 1.0]), threshold=0.01) is None


def test_without_points_the_box_is_where_the_cameras_look() -> None:
    cap = make_capture()
    region = propose_region(cap.c2w, None)
    assert np.allclose(region.center, 0.0) and region.floor is None and not region.floor_cut
    assert region.contains(np.zeros((1, 3)))[0]


@pytest.mark.parametrize(("values", "match"), [
    ({"center": [0, 0, 0], "size": [1, 0, 1]}, "size must be positive"),
    ({"center": [0, 0, 0], "size": [1, -2, 1]}, "size must be positive"),
    ({"center": [0, float("nan"), 0], "size": [1, 1, 1]}, "center contains NaN"),
    ({"center": [0, 0, 0], "size": [1, 1, float("inf")]}, "size contains NaN or infinite"),
    ({"center": [0, 0], "size": [1, 1, 1]}, r"center must have shape \(3,\)"),
    ({"size": [1, 1, 1]}, "'center' is missing"),
    ({"center": [0, 0, 0], "size": [1, 1, 1], "rotation": np.diag([1.0, 1.0, -1.0])}, "proper rotation"),
    ({"center": [0, 0, 0], "size": [1, 1, 1], "rotation": [[1, 2, 3], [0, 1, 0], [0, 0, 1]]}, "proper rotation"),
    ({"center": ["a", 0, 0], "size": [1, 1, 1]}, "center must be numbers"),
])
def test_bad_regions_are_refused(values: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        Region.from_dict(values)


def test_a_box_no_camera_sees_is_refused() -> None:
    cap = make_capture()
    behind = Region.from_dict({"center": [0, 0, 40.0], "size": [0.5, 0.5, 0.5]})  # far above every camera
    with pytest.raises(ValidationError, match="seen by none of the 24 cameras"):
        check_seen(behind, cap.c2w)
    check_seen(propose_region(cap.c2w, cap.points), cap.c2w)  # the proposal itself passes


def test_rotation_as_quaternion_or_yaw() -> None:
    q = Region.from_dict({"center": [0, 0, 0], "size": [1, 2, 3], "rotation": [np.cos(np.pi / 8), 0, 0, np.sin(np.pi / 8)]})
    y = Region.from_dict({"center": [0, 0, 0], "size": [1, 2, 3], "yaw_deg": 45.0})
    assert np.allclose(q.rotation, y.rotation) and abs(q.yaw_deg - 45.0) < 1e-9
    again = Region.from_dict(q.to_dict())
    assert np.allclose(again.rotation, q.rotation) and np.allclose(again.size, [1, 2, 3])


def test_aabb_from_transforms_follows_the_normalisation() -> None:
    m = np.eye(4)
    m[:3, :3] = 2.0 * np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])  # scale 2, 90 degrees about z
    m[:3, 3] = [1.0, 0.0, 0.0]
    region = region_from_aabb(np.array([[-1, -1, -1], [1, 1, 3.0]]), m)
    assert np.allclose(region.size, [4, 4, 8]) and np.allclose(region.center, [1, 0, 2])
    assert region.source == "import"
    with pytest.raises(ValidationError, match="aabb must be"):
        region_from_aabb(np.array([[0, 0, 0]]))
