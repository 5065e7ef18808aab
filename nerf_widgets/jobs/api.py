"""Project-level job calls; ``studio.Project`` delegates its ``start_training``/``jobs``/``job`` here."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from nerf_widgets.core.errors import NotFoundError
from nerf_widgets.core.ids import new_id, validate_id
from nerf_widgets.core.paths import safe_join
from nerf_widgets.jobs.executor import ExecutorChoice
from nerf_widgets.jobs.handle import Job
from nerf_widgets.jobs.runner import runner_for
from nerf_widgets.store import jobs as job_store
from nerf_widgets.store.db import Database

__all__ = ["get_project_job", "list_project_jobs", "recover_project_jobs", "start_training"]


def start_training(*, db: Database, home: Path, project_id: str, project_dir: Path, method: str = "fast",
                   preset: str = "quick", max_minutes: float | None = None, max_steps: int | None = None,
                   device: str | None = None, memory_mb: int | None = None, job_type: str = "train",
                   executor: ExecutorChoice | None = None, num_cpus: int | None = None, **overrides: Any) -> Job:
    """Queue a training job (it starts when its device is free); returns its handle at once.

    The project moves to TrainingStarted now; ``StateConflictError`` if it has no poses or is training.
    ``executor`` says where it runs (default: this kernel); on Ray it asks for ``num_cpus`` CPUs (default 1)
    or one GPU.
    """
    params: dict[str, Any] = {"method": method, "preset": preset, "max_minutes": max_minutes,
                              "max_steps": max_steps, "device": device, "memory_mb": memory_mb,
                              "num_cpus": num_cpus, "overrides": overrides}
    if executor is not None and executor.name != "local":
        params.update(executor=executor.name, ray_address=executor.address)
    params = {k: v for k, v in params.items() if v is not None and v != {}}
    job_id = new_id("job")
    run_dir = safe_join(project_dir, "runs", job_id)
    run_dir.mkdir(parents=True)
    runner = runner_for(db, home)
    try:
        runner.submit(project_id=project_id, type=job_type, params=params, run_dir=run_dir, job_id=job_id)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return Job(runner, job_id)


def list_project_jobs(*, db: Database, home: Path, project_id: str) -> list[Job]:
    """Newest first; jobs whose kernel died are shown as failed ("Interrupted ...") and can be resumed."""
    runner = runner_for(db, home)
    runner.recover_interrupted(project_id)
    return [Job(runner, row.id) for row in job_store.list_jobs(db=db, project_id=project_id)]


def get_project_job(*, db: Database, home: Path, project_id: str, job_id: str) -> Job:
    validate_id(job_id, "job")
    row = job_store.get_job(db=db, job_id=job_id)
    if row.project_id != project_id:
        raise NotFoundError(f"Job {job_id} does not belong to this project.", job_id=job_id)
    runner = runner_for(db, home)
    runner.recover_interrupted(project_id)
    return Job(runner, job_id)


def recover_project_jobs(*, db: Database, home: Path, project_id: str) -> list[str]:
    """Mark the project's jobs whose kernel is gone as interrupted (the project follows through its hooks)."""
    return runner_for(db, home).recover_interrupted(project_id)
