"""Every format from an analytic field, re-read by an independent reader, checked against the known surface."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import trimesh
from PIL import Image
from scipy.spatial import cKDTree

from nerf_widgets.export import SphereBoxField
from tests.export.export_helpers import assimp_info, need_blender, validate_gltf, y_up_to_z_up

# world units, ~0.6 voxel (0.022 at resolution 64): the automatic iso sits slightly outside the analytic
# surface by design (export.grid.ISO_QUANTILE: soft parts of real fields must not become holes)
GEOMETRY_TOL = 0.013
COLOUR_TOL = 0.02  # mean absolute error per channel in [0, 1] (measured ~0.005; a flipped texture gives ~0.25)


def analytic_surface_samples(field: SphereBoxField, n: int = 20_000) -> np.ndarray:
    """Points on the exact union surface: sphere points outside the box and box points outside the sphere."""
    rng = np.random.default_rng(1)
    d = rng.normal(size=(n, 3))
    sphere = field.center + field.radius * d / np.linalg.norm(d, axis=1, keepdims=True)
    face_axis, sign = rng.integers(0, 3, n), rng.choice([-1.0, 1.0], n)
    box = field.box_center + field.box_half * rng.uniform(-1, 1, (n, 3))
    box[np.arange(n), face_axis] = field.box_center[face_axis] + sign * field.box_half[face_axis]
    pts = np.concatenate([sphere, box])
    keep = np.abs(field.sdf(pts)) < 1e-9
    return pts[keep]


def chamfer(field: SphereBoxField, verts: np.ndarray, faces: np.ndarray) -> tuple[float, float]:
    """(mean distance mesh -> analytic surface, mean distance analytic surface -> mesh samples)."""
    mesh = trimesh.Trimesh(verts, faces, process=False)
    on_mesh, _ = trimesh.sample.sample_surface(mesh, 30_000, seed=2)
    forward = float(np.abs(field.sdf(np.asarray(on_mesh))).mean())
    backward = float(cKDTree(on_mesh).query(analytic_surface_samples(field))[0].mean())
    return forward, backward


def texture_colour_error(field: SphereBoxField, mesh: trimesh.Trimesh, image: np.ndarray, to_world) -> float:
    """Mean |texture(uv(p)) - pattern(p)| over points p sampled on the mesh (nearest texel)."""
    pts, fid = trimesh.sample.sample_surface(mesh, 20_000, seed=3)
    bary = trimesh.triangles.points_to_barycentric(mesh.triangles[fid], pts)
    uv = (mesh.visual.uv[mesh.faces[fid]] * bary[..., None]).sum(1)
    h, w = image.shape[:2]
    col = np.clip((uv[:, 0] * w).astype(int), 0, w - 1)
    row = np.clip(((1 - uv[:, 1]) * h).astype(int), 0, h - 1)
    got = image[row, col, :3] / 255.0
    return float(np.abs(got - field.pattern(to_world(np.asarray(pts)))).mean())


def test_glb_geometry_colour_and_validator(exported, field):
    res = exported("glb", "glb", ".glb")
    mesh = trimesh.load(res.path, force="mesh")
    verts = y_up_to_z_up(np.asarray(mesh.vertices))
    forward, backward = chamfer(field, verts, np.asarray(mesh.faces))
    assert forward < GEOMETRY_TOL and backward < GEOMETRY_TOL, (forward, backward)
    assert len(mesh.faces) == res.faces <= 6000 and len(mesh.vertices) == res.vertices
    image = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"))
    assert image.shape == (256, 256, 3)
    assert texture_colour_error(field, mesh, image, y_up_to_z_up) < COLOUR_TOL
    report = validate_gltf(res.path)
    assert report["numErrors"] == 0 and report["numWarnings"] == 0, report["messages"]


def test_floater_is_removed_and_bounds_hold(exported, field):
    mesh = trimesh.load(exported("glb", "glb", ".glb").path, force="mesh")
    verts = y_up_to_z_up(np.asarray(mesh.vertices))
    assert np.linalg.norm(verts - field.floater, axis=1).min() > 0.2
    kept = trimesh.load(exported("glb-floaters", "glb", ".glb", min_component=0.0, texture=0).path, force="mesh")
    assert np.linalg.norm(y_up_to_z_up(np.asarray(kept.vertices)) - field.floater, axis=1).min() < 0.06
    assert np.all(np.abs(verts) <= 1.0 + 1e-6)


def test_gltf_side_files_and_zip(exported, field, tmp_path):
    res = exported("gltf", "gltf", ".gltf", zip=True, texture_format="jpeg")
    names = sorted(p.name for p in res.files)
    assert names == ["model.bin", "model.gltf", "model_texture.jpg"]
    assert validate_gltf(res.path)["numErrors"] == 0
    with zipfile.ZipFile(res.archive) as zf:
        assert sorted(zf.namelist()) == names
        zf.extractall(tmp_path)
    mesh = trimesh.load(tmp_path / "model.gltf", force="mesh")
    image = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"))
    assert texture_colour_error(field, mesh, image, y_up_to_z_up) < COLOUR_TOL + 0.01  # JPEG


def test_obj_with_mtl_and_texture(exported, field):
    res = exported("obj", "obj", ".obj")
    assert {p.suffix for p in res.files} == {".obj", ".mtl", ".png"}
    mesh = trimesh.load(res.path, force="mesh")
    forward, backward = chamfer(field, y_up_to_z_up(np.asarray(mesh.vertices)), np.asarray(mesh.faces))
    assert forward < GEOMETRY_TOL and backward < GEOMETRY_TOL
    image = np.asarray(Image.open(res.path.with_name("model_texture.png")).convert("RGB"))
    assert texture_colour_error(field, mesh, image, y_up_to_z_up) < COLOUR_TOL


def test_ply_vertex_colours(exported, field):
    res = exported("ply", "ply", ".ply")
    mesh = trimesh.load(res.path, force="mesh", process=False)
    verts = np.asarray(mesh.vertices)  # PLY stays in world coordinates
    forward, backward = chamfer(field, verts, np.asarray(mesh.faces))
    assert forward < GEOMETRY_TOL and backward < GEOMETRY_TOL
    colours = np.asarray(mesh.visual.vertex_colors)[:, :3] / 255.0
    assert np.abs(colours - field.pattern(verts)).mean() < COLOUR_TOL
    assert res.path.read_bytes().startswith(b"ply\nformat binary_little_endian 1.0")


def test_point_cloud(exported, field):
    res = exported("points", "points", ".ply", points=5000)
    cloud = trimesh.load(res.path)
    pts = np.asarray(cloud.vertices)
    assert isinstance(cloud, trimesh.PointCloud) and len(pts) == 5000 == res.vertices
    assert np.abs(field.sdf(pts)).mean() < GEOMETRY_TOL
    assert np.abs(np.asarray(cloud.colors)[:, :3] / 255.0 - field.pattern(pts)).mean() < COLOUR_TOL


@pytest.mark.parametrize("method,extension", [("draco", "KHR_draco_mesh_compression"),
                                              ("meshopt", "EXT_meshopt_compression")])
def test_compressed_glb(exported, method, extension):
    plain = exported("glb", "glb", ".glb")
    res = exported(f"glb-{method}", "glb", ".glb", compress=method)
    report = validate_gltf(res.path)
    assert report["numErrors"] == 0, report["messages"]
    assert any(extension in m for m in report["messages"])  # the validator names the extension it skips
    assert res.sizes["model.glb"] < plain.sizes["model.glb"]


def test_fbx_read_back_by_assimp(exported):
    need_blender()
    res = exported("fbx", "fbx", ".fbx")
    info = assimp_info(res.path)
    assert int(info["Faces"]) == res.faces and int(info["Meshes"]) == 1
    assert info["Textures (embed.)"] == "1"
    lo = np.array(info["Minimum point"].strip("()").split(), float)
    hi = np.array(info["Maximum point"].strip("()").split(), float)
    assert np.all(np.abs(lo) < 1.0) and np.all(np.abs(hi) < 1.0) and np.all(hi - lo > 0.8)  # metres, not cm


@pytest.mark.parametrize("method", ["tiles", "pairs"])
def test_large_mesh_uv_layouts_bake_the_pattern(exported, field, method):
    res = exported(f"glb-{method}", "glb", ".glb", unwrap=method, faces=3000)
    assert res.uv_method == method
    mesh = trimesh.load(res.path, force="mesh")
    uv = np.asarray(mesh.visual.uv)
    assert uv.min() >= 0.0 and uv.max() <= 1.0
    image = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"))
    assert texture_colour_error(field, mesh, image, y_up_to_z_up) < COLOUR_TOL


class _HardAndSoft:
    """The analytic field plus a soft, low-density sphere (peak 30 where the rest reaches 400): like a NeRF's
    dark or thin parts, it is opaque to rays but never reaches the density at which the hard parts do."""

    def __init__(self) -> None:
        self.hard = SphereBoxField(floater=False)
        self.centre = np.array([0.0, -0.55, 0.55])
        self.soft = SphereBoxField(floater=False, radius=0.3, center=tuple(self.centre), box_center=tuple(self.centre),
                                   box_half=(0.0, 0.0, 0.0), peak=30.0, width=0.02)
        self.aabb = self.hard.aabb

    def density(self, p):  # type: ignore[no-untyped-def]
        return self.hard.density(p) + self.soft.density(p)

    def color(self, p, d):  # type: ignore[no-untyped-def]
        return self.hard.color(p, d)


def test_soft_parts_of_a_field_get_a_surface_too(tmp_path):
    """The automatic iso-level must not cut away opaque parts of low density (a median level did)."""
    from nerf_widgets.export import export_field

    f = _HardAndSoft()
    res = export_field(f.density, f.color, f.aabb, tmp_path / "m.ply", format="ply", resolution=64, faces=6000)
    mesh = trimesh.load(res.path, force="mesh")
    verts = np.asarray(mesh.vertices)  # PLY keeps the world's Z-up
    directions = np.random.default_rng(0).normal(size=(500, 3))
    directions[:, 2] = np.abs(directions[:, 2])  # the soft sphere's upper half, away from the hard parts
    on_soft = f.centre + 0.3 * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    gap = cKDTree(verts).query(on_soft)[0]
    assert res.iso < 30.0 and np.median(gap) < 0.05, (res.iso, float(np.median(gap)))


def test_vertex_normals_are_unit_even_at_zero_area_faces():
    """glTF requires unit normals: the corners of a face with no area get +Z, not (0, 0, 0) (the Khronos validator
    reported two errors on a small real export before)."""
    import numpy as np

    from nerf_widgets.export.mesh import vertex_normals

    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 2, 2], [3, 3, 3], [4, 4, 4]], np.float64)
    normals = vertex_normals(verts, np.array([[0, 1, 2], [3, 4, 5]]))  # the second face is a line
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0)
    assert np.allclose(normals[:3], [0, 0, 1]) and np.allclose(normals[3:], [0, 0, 1])
