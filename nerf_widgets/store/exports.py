"""Export rows (the seed's ``/exports``): ``verb_noun(*, db, ...)`` repository functions.

One row per export request of a project. ``status`` mirrors the state of the job that makes the
files (queued ... succeeded | failed | cancelled); ``path`` is the downloadable file relative to the
project folder (the file itself, or a zip for multi-file formats) and is set only once it exists.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from nerf_widgets.core.errors import NotFoundError
from nerf_widgets.store.db import Database, utc_now

__all__ = ["ExportRow", "get_export", "insert_export", "list_exports", "set_export_status"]


@dataclass(frozen=True)
class ExportRow:
    id: str
    project_id: str
    job_id: str | None
    format: str
    options: dict[str, Any]
    path: str | None  # relative to the project folder, e.g. "exports/exp_.../scene.glb"
    status: str
    size_bytes: int | None
    created_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ExportRow:
        data = dict(row)
        data["options"] = json.loads(data.pop("options_json") or "{}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def insert_export(*, db: Database, export_id: str, project_id: str, job_id: str | None, format: str,
                  options: dict[str, Any], status: str) -> bool:
    """Insert the row unless it exists already (job hooks and the caller may race); True when inserted."""
    cur = db.execute(
        "INSERT OR IGNORE INTO exports (id, project_id, job_id, format, options_json, status, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (export_id, project_id, job_id, format, json.dumps(options, sort_keys=True), status, utc_now()),
    )
    return cur.rowcount == 1


def set_export_status(*, db: Database, export_id: str, status: str, path: str | None = None,
                      size_bytes: int | None = None, clear_path: bool = False) -> None:
    """Write the status; ``path``/``size_bytes`` are kept unless given (or cleared with ``clear_path``)."""
    db.execute(
        "UPDATE exports SET status = ?, "
        "path = CASE WHEN ? THEN NULL ELSE COALESCE(?, path) END, "
        "size_bytes = CASE WHEN ? THEN NULL ELSE COALESCE(?, size_bytes) END WHERE id = ?",
        (status, clear_path, path, clear_path, size_bytes, export_id),
    )


def get_export(*, db: Database, export_id: str) -> ExportRow:
    row = db.query_one("SELECT * FROM exports WHERE id = ?", (export_id,))
    if row is None:
        raise NotFoundError(f"No export with id {export_id}.", export_id=export_id)
    return ExportRow.from_row(row)


def list_exports(*, db: Database, project_id: str, statuses: list[str] | None = None) -> list[ExportRow]:
    """A project's exports, newest first, optionally only those in ``statuses``."""
    sql, params = "SELECT * FROM exports WHERE project_id = ?", [project_id]
    if statuses:
        sql += f" AND status IN ({', '.join('?' * len(statuses))})"
        params.extend(statuses)
    return [ExportRow.from_row(r) for r in db.query(sql + " ORDER BY created_at DESC, rowid DESC", params)]
