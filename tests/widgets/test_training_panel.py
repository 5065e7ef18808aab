"""TrainingPanel / LivePreview / SystemMonitor models driven like a browser would (real store, real
runner threads; the engine is replaced by a fake that keeps its callback contract)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nerf_widgets.jobs import register_job_type, shutdown_runners
from nerf_widgets.jobs.registry import job_factory
from nerf_widgets.jobs.training import make_training_factory
from nerf_widgets.studio import Project, Studio
from nerf_widgets.widgets.system_monitor import SystemMonitor
from nerf_widgets.widgets.training_panel import TrainingPanel, thin
from tests.jobs.fake_trainer import fake_config, fake_train
from tests.waiting import wait_until


@pytest.fixture
def posed(tmp_path: Path) -> Iterator[Project]:
    real = job_factory("train")
    register_job_type("train", make_training_factory(trainer=fake_train, config_builder=fake_config))
    studio = Studio(tmp_path / "home")
    project = studio.create_project("scene <b>bold</b>")
    project.transition("upload_images")
    project.transition("skip_pose_estimation")
    yield project
    shutdown_runners()
    register_job_type("train", real)
    studio.close()


def test_start_pause_resume_cancel_from_the_panel(posed: Project) -> None:
    panel = TrainingPanel(posed)
    assert not panel.buttons["start"].disabled and panel.buttons["pause"].disabled
    panel.max_steps.value = 100_000
    panel.buttons["start"].click()
    assert panel.notice.value == "", panel.notice.value
    job = panel.job
    assert job is not None and posed.state in ("TrainingStarted", "TrainingInProgress")
    wait_until(lambda: panel.curves.point_count("psnr") > 20)
    grown = panel.curves.point_count("psnr")
    wait_until(lambda: panel.curves.point_count("psnr") > grown)  # the curve keeps moving
    wait_until(lambda: not panel.buttons["pause"].disabled)
    assert "running" in panel.status.value and "ETA" in panel.status.value and panel.progress.value > 0
    panel.buttons["pause"].click()
    wait_until(lambda: "paused" in panel.status.value)
    assert not panel.buttons["resume"].disabled and panel.buttons["start"].disabled
    panel.buttons["resume"].click()
    wait_until(lambda: "running" in panel.status.value)
    panel.buttons["cancel"].click()
    job.wait(10)
    wait_until(lambda: "cancelled" in panel.status.value)
    assert not panel.buttons["retry"].disabled and panel.buttons["cancel"].disabled
    assert len(job.bus.subscribers) == 1
    panel.close()
    assert job.bus.subscribers == []  # unregistered on close


def test_reopened_panel_shows_full_curve_then_live_events(posed: Project) -> None:
    first = TrainingPanel(posed)
    first.max_steps.value = 400
    first.buttons["start"].click()
    job = first.job
    assert job is not None
    wait_until(lambda: first.curves.point_count("psnr") >= 150)
    first.close()  # e.g. the notebook was closed while training went on
    again = TrainingPanel(posed)  # reopened: snapshot, then the events after it
    assert again.job is not None and again.job.id == job.id
    job.wait(20)
    wait_until(lambda: "succeeded" in again.status.value)
    wait_until(lambda: again.job_picker.options[0][0].endswith("succeeded"))  # the job list follows the state
    assert again.job_picker.value == job.id
    wait_until(lambda: again.curves.point_count("psnr") == 400)
    assert list(again.curves.lines["psnr"].x) == list(range(1, 401))  # no gap, no duplicate
    assert list(again.curves.lines["eval_psnr"].x) == [50, 100, 150, 200, 250, 300, 350, 400]
    assert again.preview.caption.value == "Held-out view at step 400"
    assert again.preview.rendered.value[:4] == b"\x89PNG"
    assert "convergence" in again.convergence.value
    again.close()
    # a panel built after the job ended reads everything back from the store
    third = TrainingPanel(posed)
    wait_until(lambda: third.curves.point_count("psnr") == 400)
    assert [int(x) for x in third.curves.lines["eval_psnr"].x] == [50, 100, 150, 200, 250, 300, 350, 400]
    third.close()


def test_alerts_are_listed_and_escaped(posed: Project) -> None:
    panel = TrainingPanel(posed)
    panel.max_steps.value = 100_000
    job = panel.start_training()
    job.runner.record_alert(job.id, {"code": "disk_low", "severity": "warning", "time": time.time(),
                                     "message": "<img src=x onerror=alert(1)> low disk"})
    wait_until(lambda: "low disk" in panel.alerts.value)
    assert "&lt;img src=x" in panel.alerts.value and "<img" not in panel.alerts.value
    job.cancel(wait=True)
    panel.close()


def test_thin_keeps_last_point_and_bounds_size() -> None:
    pts = [(s, s / 10, float(s)) for s in range(1, 5001)] + [(5001, 500.1, float("nan"))]
    out = thin(pts, 800)
    assert len(out) <= 801 and out[-1] == (5000, 500.0, 5000.0) and out[0][0] == 1


def test_system_monitor_updates_and_unregisters(posed: Project) -> None:
    monitor = SystemMonitor(posed.studio)
    wait_until(lambda: monitor.samples_seen >= 2, timeout=5)
    bar, text = monitor.gauges["memory"]
    assert 0 < bar.value <= 100 and "GiB free" in text.value
    assert len(monitor.spark.x) == len(monitor.spark.y[0]) >= 2
    from nerf_widgets.jobs.runner import runner_for

    bus = runner_for(posed.studio.db, posed.studio.home).system_bus
    assert len(bus.subscribers) == 1
    monitor.close()
    assert bus.subscribers == []


def test_refine_camera_poses_goes_to_the_model_settings_of_the_fast_method(posed: Project) -> None:
    panel = TrainingPanel(posed)
    assert not panel.refine_poses.value and not panel.refine_poses.disabled  # fast is the first method
    panel.method.value = "vanilla"
    assert panel.refine_poses.disabled  # vanilla has no pose corrections
    panel.method.value = "fast"
    panel.refine_poses.value = True
    panel.max_steps.value = 5
    panel.buttons["start"].click()
    assert panel.notice.value == "", panel.notice.value
    job = panel.job
    assert job is not None and job.wait(60).state == "succeeded"
    assert job.record().params["overrides"]["model"] == {"pose_refine": True}
    panel.close()
