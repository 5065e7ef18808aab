"""``ProjectBrowser``: list, create, open and delete projects (ipywidgets only, no custom JS).

Each button is exactly one Studio call: ``create_project``, ``project`` (open), ``delete_project``.
User text is escaped before it reaches an ``HTML`` widget. Each row also shows the project's newest job
(training, poses or export: its state, step, and the Ray node it runs on or why it waits), redrawn when a live job changes state.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from nerf_widgets.jobs.bus import Batch, Subscription
from nerf_widgets.widgets.common import Notice, esc, guarded
from nerf_widgets.widgets.panel import PanelMixin, StudioContext

if TYPE_CHECKING:
    from nerf_widgets.jobs.bus import Event
    from nerf_widgets.studio import Project, Studio


class ProjectBrowser(w.VBox, PanelMixin):
    """Projects of one studio with their lifecycle state; ``ProjectBrowser()`` works standalone too."""

    def __init__(self, studio: Studio | None = None, *, context: StudioContext | None = None) -> None:
        if context is None:
            from nerf_widgets.studio import Studio

            context = StudioContext(studio if studio is not None else Studio())
        self.notice = Notice()
        self.name_box = w.Text(placeholder="Project name", layout=w.Layout(width="260px"))
        self.name_box.add_class("nw-create-name")
        self.description_box = w.Textarea(placeholder="Description (optional)", layout=w.Layout(width="420px"))
        self.description_box.add_class("nw-create-description")
        self.create_button = w.Button(description="Create project", button_style="primary", icon="plus")
        self.create_button.add_class("nw-create")
        self.create_button.on_click(guarded(self.notice, lambda _b: self.create()))
        self.rows = w.VBox()
        self.rows.add_class("nw-project-list")
        self._confirming: str | None = None
        self._watching: dict[str, Subscription] = {}  # live jobs whose state changes redraw the list
        form = w.HBox([self.name_box, self.description_box, self.create_button])
        super().__init__([w.HTML("<b>New project</b>"), form, self.notice, w.HTML("<b>Projects</b>"), self.rows])
        self.add_class("nw-project-browser")
        self.bind(context)

    @property
    def studio(self) -> Studio:
        assert self.context is not None
        return self.context.studio  # type: ignore[no-any-return]

    # --- actions: one Studio call each ------------------------------------------------------------
    def create(self) -> Project:
        """Create from the form, open it, clear the form. Raises (shown inline) on invalid input."""
        project = self.studio.create_project(self.name_box.value, self.description_box.value)
        self.name_box.value = self.description_box.value = ""
        self.notice.info(f"Created project {project.name!r}.")
        self.open_project(project.id)
        self.touch()
        return project

    def open_project(self, project_id: str) -> None:
        assert self.context is not None
        self.context.open(project_id)

    def delete(self, project_id: str) -> None:
        """Second step of deletion (after ``ask_delete``); closes the project if it was open."""
        assert self.context is not None
        self._confirming = None
        current = self.context.project
        self.studio.delete_project(project_id)
        if current is not None and current.id == project_id:
            self.context.open(None)
        self.touch()

    def ask_delete(self, project_id: str | None) -> None:
        """Show (or with ``None`` hide) the confirmation step on one row."""
        self._confirming = project_id
        self.refresh()

    # --- view -------------------------------------------------------------------------------------
    def set_project(self, project: Any) -> None:
        self.refresh()

    def on_feed(self, events: list[Event] | None) -> None:
        """Projects created, moved on or deleted by anyone (a cell, another kernel) show in the list."""
        if events is None or any(e.kind in ("project", "removed") for e in events):
            self.refresh()

    def refresh(self) -> None:
        with self.notice.guard(clear=False):
            projects = self.studio.projects()
            jobs = self.studio.newest_jobs()
            self.rows.children = [self._row(p, jobs.get(p.id)) for p in projects] or [
                w.HTML("<i>No projects yet: create one above.</i>")
            ]
            self._watch([j for j in jobs.values() if j.state in ("queued", "waiting_for_resources", "running",
                                                                  "paused")])

    def _watch(self, live: list[Any]) -> None:
        """Follow the live jobs' buses (a state or waiting message redraws); drop the ones that ended."""
        from nerf_widgets.jobs.runner import runner_for

        ids = {j.id for j in live}
        for job_id in [k for k in self._watching if k not in ids]:
            self._watching.pop(job_id).close()
        runner = runner_for(self.studio.db, self.studio.home)
        for job_id in ids - set(self._watching):
            self._watching[job_id] = runner.bus(job_id).subscribe(self._on_job_batch, max_rate_hz=2.0,
                                                                   name="project-browser")

    def _on_job_batch(self, batch: Batch) -> None:
        if batch.snapshot is None and any(e.kind == "state" or (e.kind == "progress" and (
                "waiting_for" in e.data or "node" in e.data)) for e in batch.events):
            self.refresh()

    def close(self) -> None:
        for sub in self._watching.values():
            sub.close()
        self._watching.clear()
        super().close()

    def _row(self, project: Project, job: Any | None = None) -> w.Widget:
        current = self.context.project if self.context is not None else None
        is_open = current is not None and current.id == project.id
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(project.created_at))
        label = w.HTML(
            f'<span class="nw-project-name" style="font-weight:{"bold" if is_open else "normal"}">{esc(project.name)}'
            f'</span> <span class="nw-project-state" style="color:#555">[{esc(project.state)}]</span> '
            f'<span style="color:#888;font-size:smaller" title="{esc(project.description)}">{esc(when)}</span>'
            + _job_html(job),
            layout=w.Layout(width="560px"),
        )
        return w.HBox([label, *self._row_buttons(project, is_open)], layout=w.Layout(align_items="center"))

    def _row_buttons(self, project: Project, is_open: bool) -> list[w.Widget]:
        pid = project.id
        if self._confirming == pid:
            ask = w.HTML(f"Delete <b>{esc(project.name)}</b> and all its files?")
            yes = _button("Delete", "danger", "nw-confirm-delete", guarded(self.notice, lambda _b: self.delete(pid)))
            no = _button("Cancel", "", "nw-cancel-delete", guarded(self.notice, lambda _b: self.ask_delete(None)))
            return [ask, yes, no]
        opener = _button("Open" if not is_open else "Opened", "success" if is_open else "", "nw-open",
                         guarded(self.notice, lambda _b: self.open_project(pid)))
        deleter = _button("Delete", "", "nw-delete", guarded(self.notice, lambda _b: self.ask_delete(pid)))
        return [opener, deleter]


def _job_html(job: Any | None) -> str:
    """``job running on node-2, step 120`` (or why it waits, as the tooltip); empty without a job."""
    if job is None:
        return ""
    p = job.progress
    where = f" on {p['node']}" if p.get("node") and job.state in ("running", "paused") else ""
    step = f", step {p['step']}" if p.get("step") else ""
    why = p.get("waiting_for") if job.state == "waiting_for_resources" else job.error
    return (f' <span class="nw-project-job" data-state="{esc(job.state)}" title="{esc(why or "")}" '
            f'style="font-size:smaller">job {esc(job.state.replace("_", " "))}{esc(where)}{esc(step)}</span>')


def _button(text: str, style: str, css: str, on_click: Any) -> w.Button:
    button = w.Button(description=text, button_style=style, layout=w.Layout(width="auto"))
    button.add_class(css)
    button.on_click(on_click)
    return button


__all__ = ["ProjectBrowser"]
