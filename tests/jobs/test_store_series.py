"""Metric series in the store: upsert on replay, downsampling on read keeps shape and the last point."""

from __future__ import annotations

import math
from pathlib import Path

from nerf_widgets.core.ids import new_id
from nerf_widgets.store import alerts as alert_store
from nerf_widgets.store import jobs as job_store
from nerf_widgets.store import metrics as metric_store
from nerf_widgets.store.db import Database


def _job(db: Database, project_id: str, tmp_path: Path) -> str:
    job_id = new_id("job")
    job_store.insert_job(db=db, job_id=job_id, project_id=project_id, type="train", params={"a": 1},
                         state="queued", run_dir=str(tmp_path))
    return job_id


def test_series_downsampled_on_read(db: Database, project_id: str, tmp_path: Path) -> None:
    job_id = _job(db, project_id, tmp_path)
    pts = [("psnr", s, s * 0.1, 20 + math.log(s)) for s in range(1, 20_001)]
    metric_store.add_metric_points(db=db, job_id=job_id, points=pts)
    full = metric_store.read_series(db=db, job_id=job_id, name="psnr", max_points=50_000)
    assert len(full) == 20_000 and full[0] == (1, 0.1, 20.0)
    small = metric_store.read_series(db=db, job_id=job_id, name="psnr", max_points=500)
    assert 400 <= len(small) <= 500
    steps = [p[0] for p in small]
    assert steps == sorted(steps) and steps[-1] == 20_000 and small[-1][2] == full[-1][2]
    values = [p[2] for p in small]
    assert values == sorted(values)  # a monotone curve stays monotone after bucketing


def test_replayed_steps_overwrite_and_nan_survives(db: Database, project_id: str, tmp_path: Path) -> None:
    job_id = _job(db, project_id, tmp_path)
    metric_store.add_metric_points(db=db, job_id=job_id, points=[("loss", s, s, 1.0) for s in range(1, 11)])
    metric_store.add_metric_points(db=db, job_id=job_id, points=[("loss", s, s, 0.5) for s in range(6, 11)])
    metric_store.add_metric_points(db=db, job_id=job_id, points=[("loss", 11, 11, float("nan"))])
    series = metric_store.read_series(db=db, job_id=job_id, name="loss")
    assert [p[0] for p in series] == list(range(1, 12))
    assert [p[2] for p in series[:10]] == [1.0] * 5 + [0.5] * 5 and math.isnan(series[10][2])


def test_job_rows_and_alerts_roundtrip(db: Database, project_id: str, tmp_path: Path) -> None:
    job_id = _job(db, project_id, tmp_path)
    row = job_store.get_job(db=db, job_id=job_id)
    assert row.params == {"a": 1} and row.state == "queued" and row.attempts == 0
    alert_store.insert_alert(db=db, job_id=job_id, code="disk_low", severity="warning", message="low",
                             details={"free": 1}, created_at=5.0)
    [alert] = alert_store.list_alerts(db=db, job_id=job_id)
    assert (alert.code, alert.details, alert.created_at) == ("disk_low", {"free": 1}, 5.0)
    db.execute("DELETE FROM projects WHERE id = ?", (project_id,))
    assert job_store.list_jobs(db=db) == [] and alert_store.list_alerts(db=db, job_id=job_id) == []
