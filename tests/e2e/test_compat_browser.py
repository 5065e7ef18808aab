"""The second frontend, in a real browser: nerf_widgets from its wheel (``.venv-compat``, ipywidgets 7.7).

- Classic notebook (Notebook 6.5 + widgetsnbextension 3, the closest setting to Colab's widget manager that
  runs here): the quickstart's thumbnail grid, the Training tab's bqplot curves during a (fake-trainer)
  run, and the pythreejs mesh viewer render, with no widget error in the page or the console.
- JupyterLab 4 (of ``.venv``, ipywidgets 8) with kernels that import nerf_widgets from the wheel's files:
  ``StudioApp()`` shows the uploader and thumbnails, also of a photo uploaded through the browser.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from PIL import Image

from tests.e2e.compat_harness import (
    COMPAT_PYTHON,
    WHEEL_ONLY,
    assert_wheel_current,
    require_compat_venv,
    run_classic_notebook,
    running_classic,
    watch_console,
    wheel_kernels,
    widget_errors,
)
from tests.e2e.lab_harness import REPO, open_browser, run_notebook, running_lab
from tests.e2e.test_studio_browser import png

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
ARTIFACTS = REPO / "tests" / "artifacts"
QUICKSTART = REPO / "notebooks" / "quickstart.ipynb"
STEPS = 3000
ORIGIN = 'import ipywidgets, nerf_widgets\nprint("ipywidgets", ipywidgets.__version__, "nerf_widgets from", nerf_widgets.__file__)'

WIDGETS = f"""
import sys
sys.path.insert(0, {str(REPO / "tests" / "jobs")!r})  # the fake trainer (a test helper); the package is the wheel's
from fake_trainer import fake_config, fake_train
from nerf_widgets.jobs import register_job_type
from nerf_widgets.jobs.training import make_training_factory
register_job_type("train", make_training_factory(trainer=fake_train, config_builder=fake_config))

from nerf_widgets.studio import Studio
from nerf_widgets.widgets import StudioApp
studio = Studio()
project = studio.create_project("Compat e2e")
project.transition("upload_images")
project.transition("skip_pose_estimation")
app = StudioApp(studio=studio)
app.open_project(project.id)
app.panels["Training"].max_steps.value = {STEPS}
app
"""

MESH = """
import tempfile
from pathlib import Path
import numpy as np
import trimesh
from nerf_widgets.widgets.mesh_viewer import MeshViewer
ball = trimesh.creation.icosphere(subdivisions=3)
ball.visual.vertex_colors = (np.abs(ball.vertices) * 255).astype(np.uint8)
path = Path(tempfile.mkdtemp()) / "ball.glb"
ball.export(path)
# a grey ball whose view-dependent colour pulls red down when seen from the viewer's start (test_view_term_browser)
from nerf_widgets.export.formats import MeshData, write_glb
from nerf_widgets.export.view_term import ViewTerm
shiny = trimesh.creation.uv_sphere(radius=0.5, count=[24, 48])
v = np.asarray(shiny.vertices)
uv = np.stack([np.arctan2(v[:, 1], v[:, 0]) / (2 * np.pi) + 0.5, np.arccos(np.clip(v[:, 2] / 0.5, -1, 1)) / np.pi], 1)
rows = np.full((32, 32, 9), 128, np.uint8)
rows[..., 2] = 255
world = np.stack([v[:, 0], -v[:, 2], v[:, 1]], 1)
write_glb(MeshData(world, np.asarray(shiny.faces), world / 0.5, uv=uv, image=np.full((64, 64, 3), 128, np.uint8),
                   view_term=ViewTerm(rows, 0.45)), path.with_name("shiny.glb"))
import ipywidgets
ipywidgets.VBox([MeshViewer(path), MeshViewer(path.with_name("shiny.glb"))])
"""

PSNR_POINTS_JS = """() => {
  const figs = document.querySelectorAll('.nw-training-panel .nw-curves .bqplot');
  if (figs.length < 3) return -1;
  const path = figs[1].querySelector('g.curve path.line');
  return ((path && path.getAttribute('d')) || '').split(/[ML]/).length - 1;
}"""


def notebook(folder: Path, name: str, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)
    return folder / name


def quickstart_with_origin(folder: Path) -> Path:
    """The quickstart plus a last cell that prints where nerf_widgets and ipywidgets come from."""
    nb = nbformat.read(QUICKSTART, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(ORIGIN))
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / QUICKSTART.name)
    return folder / QUICKSTART.name


def assert_from_wheel(page: Any, outputs: str, ipywidgets: str, folder: Path) -> None:
    """The kernel ran this ipywidgets and the wheel's nerf_widgets installed in ``folder``, not the checkout."""
    origin = page.locator(outputs, has_text="nerf_widgets from").first.inner_text()
    assert f"ipywidgets {ipywidgets}" in origin, origin
    assert f"{folder}/nerf_widgets/__init__.py" in origin, origin


def wait_for(page: Any, js: str, timeout_s: float) -> None:
    page.wait_for_function(js, timeout=timeout_s * 1000)


def test_classic_notebook_with_ipywidgets7(tmp_path: Path) -> None:
    require_compat_venv()
    assert_wheel_current()
    ARTIFACTS.mkdir(exist_ok=True)
    src = tmp_path / "src"
    notebooks = [quickstart_with_origin(src), notebook(src, "widgets.ipynb", [WIDGETS, MESH, 'print("compat ready")'])]
    with running_classic(tmp_path, notebooks) as server, open_browser() as page:
        # leaving a notebook page asks "leave site?": one page per notebook
        second = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})
        consoles = [watch_console(page), watch_console(second)]
        current = page
        try:
            quickstart_grid(page, server)
            current = second
            training_curves_and_mesh(second, server)
        except BaseException:
            current.screenshot(path=str(ARTIFACTS / "compat_classic_failure.png"), full_page=True)
            raise
        assert widget_errors(page, consoles[0]) == [] and widget_errors(second, consoles[1]) == []
    from nerf_widgets.studio import Studio

    with Studio(server.home) as studio:
        (project,) = [p for p in studio.projects() if p.name == "Compat e2e"]
        assert project.state == "TrainingCompleted"


def quickstart_grid(page: Any, server: Any) -> None:
    run_classic_notebook(page, server, "quickstart.ipynb", done_text="nerf_widgets from")
    (site,) = (COMPAT_PYTHON.parents[1] / "lib").glob("python3*/site-packages")
    assert_from_wheel(page, ".output_area", "7.7.", site)
    studio = page.locator(".nw-studio")
    assert "Quickstart" in studio.locator(".nw-current-project").inner_text()
    wait_for(page, "document.querySelectorAll('.nw-studio .nw-thumb img.nw-thumb-img').length === 6", 60)
    assert page.locator(".nw-studio .nw-thumb img.nw-thumb-img").first.evaluate("i => i.complete && i.naturalWidth") > 0
    assert page.locator(".nw-studio .nw-uploader input[type=file]").evaluate_all(
        "inputs => inputs.every(i => getComputedStyle(i).display === 'none')")  # Bootstrap 3 shows them otherwise
    studio.scroll_into_view_if_needed()
    studio.screenshot(path=str(ARTIFACTS / "compat_classic_quickstart.png"))


def training_curves_and_mesh(page: Any, server: Any) -> None:
    run_classic_notebook(page, server, "widgets.ipynb", done_text="compat ready")
    page.locator(".nw-studio .p-TabBar-tab, .nw-studio .lm-TabBar-tab", has_text="Training").first.click()
    panel = page.locator(".nw-training-panel")
    panel.locator("button.nw-train-start").click()
    wait_for(page, f"({PSNR_POINTS_JS})() > 5", 60)
    panel.locator(".nw-job-state", has_text="succeeded").wait_for(timeout=120_000)
    assert page.evaluate(PSNR_POINTS_JS) > 5
    ticks = page.locator(".nw-training-panel .nw-curves .bqplot .axis .tick text")
    assert ticks.count() > 0 and any(t.strip() for t in ticks.all_text_contents())
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(ARTIFACTS / "compat_classic_training.png"))
    viewer, shiny = page.locator(".nw-mesh-viewer").nth(-2), page.locator(".nw-mesh-viewer").last
    viewer.locator("canvas").first.wait_for(timeout=60_000)
    assert "vertices" in viewer.inner_text()
    viewer.scroll_into_view_if_needed()
    viewer.screenshot(path=str(ARTIFACTS / "compat_classic_mesh.png"))
    # Lit swaps in three.js' standard material and a light on the camera: it must draw under ipywidgets 7 too
    canvas = viewer.locator("canvas").first
    deadline = time.monotonic() + 60
    while (screenshot(canvas).min(2) < 245).sum() < 2000:  # the unlit ball drawn (not the white background)
        assert time.monotonic() < deadline, "the mesh was not drawn within 60 s"
        page.wait_for_timeout(200)
    unlit = screenshot(canvas)
    viewer.locator("button", has_text="Lit").click()
    deadline = time.monotonic() + 60
    while np.abs(screenshot(canvas) - unlit).mean() < 2.0:
        assert time.monotonic() < deadline, "the Lit mesh was not drawn within 60 s"
        page.wait_for_timeout(200)
    # the view-dependent colour's shader (widgets.shine) draws under ipywidgets 7 too: the grey ball turns cyan
    shiny.scroll_into_view_if_needed()
    deadline = time.monotonic() + 60
    while True:
        picture = screenshot(shiny.locator("canvas").first)
        drawn = picture[picture.min(2) < 245]
        if len(drawn) > 2000 and drawn[:, 0].mean() < 0.6 * drawn[:, 1].mean():
            break
        assert time.monotonic() < deadline, "the shiny ball was not drawn cyan within 60 s"
        page.wait_for_timeout(200)


def screenshot(locator: Any) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB")).astype(np.float64)


def test_wheel_in_jupyterlab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_compat_venv()
    assert_wheel_current()
    ARTIFACTS.mkdir(exist_ok=True)
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the kernel must import the wheel, not this checkout
    monkeypatch.setenv("JUPYTER_PATH", str(wheel_kernels(tmp_path / "kernels")))
    nb = quickstart_with_origin(tmp_path / "src")
    with running_lab(tmp_path, [nb]) as lab, open_browser() as page:
        console = watch_console(page)
        try:
            run_notebook(page, lab, nb.name, done_text="nerf_widgets from", timeout_s=120)
            assert_from_wheel(page, ".jp-OutputArea-output", "8.", WHEEL_ONLY)
            uploader = page.locator(".nw-studio .nw-uploader")
            uploader.locator(".nw-drop").wait_for()
            wait_for(page, "document.querySelectorAll('.nw-studio .nw-thumb img.nw-thumb-img').length === 6", 60)
            uploader.locator("input.nw-file-input").set_input_files(
                [{"name": "from_browser.png", "mimeType": "image/png", "buffer": png(42)}])
            wait_for(page, "document.querySelectorAll('.nw-studio .nw-thumb img.nw-thumb-img').length === 7", 60)
            assert "from_browser.png" in uploader.locator(".nw-thumb-name").all_inner_texts()
            page.locator(".nw-studio").screenshot(path=str(ARTIFACTS / "compat_lab_wheel.png"))
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "compat_lab_failure.png"), full_page=True)
            raise
        assert widget_errors(page, console) == []
