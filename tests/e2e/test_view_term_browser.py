"""End to end in a real browser: the MeshViewer draws a file's view-dependent colour with its shader (three.js
compiles it in Chromium) and the Shine toggle gives back the texture alone.

The file is made here: a ball whose every vertex has the UV (0.25, 0), the bottom edge of its textures, so every
pixel reads one known texel of each (through the atlas, where a sample that is not clamped to its picture's texel
centres blends in the picture below). Its colour is (100, 150, 200) and its term A has rows (0, 0, 0.3),
(0, 0, -0.3), (0, 0.45, 0) in the file's frame; the viewer's starting camera looks at the ball's centre along
d = -(0, 0.5, 2.2) / |.|, so the middle pixel must be clip(colour + A d): rows swapped, a scale off, a sign or an
axis wrong, or an unclamped sample all miss it by more than the tolerance."""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest

from nerf_widgets.export.formats import MeshData, write_glb
from nerf_widgets.export.view_term import STEP, ZERO, ViewTerm
from tests.e2e.lab_harness import REPO, open_browser, run_notebook, running_lab
from tests.e2e.test_mesh_viewer_browser import diff, picture
from tests.e2e.test_region_browser import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

COLOUR = np.array([100, 150, 200], np.uint8)
A = np.array([[0.0, 0.0, 0.3], [0.0, 0.0, -0.3], [0.0, 0.45, 0.0]])
SCALE = 0.45
TOLERANCE = 6  # grey levels


def shiny_ball(path: Path) -> None:
    """A UV sphere reading texel (0.25, 0) everywhere; the rest of every texture differs from that texel."""
    import trimesh

    ball = trimesh.creation.uv_sphere(radius=0.5, count=[24, 48])
    verts = np.asarray(ball.vertices)
    uv = np.tile([0.25, 0.0], (len(verts), 1))
    image = np.full((64, 64, 3), (250, 20, 20), np.uint8)
    image[-1] = COLOUR  # the bottom row: v = 0
    rows = np.full((32, 32, 9), 40, np.uint8)  # A = -0.31 everywhere but the bottom row
    rows[-1] = np.round(A.reshape(9) / SCALE * STEP) + ZERO
    world = np.stack([verts[:, 0], -verts[:, 2], verts[:, 1]], 1)  # written Z-up: the file's +Z is world -Y
    write_glb(MeshData(world, np.asarray(ball.faces), world / 0.5, uv=uv, image=image,
                       view_term=ViewTerm(rows, SCALE)), path)


def expected(shine: bool) -> np.ndarray:
    """The middle pixel: the viewer's camera sits at the centre + (0, 0.5, 2.2) * the half diagonal."""
    d = -np.array([0.0, 0.5, 2.2]) / np.linalg.norm([0.0, 0.5, 2.2])
    a = (np.round(A / SCALE * STEP) / STEP) * SCALE  # as stored
    colour = COLOUR / 255.0 + (a @ d if shine else 0.0)
    return np.clip(colour, 0, 1) * 255


def middle(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return image[h // 2 - 2 : h // 2 + 2, w // 2 - 2 : w // 2 + 2].reshape(-1, 3).mean(0)


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

        def drawn_as(name: str, shine: bool) -> bool:
            shown[name] = picture(canvas)
            return bool(np.abs(middle(shown[name]) - expected(shine)).max() <= TOLERANCE)

        try:
            wait_for(page, lambda: drawn_as("shine", True), 60, "the ball's colour plus its view term")
            viewer.locator("button", has_text="Shine").click()
            wait_for(page, lambda: drawn_as("plain", False), 60, "the ball's colour alone")
        except TimeoutError as err:
            got = {k: middle(v).round(1).tolist() for k, v in shown.items()}
            raise AssertionError(f"{err}: middle pixel {got}, expected {expected(True).round(1).tolist()} with the "
                                 f"term, {expected(False).round(1).tolist()} without") from err
        viewer.screenshot(path=str(REPO / "tests" / "artifacts" / "e2e_view_term_plain.png"))
        viewer.locator("button", has_text="Shine").click()
        wait_for(page, lambda: diff(picture(canvas), shown["shine"]) < 0.5, 60, "the term drawn again")
        viewer.screenshot(path=str(REPO / "tests" / "artifacts" / "e2e_view_term_shine.png"))
    assert not errors, errors
