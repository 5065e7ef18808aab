"""Following a job that runs in another kernel: its bus here gets what the store gained since the last look.

A job's live events exist only in the kernel that runs it; elsewhere ``JobRunner.bus`` is seeded once from the
store. When the studio feed says such a job moved (its state, or the step its kernel flushed about once a
second), ``catch_up`` reads the metric points after the last step this bus has, and the job row, and publishes
them as the same ``step``/``eval``/``state``/``progress`` events the running kernel published: watchers
(``JobWatch``) cannot tell the difference, apart from a refresh rate of about one second.
"""

from __future__ import annotations

import threading
from itertools import groupby
from typing import Any

from nerf_widgets.jobs.runner import JobRunner
from nerf_widgets.store import jobs as job_store
from nerf_widgets.store import metrics as metric_store

__all__ = ["catch_up"]

_lock = threading.Lock()
# bus epoch -> (last step published, names published at that step, job state, progress text)
_seen: dict[str, tuple[int, frozenset[str], str, str]] = {}


def catch_up(runner: JobRunner, job_id: str) -> int:
    """Publish on ``job_id``'s bus here what another kernel stored since; returns the number of events."""
    if runner.is_live(job_id):
        return 0  # its own events flow already
    bus = runner.bus(job_id)
    with _lock:
        step, names, state, progress_text = _seen.get(bus.epoch) or _start(bus.snapshot().state)
        events = 0
        # from the last step again: its eval point may have been flushed a second after its step point
        points = metric_store.read_points_after(db=runner.db, job_id=job_id, after_step=step - 1)
        points = [p for p in points if p[1] > step or p[0] not in names]
        for at, group in groupby(points, key=lambda p: p[1]):
            rows = list(group)
            names = frozenset(r[0] for r in rows) | (names if at == step else frozenset())
            for kind, prefix in (("step", ""), ("eval", "eval_")):
                values = {n[len(prefix):]: v for n, _s, _e, v in rows if n.startswith("eval_") == bool(prefix)}
                if values:
                    bus.publish(kind, {"step": at, "elapsed_s": rows[-1][2], "values": values})
                    events += 1
            step = at
        row = job_store.get_job(db=runner.db, job_id=job_id)
        progress = {k: v for k, v in row.progress.items() if k not in ("convergence", "result")}
        if repr(progress) != progress_text:
            bus.publish("progress", progress)
            if "convergence" in row.progress:
                bus.publish("convergence", row.progress["convergence"])
            events += 1
        if row.state != state:
            bus.publish("state", {"state": row.state, "error": row.error, "attempts": row.attempts})
            events += 1
        _seen[bus.epoch] = (step, names, row.state, repr(progress))
    return events


def _start(view: dict[str, Any]) -> tuple[int, frozenset[str], str, str]:
    """Where a store-seeded bus stands: the last step of its series (and which series have it), its job state."""
    series = view.get("series", {})
    last = max((pts[-1][0] for pts in series.values() if pts), default=0)
    names = frozenset(name for name, pts in series.items() if pts and pts[-1][0] == last)
    return last, names, str(view.get("job", {}).get("state", "")), ""
