"""The runner's monitor thread: system samples, heartbeats, metric flushes and alert rules, once a tick.

Everything slow-ish (SQLite writes, psutil) happens here rather than on the training thread, so the
training loop only appends to a list and publishes to its bus.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import psutil

from nerf_widgets.jobs.alerts import JobHealth
from nerf_widgets.store import jobs as job_store
from nerf_widgets.store import metrics as metric_store
from nerf_widgets.store.jobs import AttemptRow, JobRow
from nerf_widgets.sysmetrics import GpuSample, SystemSample, SystemSampler

if TYPE_CHECKING:
    from nerf_widgets.jobs.runner import JobRunner, _Live

__all__ = ["Monitor", "attempt_is_dead", "sample_from_dict"]

log = logging.getLogger(__name__)


def attempt_is_dead(attempt: AttemptRow, job: JobRow, *, host: str, stale_after: float) -> bool:
    """True when the process that owns ``attempt`` is gone (or has not beaten for ``stale_after`` s)."""
    if attempt.host == host:
        try:
            proc = psutil.Process(attempt.pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
    beat = job.heartbeat_at or attempt.started_at
    return time.time() - beat > stale_after


def sample_from_dict(data: dict[str, Any]) -> SystemSample:
    """A ``SystemSample`` back from its ``to_dict()`` (a remote worker's, labelled with extra keys)."""
    names = set(SystemSample.__dataclass_fields__) - {"gpus"}
    gpu_names = set(GpuSample.__dataclass_fields__)
    return SystemSample(**{k: data[k] for k in names},
                        gpus=[GpuSample(**{k: g[k] for k in gpu_names}) for g in data.get("gpus", [])])


class Monitor:
    def __init__(self, runner: JobRunner, *, interval: float) -> None:
        self.runner = runner
        self.interval = interval
        self.sampler = SystemSampler(runner.home)
        self.latest: SystemSample | None = None
        self._last_beat = 0.0
        self._workers: list[str] = []  # remote jobs whose worker samples the system bus carries
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nerf-jobs-monitor", daemon=True)
        self._flush_lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # a failed sample must not end monitoring
                log.exception("job monitor tick failed")

    def tick(self) -> None:
        self.latest = sample = self.sampler.sample()
        data = sample.to_dict()
        self.runner.system_bus.publish("system", data)
        lives = self.runner.live_jobs()
        workers = []
        for live in lives:
            self.flush(live)
            if live.thread is None:
                continue
            if live.executor.schedules_here:
                live.ctx.publish("system", data)
                self._alerts(live, sample)
            else:  # a remote job's bus has its worker's samples; the system bus shows them labelled by node
                remote = live.ctx.remote_system
                if remote:
                    self.runner.system_bus.publish("system", dict(remote, job_id=live.job_id))
                    workers.append(live.job_id)
                self._alerts(live, sample_from_dict(remote) if remote else None)
        if workers != self._workers:  # a worker whose job ended leaves the SystemMonitor
            self._workers = workers
            self.runner.system_bus.publish("workers", {"job_ids": workers})
        if lives and time.monotonic() - self._last_beat >= self.runner.heartbeat_interval:
            job_store.touch_heartbeats(db=self.runner.db, job_ids=[lv.job_id for lv in lives])
            self._last_beat = time.monotonic()

    def flush(self, live: _Live) -> None:
        """Write buffered metric points and changed progress of one job (also called when it ends)."""
        with self._flush_lock:
            points = live.ctx.take_points()
            if points:
                metric_store.add_metric_points(db=self.runner.db, job_id=live.job_id, points=points)
            progress = live.ctx.take_progress()
            if progress is not None:
                job_store.set_job_progress(db=self.runner.db, job_id=live.job_id, progress=progress)

    def _alerts(self, live: _Live, sample: SystemSample | None) -> None:
        t = live.ctx.tracker
        health = JobHealth(running=not live.ctx.paused, step=t.step,
                           seconds_since_step=time.monotonic() - t.last_step_at, best_psnr_step=t.best_psnr_step)
        for alert in live.rules.evaluate(sample, health):
            self.runner.record_alert(live.job_id, alert.to_dict())
