"""The studio feed reaches an open ``StudioApp``: a job or an upload started by a cell, and changes made by another
process on the same home, show in the panels and the header without any click (real store, real runner threads;
training is the fake trainer with the engine's callback contract, export the real pipeline on an analytic field)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nerf_widgets.export import SphereBoxField
from nerf_widgets.jobs import register_job_type, shutdown_runners
from nerf_widgets.jobs.export_job import make_export_factory
from nerf_widgets.jobs.registry import job_factory
from nerf_widgets.jobs.training import make_training_factory
from nerf_widgets.studio import Project, Studio
from nerf_widgets.widgets import StudioApp
from tests.jobs.fake_trainer import fake_config, fake_train
from tests.poses.conftest import write_image
from tests.poses.test_pose_viewer import _posed_folder

WAIT_S = 120.0  # failure guard only: every wait below ends on the state it waits for


def wait_until(pred: Callable[[], Any], what: str, timeout: float = WAIT_S) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, f"{what}: not seen within {timeout:.0f} s"
        time.sleep(0.02)


@pytest.fixture
def fake_jobs() -> Iterator[None]:
    """"train" runs the fake trainer and "export" exports an analytic field, for the duration of a test."""
    real = {name: job_factory(name) for name in ("train", "export")}
    register_job_type("train", make_training_factory(trainer=fake_train, config_builder=fake_config))
    register_job_type("export", make_export_factory(loader=lambda run_dir: SphereBoxField()))
    yield
    shutdown_runners()
    for name, factory in real.items():
        register_job_type(name, factory)


@pytest.fixture
def posed(tmp_path: Path, fake_jobs: None) -> Iterator[Project]:
    studio = Studio(tmp_path / "home")
    project = studio.create_project("feed")
    project.transition("upload_images")
    project.transition("skip_pose_estimation")
    yield project
    studio.close()


def header_states(app: StudioApp) -> list[str]:
    """Every lifecycle state the header shows from now on, in order."""
    seen: list[str] = []

    def on_header(change: dict[str, Any]) -> None:
        state = change["new"].split('nw-current-state">[', 1)[-1].split("]", 1)[0]
        if not seen or seen[-1] != state:
            seen.append(state)

    app.header.observe(on_header, "value")
    return seen


def test_training_started_by_a_cell_shows_in_the_open_studio(posed: Project) -> None:
    app = StudioApp(studio=posed.studio)
    app.open_project(posed.id)
    panel = app.panels["Training"]
    states = header_states(app)
    assert panel.job is None and "No training job yet" in panel.status.value
    job = posed.start_training(max_steps=400, sleep=0.01)  # the cell, after the studio is displayed
    wait_until(lambda: panel.job is not None and panel.job.id == job.id, "the job in the Training panel")
    wait_until(lambda: panel.curves.point_count("psnr") > 0, "the first points of the curve")
    assert panel.curves.lines["psnr"].x[0] == 1  # the curve starts at step one
    wait_until(lambda: "TrainingInProgress" in states, "the header at TrainingInProgress")
    job.wait(WAIT_S)
    wait_until(lambda: "succeeded" in panel.status.value, "the panel at succeeded")
    wait_until(lambda: states[-1:] == ["TrainingCompleted"], "the header at TrainingCompleted")
    assert states.index("TrainingInProgress") < states.index("TrainingCompleted")
    wait_until(lambda: panel.curves.point_count("psnr") == 400, "every step on the curve")
    assert list(panel.curves.lines["psnr"].x) == list(range(1, 401))
    assert panel.job_picker.options[0][0].endswith("succeeded") and not panel.buttons["start"].disabled
    app.close()


def test_images_uploaded_by_a_cell_show_in_the_open_uploader(project: Project, make_image: Any) -> None:
    app = StudioApp(studio=project.studio)
    app.open_project(project.id)
    uploader = app.panels["Images"]
    assert uploader.images == []
    results = project.upload_images([("a.png", make_image(1)), ("b.png", make_image(2))])
    ids = [r.image_id for r in results]
    wait_until(lambda: [i["id"] for i in uploader.images] == ids, "the uploaded images in the grid")
    wait_until(lambda: "[ImagesUploaded]" in app.header.value, "the header at ImagesUploaded")
    project.remove_image(ids[0])
    wait_until(lambda: [i["id"] for i in uploader.images] == ids[1:], "the removed image gone from the grid")
    app.close()


OTHER_KERNEL = """
import io, sys
import numpy as np
from PIL import Image
from nerf_widgets.studio import Studio
studio = Studio(sys.argv[1])
buf = io.BytesIO()
Image.fromarray(np.random.default_rng(7).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(buf, "PNG")
studio.project(sys.argv[2]).upload_images([("from_elsewhere.png", buf.getvalue())])
studio.create_project("made elsewhere")
"""


def test_changes_by_another_process_reach_the_open_studio(project: Project) -> None:
    app = StudioApp(studio=project.studio)
    app.open_project(project.id)
    uploader, browser = app.panels["Images"], app.panels["Projects"]
    subprocess.run([sys.executable, "-c", OTHER_KERNEL, str(project.studio.home), project.id], check=True,
                   timeout=WAIT_S)
    wait_until(lambda: [i["name"] for i in uploader.images] == ["from_elsewhere.png"], "the other process's image")
    wait_until(lambda: "[ImagesUploaded]" in app.header.value, "the header following the other process")
    names = lambda: " ".join(row.children[0].value for row in browser.rows.children)  # noqa: E731
    wait_until(lambda: "made elsewhere" in names(), "the other process's project in the list")
    other = next(p for p in project.studio.projects() if p.name == "made elsewhere")
    project.studio.delete_project(other.id)
    wait_until(lambda: "made elsewhere" not in names(), "the deleted project gone from the list")
    app.close()


OTHER_KERNEL_TRAINS = """
import sys
sys.path.insert(0, sys.argv[3])
from tests.jobs.fake_trainer import fake_config, fake_train
from tests.poses.conftest import write_image
from tests.poses.test_pose_viewer import _posed_folder
from nerf_widgets.jobs import register_job_type
from nerf_widgets.jobs.training import make_training_factory
from nerf_widgets.studio import Studio
register_job_type("train", make_training_factory(trainer=fake_train, config_builder=fake_config))
job = Studio(sys.argv[1]).project(sys.argv[2]).start_training(max_steps=300, sleep=0.02)
print(job.id, flush=True)
assert job.wait().state == "succeeded"
"""


def test_training_in_another_process_streams_into_the_open_studio(posed: Project) -> None:
    app = StudioApp(studio=posed.studio)
    app.open_project(posed.id)
    panel = app.panels["Training"]
    child = subprocess.Popen([sys.executable, "-c", OTHER_KERNEL_TRAINS, str(posed.studio.home), posed.id,
                              str(Path(__file__).resolve().parents[2])], stdout=subprocess.PIPE, text=True)
    try:
        job_id = child.stdout.readline().strip()  # type: ignore[union-attr]
        wait_until(lambda: panel.job is not None and panel.job.id == job_id, "the other process's job in the panel")
        assert not panel.job.runner.is_live(job_id)  # it runs over there, not in this process
        wait_until(lambda: panel.curves.point_count("psnr") > 0, "its first points")
        seen = panel.curves.point_count("psnr")
        wait_until(lambda: panel.curves.point_count("psnr") > seen or child.poll() is not None, "its curve growing")
        assert child.wait(WAIT_S) == 0
    finally:
        if child.poll() is None:
            child.kill()
    wait_until(lambda: "succeeded" in panel.status.value, "its end in the panel")
    wait_until(lambda: panel.curves.point_count("psnr") == 300, "all its points")
    assert list(panel.curves.lines["psnr"].x) == list(range(1, 301))  # no gap, no duplicate across the catch-ups
    assert [int(x) for x in panel.curves.lines["eval_psnr"].x] == [50, 100, 150, 200, 250, 300]
    wait_until(lambda: "[TrainingCompleted]" in app.header.value, "the header at TrainingCompleted")
    app.close()


def test_export_started_by_a_cell_is_followed_by_the_export_panel(posed: Project) -> None:
    job = posed.start_training(max_steps=20)
    assert job.wait(WAIT_S).state == "succeeded"
    app = StudioApp(studio=posed.studio)
    app.open_project(posed.id)
    panel = app.panels["Export"]
    export = posed.export("glb", resolution=40, faces=3000, texture=128)  # the cell
    wait_until(lambda: panel.job is not None and panel.job.id == export.id, "the export in the Export panel")
    assert panel.wait(WAIT_S), "the panel never saw the export end"
    assert panel.progress.bar_style == "success" and "Download" in panel.download.value
    assert panel.viewer.geometry.attributes["position"].array.shape[0] > 0
    wait_until(lambda: "[ModelExported]" in app.header.value, "the header at ModelExported")
    app.close()


def test_poses_from_cells_show_in_the_open_pose_viewer(project: Project, tmp_path: Path) -> None:
    """A pose import from a cell is drawn; a pose estimation started by a cell is followed to its end."""
    app = StudioApp(studio=project.studio)
    app.open_project(project.id)
    viewer = app.panels["Poses"]
    _posed_folder(tmp_path, n_images=4, n_frames=4)
    project.upload_images([str(p) for p in sorted((tmp_path / "scene").glob("*.png"))])
    project.import_poses(tmp_path / "scene" / "transforms.json")  # the cell
    wait_until(lambda: "4/4</b> images posed" in viewer.summary.value, "the imported poses in the viewer")
    other = project.studio.create_project("dark")
    other.upload_images([str(write_image(tmp_path / "dark" / f"d_{k}.png", np.full((48, 64), k, np.uint8)))
                         for k in range(3)])
    app.open_project(other.id)
    job = other.estimate_poses()  # the cell; it fails on blank images
    wait_until(lambda: viewer._watch.job is not None and viewer._watch.job.id == job.id, "the pose job followed")
    job.wait(WAIT_S)
    wait_until(lambda: "pose estimation failed" in viewer.stage.value, "the job's end in the viewer")
    assert "blank image" in viewer.stage.value
    app.close()


def test_closing_the_app_leaves_the_feed(project: Project) -> None:
    app = StudioApp(studio=project.studio)
    feed = project.studio.feed
    assert len(feed.bus.subscribers) == 1  # one subscription for the whole studio, not one per panel
    app.close()
    assert feed.bus.subscribers == []
