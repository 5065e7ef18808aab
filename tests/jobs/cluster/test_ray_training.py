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

from nerf_widgets.jobs import shutdown_runners
from nerf_widgets.studio import Studio
from tests.jobs.cluster.ray_helpers import WAIT_S, job_state, posed_project, step_of, wait_view

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
    ckpts = sorted(p.name for p in (Path(row.run_dir) / "checkpoints").iterdir())
    assert ckpts[-1] == "step_000060.ckpt" and row.progress["checkpoint_step"] == 60
    assert row.progress["checkpoint"] == str(Path(row.run_dir) / "checkpoints" / "step_000060.ckpt")
    assert (Path(row.run_dir) / "renders" / "preview_rendered.png").read_bytes()[:4] == b"\x89PNG"
    view = job.bus.snapshot().state
    assert view["preview"]["step"] == 50 and view["system"]["node"] and view["system"]["pid"] == row.progress[
        "worker_pid"]
    names = [h.transition for h in project.history]
    assert names[-3:] == ["start_training", "training_progress", "training_completed"]


def test_pause_resume_cancel_cross_to_the_worker(studio: Studio) -> None:
    project = posed_project(studio, "control")
    job = project.start_training(max_steps=100000, **SLOW)
    wait_view(job, lambda v: step_of(v) >= 5)
    job.pause()
    paused = wait_view(job, lambda v: v.get("progress", {}).get("stage") == "paused")
    at = step_of(paused)
    job.resume()
    wait_view(job, lambda v: step_of(v) >= at + 5 and job_state(v) == "running")
    job.cancel()
    row = job.wait(WAIT_S)
    assert row.state == "cancelled" and row.progress["step"] > at
    assert project.state in ("TrainingStopped", "TrainingCancelled")


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
    assert (Path(row.run_dir) / "checkpoints" / f"step_{ckpt:06d}.ckpt").is_file()
    assert project.state == "TrainingFailed"
    job.resume()
    view = wait_view(job, lambda v: step_of(v) >= ckpt + 3)
    assert view["progress"]["resumed_from"] == ckpt
    job.cancel()
    assert job.wait(WAIT_S).state == "cancelled"
    assert [a.start_step for a in job.attempts()][1] is not None
