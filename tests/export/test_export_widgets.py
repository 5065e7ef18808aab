"""MeshViewer on every viewable export (the ExportPanel, which goes through ``project.export``, is tested with
the export job in tests/jobs/test_export_job.py)."""

from __future__ import annotations

import pytest

from nerf_widgets.widgets.mesh_viewer import MeshViewer


@pytest.mark.parametrize("name,fmt,suffix,textured", [("glb", "glb", ".glb", True), ("obj", "obj", ".obj", True),
                                                       ("ply", "ply", ".ply", False)])
def test_mesh_viewer_shows_mesh_with_counts_and_wireframe(exported, name, fmt, suffix, textured):
    res = exported(name, fmt, suffix)
    viewer = MeshViewer(res.path)
    attrs = viewer.geometry.attributes
    assert attrs["position"].array.shape == (res.vertices, 3)
    assert attrs["index"].array.size == 3 * res.faces
    assert f"{res.vertices:,} vertices, {res.faces:,} faces" in viewer.counts.value
    if textured:
        assert viewer.material.map.data.shape == (256, 256, 4) and "uv" in attrs
    else:
        colours = attrs["color"].array
        assert colours.shape == (res.vertices, 3) and 0.05 < colours.mean() < 0.95
    assert viewer.material.wireframe is False
    viewer.wireframe.value = True
    assert viewer.material.wireframe is True


def test_mesh_viewer_point_cloud_and_errors(exported, tmp_path):
    res = exported("points", "points", ".ply", points=5000)
    viewer = MeshViewer(res.path)
    assert viewer.geometry.attributes["position"].array.shape == (5000, 3)
    assert "5,000 points, 0 faces" in viewer.counts.value
    assert viewer.show(tmp_path / "missing.glb") is False
    assert "no file at" in viewer.notice.value
    (tmp_path / "m.stl").write_text("solid x")
    assert viewer.show(tmp_path / "m.stl") is False and "not &#x27;.stl&#x27;" in viewer.notice.value


@pytest.mark.parametrize("fmt,suffix", [("glb", ".glb"), ("obj", ".obj")])
def test_mesh_viewer_frames_the_object_and_culls_the_background_from_outside(exported, fmt, suffix):
    """A real capture's export carries a background part: drawn front faces only (the camera starts outside
    it, where a double-sided shell would hide the object) and left out of the framing."""
    import numpy as np

    from tests.export.test_background import room_trace

    plain = exported(fmt, fmt, suffix)
    res = exported(f"{fmt}-background", fmt, suffix, layer=lambda hide: room_trace)
    assert res.background is not None and res.background["faces"] > 0
    viewer = MeshViewer(res.path)
    assert viewer.geometry.attributes["index"].array.size == 3 * plain.faces  # the object alone
    shell = viewer.background_mesh
    assert shell is not None and shell.material.side == "FrontSide" and viewer.material.side == "DoubleSide"
    assert shell.geometry.attributes["index"].array.size == 3 * res.background["faces"]
    assert f"background {res.background['faces']:,} faces" in viewer.counts.value
    camera = viewer.view.children[0].camera
    reach = np.linalg.norm(shell.geometry.attributes["position"].array, axis=1).max()
    assert np.linalg.norm(camera.position) < 0.5 * reach < camera.far  # framed on the object, the shell drawn
    plain_viewer = MeshViewer(plain.path)
    assert plain_viewer.background_mesh is None


def test_a_file_with_node_transforms_is_shown_where_its_nodes_put_it(tmp_path):
    """Files from other tools may place meshes by node transforms: those apply (an export's are identity, and its
    parts are read as they are, with the file's normals)."""
    import numpy as np
    import trimesh

    from nerf_widgets.widgets.mesh_viewer import load_mesh_file

    box = trimesh.creation.box(extents=(1, 1, 1))
    scene = trimesh.Scene()
    scene.add_geometry(box, node_name="moved", transform=trimesh.transformations.translation_matrix([5.0, 0, 0]))
    scene.export(tmp_path / "moved.glb")
    loaded = load_mesh_file(tmp_path / "moved.glb")
    np.testing.assert_allclose(loaded.verts.mean(0), [5.0, 0, 0], atol=1e-5)

    # turned and stretched: the normals turn with the node (inverse transpose) and stay outward, and a mirror
    # keeps the faces facing out
    for name, transform in (("turned", trimesh.transformations.rotation_matrix(np.pi / 2, [0, 0, 1]) @ np.diag([3.0, 1, 1, 1])),
                            ("mirrored", np.diag([-1.0, 1, 1, 1]))):
        scene = trimesh.Scene()
        scene.add_geometry(box, node_name=name, transform=transform)
        scene.export(tmp_path / f"{name}.glb")
        loaded = load_mesh_file(tmp_path / f"{name}.glb")
        assert loaded.faces is not None and loaded.normals is not None
        outward = loaded.verts / np.linalg.norm(loaded.verts, axis=1, keepdims=True)
        assert ((loaded.normals * outward).sum(1) > 0.3).all(), name
        corners = loaded.verts[loaded.faces.astype(np.int64)]
        wound = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        assert ((wound * corners.mean(1)).sum(1) > 0).all(), name


@pytest.mark.parametrize("method", ["draco", "meshopt"])
def test_a_compressed_export_shows_as_its_plain_twin(exported, method, tmp_path, monkeypatch):
    """trimesh reads no compressed meshes (Draco gave all-zero vertices, meshopt an IndexError): the viewer
    decodes a copy with gltf-transform and shows the same mesh, its background apart and its texture, with the
    file's own normals turned by the node that meshopt's quantisation leaves."""
    import tempfile

    import numpy as np

    from tests.export.test_background import room_trace

    plain = exported("glb-background", "glb", ".glb", layer=lambda hide: room_trace)
    res = exported(f"glb-background-{method}", "glb", ".glb", layer=lambda hide: room_trace, compress=method)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the plain copy goes, to see it removed
    viewer = MeshViewer(res.path)
    twin = MeshViewer(plain.path)
    assert viewer.notice.value == "" and viewer.mesh is not None and twin.mesh is not None
    got, want = viewer.mesh, twin.mesh
    assert got.faces is not None and want.faces is not None and len(got.faces) == len(want.faces)
    extent = float(np.ptp(want.verts, 0).max())
    assert np.ptp(got.verts, 0).max() > 0.5 * extent  # not Draco's placeholder zeros
    from scipy.spatial import cKDTree

    gap, near = cKDTree(want.verts).query(got.verts)  # Draco welds and reorders vertices; both quantise
    assert gap.max() < 2e-3 * extent and cKDTree(got.verts).query(want.verts)[0].max() < 2e-3 * extent
    assert got.image is not None and got.image.shape == (want.image.shape if want.image is not None else None)
    assert got.background is not None and want.background is not None
    assert got.background.faces is not None and want.background.faces is not None
    assert len(got.background.faces) == len(want.background.faces)
    # each vertex's normal agrees with the plain file's normal at the nearest vertex
    assert got.normals is not None and want.normals is not None
    cos = (got.normals * want.normals[near]).sum(1)
    assert np.median(cos) > 0.999 and np.linalg.norm(got.normals, axis=1).min() > 0.999
    assert list(tmp_path.glob("nw-plain-*")) == []  # the plain copy is gone


def test_a_compressed_file_without_gltf_transform_says_what_to_install(exported, monkeypatch, tmp_path):
    from nerf_widgets.export import tools

    res = exported("glb-meshopt", "glb", ".glb", compress="meshopt")
    monkeypatch.delenv("NERF_WIDGETS_GLTF_TRANSFORM", raising=False)
    monkeypatch.setattr(tools.shutil, "which", lambda name: None)
    monkeypatch.setattr(tools, "_ROOT", tmp_path)  # no tools/node_modules there
    viewer = MeshViewer(res.path)
    assert viewer.mesh is None and "Internal error" not in viewer.notice.value
    assert f"{res.path.name} is meshopt-encoded; showing it needs gltf-transform" in viewer.notice.value
    assert "npm install -g @gltf-transform/cli" in viewer.notice.value
    monkeypatch.setenv("NERF_WIDGETS_GLTF_TRANSFORM", str(tmp_path / "nothing"))
    assert MeshViewer(res.path).mesh is None
    assert "NERF_WIDGETS_GLTF_TRANSFORM is" in MeshViewer(res.path).notice.value


def _rewrite_glb_json(path, edit):  # type: ignore[no-untyped-def]
    """Rewrite a GLB's JSON chunk with ``edit(doc)`` (padded to 4 bytes as the spec asks)."""
    import json
    import struct

    from tests.export.test_normal_map import glb_json

    data = path.read_bytes()
    size = struct.unpack("<I", data[12:16])[0]
    doc = glb_json(path)
    edit(doc)
    chunk = json.dumps(doc).encode()
    chunk += b" " * (-len(chunk) % 4)
    rest = data[20 + size :]
    path.write_bytes(b"glTF" + struct.pack("<II", 2, 20 + len(chunk) + len(rest)) + struct.pack("<I", len(chunk))
                     + b"JSON" + chunk + rest)


def test_encodings_are_found_where_they_are_used_and_odd_headers_are_not_errors(exported, tmp_path):
    import shutil

    from nerf_widgets.export.tools import gltf_compression
    from nerf_widgets.widgets.mesh_viewer import load_mesh_file

    draco = exported("glb-draco", "glb", ".glb", compress="draco")
    undeclared = tmp_path / "undeclared.glb"  # against the spec, but the primitives still carry Draco
    shutil.copy(draco.path, undeclared)
    _rewrite_glb_json(undeclared, lambda doc: [doc.pop(k, None) for k in ("extensionsUsed", "extensionsRequired")])
    assert gltf_compression(undeclared) == "Draco"
    viewer = MeshViewer(undeclared)  # said, instead of shown as placeholder zeros
    assert viewer.mesh is None and "uses KHR_draco_mesh_compression without declaring it" in viewer.notice.value

    plain = exported("glb", "glb", ".glb")
    for name, edit in (("null", lambda doc: doc.update(extensionsUsed=None)),
                       ("dicts", lambda doc: doc.update(extensionsUsed=[{"a": 1}]))):
        odd = tmp_path / f"{name}.glb"
        shutil.copy(plain.path, odd)
        _rewrite_glb_json(odd, edit)
        assert gltf_compression(odd) is None
        assert len(load_mesh_file(odd).verts) == plain.vertices
    for name, text in (("deep.gltf", "[" * 100_000), ("empty.glb", ""), ("list.gltf", "[1]")):
        (tmp_path / name).write_text(text)
        assert gltf_compression(tmp_path / name) is None


def test_a_gltf_whose_side_files_lie_outside_its_folder_is_refused_and_left_alone(exported, tmp_path):
    import json
    import shutil

    res = exported("gltf-draco", "gltf", ".gltf", compress="draco")
    folder, shared = tmp_path / "model", tmp_path / "shared"
    folder.mkdir(), shared.mkdir()
    doc = json.loads(res.path.read_text())
    for buffer in doc["buffers"]:
        shutil.copy(res.path.parent / buffer["uri"], shared / buffer["uri"])
        buffer["uri"] = f"../shared/{buffer['uri']}"
    for image in doc.get("images", []):
        shutil.copy(res.path.parent / image["uri"], folder / image["uri"])
    (folder / "m.gltf").write_text(json.dumps(doc))
    before = {f.name: f.read_bytes() for f in shared.iterdir()}
    viewer = MeshViewer(folder / "m.gltf")
    assert viewer.mesh is None and "outside its folder" in viewer.notice.value
    assert {f.name: f.read_bytes() for f in shared.iterdir()} == before


def test_several_parts_of_another_tools_file_keep_its_normals(tmp_path):
    """Two meshes whose file normals are not their faces' (a smooth-shaded model's are not): joined, they keep
    them instead of normals recomputed from the faces."""
    import numpy as np
    import trimesh

    from nerf_widgets.widgets.mesh_viewer import load_mesh_file

    rng = np.random.default_rng(0)
    scene, given = trimesh.Scene(), []
    for name, shift in (("a", -2.0), ("b", 2.0)):
        ball = trimesh.creation.icosphere(subdivisions=1)
        normals = ball.vertices + rng.normal(0, 0.3, ball.vertices.shape)
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        given.append(normals)
        scene.add_geometry(trimesh.Trimesh(ball.vertices + [shift, 0, 0], ball.faces, vertex_normals=normals,
                                           process=False), geom_name=name)
    scene.export(tmp_path / "two.glb")
    loaded = load_mesh_file(tmp_path / "two.glb")
    assert loaded.normals is not None and len(loaded.verts) == 2 * 42
    left = loaded.verts[:, 0] < 0
    assert (loaded.normals[left] * given[0]).sum(1).min() > 0.999
    assert (loaded.normals[~left] * given[1]).sum(1).min() > 0.999
