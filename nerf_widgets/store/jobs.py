"""Job rows and their attempts: ``verb_noun(*, db, ...)`` repository functions.

The store writes what it is told; which state may follow which is decided by
``nerf_widgets.jobs.states`` (callers check inside ``db.transaction()`` before writing).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from nerf_widgets.core.errors import NotFoundError
from nerf_widgets.store.db import Database, utc_now

__all__ = [
    "AttemptRow",
    "JobRow",
    "finish_attempt",
    "get_job",
    "insert_attempt",
    "insert_job",
    "list_attempts",
    "list_jobs",
    "set_job_progress",
    "set_job_state",
    "touch_heartbeats",
]


@dataclass(frozen=True)
class JobRow:
    id: str
    project_id: str
    type: str
    params: dict[str, Any]
    state: str
    attempts: int
    progress: dict[str, Any]
    error: str | None
    traceback: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    run_dir: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobRow:
        data = dict(row)
        data["params"] = json.loads(data.pop("params_json") or "{}")
        data["progress"] = json.loads(data.pop("progress_json") or "{}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "traceback"}


@dataclass(frozen=True)
class AttemptRow:
    job_id: str
    number: int
    state: str
    pid: int
    host: str
    kernel_id: str
    start_step: int | None
    end_step: int | None
    error: str | None
    traceback: str | None
    started_at: float
    finished_at: float | None


def insert_job(*, db: Database, job_id: str, project_id: str, type: str, params: dict[str, Any], state: str,
               run_dir: str | None) -> JobRow:
    db.execute(
        "INSERT INTO jobs (id, project_id, type, params_json, state, created_at, run_dir) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (job_id, project_id, type, json.dumps(params, sort_keys=True), state, utc_now(), run_dir),
    )
    return get_job(db=db, job_id=job_id)


def get_job(*, db: Database, job_id: str) -> JobRow:
    row = db.query_one("SELECT * FROM jobs WHERE id = ?", (job_id,))
    if row is None:
        raise NotFoundError(f"No job with id {job_id}.", job_id=job_id)
    return JobRow.from_row(row)


def list_jobs(*, db: Database, project_id: str | None = None, states: list[str] | None = None) -> list[JobRow]:
    """Newest first; filtered by project and/or states."""
    where, params = [], []
    if project_id is not None:
        where.append("project_id = ?")
        params.append(project_id)
    if states:
        where.append(f"state IN ({', '.join('?' * len(states))})")
        params.extend(states)
    sql = "SELECT * FROM jobs" + (f" WHERE {' AND '.join(where)}" if where else "")
    return [JobRow.from_row(r) for r in db.query(sql + " ORDER BY created_at DESC, rowid DESC", params)]


def set_job_state(*, db: Database, job_id: str, state: str, error: str | None = None, traceback: str | None = None,
                  started: bool = False, finished: bool = False, new_attempt: bool = False) -> None:
    """Write a state (already checked by the caller); ``error``/``traceback`` are replaced, not merged."""
    now = utc_now()
    db.execute(
        "UPDATE jobs SET state = ?, error = ?, traceback = ?, "
        "started_at = CASE WHEN ? THEN ? ELSE started_at END, "
        "finished_at = CASE WHEN ? THEN ? WHEN ? = 'queued' THEN NULL ELSE finished_at END, "
        "attempts = attempts + ?, heartbeat_at = CASE WHEN ? THEN ? ELSE heartbeat_at END WHERE id = ?",
        (state, error, traceback, started, now, finished, now, state, int(new_attempt), started, now, job_id),
    )


def set_job_progress(*, db: Database, job_id: str, progress: dict[str, Any]) -> None:
    db.execute("UPDATE jobs SET progress_json = ? WHERE id = ?", (json.dumps(progress), job_id))


def touch_heartbeats(*, db: Database, job_ids: list[str], at: float | None = None) -> None:
    """One write for every running job of this kernel (the reaper reads ``heartbeat_at``)."""
    if job_ids:
        now = at if at is not None else utc_now()
        db.execute(f"UPDATE jobs SET heartbeat_at = ? WHERE id IN ({', '.join('?' * len(job_ids))})", (now, *job_ids))


def insert_attempt(*, db: Database, job_id: str, number: int, pid: int, host: str, kernel_id: str,
                   start_step: int | None) -> None:
    db.execute(
        "INSERT INTO job_attempts (job_id, number, state, pid, host, kernel_id, start_step, started_at) "
        "VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
        (job_id, number, pid, host, kernel_id, start_step, utc_now()),
    )


def finish_attempt(*, db: Database, job_id: str, number: int, state: str, end_step: int | None,
                   error: str | None = None, traceback: str | None = None) -> None:
    db.execute(
        "UPDATE job_attempts SET state = ?, end_step = ?, error = ?, traceback = ?, finished_at = ? "
        "WHERE job_id = ? AND number = ?",
        (state, end_step, error, traceback, utc_now(), job_id, number),
    )


def list_attempts(*, db: Database, job_id: str) -> list[AttemptRow]:
    rows = db.query("SELECT * FROM job_attempts WHERE job_id = ? ORDER BY number", (job_id,))
    return [AttemptRow(**dict(r)) for r in rows]
