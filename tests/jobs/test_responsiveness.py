"""While a torch training job keeps both cores busy on a runner thread, calls on the main thread keep
being answered and the job keeps stepping between them (how fast they are is measured by
tests/bench/jobs_latency.py, not asserted here: the machine may be shared), and heartbeats flow while paused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nerf_widgets.jobs import JobState, register_job_type, shutdown_runners
from nerf_widgets.jobs.api import start_training
from nerf_widgets.jobs.training import make_training_factory
from nerf_widgets.store import jobs as job_store
from nerf_widgets.studio import Project, Studio
from tests.jobs.fake_trainer import fake_config, torch_busy_train
from tests.waiting import blocked_in, wait_until

register_job_type("busy_train", make_training_factory(trainer=torch_busy_train, config_builder=fake_config))


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    studio = Studio(tmp_path / "home")
    p = studio.create_project("busy")
    p.transition("upload_images")
    p.transition("skip_pose_estimation")
    yield p
    shutdown_runners()
    studio.close()


def test_main_thread_stays_responsive_and_heartbeats_flow(project: Project) -> None:
    job = start_training(db=project.db, home=project.studio.home, project_id=project.id,
                         project_dir=project.dir, job_type="busy_train", max_steps=1_000_000)
    wait_until(lambda: job.progress.get("step", 0) >= 5, what="the first training steps")  # torch import first
    start_step, reads = job.progress["step"], 0
    while job.progress["step"] < start_step + 20:  # main-thread calls interleave with 20 training steps
        sum(range(2000))
        assert job.state is JobState.RUNNING  # a read of the job row, as a cell would do
        reads += 1
    assert reads >= 20  # at least one answered call per training step: the kernel's thread was never starved
    job.pause()
    thread = next(live.thread for live in job.runner.live_jobs() if live.job_id == job.id)
    wait_until(lambda: blocked_in(thread, "wait_while_paused"), what="the job blocked by the pause")
    first_beat = job_store.get_job(db=project.db, job_id=job.id).heartbeat_at  # taken while paused
    wait_until(lambda: job_store.get_job(db=project.db, job_id=job.id).heartbeat_at > first_beat,
               what="a heartbeat while paused")
    row = job_store.get_job(db=project.db, job_id=job.id)
    assert row.state == JobState.PAUSED.value
    job.cancel(wait=True)
