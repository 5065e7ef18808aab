"""What a watcher of a job sees: the reducer that folds bus events into a snapshot, and the same
view rebuilt from the store for a job that is not running in this kernel (notebook reopened).

Snapshot state (all JSON-friendly apart from preview PNG bytes)::

    job:         {id, type, project_id, state, error, attempts}
    progress:    {stage, fraction, step, max_steps, eta_s, elapsed_s, steps_per_s, rays_per_s, ...}
    series:      {metric name: [(step, elapsed_s, value), ...]}   bounded: halved when too long
    convergence: {status, gain_db, message}
    alerts:      [alert dicts], newest last, bounded
    system:      the latest system sample dict
    preview:     {step, rendered_png, truth_png} of the latest eval
"""

from __future__ import annotations

import copy
from typing import Any

from nerf_widgets.jobs.bus import Event
from nerf_widgets.store import alerts as alert_store
from nerf_widgets.store import metrics as metric_store
from nerf_widgets.store.db import Database
from nerf_widgets.store.jobs import JobRow

__all__ = ["MAX_ALERTS", "MAX_SERIES_POINTS", "copy_view", "initial_view", "reduce_job_event", "STEP_METRICS"]

MAX_SERIES_POINTS = 4000
MAX_ALERTS = 100
STEP_METRICS = ("loss", "psnr", "lr", "steps_per_s", "rays_per_s")
_PROGRESS_KEYS = ("step", "max_steps", "fraction", "eta_s", "elapsed_s", "steps_per_s", "rays_per_s")


def _append(series: dict[str, list[tuple[int, float, float]]], name: str, point: tuple[int, float, float]) -> None:
    pts = series.setdefault(name, [])
    if pts and pts[-1][0] >= point[0]:  # a resumed run replays steps after its checkpoint
        while pts and pts[-1][0] >= point[0]:
            pts.pop()
    pts.append(point)
    if len(pts) > MAX_SERIES_POINTS:
        series[name] = pts[:-1:2] + [pts[-1]]


def reduce_job_event(state: dict[str, Any], ev: Event) -> None:
    """Fold one bus event into the snapshot state (called under the bus lock: keep it cheap)."""
    d = ev.data
    if ev.kind in ("step", "eval"):
        series = state.setdefault("series", {})
        step, elapsed = int(d["step"]), float(d.get("elapsed_s", 0.0))
        prefix = "eval_" if ev.kind == "eval" else ""
        for name, value in d.get("values", {}).items():
            if value is not None:
                _append(series, prefix + name, (step, elapsed, float(value)))
        if ev.kind == "step":
            prog = state.setdefault("progress", {})
            prog.update({k: d[k] for k in _PROGRESS_KEYS if k in d})
            prog.update({k: d["values"][k] for k in ("steps_per_s", "rays_per_s") if k in d.get("values", {})})
    elif ev.kind == "progress":
        state.setdefault("progress", {}).update(d)
    elif ev.kind == "state":
        state.setdefault("job", {}).update(d)
    elif ev.kind == "alert":
        alerts = state.setdefault("alerts", [])
        alerts.append(d)
        del alerts[:-MAX_ALERTS]
    elif ev.kind in ("convergence", "system", "preview", "checkpoint"):
        state[ev.kind] = d


def copy_view(state: dict[str, Any]) -> dict[str, Any]:
    """Snapshot copy: series points are immutable tuples, so copying the lists is enough (fast)."""
    out = {k: copy.deepcopy(v) for k, v in state.items() if k not in ("series", "preview")}
    out["series"] = {k: list(v) for k, v in state.get("series", {}).items()}
    if "preview" in state:
        out["preview"] = dict(state["preview"])
    return out


def initial_view(*, db: Database, job: JobRow, max_points: int = 2000) -> dict[str, Any]:
    """The view of a job from the store alone: full curves (downsampled), alerts, state and progress."""
    series = {name: metric_store.read_series(db=db, job_id=job.id, name=name, max_points=max_points)
              for name in metric_store.list_metric_names(db=db, job_id=job.id)}
    alerts = [dict(a.to_dict(), time=a.created_at) for a in alert_store.list_alerts(db=db, job_id=job.id,
                                                                                      limit=MAX_ALERTS)]
    progress = {k: v for k, v in job.progress.items() if k not in ("convergence", "result")}
    view: dict[str, Any] = {
        "job": {"id": job.id, "type": job.type, "project_id": job.project_id, "state": job.state,
                "error": job.error, "attempts": job.attempts},
        "progress": progress,
        "series": series,
        "alerts": alerts,
    }
    if "convergence" in job.progress:
        view["convergence"] = job.progress["convergence"]
    return view
