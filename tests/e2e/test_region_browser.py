"""End to end in a real browser: the PoseViewer draws the region box over the cameras, and typing a new size
into a slider's readout stores the region in the project (read back from the studio's SQLite file)."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from PIL import Image

from tests.e2e.lab_harness import REPO, open_browser, run_notebook, running_lab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
ARTIFACTS = REPO / "tests" / "artifacts"

SETUP = f"""
import json, sys
from pathlib import Path
sys.path.insert(0, {str(REPO)!r})
from tests.poses.conftest import noise_image, write_image
from tests.poses.poses_synthetic import ring_cameras
from nerf_widgets.studio import Studio
from nerf_widgets.widgets.panel import StudioContext
from nerf_widgets.widgets.pose_viewer import PoseViewer
studio = Studio()
project = studio.create_project("Region e2e")
tmp = Path("scene")
files = [write_image(tmp / f"r_{{k}}.png", noise_image(k, (64, 48))) for k in range(8)]
project.upload_images([str(f) for f in files])
frames = [{{"file_path": f"r_{{k}}", "transform_matrix": c.tolist()}} for k, c in enumerate(ring_cameras(8))]
(tmp / "transforms.json").write_text(json.dumps({{"camera_angle_x": 0.7, "frames": frames}}))
project.import_poses(tmp / "transforms.json")
ctx = StudioContext(studio)
ctx.project = project
viewer = PoseViewer(context=ctx)
viewer
"""


def write_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell('print("ready")')]
    path = folder / "region.ipynb"
    nbformat.write(nb, path)
    return path


def yellow_pixels(png: bytes) -> int:
    """Pixels of the box colour (#ffd600, anti-aliased lines allowed some slack)."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int(((rgb[..., 0] > 200) & (rgb[..., 1] > 160) & (rgb[..., 2] < 90)).sum())


def wait_for(page: Any, pred: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            page.screenshot(path=str(ARTIFACTS / "e2e_region_timeout.png"), full_page=True)
            raise TimeoutError(f"{what} not seen within {timeout_s:.0f} s")
        page.wait_for_timeout(200)


def stored_size_x(home: Path) -> float | None:
    from nerf_widgets.studio import Studio

    with Studio(home) as studio:
        (project,) = [p for p in studio.projects() if p.name == "Region e2e"]
        region = project.region()
        return float(region.size[0]) if region.source == "set" else None


def test_pose_viewer_shows_the_box_and_a_slider_stores_it(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    nb = write_notebook(tmp_path)
    with running_lab(tmp_path, [nb]) as lab, open_browser() as page:
        run_notebook(page, lab, "region.ipynb", done_text="ready", timeout_s=180)
        canvas = page.locator(".nw-pose-viewer canvas").first
        canvas.wait_for(timeout=60_000)
        canvas.scroll_into_view_if_needed()
        wait_for(page, lambda: yellow_pixels(canvas.screenshot()) > 200, 60, "the yellow region box")
        page.locator(".nw-pose-viewer").screenshot(path=str(ARTIFACTS / "e2e_region_box.png"))
        assert stored_size_x(lab.home) is None  # only the proposal so far

        slider = page.locator(".nw-region-editor .widget-slider", has_text="size x").first
        readout = slider.locator(".widget-readout")
        readout.click()
        page.keyboard.press("Control+a")
        page.keyboard.type("1.37")
        page.keyboard.press("Enter")
        wait_for(page, lambda: stored_size_x(lab.home) is not None, 60, "the region stored by the slider")
        assert abs((stored_size_x(lab.home) or 0.0) - 1.37) < 1e-6
        page.wait_for_timeout(500)
        page.locator(".nw-pose-viewer").screenshot(path=str(ARTIFACTS / "e2e_region_moved.png"))


EXPORT_SETUP = SETUP.replace("viewer = PoseViewer(context=ctx)\nviewer\n", "") + """
from nerf_widgets.export import SphereBoxField
from nerf_widgets.jobs import register_job_type
from nerf_widgets.jobs.export_job import make_export_factory
from nerf_widgets.jobs.training import make_training_factory
from nerf_widgets.widgets.export_panel import ExportPanel
from tests.export.photos import photo, ring_cameras
from tests.jobs.fake_trainer import fake_config, fake_train
# a trained run without the minutes: the fake trainer writes checkpoints, the export reads an analytic field
# and compares its mesh with the field on two photos of it
register_job_type("train", make_training_factory(trainer=fake_train, config_builder=fake_config))
from nerf_widgets.jobs.export_photos import RunPhotos
held_out = lambda run_dir, training, comparison: RunPhotos(comparison=[
    photo(SphereBoxField(), c, 48, 54.0, SphereBoxField().pattern) for c in ring_cameras(2, seed=3)] if comparison else None)
register_job_type("export", make_export_factory(loader=lambda run_dir: SphereBoxField(), photos=held_out))
project.set_region(center=[-0.15, 0.0, 0.0], size=[0.7, 0.7, 0.7], yaw_deg=20.0)
assert project.start_training(max_steps=20).wait(120).state == "succeeded"  # one checkpoint (every 20)
panel = ExportPanel(context=ctx)
panel
"""


def _choose(page: Any, label: str, option: str) -> None:
    page.locator(".nw-export-panel").get_by_label(label, exact=True).select_option(label=option)


def _export_rows(home: Path) -> list[Any]:
    from nerf_widgets.studio import Studio

    with Studio(home) as studio:
        (project,) = [p for p in studio.projects() if p.name == "Region e2e"]
        return [j.record() for j in project.jobs() if j.record().type == "export"]


def test_export_panel_exports_only_the_region_with_the_floor_cut(tmp_path: Path) -> None:
    import trimesh

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(EXPORT_SETUP), nbformat.v4.new_code_cell('print("ready")')]
    nbformat.write(nb, tmp_path / "region_export.ipynb")
    with running_lab(tmp_path, [tmp_path / "region_export.ipynb"]) as lab, open_browser() as page:
        run_notebook(page, lab, "region_export.ipynb", done_text="ready", timeout_s=240)
        page.locator(".nw-export-panel").wait_for(timeout=60_000)
        _choose(page, "Size", "web (10k faces)")  # fills faces, texture and refinement minutes
        faces = page.locator(".nw-export-panel").get_by_label("Faces", exact=True)
        wait_for(page, lambda: faces.input_value() == "10000", 30, "the web preset's face count")
        _choose(page, "Format", "ply")
        _choose(page, "Texture", "0")
        _choose(page, "Region", "yes (set or proposed)")
        _choose(page, "Floor", "cut")
        page.locator(".nw-export-panel").get_by_label("Largest part only", exact=True).check()
        grid = page.locator(".nw-export-panel").get_by_label("Grid", exact=True)
        grid.fill("48")
        grid.press("Enter")
        page.locator(".nw-export-panel button", has_text="Export").first.click()
        wait_for(page, lambda: any(r.state == "succeeded" for r in _export_rows(lab.home)), 180, "the export job")
        wait_for(page, lambda: page.locator(".nw-export-panel .nw-mesh-viewer canvas").count() > 0, 60,
                 "the mesh viewer")
        compare = page.locator(".nw-export-panel .nw-mesh-compare")
        wait_for(page, lambda: compare.is_visible() and compare.locator("img").count() == 3, 60, "the comparison")
        for kind in ("photo", "field", "mesh"):  # three pictures the browser decoded, side by side
            img = compare.locator(f".nw-compare-{kind} img")
            wait_for(page, lambda img=img: img.evaluate("e => e.complete && e.naturalWidth") == 48, 30, kind)
        boxes = [compare.locator(f".nw-compare-{k} img").bounding_box() for k in ("photo", "field", "mesh")]
        assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"] and abs(boxes[0]["y"] - boxes[2]["y"]) < 2
        assert re.search(r"Field \d+\.\d\d dB", compare.inner_text()) and "Mesh vs field" in compare.inner_text()
        panel_text = page.locator(".nw-export-panel").inner_text()  # the scores beside the download link too
        assert re.search(r"mesh \d+\.\d\d dB, field \d+\.\d\d dB on 2 photos", panel_text), panel_text
        page.locator(".nw-export-panel").screenshot(path=str(ARTIFACTS / "e2e_region_export.png"))
    (row,) = _export_rows(lab.home)
    options = row.params["options"]
    assert options["remove_floor"] is True and options["keep_largest"] is True and options["resolution"] == 48
    # the preset's faces stayed; no texture, so nothing refined and the sizes are no longer the preset's
    assert options["faces"] == 10_000 and options["refine_minutes"] == 0.0 and options.get("preset") is None
    size = np.asarray(options["region"]["size"])
    assert np.allclose(size, 0.7) and abs(options["region"]["yaw_deg"] - 20.0) < 1e-6
    ply = next((lab.home / "projects").glob("*/exports/*/*.ply"))
    verts = np.asarray(trimesh.load(ply, force="mesh", process=False).vertices)
    local = verts - np.array([0.0, 0.0, 0.35])  # placed: the box centred over the origin, its floor at 0
    assert np.all(np.abs(local) <= 0.35 + 1e-3), np.abs(local).max(0)
    assert verts[:, 2].min() > 0.5 * 0.03 * 0.7  # the floor slab (3 % of the height) was left out
