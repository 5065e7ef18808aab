"""MeshViewer on every viewable export, and ExportPanel end to end on the analytic field."""

from __future__ import annotations

import base64

import pytest

from nerf_widgets.widgets.export_panel import ExportPanel
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


def test_export_panel_exports_shows_and_offers_download(field, tmp_path):
    panel = ExportPanel(field=field, out_dir=tmp_path)
    panel.format.value, panel.resolution.value, panel.faces.value, panel.texture.value = "glb", 32, 1000, 512
    panel.start().join(120)
    assert panel.notice.value == "" and panel.progress.value == 1.0 and panel.progress.bar_style == "success"
    data = panel.download.value.split("base64,")[1].split('"')[0]
    assert base64.b64decode(data) == (tmp_path / "model.glb").read_bytes()
    assert panel.viewer.geometry.attributes["position"].array.shape[0] == panel.result.vertices
    assert not panel.export_button.disabled and panel.cancel_button.disabled


def test_export_panel_zips_multi_file_formats_and_rejects_bad_requests(field, tmp_path):
    panel = ExportPanel(field=field, out_dir=tmp_path)
    panel.format.value, panel.resolution.value, panel.faces.value, panel.texture.value = "obj", 32, 1000, 512
    panel.start().join(120)
    assert "Download model.zip" in panel.download.value and (tmp_path / "model.zip").exists()
    panel.format.value, panel.compress.value = "ply", "draco"
    panel.export_button.click()
    assert "applies to glb/gltf only" in panel.notice.value


def test_export_panel_without_a_model_says_so(tmp_path):
    panel = ExportPanel()
    panel.export_button.click()
    assert "train a model first" in panel.notice.value
    assert list(tmp_path.iterdir()) == []


def test_export_panel_cancel(field, tmp_path):
    panel = ExportPanel(field=field, out_dir=tmp_path)
    panel.resolution.value, panel.texture.value = 32, 512
    seen = []
    original = panel._on_progress

    def hook(p):
        seen.append(p.stage)
        original(p)
        if p.stage == "cleanup":
            panel.cancel_button.click()

    panel._on_progress = hook
    panel.start().join(120)
    assert "cancelled" in panel.notice.value and "bake" not in seen
    assert not any(p.suffix == ".glb" for p in tmp_path.iterdir())
    assert panel.progress.value <= 0.5 and panel.progress.bar_style == "danger"
