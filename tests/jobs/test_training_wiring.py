"""Training wiring through the Python API: lifecycle moves with the job, pause in on_step, cancel via
should_stop, retry after a forced failure continues from the checkpoint (engine replaced by a fake that
keeps its callback contract)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nerf_widgets.core.errors import StateConflictError, ValidationError
from nerf_widgets.domain import lifecycle
from nerf_widgets.jobs import Job, JobState, register_job_type, shutdown_runners
from nerf_widgets.jobs.api import list_project_jobs, start_training
from nerf_widgets.jobs.training import make_training_factory
from nerf_widgets.studio import Studio
from tests.jobs.fake_trainer import fake_config, fake_train
from tests.waiting import blocked_in, wait_until

register_job_type("fake_train", make_training_factory(trainer=fake_train, config_builder=fake_config))


@pytest.fixture
def posed(tmp_path: Path) -> Iterator[tuple[Studio, str]]:
    studio = Studio(tmp_path / "home")
    project = studio.create_project("scene")
    lifecycle.transition(db=studio.db, project_id=project.id, name="upload_images")
    lifecycle.transition(db=studio.db, project_id=project.id, name="skip_pose_estimation")
    yield studio, project.id
    shutdown_runners()
    studio.close()


def start(posed: tuple[Studio, str], **kw: object) -> Job:
    studio, pid = posed
    return start_training(db=studio.db, home=studio.home, project_id=pid, project_dir=studio.project_dir(pid),
                          job_type="fake_train", **kw)  # type: ignore[arg-type]


def state(posed: tuple[Studio, str]) -> str:
    return lifecycle.project_store.get_project_state(db=posed[0].db, project_id=posed[1])  # type: ignore[attr-defined]


def job_thread(job: Job):  # type: ignore[no-untyped-def]
    return next(live.thread for live in job.runner.live_jobs() if live.job_id == job.id)


def test_training_success_moves_lifecycle(posed: tuple[Studio, str]) -> None:
    job = start(posed, max_steps=120)
    row = job.wait(120)
    assert row.state == "succeeded" and row.progress["result"]["final_step"] == 120
    assert state(posed) == "TrainingCompleted"
    names = [h.transition for h in posed[0].project(posed[1]).history]
    assert names[-3:] == ["start_training", "training_progress", "training_completed"]
    m = job.metrics()
    assert {"loss", "psnr", "eval_psnr", "eval_ssim", "eval_lpips", "steps_per_s"} <= set(m)
    assert [p[0] for p in m["eval_psnr"]] == [50, 100]
    assert (Path(row.run_dir) / "renders" / "preview_rendered.png").read_bytes()[:4] == b"\x89PNG"
    snap = job.bus.snapshot().state
    assert snap["preview"]["step"] == 100 and snap["convergence"]["status"] in ("improving", "plateau", "unknown")
    with pytest.raises(StateConflictError, match="TrainingCompleted|retrain"):
        lifecycle.transition(db=posed[0].db, project_id=posed[1], name="start_training")


def test_pause_resume_cancel_keep_lifecycle_consistent(posed: tuple[Studio, str]) -> None:
    job = start(posed, max_steps=100_000, sleep=0.003)
    wait_until(lambda: job.progress.get("step", 0) > 25)
    assert state(posed) == "TrainingInProgress"
    job.pause()
    thread = job_thread(job)
    wait_until(lambda: blocked_in(thread, "wait_while_paused"), what="on_step blocked by the pause")
    held = job.progress["step"]  # a blocked trainer reports nothing: this is the last step until resume
    assert blocked_in(thread, "wait_while_paused") and job.progress["step"] == held
    assert state(posed) == "TrainingInProgress" and job.progress["stage"] == "paused"
    job.resume()
    wait_until(lambda: job.progress.get("step", 0) > held + 10)
    job.cancel(wait=True)
    assert job.state is JobState.CANCELLED
    assert state(posed) == "TrainingCompleted"  # a checkpoint exists: stopped with a usable model


def test_retry_after_failure_resumes_from_checkpoint(posed: tuple[Studio, str]) -> None:
    job = start(posed, max_steps=100_000, sleep=0.002)
    wait_until(lambda: job.progress.get("checkpoint_step", 0) >= 40)
    job.cancel(wait=True)
    ckpt = job.record().progress["checkpoint_step"]
    # make the next attempt fail right at its first step, as a crashing trainer would
    row = job.record()
    posed[0].db.execute("UPDATE jobs SET params_json = ? WHERE id = ?",
                        (json.dumps({"max_steps": 100_000, "overrides": {"fail_at": ckpt + 1, "sleep": 0.002}}), job.id))
    stale = Path(row.run_dir) / "checkpoints" / ".ckpt_x.pt.tmp999"  # as a killed attempt leaves it
    stale.write_bytes(b"half")
    job.retry()
    failed = job.wait(120)
    assert not stale.exists()
    assert failed.state == "failed" and "told to fail" in failed.error and state(posed) == "TrainingFailed"
    posed[0].db.execute("UPDATE jobs SET params_json = ? WHERE id = ?", (
        json.dumps({"max_steps": ckpt + 30, "overrides": {"sleep": 0.001}}), job.id))
    job.retry()
    done = job.wait(120)
    assert done.state == "succeeded" and done.attempts == 3 and row.id == done.id
    assert done.progress["result"]["resumed_from"] == ckpt  # continued from the checkpoint, not step 0
    assert state(posed) == "TrainingCompleted"
    assert [j.id for j in list_project_jobs(db=posed[0].db, home=posed[0].home, project_id=posed[1])] == [job.id]


def test_second_training_waits_for_the_device(posed: tuple[Studio, str], tmp_path: Path) -> None:
    studio, _ = posed
    other = studio.create_project("other")
    lifecycle.transition(db=studio.db, project_id=other.id, name="upload_images")
    lifecycle.transition(db=studio.db, project_id=other.id, name="skip_pose_estimation")
    first = start(posed, max_steps=100_000, sleep=0.003)
    second = start_training(db=studio.db, home=studio.home, project_id=other.id, project_dir=other.dir,
                            job_type="fake_train", max_steps=30)
    wait_until(lambda: second.state is JobState.WAITING_FOR_RESOURCES)
    with pytest.raises(StateConflictError, match="Wait for the current training"):
        start(posed, max_steps=10)  # same project: refused by the lifecycle, nothing written
    first.cancel(wait=True)
    assert second.wait(120).state == "succeeded"


def test_bad_budget_is_refused_before_anything_is_written(posed: tuple[Studio, str]) -> None:
    with pytest.raises(ValidationError, match="max_minutes"):
        start(posed, max_minutes=-1)
    with pytest.raises(ValidationError, match="device"):
        start(posed, device="tpu")
    assert state(posed) == "PosesEstimated"
    assert list(Path(posed[0].project_dir(posed[1]), "runs").iterdir()) == []


def test_a_new_training_from_an_interrupted_project_is_a_retry(posed: tuple[Studio, str]) -> None:
    studio, pid = posed
    for name in ("start_training", "training_progress", "training_interrupted"):  # as a killed kernel leaves it
        lifecycle.transition(db=studio.db, project_id=pid, name=name)
    job = start(posed, max_steps=30)
    assert job.wait(120).state == "succeeded"
    names = [h.transition for h in studio.project(pid).history]
    assert names[-4:] == ["training_interrupted", "retry", "training_progress", "training_completed"]
