"""``TrainingPanel``: choose method/preset/budgets, start / pause / resume / cancel / retry, and watch
the run live: progress with ETA, bqplot curves (loss, PSNR, SSIM, LPIPS against step or time),
convergence status, alerts and the live preview.

Every button is one call of the Python API (``Project.start_training``, ``Job.pause`` ...). The panel
watches the job's event bus (``JobWatch``): registered on attach, removed on close; a panel re-attached
(or a new one after the notebook was reopened) gets a snapshot and then the events after it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import bqplot as bq
import ipywidgets as w

from nerf_widgets.jobs.bus import Batch
from nerf_widgets.jobs.states import JobState
from nerf_widgets.widgets.common import Notice, esc, guarded
from nerf_widgets.widgets.compat import tooltip
from nerf_widgets.widgets.job_watch import JobWatch
from nerf_widgets.widgets.panel import PanelMixin, StudioContext
from nerf_widgets.widgets.preview import LivePreview

if TYPE_CHECKING:
    from nerf_widgets.jobs.handle import Job
    from nerf_widgets.studio import Project

__all__ = ["TrainingPanel", "thin"]

MAX_PLOT_POINTS = 800
_STARTABLE = {"PosesEstimated", "TrainingCompleted", "ModelExported", "TrainingFailed"}
_SEVERITY_COLOR = {"info": "#1565c0", "warning": "#e65100", "critical": "#b00020"}
_STATUS_COLOR = {"improving": "#2e7d32", "plateau": "#e65100", "converged": "#1565c0", "diverging": "#b00020"}


def thin(points: list[tuple[int, float, float]], limit: int = MAX_PLOT_POINTS) -> list[tuple[int, float, float]]:
    """At most ``limit`` finite points, evenly strided, always keeping the last one."""
    finite = [p for p in points if math.isfinite(p[2])]
    if len(finite) <= limit:
        return finite
    stride = math.ceil(len(finite) / limit)
    out = finite[::stride]
    return out if out[-1] == finite[-1] else [*out, finite[-1]]


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class _Curves(w.HBox):
    """Three small bqplot figures; ``series`` names map to lines."""

    LINES = {"loss": ("loss", "#1f77b4"), "psnr": ("psnr", "#1f77b4"), "eval_psnr": ("psnr", "#d62728"),
             "eval_ssim": ("quality", "#2ca02c"), "eval_lpips": ("quality", "#9467bd")}

    def __init__(self) -> None:
        self.x_scale = bq.LinearScale()
        scales = {"loss": bq.LogScale(), "psnr": bq.LinearScale(), "quality": bq.LinearScale(min=0.0, max=1.0)}
        self.lines: dict[str, bq.Lines] = {}
        figures = []
        for fig_name, title in (("loss", "Loss"), ("psnr", "PSNR (dB): batch, eval"), ("quality", "SSIM / LPIPS")):
            marks = []
            for series, (target, color) in self.LINES.items():
                if target == fig_name:
                    mark = bq.Lines(x=[], y=[], scales={"x": self.x_scale, "y": scales[fig_name]}, colors=[color],
                                    marker="circle" if series.startswith("eval") else None, labels=[series],
                                    display_legend=fig_name != "loss")
                    self.lines[series] = mark
                    marks.append(mark)
            # no num_ticks: bqplot computes them by dividing the domain, which is empty before the first point
            # (RangeError; the classic notebook then drops the whole studio's view, "Could not add child view")
            axes = [bq.Axis(scale=self.x_scale, label="step", side="bottom"),
                    bq.Axis(scale=scales[fig_name], side="left", tick_format=".2g")]
            figures.append(bq.Figure(marks=marks, axes=axes, title=title, animation_duration=0,
                                     legend_location="bottom-right",
                                     fig_margin={"top": 40, "bottom": 40, "left": 50, "right": 10},
                                     layout=w.Layout(width="33%", height="260px")))
        self.figures = figures
        super().__init__(figures)
        self.add_class("nw-curves")

    def draw(self, series: dict[str, list[tuple[int, float, float]]], x_by: str) -> None:
        col = 0 if x_by == "step" else 1
        for name, mark in self.lines.items():
            pts = thin(series.get(name, []))
            with mark.hold_sync():
                mark.x = [p[col] for p in pts]
                mark.y = [p[2] for p in pts]
        for fig in self.figures:
            fig.axes[0].label = "step" if x_by == "step" else "training time (s)"

    def point_count(self, name: str) -> int:
        return len(self.lines[name].x)


class TrainingPanel(w.VBox, PanelMixin):
    """``TrainingPanel(project)`` standalone, or a tab of ``StudioApp`` (``TrainingPanel(context=ctx)``)."""

    def __init__(self, project: Project | None = None, *, context: StudioContext | None = None,
                 job: Job | None = None) -> None:
        from nerf_widgets.engine.config import METHODS, PRESETS

        self.project: Project | None = None
        self.job: Job | None = None
        self._watch = JobWatch(self._on_view, name="training-panel")
        self.notice = Notice()
        self.method = w.Dropdown(options=list(METHODS), value=METHODS[0], description="method")
        self.preset = w.Dropdown(options=list(PRESETS), value=PRESETS[0], description="preset")
        self.max_minutes = w.BoundedFloatText(0, min=0, max=24 * 60, description="max min", **tooltip("0 = preset's"))
        self.max_steps = w.BoundedIntText(0, min=0, max=10_000_000, description="max steps", **tooltip("0 = preset's"))
        self.buttons = {name: w.Button(description=name.capitalize(), icon=icon)
                        for name, icon in (("start", "play"), ("pause", "pause"), ("resume", "step-forward"),
                                           ("cancel", "stop"), ("retry", "redo"))}
        for name, button in self.buttons.items():
            button.add_class(f"nw-train-{name}")
            button.on_click(guarded(self.notice, lambda _b, n=name: getattr(self, f"{n}_training")()))
        self.buttons["start"].button_style = "primary"
        self.job_picker = w.Dropdown(options=[], description="job", layout=w.Layout(width="420px"))
        self.job_picker.observe(lambda c: self._pick(c["new"]), "value")
        self.progress = w.FloatProgress(0.0, min=0.0, max=1.0, layout=w.Layout(width="420px"))
        self.status = w.HTML()
        self.convergence = w.HTML()
        self.x_by = w.ToggleButtons(options=["step", "time"], value="step", description="x axis")
        self.x_by.observe(lambda _c: self._redraw(self._watch.view), "value")
        self.curves = _Curves()
        self.alerts = w.HTML()
        self.preview = LivePreview(watch=False)
        self._last_state: str | None = None
        self._relabeling = False
        form = w.HBox([w.VBox([self.method, self.preset]), w.VBox([self.max_minutes, self.max_steps])])
        super().__init__([form, w.HBox(list(self.buttons.values())), self.notice, self.job_picker,
                          w.HBox([self.progress, self.status]), self.convergence, self.x_by, self.curves,
                          self.alerts, self.preview])
        self.add_class("nw-training-panel")
        if context is None and project is not None:
            context = StudioContext(project.studio)
            context.project = project
        self.bind(context)
        if job is not None:
            self.attach(job)

    # --- actions: one API call each -----------------------------------------------------------------
    def start_training(self) -> Job:
        if self.project is None:
            raise_no_project()
        budgets = {"max_minutes": self.max_minutes.value or None, "max_steps": self.max_steps.value or None}
        job = self.project.start_training(self.method.value, self.preset.value, **budgets)  # type: ignore[union-attr]
        self._reload_jobs(select=job.id)
        self.touch()
        return job

    def pause_training(self) -> None:
        self._current().pause()
        self._update_buttons()

    def resume_training(self) -> None:
        self._current().resume()
        self._update_buttons()
        self.touch()

    def cancel_training(self) -> None:
        self._current().cancel()

    def retry_training(self) -> None:
        self._current().retry()
        self.touch()

    # --- project / job binding ------------------------------------------------------------------------
    def set_project(self, project: Any) -> None:
        self.project = project
        self._reload_jobs()

    def refresh(self) -> None:
        self._update_buttons()

    def attach(self, job: Job | None) -> None:
        """Watch ``job`` (snapshot, then live events); ``None`` detaches."""
        self.job = job
        self.preview.set_job(job)
        if job is None:
            self._watch.attach(None)
            self._clear()
            return
        self._watch.attach(job)

    def _reload_jobs(self, select: str | None = None) -> None:
        if self.project is None:
            self.job_picker.options = []
            self.attach(None)
            return
        with self.notice.guard(clear=False):
            jobs = [j for j in self.project.jobs() if j.record().type == "train"]
            options = [(self._label(j), j.id) for j in jobs]
            self.job_picker.options = options
            target = select or (options[0][1] if options else None)
            if self.job_picker.value != target:
                self.job_picker.value = target
            elif target is not None and (self.job is None or self.job.id != target):
                self._pick(target)
            if target is None:
                self.attach(None)
        self._update_buttons()

    def _relabel(self) -> None:
        """Refresh the job list's labels (they show each job's state) without changing the selection."""
        if self.project is None:
            return
        with self.notice.guard(clear=False):
            labels = {j.id: self._label(j) for j in self.project.jobs() if j.record().type == "train"}
            selected = self.job_picker.value
            options = [(labels.get(value, label), value) for label, value in self.job_picker.options]
            if [o[0] for o in options] != [o[0] for o in self.job_picker.options]:
                self._relabeling = True
                try:
                    self.job_picker.options = options
                    self.job_picker.value = selected
                finally:
                    self._relabeling = False

    @staticmethod
    def _label(job: Job) -> str:
        row = job.record()
        preset = row.params.get("preset", "")
        return f"{row.id} · {row.params.get('method', '')} {preset} · {row.state}"

    def _pick(self, job_id: str | None) -> None:
        if job_id is None or self.project is None or self._relabeling:
            return
        if self.job is None or self.job.id != job_id:
            self.attach(self.project.job(job_id))
        self._update_buttons()

    def _current(self) -> Job:
        if self.job is None:
            from nerf_widgets.core.errors import NotFoundError

            raise NotFoundError("No training job is selected.")
        return self.job

    # --- live view ------------------------------------------------------------------------------------
    def _on_view(self, view: dict[str, Any], batch: Batch) -> None:
        # buttons first: once the status line says "cancelled", Retry must already be enabled (a person, or a
        # test, acting on what the status says would otherwise hit a stale button; seen in CI)
        state = view.get("job", {}).get("state")
        changed = state != self._last_state
        if changed:
            self._last_state = state
            self._update_buttons()
            self._relabel()
        self._redraw(view)
        self.preview.apply(view)
        if changed and state in (JobState.RUNNING.value, JobState.SUCCEEDED.value, JobState.FAILED.value,
                                 JobState.CANCELLED.value):
            self.touch()  # the project's lifecycle state moved with the job

    def _redraw(self, view: dict[str, Any]) -> None:
        prog, job = view.get("progress", {}), view.get("job", {})
        with self.hold_sync():
            self.progress.value = float(min(1.0, max(0.0, prog.get("fraction") or 0.0)))
            self.status.value = self._status_html(job, prog)
            self.convergence.value = self._convergence_html(view.get("convergence"))
            self.alerts.value = self._alerts_html(view.get("alerts", []))
        self.curves.draw(view.get("series", {}), self.x_by.value)

    @staticmethod
    def _status_html(job: dict[str, Any], prog: dict[str, Any]) -> str:
        state = job.get("state", "-")
        step, total = prog.get("step"), prog.get("max_steps")
        parts = [f"<b class='nw-job-state'>{esc(state)}</b>"]
        if step:
            parts.append(f"step <span class='nw-step'>{int(step)}</span>" + (f" / {int(total)}" if total else ""))
        if prog.get("steps_per_s"):
            parts.append(f"{prog['steps_per_s']:.1f} steps/s")
        if state in ("running", "paused"):
            parts.append(f"ETA {_fmt_duration(prog.get('eta_s'))}")
        if prog.get("waiting_for") and state == "waiting_for_resources":
            parts.append(f"waiting: {esc(prog['waiting_for'])}")
        if job.get("error"):
            parts.append(f"<span style='color:#b00020'>{esc(job['error'])}</span>")
        return " · ".join(parts)

    @staticmethod
    def _convergence_html(conv: dict[str, Any] | None) -> str:
        if not conv:
            return ""
        status = str(conv.get("status", "unknown"))
        color = _STATUS_COLOR.get(status, "#555")
        return (f"convergence: <b class='nw-convergence' style='color:{color}'>{esc(status)}</b> "
                f"<small>{esc(conv.get('message', ''))}</small>")

    @staticmethod
    def _alerts_html(alerts: list[dict[str, Any]]) -> str:
        import time as _time

        rows = []
        for a in reversed(alerts[-8:]):
            color = _SEVERITY_COLOR.get(a.get("severity", ""), "#555")
            when = _time.strftime("%H:%M:%S", _time.localtime(float(a.get("time") or a.get("created_at") or 0)))
            rows.append(f"<li class='nw-alert'><span style='color:{color}'>{esc(a.get('severity', ''))}</span> "
                        f"{esc(when)} {esc(a.get('message', ''))}</li>")
        return f"<b>Alerts</b><ul>{''.join(rows)}</ul>" if rows else ""

    def _update_buttons(self) -> None:
        state = self.job.state.value if self.job is not None else None
        try:
            project_state = self.project.state if self.project is not None else None
        except Exception:  # noqa: BLE001 - deleted meanwhile: nothing can start
            project_state = None
        active = state in ("queued", "waiting_for_resources", "running", "paused")
        enabled = {
            "start": project_state in _STARTABLE and not active,
            "pause": state == "running",
            "resume": state == "paused" or (state == "failed" and "Interrupted" in (self.job.error or "")),  # type: ignore[union-attr]
            "cancel": active,
            "retry": state in ("failed", "cancelled") and project_state in _STARTABLE | {"PosesEstimated"},
        }
        for name, button in self.buttons.items():
            button.disabled = not enabled[name]

    def _clear(self) -> None:
        self.progress.value = 0.0
        self.status.value = "<i>No training job yet: choose a method and preset, then Start.</i>"
        self.convergence.value = self.alerts.value = ""
        self.curves.draw({}, self.x_by.value)

    def close(self) -> None:
        """Unregister from the job's bus, then close the widgets."""
        self._watch.detach()
        self.preview.close()
        super().close()


def raise_no_project() -> None:
    from nerf_widgets.core.errors import StateConflictError

    raise StateConflictError("Open a project first (Projects tab).")
