"""End to end in a real browser: the MeshViewer's Lit toggle shades an export with its normal map (three.js'
standard material, a light that follows the camera), and turning it off gives back the baked colours."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from PIL import Image

from tests.e2e.lab_harness import REPO, open_browser, run_notebook, running_lab
from tests.e2e.test_region_browser import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SETUP = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from nerf_widgets.export import SphereBoxField, export_field
from nerf_widgets.widgets.mesh_viewer import MeshViewer
field = SphereBoxField(floater=False)
result = export_field(field.density, field.color, field.aabb, "bumped/model.glb", format="glb", resolution=64,
                      faces=1500, texture=256, normal_map=True, compare=0)
viewer = MeshViewer(result.path, width=360, height=300)
viewer
"""


def picture(canvas: Any) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB")).astype(np.float64)


def test_lit_shades_the_mesh_and_unlit_gives_back_the_baked_colours(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell('print("ready")')]
    nbformat.write(nb, tmp_path / "lit.ipynb")
    errors: list[str] = []
    with running_lab(tmp_path, [tmp_path / "lit.ipynb"]) as lab, open_browser() as page:
        page.on("pageerror", lambda err: errors.append(str(err)))
        run_notebook(page, lab, "lit.ipynb", done_text="ready", timeout_s=180)
        viewer = page.locator(".nw-mesh-viewer")
        viewer.wait_for(timeout=60_000)
        assert "normal map" in viewer.inner_text()
        canvas = viewer.locator("canvas").first
        canvas.wait_for(timeout=60_000)
        canvas.scroll_into_view_if_needed()
        object_pixels = lambda image: int((image.min(2) < 245).sum())  # noqa: E731 - not the white background
        wait_for(page, lambda: object_pixels(picture(canvas)) > 2000, 60, "the unlit mesh")
        page.wait_for_timeout(500)
        unlit = picture(canvas)
        viewer.locator("button", has_text="Lit").click()
        wait_for(page, lambda: np.abs(picture(canvas) - unlit).mean() > 2.0, 60, "the lit mesh")
        page.wait_for_timeout(500)
        lit = picture(canvas)
        viewer.screenshot(path=str(REPO / "tests" / "artifacts" / "e2e_mesh_viewer_lit.png"))
        drawn = (unlit.min(2) < 245) & (lit.min(2) < 245)
        assert drawn.sum() > 0.8 * object_pixels(unlit)  # the same object, now shaded
        viewer.locator("button", has_text="Lit").click()
        wait_for(page, lambda: np.abs(picture(canvas) - unlit).mean() < 0.5, 60, "the baked colours again")
        viewer.screenshot(path=str(REPO / "tests" / "artifacts" / "e2e_mesh_viewer_unlit.png"))
    assert not errors, errors
