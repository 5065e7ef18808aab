"""Alert rules evaluated by the job monitor: near-limit memory/GPU, stalls, no PSNR gain, low disk, failure.

``AlertRules.evaluate`` is pure apart from remembering which alerts are active, so each condition
raises one alert when it starts (and again only after it cleared and came back), not one per tick.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from nerf_widgets.sysmetrics import SystemSample

__all__ = ["Alert", "AlertRules", "AlertThresholds", "JobHealth", "failure_alert"]

GiB = 1024**3


@dataclass(frozen=True)
class Alert:
    code: str  # memory_high | gpu_memory_high | stalled | no_psnr_gain | disk_low | job_failed
    severity: str  # info | warning | critical
    message: str
    time: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message, "time": self.time,
                "details": self.details}


@dataclass(frozen=True)
class AlertThresholds:
    memory_percent: float = 90.0  # machine memory in use
    gpu_memory_percent: float = 92.0
    stall_s: float = 120.0  # no step for this long while running
    no_gain_steps: int = 2000  # best PSNR not beaten for this many steps
    no_gain_db: float = 0.05
    disk_free_bytes: int = 2 * GiB


@dataclass(frozen=True)
class JobHealth:
    """What the monitor knows about one running job at a tick."""

    running: bool  # running (not paused, not waiting)
    step: int
    seconds_since_step: float
    best_psnr_step: int | None  # step at which the best PSNR so far was reached


def failure_alert(error: str, *, at: float | None = None) -> Alert:
    return Alert("job_failed", "critical", f"The job failed: {error}", at or time.time())


class AlertRules:
    def __init__(self, thresholds: AlertThresholds | None = None) -> None:
        self.t = thresholds or AlertThresholds()
        self._active: set[str] = set()

    def evaluate(self, sample: SystemSample | None, health: JobHealth | None) -> list[Alert]:
        """New alerts (conditions that just became true); conditions that cleared are re-armed."""
        now = time.time()
        found = {a.code: a for a in [*self._system(sample, now), *self._job(health, now)]}
        new = [a for code, a in found.items() if code not in self._active]
        self._active = set(found)
        return new

    def _system(self, s: SystemSample | None, now: float) -> list[Alert]:
        if s is None:
            return []
        out = []
        if s.memory_percent >= self.t.memory_percent:
            sev = "critical" if s.memory_percent >= 97 else "warning"
            out.append(Alert("memory_high", sev, f"Machine memory is {s.memory_percent:.0f}% used "
                             f"({s.memory_available_bytes / GiB:.1f} GiB free); training may be killed.", now,
                             {"memory_percent": s.memory_percent}))
        for g in s.gpus:
            if g.memory_percent >= self.t.gpu_memory_percent:
                out.append(Alert("gpu_memory_high", "warning", f"GPU {g.index} memory is {g.memory_percent:.0f}% "
                                 "used; lower the batch size if training runs out of memory.", now,
                                 {"gpu": g.index, "memory_percent": g.memory_percent}))
        if s.disk_free_bytes < self.t.disk_free_bytes:
            sev = "critical" if s.disk_free_bytes < self.t.disk_free_bytes / 8 else "warning"
            out.append(Alert("disk_low", sev, f"Only {s.disk_free_bytes / GiB:.2f} GiB free on the studio's disk; "
                             "checkpoints and exports may fail.", now, {"disk_free_bytes": s.disk_free_bytes}))
        return out

    def _job(self, h: JobHealth | None, now: float) -> list[Alert]:
        if h is None or not h.running:
            return []
        out = []
        if h.seconds_since_step >= self.t.stall_s:
            out.append(Alert("stalled", "warning", f"No training step for {h.seconds_since_step:.0f} s: the job "
                             "may be stuck.", now, {"step": h.step}))
        if h.best_psnr_step is not None and h.step - h.best_psnr_step >= self.t.no_gain_steps:
            out.append(Alert("no_psnr_gain", "info", f"PSNR has not improved for {h.step - h.best_psnr_step} steps; "
                             "more training may not help.", now, {"best_step": h.best_psnr_step}))
        return out
