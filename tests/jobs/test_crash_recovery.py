"""A job in another process is killed with SIGKILL; a new runner sees it interrupted and resumes it
from its last checkpoint (the step count continues, it does not restart at 0)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from nerf_widgets.jobs import Job, JobRunner, register_job_type, shutdown_runners
from nerf_widgets.jobs.registry import job_factory
from nerf_widgets.jobs.training import make_training_factory
from nerf_widgets.store import jobs as job_store
from nerf_widgets.store import projects as project_store
from nerf_widgets.store.db import Database
from nerf_widgets.studio import Studio
from tests.jobs import jobs_helpers
from tests.jobs.fake_trainer import fake_config, fake_train
from tests.jobs.jobs_helpers import make_project, wait_until

CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {helpers!r})
    import jobs_helpers
    from pathlib import Path
    from nerf_widgets.jobs import JobRunner
    from nerf_widgets.store.db import open_db
    db = open_db({home!r})
    runner = JobRunner(db, Path({home!r}), monitor_interval=0.05, heartbeat_interval=0.1)
    job_id = runner.submit(project_id={project!r}, type="test_count", run_dir=Path({run_dir!r}),
                           params={{"steps": 100000, "sleep": 0.002, "ckpt_every": 25}})
    print(job_id, flush=True)
    time.sleep(600)
""")


def test_sigkill_then_resume_continues_from_checkpoint(db: Database, tmp_path: Path) -> None:
    home = db.path.parent
    project = make_project(db)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    script = CHILD.format(helpers=str(Path(jobs_helpers.__file__).parent), home=str(home), project=project,
                          run_dir=str(run_dir))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        job_id = child.stdout.readline().strip()  # type: ignore[union-attr]
        wait_until(lambda: child.poll() is None
                   and job_store.get_job(db=db, job_id=job_id).progress.get("checkpoint_step", 0) >= 75,
                   what="three checkpoints in the child")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    before = job_store.get_job(db=db, job_id=job_id)
    assert before.state == "running"  # nobody could write anything on the way down
    ckpt = before.progress["checkpoint_step"]
    on_disk = json.loads((run_dir / "ckpt.json").read_text())["step"]  # may be ahead of the last flush

    runner = JobRunner(db, home, monitor_interval=0.05)
    try:
        assert runner.recover_interrupted() == [job_id]
        job = Job(runner, job_id)
        row = job.record()
        assert row.state == "failed" and row.error.startswith("Interrupted")
        assert f"checkpoint at step {ckpt}" in row.error
        seen_before = job.metrics(max_points=10**6)["psnr"][-1][0]
        job.resume()
        wait_until(lambda: job.progress.get("step", 0) >= ckpt + 30, what="30 steps after the resume")
        job.cancel(wait=True)
    finally:
        runner.shutdown()
    row = job.record()
    attempts = job.attempts()
    assert [a.state for a in attempts] == ["failed", "cancelled"] and attempts[0].pid == child.pid
    assert row.progress["resumed_from"] == on_disk >= ckpt > 0
    steps = [p[0] for p in job.metrics(max_points=10**6)["psnr"]]
    assert steps == list(range(1, steps[-1] + 1))  # no gap, no duplicate across the crash
    assert steps[-1] >= ckpt + 30 and seen_before >= ckpt - 25


TRAIN_CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from tests.jobs.fake_trainer import fake_config, fake_train
    from nerf_widgets.jobs import register_job_type
    from nerf_widgets.jobs.training import make_training_factory
    from nerf_widgets.studio import Studio
    register_job_type("train", make_training_factory(trainer=fake_train, config_builder=fake_config))
    project = Studio({home!r}).project({project!r})
    from nerf_widgets.jobs.api import start_training
    job = start_training(db=project.db, home=project.studio.home, project_id=project.id, project_dir=project.dir,
                         max_steps=1_000_000, sleep=0.002)
    print(job.id, flush=True)
    time.sleep(600)
""")


@pytest.fixture
def fake_train_type() -> Iterator[None]:
    """The "train" job type runs the fake trainer here, as in the child (the panel follows "train" jobs)."""
    real = job_factory("train")
    register_job_type("train", make_training_factory(trainer=fake_train, config_builder=fake_config))
    yield
    register_job_type("train", real)


def test_killed_kernel_leaves_the_project_interrupted_with_resume_offered(tmp_path: Path,
                                                                          fake_train_type: None) -> None:
    """The project says what is true after a SIGKILL mid-training (read without asking for the jobs first)."""
    home = tmp_path / "home"
    with Studio(home) as studio:
        project = studio.create_project("crash")
        project.transition("upload_images", "test")
        project.transition("skip_pose_estimation", "test")
    script = TRAIN_CHILD.format(root=str(Path(__file__).parents[2]), home=str(home), project=project.id)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        job_id = child.stdout.readline().strip()  # type: ignore[union-attr]
        with Studio(home) as watcher:
            wait_until(lambda: child.poll() is None and job_store.get_job(db=watcher.db, job_id=job_id)
                       .progress.get("checkpoint_step", 0) >= 40, what="two checkpoints in the child")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(60)
    studio = Studio(home)
    try:
        reopened = studio.project(project.id)
        assert project_store.get_project_state(db=studio.db, project_id=project.id) == "TrainingInProgress"
        assert reopened.state == "TrainingInterrupted"  # the read itself finds the dead kernel
        assert {"resume_training", "retry", "abandon"} <= set(reopened.allowed_transitions())
        last = reopened.history[-1]
        assert (last.from_state, last.transition) == ("TrainingInProgress", "training_interrupted")
        assert "Interrupted" in last.reason
        job = reopened.job(job_id)
        assert job.record().state == "failed" and job.record().error.startswith("Interrupted")
        ckpt = job.record().progress["checkpoint_step"]
        from nerf_widgets.widgets.training_panel import TrainingPanel

        panel = TrainingPanel(reopened)  # what a person sees: resume and retry offered, nothing to pause
        offered = {name for name, button in panel.buttons.items() if not button.disabled}
        panel.close()
        assert offered == {"start", "resume", "retry"}, offered
        job.resume()
        assert [h.transition for h in reopened.history][-1] == "resume_training"
        wait_until(lambda: job.progress.get("step", 0) > ckpt + 5, what="the resumed job stepping")
        assert reopened.state == "TrainingInProgress"
        job.cancel(wait=True)
        assert reopened.state == "TrainingCompleted"  # stopped with checkpoints: a usable model
        assert job.record().progress["resumed_from"] >= ckpt
    finally:
        shutdown_runners()
        studio.close()
