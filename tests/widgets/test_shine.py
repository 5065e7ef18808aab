"""The MeshViewer and a file's view-dependent colour (``export.view_term``): drawn by ``widgets.shine``'s shader
over one atlas, the Shine toggle giving the texture alone, Lit the standard material, a broken extension named
while the mesh is still shown. The browser side is ``tests/e2e/test_view_term_browser.py``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nerf_widgets.export import export_field
from nerf_widgets.export.view_term import EXTENSION
from tests.export.test_export_refine import FlatField
from tests.export.test_view_term import export_glossy, sheen_shots


@pytest.fixture(scope="module")
def glossy(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import torch

    torch.set_num_threads(2)
    field = FlatField(floater=False)
    return export_glossy(field, sheen_shots(field)[0], tmp_path_factory.mktemp("shine"))

def test_the_mesh_viewer_draws_the_term_with_a_shader_and_shine_off_gives_the_texture(glossy: dict) -> None:
    import pythreejs as p3

    from nerf_widgets.export.texture import sample
    from nerf_widgets.widgets.mesh_viewer import MeshViewer

    viewer = MeshViewer(glossy["shiny"].path)
    assert viewer.mesh is not None and viewer.mesh.view_term is not None
    assert viewer.shine.layout.display is None and "view-dependent colour" in viewer.counts.value
    material = viewer.material
    assert isinstance(material, p3.ShaderMaterial) and list(material.uniforms) == ["atlas"]  # see widgets.shine
    atlas = viewer._maps["atlas"]
    texture = material.uniforms["atlas"]["value"]
    np.testing.assert_array_equal(np.asarray(texture.data)[::-1, :, :3], atlas.image)  # bottom row first
    # the atlas read where the shader reads it gives the file's colour and A's rows
    term, image = viewer.mesh.view_term, viewer.mesh.image
    uv = np.random.default_rng(0).random((500, 2))
    for (x, y, w, h), picture in zip(atlas.rects, [image, *term.images()], strict=True):  # the shader's at(k)
        p = np.stack([np.clip(uv[:, 0] * w, 0.5, w - 0.5) + x, np.clip((1 - uv[:, 1]) * h, 0.5, h - 0.5) + y], 1)
        atlas_uv = (p / [atlas.image.shape[1], atlas.image.shape[0]]) * [1, -1] + [0, 1]
        np.testing.assert_allclose(sample(atlas.image, atlas_uv), sample(picture, uv), atol=1e-5)
    assert "dot(row(1), d)" in material.fragmentShader
    viewer.shine.value = False
    assert isinstance(viewer.material, p3.ShaderMaterial) and viewer.object.material is viewer.material
    assert "dot(row(1), d)" not in viewer.material.fragmentShader
    assert viewer.material.uniforms["atlas"]["value"] is texture  # not sent again
    viewer.lit.value = True  # lit shows the shape: the standard material with the colour alone
    assert isinstance(viewer.material, p3.MeshStandardMaterial)
    plain = MeshViewer(glossy["plain"].path)
    assert plain.shine.layout.display == "none" and isinstance(plain.material, p3.MeshBasicMaterial)


def test_the_mesh_viewer_shows_a_mesh_whose_term_is_broken_and_says_so(glossy: dict, tmp_path: Path) -> None:
    from nerf_widgets.widgets.mesh_viewer import MeshViewer

    folder = tmp_path / "g"
    res = export_field(FlatField(floater=False).density, FlatField(floater=False).color, np.array([[-1.0] * 3, [1.0] * 3]),
                       folder / "m.gltf", format="gltf", texture=256, resolution=48, faces=3000, compare=0)
    doc = json.loads(res.path.read_text())
    doc["materials"][0]["extensions"] = {EXTENSION: {"textures": [{"index": 0}] * 3, "scale": 0.2}}
    doc["extensionsUsed"] = [EXTENSION, *doc.get("extensionsUsed", [])]
    (folder / "m.gltf").write_text(json.dumps(doc))  # the colour texture three times: readable
    assert MeshViewer(folder / "m.gltf").mesh.view_term is not None
    doc["materials"][0]["extensions"][EXTENSION]["textures"] = [{"index": 7}] * 3
    (folder / "m.gltf").write_text(json.dumps(doc))
    viewer = MeshViewer(folder / "m.gltf")
    assert viewer.mesh is not None and viewer.mesh.view_term is None and viewer.mesh.image is not None
    assert EXTENSION in viewer.notice.value and "texture alone" in viewer.notice.value
