"""Alerts raised while a job runs, stored with the job so a reopened notebook still lists them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nerf_widgets.store.db import Database

__all__ = ["AlertRow", "insert_alert", "list_alerts"]


@dataclass(frozen=True)
class AlertRow:
    id: int
    job_id: str
    code: str
    severity: str  # info | warning | critical
    message: str
    details: dict[str, Any]
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def insert_alert(*, db: Database, job_id: str, code: str, severity: str, message: str,
                 details: dict[str, Any], created_at: float) -> int:
    cur = db.execute(
        "INSERT INTO job_alerts (job_id, code, severity, message, details_json, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (job_id, code, severity, message, json.dumps(details, default=str), created_at),
    )
    return int(cur.lastrowid or 0)


def list_alerts(*, db: Database, job_id: str, limit: int = 200) -> list[AlertRow]:
    rows = db.query("SELECT * FROM job_alerts WHERE job_id = ? ORDER BY id DESC LIMIT ?", (job_id, limit))
    out = []
    for r in reversed(rows):
        d = dict(r)
        d["details"] = json.loads(d.pop("details_json") or "{}")
        out.append(AlertRow(**d))
    return out
