"""Metric series of a job: one row per (job, metric, step), downsampled on read for long runs."""

from __future__ import annotations

import math
from collections.abc import Iterable

from nerf_widgets.store.db import Database

__all__ = ["MetricPoint", "add_metric_points", "list_metric_names", "read_points_after", "read_series", "count_points"]

MetricPoint = tuple[str, int, float, float]  # (name, step, elapsed_s, value)


def add_metric_points(*, db: Database, job_id: str, points: Iterable[MetricPoint]) -> int:
    """Upsert points in one transaction; a resumed run that replays steps overwrites, never duplicates."""
    rows = [(job_id, n, int(s), float(e), None if not math.isfinite(v) else float(v)) for n, s, e, v in points]
    if rows:
        with db.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO metric_points (job_id, name, step, elapsed_s, value) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
    return len(rows)


def list_metric_names(*, db: Database, job_id: str) -> list[str]:
    return [r[0] for r in db.query("SELECT DISTINCT name FROM metric_points WHERE job_id = ? ORDER BY name", (job_id,))]


def count_points(*, db: Database, job_id: str, name: str) -> int:
    row = db.query_one("SELECT COUNT(*) FROM metric_points WHERE job_id = ? AND name = ?", (job_id, name))
    return int(row[0]) if row else 0


def read_series(*, db: Database, job_id: str, name: str, max_points: int = 2000) -> list[tuple[int, float, float]]:
    """``[(step, elapsed_s, value)]`` by step; at most ``max_points`` buckets of equal step width.

    Each bucket reports its last step and time with the mean value (a smoothed curve that keeps its
    shape); the final point of the series is always its true last value.
    """
    n = count_points(db=db, job_id=job_id, name=name)
    if n <= max_points:
        rows = db.query(
            "SELECT step, elapsed_s, value FROM metric_points WHERE job_id = ? AND name = ? ORDER BY step",
            (job_id, name),
        )
        return [(int(r[0]), float(r[1]), _nan(r[2])) for r in rows]
    bounds = db.query("SELECT MIN(step), MAX(step) FROM metric_points WHERE job_id = ? AND name = ?", (job_id, name))
    lo, hi = int(bounds[0][0]), int(bounds[0][1])
    width = max(1, math.ceil((hi - lo + 1) / max(1, max_points - 1)))
    rows = db.query(
        "SELECT MAX(step), MAX(elapsed_s), AVG(value) FROM metric_points WHERE job_id = ? AND name = ? "
        "GROUP BY (step - ?) / ? ORDER BY 1",
        (job_id, name, lo, width),
    )
    series = [(int(r[0]), float(r[1]), _nan(r[2])) for r in rows]
    last = db.query_one(
        "SELECT step, elapsed_s, value FROM metric_points WHERE job_id = ? AND name = ? ORDER BY step DESC LIMIT 1",
        (job_id, name),
    )
    if last is not None and series:
        series[-1] = (int(last[0]), float(last[1]), _nan(last[2]))
    return series


def read_points_after(*, db: Database, job_id: str, after_step: int) -> list[tuple[str, int, float, float]]:
    """Every point ``(name, step, elapsed_s, value)`` with ``step > after_step``, by step then name."""
    rows = db.query("SELECT name, step, elapsed_s, value FROM metric_points WHERE job_id = ? AND step > ? "
                    "ORDER BY step, name", (job_id, after_step))
    return [(str(r[0]), int(r[1]), float(r[2]), _nan(r[3])) for r in rows]


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
