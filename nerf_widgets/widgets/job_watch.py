"""``JobWatch``: a widget's registration with a job's event bus (the seed's "register / remove connection").

It keeps the widget's own copy of the job view (snapshot, then events folded in with the same reducer
the bus uses) and the cursor of the last event applied, so re-attaching continues after it with no gap
and no duplicate. ``on_change(view, batch)`` runs on the subscription's thread at most ~10 times a
second; widgets update their traitlets there (ipywidgets sends comm messages from any thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nerf_widgets.jobs.bus import Batch, Cursor, Event, Subscription
from nerf_widgets.jobs.states import ACTIVE
from nerf_widgets.jobs.view import reduce_job_event

if TYPE_CHECKING:
    from nerf_widgets.jobs.handle import Job

__all__ = ["ACTIVE_STATES", "JobWatch"]

ACTIVE_STATES = frozenset(s.value for s in ACTIVE)  # as plain strings: feed events carry the state text

OnChange = Callable[[dict[str, Any], Batch], None]


class JobWatch:
    def __init__(self, on_change: OnChange, *, name: str = "widget", max_rate_hz: float = 10.0) -> None:
        self.on_change = on_change
        self.name = name
        self.max_rate_hz = max_rate_hz
        self.job: Job | None = None
        self.view: dict[str, Any] = {}
        self.cursor: Cursor | None = None
        self._sub: Subscription | None = None
        self._lock = threading.Lock()

    @property
    def attached(self) -> bool:
        return self._sub is not None and not self._sub.closed

    def attach(self, job: Job | None) -> None:
        """Watch ``job`` (None: watch nothing); the same job again continues from the last cursor."""
        same = job is not None and self.job is not None and job.id == self.job.id
        self.detach()
        if not same:
            self.view, self.cursor = {}, None
        self.job = job
        if job is not None:
            self._sub = job.watch(self._on_batch, after=self.cursor, max_rate_hz=self.max_rate_hz,
                                  name=f"{self.name}:{job.id}")

    def catch_up(self, events: list[Event]) -> None:
        """Feed events about the watched job when it runs in another kernel: bring its bus here up to date
        from the store (``jobs.remote``); a job of this kernel already streams its own events."""
        job = self.job
        if job is None or not any(e.kind == "job" and e.data.get("job_id") == job.id for e in events):
            return
        if not job.runner.is_live(job.id):
            from nerf_widgets.jobs.remote import catch_up

            catch_up(job.runner, job.id)

    def detach(self) -> None:
        """Unregister from the bus (called when the widget closes)."""
        sub, self._sub = self._sub, None
        if sub is not None:
            sub.close()

    def _on_batch(self, batch: Batch) -> None:
        sub = self._sub
        with self._lock:
            if batch.snapshot is not None:
                self.view = batch.snapshot.state
            for event in batch.events:
                reduce_job_event(self.view, event)
            if sub is not None:
                self.cursor = Cursor(sub.bus.epoch, batch.last_seq)
            view = self.view
        self.on_change(view, batch)
