"""Project and state-history repository: ``verb_noun(*, db, ...)``; state changes go through ``domain.lifecycle``."""

from __future__ import annotations

import sqlite3

from nerf_widgets.core.errors import NotFoundError, ValidationError
from nerf_widgets.store.db import Database, utc_now
from nerf_widgets.store.records import HistoryEntry, ProjectRecord


def insert_project(*, db: Database, project_id: str, name: str, description: str, state: str) -> ProjectRecord:
    """Insert a project and its first history entry (``create``) in one transaction."""
    now = utc_now()
    try:
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO projects (id, name, description, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (project_id, name, description, state, now, now),
            )
            insert_history(db=db, project_id=project_id, from_state=None, to_state=state, transition="create",
                           reason="project created")
    except sqlite3.IntegrityError as err:
        if "projects.name" in str(err) or "UNIQUE" in str(err):
            raise ValidationError(f"A project named {name!r} already exists; choose another name.") from err
        raise
    return get_project(db=db, project_id=project_id)


def get_project(*, db: Database, project_id: str) -> ProjectRecord:
    row = db.query_one("SELECT * FROM projects WHERE id = ?", (project_id,))
    if row is None:
        raise NotFoundError(f"No project with id {project_id!r}.", project_id=project_id)
    return ProjectRecord.from_row(row)


def list_projects(*, db: Database) -> list[ProjectRecord]:
    """All projects, newest first."""
    return [ProjectRecord.from_row(r) for r in db.query("SELECT * FROM projects ORDER BY created_at DESC, id")]


def delete_project_row(*, db: Database, project_id: str) -> None:
    """Delete the project row; images, history, jobs and exports cascade."""
    with db.transaction() as conn:
        if conn.execute("DELETE FROM projects WHERE id = ?", (project_id,)).rowcount == 0:
            raise NotFoundError(f"No project with id {project_id!r}.", project_id=project_id)


def get_project_state(*, db: Database, project_id: str) -> str:
    row = db.query_one("SELECT state FROM projects WHERE id = ?", (project_id,))
    if row is None:
        raise NotFoundError(f"No project with id {project_id!r}.", project_id=project_id)
    return str(row["state"])


def set_project_state(*, db: Database, project_id: str, state: str) -> None:
    """Low-level write used only by ``domain.lifecycle.transition`` (inside its transaction)."""
    db.execute("UPDATE projects SET state = ?, updated_at = ? WHERE id = ?", (state, utc_now(), project_id))


def insert_history(
    *, db: Database, project_id: str, from_state: str | None, to_state: str, transition: str, reason: str
) -> None:
    db.execute(
        "INSERT INTO state_history (project_id, from_state, to_state, transition, reason, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (project_id, from_state, to_state, transition, reason, utc_now()),
    )


def list_history(*, db: Database, project_id: str) -> list[HistoryEntry]:
    """Transitions, oldest first."""
    rows = db.query("SELECT * FROM state_history WHERE project_id = ? ORDER BY id", (project_id,))
    return [HistoryEntry.from_row(r) for r in rows]


__all__ = [
    "delete_project_row",
    "get_project",
    "get_project_state",
    "insert_history",
    "insert_project",
    "list_history",
    "list_projects",
    "set_project_state",
]
