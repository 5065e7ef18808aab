"""End to end in a real browser: the MeshViewer draws a file's view-dependent colour with its shader (three.js
compiles it in Chromium) and the Shine toggle gives back the texture alone.

The file is made here: a grey ball whose term darkens red by 0.45 * d_z, d the ray from the camera in the
file's frame (its +Z points from the ball towards the viewer's starting camera, so d_z is about -1 there):
drawn with the term the ball is cyan, with the texture alone grey. A sign or a frame wrong in the shader would
make it redder, not cyan."""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest

from nerf_widgets.export.formats import MeshData, write_glb
from nerf_widgets.export.view_term import ViewTerm
from tests.e2e.lab_harness import REPO, open_browser, run_notebook, running_lab
from tests.e2e.test_mesh_viewer_browser import diff, drawn, picture
from tests.e2e.test_region_browser import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def shiny_ball(path: Path) -> None:
    """A UV sphere with a flat grey texture and a term A whose red row is (0, 0, 0.45) in the file's frame."""
    import trimesh

    ball = trimesh.creation.uv_sphere(radius=0.5, count=[24, 48])
    verts = np.asarray(ball.vertices)
    uv = np.stack([np.arctan2(verts[:, 1], verts[:, 0]) / (2 * np.pi) + 0.5,
                   np.arccos(np.clip(verts[:, 2] / 0.5, -1, 1)) / np.pi], 1)
    image = np.full((64, 64, 3), 128, np.uint8)
    rows = np.full((32, 32, 9), 128, np.uint8)
    rows[..., 2] = 255  # A[red, z] = (255 - 128) / 127 * scale = 0.45
    world = np.stack([verts[:, 0], -verts[:, 2], verts[:, 1]], 1)  # written Z-up: the file's +Z is world -Y
    write_glb(MeshData(world, np.asarray(ball.faces), world / 0.5, uv=uv, image=image,
                       view_term=ViewTerm(rows, 0.45)), path)


def mean_colour(image: np.ndarray) -> np.ndarray:
    on = image.min(2) < 245
    return image[on].mean(0)


def test_the_viewer_draws_the_view_term_and_shine_off_gives_the_texture(tmp_path: Path) -> None:
    shiny_ball(tmp_path / "ball.glb")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from nerf_widgets.widgets.mesh_viewer import MeshViewer
viewer = MeshViewer({str(tmp_path / "ball.glb")!r}, width=360, height=300)
viewer.add_class("nw-test-ball")
viewer"""), nbformat.v4.new_code_cell('print("ready")')]
    nbformat.write(nb, tmp_path / "shine.ipynb")
    errors: list[str] = []
    with running_lab(tmp_path, [tmp_path / "shine.ipynb"]) as lab, open_browser() as page:
        page.on("pageerror", lambda err: errors.append(str(err)))
        # three.js reports a shader that does not compile or link as THREE.WebGLShader / THREE.WebGLProgram
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and (
            "THREE.WebGL" in msg.text or "shader" in msg.text.lower()) else None)
        run_notebook(page, lab, "shine.ipynb", done_text="ready", timeout_s=180)
        viewer = page.locator(".nw-test-ball")
        canvas = viewer.locator("canvas").first
        canvas.wait_for(timeout=60_000)
        canvas.scroll_into_view_if_needed()
        assert "view-dependent colour" in viewer.inner_text()
        shown: dict[str, np.ndarray] = {}

        def cyan() -> bool:  # red pulled down by the term, green and blue the texture's grey
            shown["shine"] = picture(canvas)
            if drawn(shown["shine"]) < 2000:
                return False
            r, g, b = mean_colour(shown["shine"])
            return r < 0.6 * g and abs(g - b) < 6 and 115 < g < 141

        wait_for(page, cyan, 60, "the ball drawn cyan by its view term")
        viewer.locator("button", has_text="Shine").click()

        def grey() -> bool:
            shown["plain"] = picture(canvas)
            r, g, b = mean_colour(shown["plain"])
            return drawn(shown["plain"]) > 2000 and max(abs(r - g), abs(g - b)) < 6 and 115 < g < 141

        wait_for(page, grey, 60, "the ball grey with the texture alone")
        viewer.screenshot(path=str(REPO / "tests" / "artifacts" / "e2e_view_term_plain.png"))
        viewer.locator("button", has_text="Shine").click()
        wait_for(page, lambda: diff(picture(canvas), shown["shine"]) < 0.5, 60, "the term drawn again")
        viewer.screenshot(path=str(REPO / "tests" / "artifacts" / "e2e_view_term_shine.png"))
    assert not errors, errors
