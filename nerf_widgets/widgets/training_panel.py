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

import ipywidgets as w

from nerf_widgets.jobs.bus import Batch, Event
from nerf_widgets.jobs.states import JobState
from nerf_widgets.widgets.common import Notice, esc, guarded
from nerf_widgets.widgets.compat import tooltip
from nerf_widgets.widgets.curves import LiveCurves, thin
from nerf_widgets.widgets.job_watch import JobWatch
from nerf_widgets.widgets.panel import PanelMixin, StudioContext, about_project
from nerf_widgets.widgets.preview import LivePreview

if TYPE_CHECKING:
    from nerf_widgets.jobs.handle import Job
    from nerf_widgets.studio import Project

__all__ = ["TrainingPanel", "thin"]

_STARTABLE = {"PosesEstimated", "TrainingCompleted", "ModelExported", "TrainingFailed", "TrainingInterrupted"}
_SEVERITY_COLOR = {"info": "#1565c0", "warning": "#e65100", "critical": "#b00020"}
_STATUS_COLOR = {"improving": "#2e7d32", "plateau": "#e65100", "converged": "#1565c0", "diverging": "#b00020"}


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class TrainingPanel(w.VBox, PanelMixin):
    """``TrainingPanel(project)`` standalone, or a tab of ``StudioApp`` (``TrainingPanel(context=ctx)``)."""

    def __init__(self, project: Project | None = None, *, context: StudioContext | None = None,
                 job: Job | None = None) -> None:
        from nerf_widgets.studio.catalog import training_choices

        choices = training_choices()
        self.project: Project | None = None
        self.job: Job | None = None
        self._watch = JobWatch(self._on_view, name="training-panel")
        self.notice = Notice()
        self.method = w.Dropdown(options=choices.methods, value=choices.methods[0], description="method")
        self.preset = w.Dropdown(options=choices.presets, value=choices.presets[0], description="preset")
        self.max_minutes = w.BoundedFloatText(0, min=0, max=24 * 60, description="max min", **tooltip("0 = preset's"))
        self.max_steps = w.BoundedIntText(0, min=0, max=10_000_000, description="max steps", **tooltip("0 = preset's"))
        self.max_steps.add_class("nw-max-steps")
        self.refine_poses = w.Checkbox(False, description="refine camera poses", indent=False,
                                       **tooltip("learn a small correction of each photo's camera (handheld captures "
                                                 "whose poses are a little off); slower on a CPU"))
        self.refine_poses.add_class("nw-refine-poses")
        self.method.observe(lambda c: setattr(self.refine_poses, "disabled", c["new"] != "fast"), "value")
        self.refine_poses.disabled = self.method.value != "fast"
        self.buttons = {name: w.Button(description=name.capitalize(), icon=icon)
                        for name, icon in (("start", "play"), ("pause", "pause"), ("resume", "step-forward"),
                                           ("cancel", "stop"), ("retry", "redo"))}
        for name, button in self.buttons.items():
            button.add_class(f"nw-train-{name}")
            button.on_click(guarded(self.notice, lambda _b, n=name: getattr(self, f"{n}_training")()))
        self.buttons["start"].button_style = "primary"
        self.job_picker = w.Dropdown(options=[], description="job", layout=w.Layout(width="420px"))
        self.job_picker.add_class("nw-job-picker")
        self.job_picker.observe(lambda c: self._pick(c["new"]), "value")
        self.progress = w.FloatProgress(0.0, min=0.0, max=1.0, layout=w.Layout(width="420px"))
        self.status = w.HTML()
        self.convergence = w.HTML()
        self.x_by = w.ToggleButtons(options=["step", "time"], value="step", description="x axis")
        self.x_by.observe(lambda _c: self._redraw(self._watch.view), "value")
        self.curves = LiveCurves()
        self.alerts = w.HTML()
        self.preview = LivePreview(watch=False)
        self._last_state: str | None = None
        self._relabeling = False
        form = w.HBox([w.VBox([self.method, self.preset]), w.VBox([self.max_minutes, self.max_steps]),
                       w.VBox([self.refine_poses])])
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
        options: dict[str, Any] = {"max_minutes": self.max_minutes.value or None,
                                   "max_steps": self.max_steps.value or None}
        if self.refine_poses.value and not self.refine_poses.disabled:
            options["model"] = {"pose_refine": True}
        job = self.project.start_training(self.method.value, self.preset.value, **options)  # type: ignore[union-attr]
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

    def on_feed(self, events: list[Event] | None) -> None:
        """A training job of this project started or moved elsewhere (a cell, another kernel): show it."""
        if events is None:
            self._reload_jobs()
            return
        jobs = [e for e in about_project(events, self.context, ("job",)) if e.data["type"] == "train"]
        new = [e.data["job_id"] for e in jobs if e.data["new"]]  # even one that ended between two looks
        if new:
            self._reload_jobs(select=new[-1])
        elif any(e.data["job_id"] not in self._known_jobs() for e in jobs):
            self._reload_jobs(select=self.job.id if self.job is not None else None)
        elif any(e.data["state"] != self._listed_states().get(e.data["job_id"]) for e in jobs):
            self._relabel()
        if about_project(events, self.context, ("project",)):
            self._update_buttons()
        self._watch.catch_up(jobs)  # a job of another kernel: its curves from the store

    def _known_jobs(self) -> set[str]:
        return {value for _label, value in self.job_picker.options}

    def _listed_states(self) -> dict[str, str]:
        """The state each job's label shows (labels end with `` · <state>``)."""
        return {value: label.rsplit(" · ", 1)[-1] for label, value in self.job_picker.options}

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
