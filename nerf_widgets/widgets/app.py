"""``StudioApp``: the whole studio in one widget, one tab per lifecycle step.

Adding a tab is one line in ``PANELS``: a title and ``"module:Class"``; the class follows the panel
convention in ``nerf_widgets.widgets.panel`` (built as ``Class(context=ctx)``). Panels are imported
only when an app is built, so importing this module stays light; a panel that fails to build shows
its error inside its tab instead of breaking the studio.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from nerf_widgets.widgets.common import Notice, error_message, esc
from nerf_widgets.widgets.compat import set_tab_titles, tab_titles
from nerf_widgets.widgets.panel import StudioContext, about_project

if TYPE_CHECKING:
    from nerf_widgets.jobs.bus import Event
    from nerf_widgets.studio import Project, Studio


@dataclass(frozen=True)
class PanelSpec:
    """A tab: its title and the panel class as ``"package.module:Class"``."""

    title: str
    target: str

    def build(self, context: StudioContext) -> w.Widget:
        module, _, name = self.target.partition(":")
        cls = getattr(importlib.import_module(module), name)
        return cls(context=context)  # type: ignore[no-any-return]


PANELS: list[PanelSpec] = [
    PanelSpec("Projects", "nerf_widgets.widgets.project_browser:ProjectBrowser"),
    PanelSpec("Images", "nerf_widgets.widgets.image_uploader:ImageUploader"),
    PanelSpec("Poses", "nerf_widgets.widgets.pose_viewer:PoseViewer"),
    PanelSpec("Training", "nerf_widgets.widgets.training_panel:TrainingPanel"),
    PanelSpec("System", "nerf_widgets.widgets.system_monitor:SystemMonitor"),
    PanelSpec("Export", "nerf_widgets.widgets.export_panel:ExportPanel"),
]


class StudioApp(w.VBox):
    """``StudioApp()`` in a cell is the studio. Pass ``home=`` (a studio folder) or an existing ``studio=``."""

    def __init__(self, home: str | os.PathLike[str] | None = None, *, studio: Studio | None = None,
                 panels: list[PanelSpec] | None = None) -> None:
        if studio is None:
            from nerf_widgets.studio import Studio

            studio = Studio(home)
        elif home is not None:
            raise TypeError("pass either home= or studio=, not both")
        self.context = StudioContext(studio)
        self.header = w.HTML()
        self.header.add_class("nw-header")
        self.notice = Notice()
        self.panels: dict[str, w.Widget] = {}
        specs = PANELS if panels is None else panels
        self.tabs = w.Tab(children=[self._build(spec) for spec in specs])
        set_tab_titles(self.tabs, [spec.title for spec in specs])
        super().__init__([self.header, self.notice, self.tabs])
        self.add_class("nw-studio")
        self.context.observe(self._on_project, "project")
        self.context.observe(lambda _c: self._draw_header(), "revision")
        self.context.listen(self._on_feed)
        self._draw_header()

    @property
    def studio(self) -> Studio:
        return self.context.studio  # type: ignore[no-any-return]

    @property
    def project(self) -> Project | None:
        return self.context.project  # type: ignore[no-any-return]

    def open_project(self, project_id: str | None) -> None:
        """Open a project in every tab (``Studio.project``); errors show inline."""
        with self.notice.guard():
            self.context.open(project_id)

    def show(self, title: str) -> None:
        """Switch to the tab called ``title``."""
        self.tabs.selected_index = tab_titles(self.tabs).index(title)

    def _build(self, spec: PanelSpec) -> w.Widget:
        try:
            panel = spec.build(self.context)
        except Exception as err:  # noqa: BLE001 - one broken panel must not take the studio down
            panel = w.HTML(f'<div style="color:#b00020">This tab could not be built: {esc(error_message(err))}</div>')
        self.panels[spec.title] = panel
        return panel

    def _on_project(self, change: dict[str, Any]) -> None:
        self._draw_header()
        if change["new"] is not None and self.tabs.selected_index == 0 and len(self.panels) > 1:
            self.tabs.selected_index = 1  # opened from the Projects tab: go on to the next step

    def _on_feed(self, events: list[Event] | None) -> None:
        """The header follows every lifecycle transition of the open project, whoever made it."""
        if events is None or about_project(events, self.context, ("project",)):
            self._draw_header()

    def close(self) -> None:
        """Leave the studio feed and close every panel (their job watches end with them)."""
        if hasattr(self, "context"):  # a constructor that raised leaves a half-built widget to be collected
            self.context.unlisten()
            for panel in self.panels.values():
                panel.close()
        super().close()

    def _draw_header(self) -> None:
        project = self.context.project
        home = f'<span style="color:#888">studio home {esc(self.studio.home)}</span>'
        if project is None:
            self.header.value = f"<b>nerf_widgets studio</b> &middot; no project open &middot; {home}"
            return
        try:
            state = project.state
        except Exception as err:  # noqa: BLE001 - e.g. deleted by another kernel
            state = error_message(err)
        self.header.value = (f'<b>nerf_widgets studio</b> &middot; project <b class="nw-current-project">{esc(project.name)}'
                             f'</b> <span class="nw-current-state">[{esc(state)}]</span> &middot; {home}')


__all__ = ["PANELS", "PanelSpec", "StudioApp"]
