"""Training on a real local Ray cluster through the Studio API: results come home, control crosses over.

The stand-in trainer keeps the engine's callback contract (tests/jobs/fake_trainer.py); one test trains
the real engine on a tiny scene and exports its checkpoint.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from nerf_widgets.engine.checkpoint import checkpoint_name, list_checkpoints
from nerf_widgets.jobs import shutdown_runners
from nerf_widgets.studio import Studio
from nerf_widgets.widgets.system_monitor import SystemMonitor
from tests.jobs.cluster.ray_helpers import WAIT_S, job_state, posed_project, step_of, wait_any, wait_view
from tests.waiting import wait_until

SLOW = {"job_type": "ray_fake_train", "sleep": 0.05}


@pytest.fixture
def studio(tmp_path: Path, ray_address: str) -> Iterator[Studio]:
    s = Studio(tmp_path / "home", executor="ray", address=ray_address)
    yield s
    shutdown_runners()
    s.close()


def test_job_on_ray_reports_home_and_completes(studio: Studio) -> None:
    project = posed_project(studio, "remote")
    job = project.start_training(max_steps=60, job_type="ray_fake_train")
    row = job.wait(WAIT_S)
    assert row.state == "succeeded", row.error
    assert project.state == "TrainingCompleted"
    assert row.params["executor"] == "ray" and row.progress["executor"] == "ray"
    assert row.progress["worker_pid"] != os.getpid()
    m = job.metrics()
    assert [p[0] for p in m["psnr"]] == list(range(1, 61))
    assert [p[0] for p in m["eval_psnr"]] == [50]
    ckpts = list_checkpoints(row.run_dir)
    assert ckpts[-1].name == checkpoint_name(60) and row.progress["checkpoint_step"] == 60
    assert row.progress["checkpoint"] == str(ckpts[-1])
    assert (Path(row.run_dir) / "renders" / "preview_rendered.png").read_bytes()[:4] == b"\x89PNG"
    view = job.bus.snapshot().state
    assert view["preview"]["step"] == 50 and view["system"]["node"] and view["system"]["pid"] == row.progress[
        "worker_pid"]
    names = [h.transition for h in project.history]
    assert names[-3:] == ["start_training", "training_progress", "training_completed"]


def test_pause_resume_cancel_cross_to_the_worker(studio: Studio) -> None:
    project = posed_project(studio, "control")
    monitor = SystemMonitor(studio)
    job = project.start_training(max_steps=100000, **SLOW)
    wait_view(job, lambda v: int(v.get("progress", {}).get("checkpoint_step") or 0) >= 20)
    wait_until(lambda: job.id in monitor.workers.value, what="the worker's line in the SystemMonitor")
    job.pause()
    paused = wait_view(job, lambda v: v.get("progress", {}).get("stage") == "paused")
    at = step_of(paused)
    job.resume()
    wait_view(job, lambda v: step_of(v) >= at + 5 and job_state(v) == "running")
    job.cancel()
    row = job.wait(WAIT_S)
    assert row.state == "cancelled" and row.progress["step"] > at
    assert project.state == "TrainingCompleted"  # stopped with checkpoints that came home
    wait_until(lambda: monitor.workers.value == "", what="the ended worker's line removed")
    monitor.close()


def test_killed_worker_is_a_failed_attempt_and_resume_continues_from_its_checkpoint(studio: Studio) -> None:
    from ray._private.state import actors  # the GCS actor table: Ray's own record of where the actor runs

    project = posed_project(studio, "killed")
    job = project.start_training(max_steps=100000, **SLOW)
    wait_view(job, lambda v: int(v.get("progress", {}).get("checkpoint_step") or 0) >= 40)
    [info] = [a for a in actors().values() if a["Name"] == f"nerf-{job.id}-1" and a["State"] == "ALIVE"]
    os.kill(info["Pid"], signal.SIGKILL)
    row = job.wait(WAIT_S)
    assert row.state == "failed" and "Ray worker running this job died" in row.error
    ckpt = row.progress["checkpoint_step"]
    assert f"checkpoint at step {ckpt}" in row.error
    assert (Path(row.run_dir) / "checkpoints" / checkpoint_name(ckpt)).is_file()
    assert project.state == "TrainingFailed"
    job.resume()
    view = wait_view(job, lambda v: step_of(v) >= ckpt + 3)
    assert view["progress"]["resumed_from"] == ckpt
    job.cancel()
    assert job.wait(WAIT_S).state == "cancelled"
    assert [a.start_step for a in job.attempts()][1] is not None


def test_train_all_on_a_cluster_with_cpus_for_one_runs_them_in_turn(studio: Studio) -> None:
    from nerf_widgets.widgets import ProjectBrowser

    projects = [posed_project(studio, "first"), posed_project(studio, "second")]
    jobs = studio.train_all(projects, max_steps=80, num_cpus=2, **SLOW)
    browser = ProjectBrowser(studio)
    runs = wait_any(jobs, lambda v: job_state(v) == "running")
    waits = jobs[1] if runs is jobs[0] else jobs[0]
    waiting = wait_view(waits, lambda v: job_state(v) == "waiting_for_resources" and "waiting_for" in v.get(
        "progress", {}))
    assert "Ray is waiting for 2 CPU to be free: 0 of 2 CPU free" in waiting["progress"]["waiting_for"]
    assert runs.record().state == "running" and waits.record().state == "waiting_for_resources"
    browser.refresh()
    html = " ".join(row.children[0].value for row in browser.rows.children)
    assert 'data-state="waiting_for_resources"' in html and 'data-state="running"' in html
    assert "2 CPU to be free" in html, html  # the waiting row's tooltip
    rows = [runs.wait(WAIT_S), waits.wait(WAIT_S)]
    assert [r.state for r in rows] == ["succeeded", "succeeded"], [r.error for r in rows]
    assert [p.state for p in projects] == ["TrainingCompleted", "TrainingCompleted"]
    browser.refresh()
    assert " ".join(row.children[0].value for row in browser.rows.children).count('data-state="succeeded"') == 2
    browser.close()


def test_a_gpu_job_on_a_cpu_only_cluster_waits_saying_why_and_can_be_cancelled(studio: Studio) -> None:
    project = posed_project(studio, "gpu")
    job = project.start_training(max_steps=20, device="cuda", job_type="ray_fake_train")
    view = wait_view(job, lambda v: "waiting_for" in v.get("progress", {}))
    assert job_state(view) == "waiting_for_resources" == job.record().state
    message = view["progress"]["waiting_for"]
    assert "Ray is waiting for a node with 1 CPU, 1 GPU: the cluster has 2 CPU, 0 GPU in all" in message
    assert "device='cpu'" in message
    job.cancel()
    row = job.wait(WAIT_S)
    assert row.state == "cancelled" and row.progress.get("step") is None
    assert project.state == "PosesEstimated"  # no model: back to where training can start


def test_real_engine_on_ray_then_export_and_preview_at_home(studio: Studio) -> None:
    from tests.jobs.jobs_scene import make_scene

    project = studio.create_project("engine")
    make_scene(project.dir / "poses")
    project.transition("upload_images", "test scene")
    project.transition("skip_pose_estimation", "analytic poses")
    job = project.start_training(max_steps=6, batch_rays=256, eval_every=3, checkpoint_every=3, eval_max_side=32,
                                 threads=1)
    row = job.wait(WAIT_S)
    assert row.state == "succeeded", row.error
    assert [p[0] for p in job.metrics()["psnr"]] == list(range(1, 7))
    assert row.progress["checkpoint_step"] == 6 and row.progress["node"]
    assert job.render_view(azimuth=30, elevation=20, size=24)[:4] == b"\x89PNG"
    export = project.export(format="ply", resolution=40)
    assert export.wait(WAIT_S).state == "succeeded", export.status
    assert export.path.stat().st_size > 0
    assert project.state == "ModelExported"
