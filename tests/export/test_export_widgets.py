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
