"""Watertight exports: pinched edges and vertices (what decimation leaves where parts nearly touch) are cut
apart so every edge joins exactly two faces wound opposite, and stays so when a tool welds by position."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.export import export_field
from nerf_widgets.export.manifold import make_watertight


def edge_faces(faces: np.ndarray) -> np.ndarray:
    """How many faces use each undirected edge."""
    a, b = faces.reshape(-1), faces[:, [1, 2, 0]].reshape(-1)
    return np.unique(np.minimum(a, b) * (faces.max() + 1) + np.maximum(a, b), return_counts=True)[1]


def welded(verts: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
    """The mesh as a tool that merges vertices at the same position sees it."""
    return trimesh.Trimesh(verts, faces, process=True)


def touching_cubes(offset: np.ndarray) -> trimesh.Trimesh:
    """Two unit cubes, the second moved by ``offset`` (one shared edge or corner), vertices merged."""
    pair = trimesh.util.concatenate([trimesh.creation.box([1, 1, 1]), trimesh.creation.box([1, 1, 1]).apply_translation(offset)])
    pair.merge_vertices()
    return pair


@pytest.mark.parametrize(("offset", "shared"), [((1.0, 1.0, 0.0), "edge"), ((1.0, 1.0, 1.0), "corner")])
def test_cubes_touching_along_an_edge_or_at_a_corner_come_apart_closed(offset: tuple[float, ...], shared: str) -> None:
    pinched = touching_cubes(np.array(offset))
    assert shared != "edge" or edge_faces(np.asarray(pinched.faces)).max() == 4  # the pinch is there to cut
    verts, faces = make_watertight(np.asarray(pinched.vertices), np.asarray(pinched.faces), nudge=1e-3)
    assert edge_faces(faces).min() == edge_faces(faces).max() == 2
    out = trimesh.Trimesh(verts, faces, process=False)
    assert out.is_watertight and out.is_winding_consistent
    assert len(verts) == len(pinched.vertices) + (2 if shared == "edge" else 1)  # the pinch's vertices, split
    again = welded(verts, faces)  # the nudge keeps the copies apart
    assert again.is_watertight and len(again.vertices) == len(verts)
    assert len(again.split(only_watertight=True)) == 2 and abs(again.volume - 2.0) < 0.01  # two whole cubes


def test_a_face_and_its_mirror_bound_nothing_and_go() -> None:
    cube = trimesh.creation.box([1, 1, 1])
    sheet = np.array([[0, 1, 2], [0, 2, 1]]) + len(cube.vertices)
    verts = np.vstack([cube.vertices, [[3, 0, 0], [4, 0, 0], [3, 1, 0]]])
    faces = np.vstack([cube.faces, sheet])
    v, f = make_watertight(verts, faces, nudge=1e-3)
    assert len(f) == len(cube.faces) and trimesh.Trimesh(v, f, process=False).is_watertight


def test_a_mesh_with_a_hole_is_refused_with_a_reason() -> None:
    cube = trimesh.creation.box([1, 1, 1])
    with pytest.raises(ValidationError, match="cannot be made watertight: it has 3 open edges"):
        make_watertight(np.asarray(cube.vertices), np.asarray(cube.faces)[1:], nudge=1e-3)


class NearlyTouching:
    """Two boxes 0.5 x 0.5 x 1 whose vertical edges pass 0.011 apart: a 96 grid meshes them apart, decimation
    to 2,000 faces pulls their edges together (measured: two edges then join four faces)."""

    aabb = np.array([[-1.0] * 3, [1.0] * 3])

    def sdf(self, p: np.ndarray) -> np.ndarray:
        half = np.array([0.25, 0.25, 0.5])

        def box(centre: np.ndarray) -> np.ndarray:
            q = np.abs(p - centre) - half
            return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(1), 0)

        return np.minimum(box(np.array([-0.254, -0.254, 0.0])), box(np.array([0.254, 0.254, 0.0])))

    def density(self, points):  # type: ignore[no-untyped-def]
        import torch

        d = self.sdf(points.numpy().astype(np.float64))
        return torch.from_numpy(400.0 / (1.0 + np.exp(np.clip(d / 0.004, -60, 60)))).float()

    def color(self, points, dirs):  # type: ignore[no-untyped-def]
        import torch

        return torch.full((len(points), 3), 0.5)


def test_a_watertight_export_is_closed_where_the_plain_one_is_pinched(tmp_path: Path) -> None:
    field = NearlyTouching()
    options = {"format": "ply", "resolution": 96, "faces": 2000, "texture": 0}
    plain = export_field(field.density, field.color, field.aabb, tmp_path / "plain.ply", **options)
    closed = export_field(field.density, field.color, field.aabb, tmp_path / "closed.ply", watertight=True, **options)
    pinched = trimesh.load(plain.path, process=False)
    assert edge_faces(np.asarray(pinched.faces)).max() > 2  # what the option is for
    mesh = trimesh.load(closed.path, process=False)
    assert edge_faces(np.asarray(mesh.faces)).min() == edge_faces(np.asarray(mesh.faces)).max() == 2
    solid = trimesh.load(closed.path, process=True)  # welded by position, as a slicer reads it
    assert solid.is_watertight and solid.is_winding_consistent and solid.is_volume
    assert abs(solid.volume - 0.5) < 0.05  # the two boxes, 0.25 each (the surface sits a hair outside them)
    assert np.asarray(mesh.visual.vertex_colors).shape[0] == len(mesh.vertices)  # split vertices keep their colour


def test_watertight_must_be_a_yes_or_no(tmp_path: Path) -> None:
    field = NearlyTouching()
    with pytest.raises(ValidationError, match="watertight must be True or False"):
        export_field(field.density, field.color, field.aabb, tmp_path / "m.ply", format="ply", watertight="yes")
    assert not any(tmp_path.iterdir())


def test_vertices_a_hair_apart_are_welded_before_the_pinch_is_cut() -> None:
    """Two vertices 1e-9 apart on the shared edge are one vertex to any tool that welds by distance, wherever
    they lie (this edge sits where rounding to a grid of a quarter nudge would put them in different cells)."""
    e = 1000.5 * 1e-3 / 4
    a = trimesh.creation.box(bounds=[[e - 1, e - 1, 0.0], [e, e, 1.0]])
    b = trimesh.creation.box(bounds=[[e, e, 0.0], [e + 1, e + 1, 1.0]])
    on_edge = np.isclose(b.vertices[:, 0], e) & np.isclose(b.vertices[:, 1], e)
    b.vertices[on_edge] += [1e-9, 1e-9, 0.0]
    pair = trimesh.util.concatenate([a, b])
    verts, faces = make_watertight(np.asarray(pair.vertices), np.asarray(pair.faces), nudge=1e-3)
    assert welded(verts, faces).is_watertight and len(welded(verts, faces).split(only_watertight=True)) == 2


def test_a_mesh_of_slivers_only_is_refused_with_a_reason() -> None:
    verts = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    with pytest.raises(ValidationError, match="no face encloses anything"):
        make_watertight(verts, np.array([[0, 1, 2], [0, 2, 1]]), nudge=1e-3)


@pytest.mark.parametrize("region", [{"center": [-0.065, 0.073, 0.008], "size": [0.71, 0.796, 0.52], "yaw_deg": 0.0},
                                    {"center": [0.05, 0.02, -0.03], "size": [0.7, 0.6, 0.5], "yaw_deg": 33.0}])
def test_a_region_that_cuts_the_object_gives_a_closed_mesh(region: dict, tmp_path: Path) -> None:
    """The grid reaches up to a voxel past the region's box; the cut is capped on the box, not left open."""
    from nerf_widgets.export import SphereBoxField

    field = SphereBoxField(floater=False)
    res = export_field(field.density, field.color, field.aabb, tmp_path / "m.ply", format="ply", resolution=96,
                       faces=2000, texture=0, watertight=True, region=region, place=False)
    solid = trimesh.load(res.path, process=True)
    assert solid.is_watertight and solid.is_volume


def test_points_have_no_surface_to_close(tmp_path: Path) -> None:
    field = NearlyTouching()
    with pytest.raises(ValidationError, match="watertight applies to meshes"):
        export_field(field.density, field.color, field.aabb, tmp_path / "p.ply", format="points", watertight=True)
    assert not any(tmp_path.iterdir())
