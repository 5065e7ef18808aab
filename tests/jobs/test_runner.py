"""Runner with plain job functions: states, pause/resume, cancel, retry, resource waits, metrics store."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import tests.jobs.jobs_helpers  # noqa: F401  (registers the test job type)
from nerf_widgets.core.errors import ResourceUnavailableError, StateConflictError, ValidationError
from nerf_widgets.jobs import Cursor, Job, JobContext, JobRunner, JobSpec, JobState, ResourceRequest, register_job_type
from nerf_widgets.store import jobs as job_store
from nerf_widgets.store.db import Database
from tests.jobs.jobs_helpers import make_project
from tests.waiting import blocked_in, wait_until

PAUSE_WAITS = ("check", "wait_while_paused")  # where a paused job's thread blocks (JobContext)


def submit(runner: JobRunner, project_id: str, tmp_path: Path, **params: object) -> Job:
    run_dir = tmp_path / f"run{time.monotonic_ns()}"
    run_dir.mkdir()
    job_id = runner.submit(project_id=project_id, type="test_count", params=dict(params), run_dir=run_dir)
    return Job(runner, job_id)


def job_thread(runner: JobRunner, job: Job):  # type: ignore[no-untyped-def]
    return next(live.thread for live in runner.live_jobs() if live.job_id == job.id)


def test_job_runs_to_success_and_stores_metrics(runner: JobRunner, project_id: str, tmp_path: Path) -> None:
    job = submit(runner, project_id, tmp_path, steps=40, sleep=0.002)
    row = job.wait(120)
    assert row.state == "succeeded" and row.error is None
    assert row.started_at and row.finished_at and row.finished_at >= row.started_at
    assert row.progress["result"] == {"final_step": 40} and row.progress["step"] == 40
    series = job.metrics()
    assert [p[0] for p in series["psnr"]] == list(range(1, 41))
    assert series["psnr"][-1][2] > series["psnr"][0][2]
    assert [a.state for a in job.attempts()] == ["succeeded"]
    states = [e.data["state"] for e in job.bus.events_after(Cursor(job.bus.epoch, 0)) or [] if e.kind == "state"]
    assert states == ["queued", "running", "succeeded"]


def test_pause_blocks_progress_and_resume_continues(runner: JobRunner, project_id: str, tmp_path: Path) -> None:
    job = submit(runner, project_id, tmp_path, steps=400, sleep=0.005)
    wait_until(lambda: job.progress.get("step", 0) >= 5)
    job.pause()
    assert job.state is JobState.PAUSED
    thread = job_thread(runner, job)
    wait_until(lambda: blocked_in(thread, *PAUSE_WAITS), what="the job blocked by the pause")
    held = job.progress["step"]  # a blocked thread reports nothing: this is the last step until resume
    assert blocked_in(thread, *PAUSE_WAITS) and job.progress["step"] == held
    with pytest.raises(StateConflictError, match="pause"):
        job.pause()
    job.resume()
    assert job.state is JobState.RUNNING
    wait_until(lambda: job.progress.get("step", 0) > held + 5)
    job.cancel(wait=True)
    assert job.state is JobState.CANCELLED


def test_cancel_running_job(runner: JobRunner, project_id: str, tmp_path: Path) -> None:
    job = submit(runner, project_id, tmp_path, steps=10_000, sleep=0.005)
    wait_until(lambda: job.progress.get("step", 0) >= 3)
    asked_at = job.progress["step"]
    job.cancel(wait=True, timeout=120)
    row = job.record()
    # it stops at its next check: the step running when cancel came (and one that began meanwhile), no more
    assert row.progress["step"] <= asked_at + 2
    assert row.state == "cancelled" and row.finished_at is not None
    assert not runner.is_live(job.id) and runner.pool.holders() == {}
    with pytest.raises(StateConflictError, match="cancelled"):
        job.pause()


def test_retry_after_forced_failure_continues_from_checkpoint(runner: JobRunner, project_id: str,
                                                               tmp_path: Path) -> None:
    job = submit(runner, project_id, tmp_path, steps=60, sleep=0.002, fail_at=35, ckpt_every=10)
    row = job.wait(120)
    assert row.state == "failed"
    assert row.error == "RuntimeError: forced failure at step 35"
    assert "Traceback" in (row.traceback or "") and "forced failure" in row.traceback
    assert any(a["code"] == "job_failed" and a["severity"] == "critical" for a in job.alerts())
    job.retry()
    row = job.wait(120)
    assert row.state == "succeeded" and row.attempts == 2 and row.error is None
    attempts = job.attempts()
    assert [(a.number, a.state) for a in attempts] == [(1, "failed"), (2, "succeeded")]
    assert attempts[1].start_step == 34 and row.progress["resumed_from"] == 30  # step kept, checkpoint at 30
    assert [p[0] for p in job.metrics()["psnr"]] == list(range(1, 61))  # replayed steps overwrite
    with pytest.raises(StateConflictError, match="succeeded"):
        job.retry()


def test_second_job_waits_for_resources_until_first_ends(runner: JobRunner, project_id: str, db: Database,
                                                         tmp_path: Path) -> None:
    first = submit(runner, project_id, tmp_path, steps=10_000, sleep=0.005)
    wait_until(lambda: first.progress.get("step", 0) >= 1)  # running, and it has reported a step
    second = submit(runner, make_project(db), tmp_path, steps=20, sleep=0.001)
    wait_until(lambda: second.state is JobState.WAITING_FOR_RESOURCES)
    assert "busy with job" in second.progress["waiting_for"]
    seen = first.progress["step"]
    wait_until(lambda: first.progress.get("step", 0) >= seen + 20, what="20 more steps of the first job")
    assert second.state is JobState.WAITING_FOR_RESOURCES and second.progress.get("step") is None
    first.cancel(wait=True)
    assert second.wait(120).state == "succeeded"


def test_cancel_waiting_job_and_impossible_memory(runner: JobRunner, project_id: str, tmp_path: Path) -> None:
    first = submit(runner, project_id, tmp_path, steps=10_000, sleep=0.005)
    second = submit(runner, project_id, tmp_path, steps=5)
    wait_until(lambda: second.state is JobState.WAITING_FOR_RESOURCES)
    second.cancel()
    assert second.state is JobState.CANCELLED and second.record().error == "Cancelled before it started."
    first.cancel(wait=True)
    before = len(job_store.list_jobs(db=runner.db))
    with pytest.raises(ResourceUnavailableError, match="in total"):
        submit(runner, project_id, tmp_path, steps=5, memory=1 << 60)
    with pytest.raises(ValidationError, match="Unknown job type"):
        runner.submit(project_id=project_id, type="nope", params={})
    assert len(job_store.list_jobs(db=runner.db)) == before  # nothing written for refused jobs


STALL_GATE = threading.Event()  # the "test_stall" job waits here after its first step


def stalling_job(ctx: JobContext) -> dict[str, int]:
    ctx.report_step(1, 0.0, {"psnr": 10.0}, max_steps=2)
    assert STALL_GATE.wait(120), "the test never released the job"
    ctx.report_step(2, 0.0, {"psnr": 11.0}, max_steps=2)
    return {"final_step": 2}


register_job_type("test_stall", lambda row, db: JobSpec(stalling_job, ResourceRequest(device="cpu")))


def test_stall_alert_raised_once_per_stall(db: Database, project_id: str, tmp_path: Path) -> None:
    """Counted in monitor ticks (each publishes one system sample), not seconds: one alert for the stall,
    however many ticks it lasts."""
    from nerf_widgets.jobs import AlertThresholds

    STALL_GATE.clear()
    runner = JobRunner(db, tmp_path / "home", monitor_interval=0.05, thresholds=AlertThresholds(stall_s=0.3))
    try:
        job = Job(runner, runner.submit(project_id=project_id, type="test_stall", params={}, run_dir=tmp_path))
        wait_until(lambda: any(a["code"] == "stalled" for a in job.alerts()), what="the stall alert")
        ticks = runner.system_bus.seq
        wait_until(lambda: runner.system_bus.seq >= ticks + 20, what="20 more monitor ticks of the same stall")
        STALL_GATE.set()
        assert job.wait(120).state == "succeeded"
    finally:
        STALL_GATE.set()
        runner.shutdown()
    codes = [a["code"] for a in job.alerts()]
    assert codes.count("stalled") == 1, codes
    stalled = next(a for a in job.alerts() if a["code"] == "stalled")
    assert stalled["severity"] == "warning" and "No training step" in stalled["message"]
