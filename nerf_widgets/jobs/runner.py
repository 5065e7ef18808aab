"""The job runner: background threads of the kernel, a resource-checked queue, state changes, recovery.

One runner per studio database per kernel (``runner_for``). ``submit`` writes a queued job; the
scheduler thread starts it when its device slot and memory are free (``waiting_for_resources``
meanwhile); the job function runs on its own thread, or, for a job whose params say ``executor: ray``, its
remote body runs on a Ray cluster whose scheduler does that waiting (``executor.py``); the monitor thread (``monitor.py``) flushes
metrics, writes heartbeats and raises alerts. Every state change goes through ``states.check_transition``
inside one database transaction, then is published on the job's bus, then handed to the job's hooks.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import socket
import threading
import time
import traceback
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerf_widgets.core.errors import CancelledError, NerfWidgetsError, StateConflictError
from nerf_widgets.core.ids import new_id
from nerf_widgets.jobs.alerts import AlertRules, AlertThresholds, failure_alert
from nerf_widgets.jobs.bus import EventBus
from nerf_widgets.jobs.context import JobContext
from nerf_widgets.jobs.executor import Executor, ExecutorChoice, make_executor
from nerf_widgets.jobs.feed import poke as poke_feed
from nerf_widgets.jobs.feed import shutdown_feeds
from nerf_widgets.jobs.registry import JobSpec, job_factory
from nerf_widgets.jobs.resources import ResourcePool
from nerf_widgets.jobs.states import ACTIVE, JobState, check_transition
from nerf_widgets.jobs.view import copy_view, initial_view, reduce_job_event
from nerf_widgets.store import alerts as alert_store
from nerf_widgets.store import jobs as job_store
from nerf_widgets.store.db import Database, utc_now
from nerf_widgets.store.jobs import JobRow

__all__ = ["JobRunner", "runner_for", "shutdown_runners"]

log = logging.getLogger(__name__)


@dataclass
class _Live:
    """A job this kernel owns right now (queued, waiting, running or paused)."""

    job_id: str
    spec: JobSpec
    attempt: int
    ctx: JobContext
    rules: AlertRules
    executor: Executor
    thread: threading.Thread | None = None
    done: threading.Event = field(default_factory=threading.Event)


class JobRunner:
    def __init__(self, db: Database, home: Path, *, pool: ResourcePool | None = None,
                 monitor_interval: float = 1.0, heartbeat_interval: float = 2.0, stale_after: float = 30.0,
                 thresholds: AlertThresholds | None = None) -> None:
        self.db, self.home = db, Path(home)
        self.pool = pool or ResourcePool()
        self.kernel_id = secrets.token_hex(8)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.heartbeat_interval, self.stale_after = heartbeat_interval, stale_after
        self.thresholds = thresholds or AlertThresholds()
        self.system_bus = EventBus("system", history=600)
        self._live: dict[str, _Live] = {}
        self._executors: dict[ExecutorChoice, Executor] = {}
        self._buses: dict[str, EventBus] = {}
        self._queue: list[str] = []
        self._cond = threading.Condition()
        self._state_lock = threading.RLock()
        self._stop = threading.Event()
        self._scheduler = threading.Thread(target=self._schedule_loop, name="nerf-jobs-scheduler", daemon=True)
        self._scheduler.start()
        from nerf_widgets.jobs.monitor import Monitor  # monitor imports this module's types

        self.monitor = Monitor(self, interval=monitor_interval)
        self.monitor.start()
        _every_runner.add(self)

    # ---------------------------------------------------------------- submit / control
    def submit(self, *, project_id: str, type: str, params: dict[str, Any], run_dir: Path | None = None,
               job_id: str | None = None) -> str:
        """Validate, write a queued job and enqueue it; returns the job id."""
        factory = job_factory(type)
        job_id = job_id or new_id("job")
        draft = JobRow(job_id, project_id, type, params, JobState.QUEUED.value, 0, {}, None, None, 0.0, None, None,
                       None, str(run_dir) if run_dir else None)
        spec = factory(draft, self.db)
        if self.executor_for(params).schedules_here:  # a Ray cluster's devices are not this machine's
            self.pool.check_possible(spec.resources)
        spec.hooks.before_queue(draft, retry=False)
        with self._state_lock:
            job_store.insert_job(db=self.db, job_id=job_id, project_id=project_id, type=type, params=params,
                                 state=JobState.QUEUED.value, run_dir=draft.run_dir)
            self._enqueue(job_id, spec)
        poke_feed(self.db)
        return job_id

    def pause(self, job_id: str) -> None:
        live = self._require_live(job_id, "pause")
        self._set_state(job_id, JobState.PAUSED)
        live.ctx.request_pause()

    def resume(self, job_id: str) -> None:
        """Continue a paused job, or start a new attempt of an interrupted/failed/cancelled one."""
        self.recover_interrupted()
        row = job_store.get_job(db=self.db, job_id=job_id)
        if row.state == JobState.PAUSED.value:
            live = self._require_live(job_id, "resume")
            self._set_state(job_id, JobState.RUNNING)
            live.ctx.request_resume()
        else:
            self.retry(job_id)

    def cancel(self, job_id: str) -> None:
        """Queued/waiting jobs stop at once; running/paused ones at their next check (``wait()`` for it)."""
        live = self._live.get(job_id)
        row = job_store.get_job(db=self.db, job_id=job_id)
        check_transition(row.state, JobState.CANCELLED, job_id=job_id)
        if live is None:
            raise StateConflictError(f"Job {job_id} is {row.state} in another kernel; cancel it there.")
        with self._cond:
            queued = job_id in self._queue
            if queued:
                self._queue.remove(job_id)
        live.ctx.request_cancel()
        if queued:
            self._finish(live, JobState.CANCELLED, error="Cancelled before it started.")

    def retry(self, job_id: str) -> None:
        """Start a new attempt of a failed or cancelled job (training continues from its last checkpoint)."""
        self.recover_interrupted()
        with self._state_lock:
            row = job_store.get_job(db=self.db, job_id=job_id)
            check_transition(row.state, JobState.QUEUED, job_id=job_id)
            spec = job_factory(row.type)(row, self.db)
            spec.hooks.before_queue(row, retry=True)
            self._set_state(job_id, JobState.QUEUED, spec=spec)
            self._enqueue(job_id, spec)

    def wait(self, job_id: str, timeout: float | None = None) -> JobRow:
        """Block until the job leaves the active states here (or ``timeout`` s); returns its row."""
        live = self._live.get(job_id)
        if live is not None:
            live.done.wait(timeout)
        return job_store.get_job(db=self.db, job_id=job_id)

    def is_live(self, job_id: str) -> bool:
        return job_id in self._live

    def live_context(self, job_id: str) -> JobContext | None:
        live = self._live.get(job_id)
        return live.ctx if live else None

    def bus(self, job_id: str) -> EventBus:
        """The job's bus: live events while it runs here, else a bus seeded from the store."""
        with self._state_lock:
            bus = self._buses.get(job_id)
            if bus is None:
                row = job_store.get_job(db=self.db, job_id=job_id)
                bus = EventBus(job_id, reducer=reduce_job_event, initial=initial_view(db=self.db, job=row),
                               copier=copy_view)
                self._buses[job_id] = bus
            return bus

    # ---------------------------------------------------------------- internals
    def _require_live(self, job_id: str, verb: str) -> _Live:
        live = self._live.get(job_id)
        if live is None:
            row = job_store.get_job(db=self.db, job_id=job_id)
            raise StateConflictError(f"Cannot {verb} job {job_id}: it is {row.state} and not running in this kernel.",
                                     job_id=job_id, state=row.state)
        return live

    def _enqueue(self, job_id: str, spec: JobSpec) -> None:
        row = job_store.get_job(db=self.db, job_id=job_id)
        attempt = row.attempts + 1
        with self.db.transaction():
            self.db.execute("UPDATE jobs SET attempts = ?, heartbeat_at = ? WHERE id = ?",
                            (attempt, utc_now(), job_id))
            job_store.insert_attempt(db=self.db, job_id=job_id, number=attempt, pid=self.pid, host=self.host,
                                     kernel_id=self.kernel_id, start_step=row.progress.get("step"))
        bus = self.bus(job_id)
        progress = {k: v for k, v in row.progress.items() if k not in ("resumed_from", "result", "waiting_for")}
        ctx = JobContext(job_id=job_id, project_id=row.project_id, job_type=row.type, params=row.params,
                         run_dir=Path(row.run_dir) if row.run_dir else None, attempt=attempt, bus=bus,
                         progress=progress)
        executor = self.executor_for(row.params)
        live = self._live[job_id] = _Live(job_id, spec, attempt, ctx, AlertRules(self.thresholds), executor)
        ctx.flusher = lambda: self.monitor.flush(live)
        bus.publish("state", {"state": JobState.QUEUED.value, "attempts": attempt, "error": None})
        with self._cond:
            self._queue.append(job_id)
            self._cond.notify_all()

    def executor_for(self, params: dict[str, Any]) -> Executor:
        """The executor a job's params name (``executor``, ``ray_address``); local when they name none."""
        choice = ExecutorChoice(params.get("executor", "local"), params.get("ray_address"))
        with self._state_lock:
            executor = self._executors.get(choice)
            if executor is None:
                executor = self._executors[choice] = make_executor(choice)
            return executor

    def _set_state(self, job_id: str, target: JobState, *, error: str | None = None, tb: str | None = None,
                   spec: JobSpec | None = None) -> JobRow:
        """The one write path for job states: check, write, hooks, publish. Hooks run before the event, so a
        subscriber reacting to it already sees the project (and export records) follow the job: a panel
        that enabled Retry from the project state saw the old one after a cancel."""
        with self._state_lock:
            with self.db.transaction():
                row = job_store.get_job(db=self.db, job_id=job_id)
                check_transition(row.state, target, job_id=job_id)
                job_store.set_job_state(db=self.db, job_id=job_id, state=target.value, error=error, traceback=tb,
                                        started=target is JobState.RUNNING and row.started_at is None,
                                        finished=target in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED))
            new = job_store.get_job(db=self.db, job_id=job_id)
            live = self._live.get(job_id)
            hooks = (spec or (live.spec if live else job_factory(row.type)(row, self.db))).hooks
            try:
                hooks.on_state(new, row.state, target.value, live.ctx if live else None)
            except Exception:
                log.exception("job %s: hook failed on %s -> %s", job_id, row.state, target.value)
            self.bus(job_id).publish("state", {"state": target.value, "error": error, "attempts": new.attempts})
        poke_feed(self.db)  # the studio feed tells the widgets of the project and its job lists
        return new

    def _schedule_loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait(1.0)  # woken on submit/finish; the timeout re-checks free memory
                queue = list(self._queue)
            for job_id in queue:
                self._try_start(job_id)

    def _try_start(self, job_id: str) -> None:
        live = self._live.get(job_id)
        if live is None or live.ctx.cancel_requested:
            return
        reason = self.pool.try_acquire(job_id, live.spec.resources) if live.executor.schedules_here else None
        if reason is not None:
            row = job_store.get_job(db=self.db, job_id=job_id)
            if row.state == JobState.QUEUED.value:
                self._set_state(job_id, JobState.WAITING_FOR_RESOURCES)
                live.ctx.report_progress(stage="waiting", waiting_for=reason)
                live.ctx.flush_metrics()  # the reason reaches the store with the state (other kernels, browser)
            return
        with self._cond:
            if job_id not in self._queue:
                self.pool.release(job_id)
                return
            self._queue.remove(job_id)
        live.thread = threading.Thread(target=self._run, args=(live,), name=f"nerf-job-{job_id}", daemon=True)
        live.thread.start()

    def _started(self, live: _Live, waiting_for: str | None) -> None:
        """The executor's word: running now (None), or waiting for resources it names (Ray's scheduler)."""
        if waiting_for is not None:
            if job_store.get_job(db=self.db, job_id=live.job_id).state == JobState.QUEUED.value:
                self._set_state(live.job_id, JobState.WAITING_FOR_RESOURCES)
            live.ctx.report_progress(stage="waiting", waiting_for=waiting_for)
            live.ctx.flush_metrics()
            return
        self._set_state(live.job_id, JobState.RUNNING)
        with self.db.transaction():
            self.db.execute("UPDATE job_attempts SET state = 'running' WHERE job_id = ? AND number = ?",
                            (live.job_id, live.attempt))

    def _run(self, live: _Live) -> None:
        try:
            result = live.executor.run(live.spec, live.ctx, lambda waiting_for: self._started(live, waiting_for))
        except CancelledError:
            self._finish(live, JobState.CANCELLED, error="Cancelled.")
        except Exception as err:
            message = str(err) if isinstance(err, NerfWidgetsError) else f"{type(err).__name__}: {err}"
            self._finish(live, JobState.FAILED, error=message, tb=traceback.format_exc())
        else:
            if live.ctx.cancel_requested:
                self._finish(live, JobState.CANCELLED, error="Cancelled.")
            else:
                if result:
                    live.ctx.report_progress(result=result)
                self._finish(live, JobState.SUCCEEDED)

    def _finish(self, live: _Live, state: JobState, *, error: str | None = None, tb: str | None = None) -> None:
        """Flush what the job reported, write the final state, free resources, wake waiters."""
        job_id = live.job_id
        try:
            self.monitor.flush(live)
            self._set_state(job_id, state, error=error, tb=tb)
            job_store.finish_attempt(db=self.db, job_id=job_id, number=live.attempt, state=state.value,
                                     end_step=live.ctx.tracker.step or None, error=error, traceback=tb)
            if state is JobState.FAILED and error:
                self.record_alert(job_id, failure_alert(error).to_dict())
        except Exception:
            log.exception("job %s: could not record its end (%s)", job_id, state.value)
        finally:
            self.pool.release(job_id)
            self._live.pop(job_id, None)
            live.done.set()
            with self._cond:
                self._cond.notify_all()

    def record_alert(self, job_id: str, alert: dict[str, Any]) -> None:
        alert_store.insert_alert(db=self.db, job_id=job_id, code=alert["code"], severity=alert["severity"],
                                 message=alert["message"], details=alert.get("details", {}), created_at=alert["time"])
        self.bus(job_id).publish("alert", alert)

    def live_jobs(self) -> list[_Live]:
        return list(self._live.values())

    # ---------------------------------------------------------------- recovery
    def recover_interrupted(self, project_id: str | None = None) -> list[str]:
        """Mark active jobs whose kernel is gone as failed ("interrupted"); returns their ids.

        A job is orphaned when its latest attempt's process is dead on this host, or its heartbeat is
        older than ``stale_after`` seconds (another host, or a frozen kernel).
        """
        from nerf_widgets.jobs.monitor import attempt_is_dead

        rows = job_store.list_jobs(db=self.db, project_id=project_id, states=[s.value for s in ACTIVE])
        found = []
        for row in rows:
            if row.id in self._live:
                continue
            attempts = job_store.list_attempts(db=self.db, job_id=row.id)
            if attempts and not attempt_is_dead(attempts[-1], row, host=self.host, stale_after=self.stale_after):
                continue
            if not attempts and time.time() - row.created_at < self.stale_after:
                continue  # another kernel is between writing the job row and its first attempt
            self._mark_interrupted(row, attempts[-1].number if attempts else None)
            found.append(row.id)
        return found

    def _mark_interrupted(self, row: JobRow, attempt: int | None) -> None:
        ckpt = row.progress.get("checkpoint_step")
        where = f" at step {row.progress['step']}" if row.progress.get("step") else ""
        tail = f"resume() continues from the checkpoint at step {ckpt}." if ckpt else "resume() starts it again."
        error = f"Interrupted: the kernel running this job stopped{where} (restart or crash). {tail}"
        try:
            self._set_state(row.id, JobState.FAILED, error=error)
        except StateConflictError:
            return  # another kernel got there first
        if attempt is not None:
            job_store.finish_attempt(db=self.db, job_id=row.id, number=attempt, state=JobState.FAILED.value,
                                     end_step=row.progress.get("step"), error=error)

    def shutdown(self, *, cancel: bool = True, timeout: float = 10.0) -> None:
        """Stop the threads (cancelling live jobs first when ``cancel``); used by tests and atexit."""
        if cancel:
            for live in list(self._live.values()):
                try:
                    self.cancel(live.job_id)
                except NerfWidgetsError:
                    pass
            for live in list(self._live.values()):
                live.done.wait(timeout)
                if live.thread is not None and live.thread is not threading.current_thread():
                    live.thread.join(timeout)  # its last writes (state, hooks) are done: nothing dies mid-call
        self._stop.set()
        self.monitor.stop()
        with self._cond:
            self._cond.notify_all()
        self._scheduler.join(timeout)
        self.system_bus.close()
        for bus in list(self._buses.values()):
            bus.close()


_runners: dict[str, JobRunner] = {}
_runners_lock = threading.Lock()


def runner_for(db: Database, home: Path, **options: Any) -> JobRunner:
    """The kernel's runner for this studio database (created on first use, then shared)."""
    key = str(Path(db.path).resolve())
    with _runners_lock:
        runner = _runners.get(key)
        if runner is None or runner._stop.is_set():
            runner = _runners[key] = JobRunner(db, home, **options)
            runner.recover_interrupted()
        return runner


def shutdown_runners(timeout: float = 10.0) -> None:
    with _runners_lock:
        runners = list(_runners.values())
        _runners.clear()
    for r in runners:
        r.shutdown(timeout=timeout)
    shutdown_feeds()


EXIT_WAIT_S = 120.0  # per job: a cancelled training writes its checkpoint before it ends
_every_runner: weakref.WeakSet[JobRunner] = weakref.WeakSet()


def _shutdown_at_exit() -> None:
    """At interpreter exit (a script or ``python`` batch run ending while a job runs): cancel every live job,
    let it stop at its next check (training saves a checkpoint there) and join its thread. Daemon threads
    killed inside torch or numba at finalisation abort the process ("terminate called without an active
    exception"); an interrupted job instead ends cancelled, with its checkpoint, and can be retried."""
    for runner in list(_every_runner):
        if not runner._stop.is_set():
            try:
                runner.shutdown(cancel=True, timeout=EXIT_WAIT_S)
            except Exception:  # noqa: BLE001 - exit goes on for the other runners
                log.exception("job runner shutdown at exit failed")


atexit.register(_shutdown_at_exit)
