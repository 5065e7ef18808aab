"""End to end in a real browser: the MeshViewer's Lit toggle shades an export with its normal map (three.js'
standard material, a light that follows the camera), and turning it off gives back the baked colours.

Two exports of the same field, one with a normal map and one without, are shown side by side: unlit they are
the same picture (the same mesh and texture); lit they differ, which only the map can make them do."""

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
import ipywidgets
from nerf_widgets.export import SphereBoxField, export_field
from nerf_widgets.widgets.mesh_viewer import MeshViewer
field = SphereBoxField(floater=False)
paths = [export_field(field.density, field.color, field.aabb, f"{{name}}/model.glb", format="glb", resolution=64,
                      faces=1500, texture=256, normal_map=name == "bumped", compare=0).path
         for name in ("bumped", "plain")]
viewers = [MeshViewer(p, width=360, height=300) for p in paths]
viewers[0].add_class("nw-test-bumped")
viewers[1].add_class("nw-test-plain")
ipywidgets.HBox(viewers)
"""


def picture(canvas: Any) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB")).astype(np.float64)


def diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two screenshots over the pixels either draws the object on (side by side,
    the canvases may differ by a pixel of layout)."""
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    a, b = a[:h, :w], b[:h, :w]
    on = (a.min(2) < 245) | (b.min(2) < 245)
    return float(np.abs(a[on] - b[on]).mean()) if on.any() else 0.0


def drawn(image: np.ndarray) -> int:
    return int((image.min(2) < 245).sum())  # not the white background


def test_lit_shades_the_mesh_with_its_normal_map_and_unlit_gives_back_the_baked_colours(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell('print("ready")')]
    nbformat.write(nb, tmp_path / "lit.ipynb")
    errors: list[str] = []
    with running_lab(tmp_path, [tmp_path / "lit.ipynb"]) as lab, open_browser() as page:
        page.on("pageerror", lambda err: errors.append(str(err)))
        run_notebook(page, lab, "lit.ipynb", done_text="ready", timeout_s=180)
        viewers = {k: page.locator(f".nw-test-{k}") for k in ("bumped", "plain")}
        canvases = {k: v.locator("canvas").first for k, v in viewers.items()}
        for canvas in canvases.values():
            canvas.wait_for(timeout=60_000)
        canvases["bumped"].scroll_into_view_if_needed()
        assert "normal map" in viewers["bumped"].inner_text() and "normal map" not in viewers["plain"].inner_text()
        unlit: dict[str, np.ndarray] = {}

        def both_unlit_alike() -> bool:  # both drawn, and the same picture: the same mesh and colours
            unlit.update({k: picture(c) for k, c in canvases.items()})
            return min(drawn(p) for p in unlit.values()) > 2000 and diff(unlit["bumped"], unlit["plain"]) < 0.5

        wait_for(page, both_unlit_alike, 60, "both unlit meshes, alike")
        for k, viewer in viewers.items():
            viewer.locator("button", has_text="Lit").click()
            wait_for(page, lambda k=k: diff(picture(canvases[k]), unlit[k]) > 2.0, 60, f"the lit {k} mesh")
        lit: dict[str, np.ndarray] = {}

        def map_shows() -> bool:  # the map changes the shading (1.3 grey levels here; unlit: 0.0)
            lit.update({k: picture(c) for k, c in canvases.items()})
            return diff(lit["bumped"], lit["plain"]) > 0.5

        wait_for(page, map_shows, 60, "the normal map in the lit picture")
        assert drawn(lit["bumped"]) > 0.8 * drawn(unlit["bumped"])  # the same object, now shaded
        viewers["bumped"].screenshot(path=str(REPO / "tests" / "artifacts" / "e2e_mesh_viewer_lit.png"))
        viewers["bumped"].locator("button", has_text="Lit").click()
        wait_for(page, lambda: diff(picture(canvases["bumped"]), unlit["bumped"]) < 0.5, 60,
                 "the baked colours again")
    assert not errors, errors
