"""``Job``: the handle a person holds (``job = project.start_training(...)``); every call is one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from nerf_widgets.core.errors import NotFoundError
from nerf_widgets.jobs.bus import Batch, Cursor, EventBus, Subscription
from nerf_widgets.jobs.runner import JobRunner
from nerf_widgets.jobs.states import TERMINAL, JobState
from nerf_widgets.store import alerts as alert_store
from nerf_widgets.store import jobs as job_store
from nerf_widgets.store import metrics as metric_store
from nerf_widgets.store.jobs import AttemptRow, JobRow

__all__ = ["Job"]


class Job:
    def __init__(self, runner: JobRunner, job_id: str) -> None:
        self.runner = runner
        self.id = job_id

    def __repr__(self) -> str:
        row = self.record()
        step = row.progress.get("step")
        return f"<Job {self.id} {row.type} {row.state}{f' step {step}' if step else ''}>"

    def record(self) -> JobRow:
        return job_store.get_job(db=self.runner.db, job_id=self.id)

    @property
    def state(self) -> JobState:
        return JobState(self.record().state)

    @property
    def progress(self) -> dict[str, Any]:
        ctx = self.runner.live_context(self.id)
        return dict(ctx.progress) if ctx is not None else self.record().progress

    @property
    def error(self) -> str | None:
        return self.record().error

    def wait(self, timeout: float | None = None) -> JobRow:
        """Block until the job ends (or ``timeout`` seconds pass); returns the job's row either way."""
        return self.runner.wait(self.id, timeout)

    def pause(self) -> None:
        self.runner.pause(self.id)

    def resume(self) -> None:
        """Unpause, or start a new attempt of an interrupted job from its last checkpoint."""
        self.runner.resume(self.id)

    def cancel(self, *, wait: bool = False, timeout: float | None = 60.0) -> None:
        self.runner.cancel(self.id)
        if wait:
            self.wait(timeout)

    def retry(self) -> None:
        self.runner.retry(self.id)

    @property
    def finished(self) -> bool:
        return JobState(self.record().state) in TERMINAL

    def metrics(self, names: list[str] | None = None, *, max_points: int = 2000) -> dict[str, list[tuple[int, float, float]]]:
        """Stored series ``{name: [(step, elapsed_s, value)]}``, downsampled to ``max_points`` each.

        Points of a running job reach the store about once a second (the monitor's flush).
        """
        db = self.runner.db
        names = names or metric_store.list_metric_names(db=db, job_id=self.id)
        return {n: metric_store.read_series(db=db, job_id=self.id, name=n, max_points=max_points) for n in names}

    def alerts(self) -> list[dict[str, Any]]:
        return [a.to_dict() for a in alert_store.list_alerts(db=self.runner.db, job_id=self.id)]

    def attempts(self) -> list[AttemptRow]:
        return job_store.list_attempts(db=self.runner.db, job_id=self.id)

    def render_view(self, azimuth: float = 30.0, elevation: float = 20.0, size: int = 128) -> bytes:
        """PNG of the job's latest checkpoint seen from an orbit position (degrees); size <= 256 px."""
        row = self.record()
        if not row.run_dir:
            raise NotFoundError(f"Job {self.id} has no run folder to render from.")
        from nerf_widgets.jobs.preview import render_orbit_view

        return render_orbit_view(Path(row.run_dir), azimuth=azimuth, elevation=elevation, size=size)

    @property
    def bus(self) -> EventBus:
        return self.runner.bus(self.id)

    def watch(self, callback: Callable[[Batch], None], *, after: Cursor | None = None, max_rate_hz: float = 10.0,
              name: str = "") -> Subscription:
        """Register a watcher: a snapshot (or the events after ``after``) first, then batches of events."""
        return self.bus.subscribe(callback, after=after, max_rate_hz=max_rate_hz, name=name)
