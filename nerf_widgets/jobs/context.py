"""What a running job function sees: its parameters, a place to report, and pause/cancel checks.

The job function runs on a background thread and calls ``ctx.check()`` between units of work
(training calls it from ``on_step``): it raises ``CancelledError`` after ``cancel()`` and blocks while
the job is paused. Reports are cheap: metric points go to an in-memory buffer that the runner's
monitor thread flushes to SQLite about once a second, and to the job's event bus.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerf_widgets.core.errors import CancelledError
from nerf_widgets.jobs.bus import EventBus
from nerf_widgets.jobs.convergence import ConvergenceStatus, assess_convergence
from nerf_widgets.store.metrics import MetricPoint

__all__ = ["JobContext"]

CONVERGENCE_EVERY = 25  # steps between convergence assessments
CONVERGENCE_WINDOW = 50  # points per window


@dataclass
class _Tracker:
    """Per-attempt figures the monitor reads for alerts (stall, no PSNR gain)."""

    step: int = 0
    last_step_at: float = field(default_factory=time.monotonic)
    psnr_ema: float | None = None
    best_psnr: float = -math.inf
    best_psnr_step: int | None = None
    psnr: deque[float] = field(default_factory=lambda: deque(maxlen=3 * CONVERGENCE_WINDOW))
    eval_psnr: deque[float] = field(default_factory=lambda: deque(maxlen=3))
    loss: deque[float] = field(default_factory=lambda: deque(maxlen=CONVERGENCE_WINDOW))
    convergence: ConvergenceStatus = ConvergenceStatus.UNKNOWN
    convergence_message: str = ""


class JobContext:
    def __init__(self, *, job_id: str, project_id: str, job_type: str, params: dict[str, Any],
                 run_dir: Path | None, attempt: int, bus: EventBus, progress: dict[str, Any]) -> None:
        self.job_id, self.project_id, self.job_type = job_id, project_id, job_type
        self.params = params
        self.run_dir = run_dir
        self.attempt = attempt
        self.bus = bus
        self.progress: dict[str, Any] = dict(progress)
        self.tracker = _Tracker(step=int(progress.get("step") or 0))
        self._cancel = threading.Event()
        self._run = threading.Event()
        self._run.set()
        self._buffer: list[MetricPoint] = []
        self._lock = threading.Lock()
        self.progress_dirty = False
        self.flusher: Callable[[], None] | None = None  # set by the runner
        self.on_control: Callable[[str], None] | None = None  # a remote body's executor forwards pause/resume/cancel
        self.remote_system: dict[str, Any] | None = None  # the latest system sample of a remote worker

    # -- control (called by the runner from other threads) --
    def request_cancel(self) -> None:
        self._cancel.set()
        self._run.set()
        self._control("cancel")

    def request_pause(self) -> None:
        self._run.clear()
        self._control("pause")

    def request_resume(self) -> None:
        self._run.set()
        self._control("resume")

    def _control(self, verb: str) -> None:
        forward = self.on_control
        if forward is not None:
            forward(verb)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return not self._run.is_set()

    # -- called by the job function --
    def should_stop(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise CancelledError if cancelled; block here while paused (the heartbeat keeps going)."""
        if not self._run.is_set():
            self._run.wait()
            self.tracker.last_step_at = time.monotonic()
        if self._cancel.is_set():
            raise CancelledError(f"Job {self.job_id} was cancelled.", job_id=self.job_id)

    def wait_while_paused(self) -> None:
        """Block while paused without raising (the engine stops through ``should_stop`` instead)."""
        if not self._run.is_set():
            self._run.wait()
            self.tracker.last_step_at = time.monotonic()

    def report_progress(self, **fields: Any) -> None:
        """stage, fraction (0..1), step, max_steps, eta_s, elapsed_s, or anything JSON-able."""
        with self._lock:
            self.progress.update(fields)
            self.progress_dirty = True
        self.bus.publish("progress", fields)

    def report_step(self, step: int, elapsed_s: float, values: dict[str, float], **progress: Any) -> None:
        """One training step: buffered for the store, published, folded into convergence tracking."""
        t = self.tracker
        t.step, t.last_step_at = step, time.monotonic()
        with self._lock:
            self._buffer.extend((name, step, elapsed_s, float(v)) for name, v in values.items())
            self.progress.update(progress, step=step, elapsed_s=elapsed_s)
            self.progress_dirty = True
        self.bus.publish("step", {"step": step, "elapsed_s": elapsed_s, "values": values, **progress})
        if "psnr" in values:
            self._track_psnr(step, float(values["psnr"]), float(values.get("loss", 0.0)))

    def report_eval(self, step: int, elapsed_s: float, values: dict[str, float | None]) -> None:
        finite = {k: float(v) for k, v in values.items() if v is not None}
        with self._lock:
            self._buffer.extend((f"eval_{name}", step, elapsed_s, v) for name, v in finite.items())
        self.bus.publish("eval", {"step": step, "elapsed_s": elapsed_s, "values": finite})
        if "psnr" in finite:
            self.tracker.eval_psnr.append(finite["psnr"])
            self._assess(step)

    def flush_metrics(self) -> None:
        """Write buffered points and progress to the store now (before a checkpoint: a crash right after
        it then loses no step the checkpoint already covers)."""
        if self.flusher is not None:
            self.flusher()

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        self.bus.publish(kind, data)

    def take_points(self) -> list[MetricPoint]:
        with self._lock:
            points, self._buffer = self._buffer, []
        return points

    def take_progress(self) -> dict[str, Any] | None:
        with self._lock:
            if not self.progress_dirty:
                return None
            self.progress_dirty = False
            return dict(self.progress)

    def _track_psnr(self, step: int, psnr: float, loss: float) -> None:
        t = self.tracker
        t.psnr.append(psnr)
        t.loss.append(loss)
        if math.isfinite(psnr):
            t.psnr_ema = psnr if t.psnr_ema is None else 0.98 * t.psnr_ema + 0.02 * psnr
            if t.psnr_ema > t.best_psnr + 0.05:
                t.best_psnr, t.best_psnr_step = t.psnr_ema, step
        if step % CONVERGENCE_EVERY == 0 or not math.isfinite(loss):
            self._assess(step)

    def _assess(self, step: int) -> None:
        """Publish the convergence verdict when it changed (batch windows, or the eval trend once there is one)."""
        t = self.tracker
        verdict = assess_convergence(list(t.psnr), list(t.loss), window=CONVERGENCE_WINDOW,
                                     eval_psnr=list(t.eval_psnr))
        if verdict.status != t.convergence or verdict.message != t.convergence_message:
            t.convergence, t.convergence_message = verdict.status, verdict.message
            data = {"status": verdict.status.value, "gain_db": verdict.gain_db, "message": verdict.message,
                    "step": step}
            with self._lock:
                self.progress["convergence"] = data
            self.bus.publish("convergence", data)
