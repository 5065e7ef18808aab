"""``SystemMonitor``: live CPU / memory / disk / GPU gauges and sparklines of this kernel's machine.

Fed by the job runner's system bus (one sample a second from its monitor thread), so watching costs
nothing extra on the training thread; registered on construction, removed on ``close()``. Jobs running on
a Ray cluster add one line per worker, labelled with its node (samples carrying a ``node``), removed when
the runner's ``workers`` event no longer lists its job.
"""

from __future__ import annotations

import os
from collections import deque
from typing import TYPE_CHECKING, Any

import bqplot as bq
import ipywidgets as w

from nerf_widgets.jobs.bus import Batch, Subscription
from nerf_widgets.widgets.common import esc
from nerf_widgets.widgets.panel import PanelMixin, StudioContext

if TYPE_CHECKING:
    from nerf_widgets.studio import Studio

__all__ = ["SystemMonitor"]

GiB = 1024**3
HISTORY = 120  # samples kept for the sparklines (~2 minutes)


def _gauge(label: str) -> tuple[w.FloatProgress, w.HTML, w.HBox]:
    bar = w.FloatProgress(0.0, min=0.0, max=100.0, layout=w.Layout(width="220px"))
    text = w.HTML()
    return bar, text, w.HBox([w.HTML(f"<span style='display:inline-block;width:130px'>{label}</span>"), bar, text])


class SystemMonitor(w.VBox, PanelMixin):
    """``SystemMonitor()`` standalone (default studio home) or a tab of ``StudioApp``."""

    def __init__(self, studio: Studio | None = None, *, context: StudioContext | None = None) -> None:
        if context is None:
            from nerf_widgets.studio import Studio

            context = StudioContext(studio if studio is not None else Studio())
        self.gauges: dict[str, tuple[w.FloatProgress, w.HTML]] = {}
        rows = []
        for key, label in (("process_cpu", "kernel CPU"), ("cpu", "machine CPU"), ("memory", "machine memory"),
                           ("rss", "kernel memory"), ("disk", "disk used (home)")):
            bar, text, row = _gauge(label)
            bar.add_class(f"nw-gauge-{key}")
            self.gauges[key] = (bar, text)
            rows.append(row)
        self.gpu = w.HTML("<small>No NVIDIA GPU found (NVML).</small>")
        self.workers = w.HTML()
        self.workers.add_class("nw-ray-workers")
        self._worker_lines: dict[str, str] = {}
        self._history: dict[str, deque[float]] = {k: deque(maxlen=HISTORY) for k in ("t", "cpu", "memory")}
        x, y = bq.LinearScale(), bq.LinearScale(min=0.0, max=100.0)
        self.spark = bq.Lines(x=[], y=[[], []], scales={"x": x, "y": y}, colors=["#1f77b4", "#ff7f0e"],
                              labels=["CPU %", "memory %"], display_legend=True)
        self.figure = bq.Figure(marks=[self.spark], axes=[bq.Axis(scale=y, side="left")],
                                fig_margin={"top": 10, "bottom": 20, "left": 40, "right": 10},
                                layout=w.Layout(width="420px", height="160px"), animation_duration=0)
        self.samples_seen = 0
        self._sub: Subscription | None = None
        super().__init__([*rows, self.gpu, self.workers, self.figure])
        self.add_class("nw-system-monitor")
        self.bind(context)
        self._subscribe()

    def _subscribe(self) -> None:
        from nerf_widgets.jobs.runner import runner_for

        studio = self.context.studio  # type: ignore[union-attr]
        runner = runner_for(studio.db, studio.home)
        self._sub = runner.system_bus.subscribe(self._on_batch, max_rate_hz=2.0, name="system-monitor")

    def _on_batch(self, batch: Batch) -> None:
        samples = [e.data for e in batch.events if e.kind == "system"]
        if batch.snapshot is not None and "system" in batch.snapshot.state.get("last", {}):
            samples.insert(0, batch.snapshot.state["last"]["system"])
        for sample in samples:
            self.apply(sample)
        workers = [e.data for e in batch.events if e.kind == "workers"]
        if batch.snapshot is not None and "workers" in batch.snapshot.state.get("last", {}):
            workers.insert(0, batch.snapshot.state["last"]["workers"])
        if workers:
            self.keep_workers(workers[-1]["job_ids"])

    def apply(self, s: dict[str, Any]) -> None:
        """Show one ``SystemSample.to_dict()`` (a remote worker's, with ``node``, as its own line)."""
        if s.get("node"):
            self._apply_worker(s)
            return
        ncpu = s.get("cpu_count") or os.cpu_count() or 1
        disk_used = 100.0 * (1 - s["disk_free_bytes"] / max(1, s["disk_total_bytes"]))
        values = {
            "process_cpu": (s["process_cpu_percent"] / ncpu, f"{s['process_cpu_percent']:.0f}% of one core"),
            "cpu": (s["cpu_percent"], f"{s['cpu_percent']:.0f}% of {ncpu} cores"),
            "memory": (s["memory_percent"], f"{s['memory_available_bytes'] / GiB:.1f} GiB free"),
            "rss": (100.0 * s["process_rss_bytes"] / max(1, s["memory_total_bytes"]),
                    f"{s['process_rss_bytes'] / GiB:.2f} GiB"),
            "disk": (disk_used, f"{s['disk_free_bytes'] / GiB:.1f} GiB free"),
        }
        h = self._history
        h["t"].append(float(s["time"]))
        h["cpu"].append(float(s["cpu_percent"]))
        h["memory"].append(float(s["memory_percent"]))
        with self.hold_sync():
            for key, (value, text) in values.items():
                bar, label = self.gauges[key]
                bar.value = max(0.0, min(100.0, float(value)))
                bar.bar_style = "danger" if value >= 90 else "warning" if value >= 75 else "info"
                label.value = f"<small>{esc(text)}</small>"
            if s.get("gpus"):
                self.gpu.value = "<br>".join(
                    f"GPU {g['index']} {esc(g['name'])}: {g['memory_percent']:.0f}% memory"
                    + ("" if g["utilization_percent"] is None  # None without NVML (nerf_widgets[gpu])
                       else f", {g['utilization_percent']:.0f}% busy, {g['temperature_c']:.0f} °C")
                    for g in s["gpus"])
        t0 = h["t"][0]
        with self.spark.hold_sync():
            self.spark.x = [t - t0 for t in h["t"]]
            self.spark.y = [list(h["cpu"]), list(h["memory"])]
        self.samples_seen += 1

    def _apply_worker(self, s: dict[str, Any]) -> None:
        gpus = "".join(f", GPU {g['index']} {g['utilization_percent']:.0f}% busy {g['memory_percent']:.0f}% memory"
                       for g in s.get("gpus", []))
        self._worker_lines[str(s.get("job_id") or f"{s['node']}:{s.get('pid')}")] = (
            f"Ray worker on <b>{esc(str(s['node']))}</b> (pid {s.get('pid')}, job {esc(str(s.get('job_id', '')))}): "
            f"{s['process_cpu_percent']:.0f}% of one core, machine CPU {s['cpu_percent']:.0f}% of "
            f"{s.get('cpu_count')} cores, memory {s['memory_percent']:.0f}%{gpus}")
        self._show_workers()
        self.samples_seen += 1

    def keep_workers(self, job_ids: list[str]) -> None:
        """Drop the lines of workers whose jobs are no longer running (the monitor's ``workers`` event)."""
        self._worker_lines = {k: v for k, v in self._worker_lines.items() if k in job_ids}
        self._show_workers()

    def _show_workers(self) -> None:
        self.workers.value = "<br>".join(f"<small>{line}</small>" for line in self._worker_lines.values())

    def close(self) -> None:
        """Unregister from the system bus, then close the widgets."""
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        super().close()
