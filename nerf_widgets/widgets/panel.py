"""The panel convention shared by every tab of ``StudioApp``.

A panel is an ipywidgets widget class constructed as ``Panel(context=ctx)``. ``ctx`` is a
``StudioContext``: ``ctx.studio`` is the ``Studio``, ``ctx.project`` the project currently open (or
``None``), ``ctx.revision`` a counter bumped whenever some panel changed stored state (so the others
re-read, e.g. the project list shows the new lifecycle state). A panel:

- reacts to the current project: override ``set_project(project)`` (``PanelMixin`` calls it once at
  bind time and on every change);
- optionally re-reads on ``refresh()`` (called when ``ctx.revision`` changes);
- after an action that changes stored state, calls ``self.touch()``; to open another project it sets
  ``ctx.project``.

Every action a panel performs is one call of the Studio API (``Studio`` / ``Project`` methods).
Do not name panel methods ``open``, ``close``, ``send`` or ``keys``: ipywidgets' ``Widget`` owns them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import traitlets

if TYPE_CHECKING:
    from nerf_widgets.studio import Project, Studio


class StudioContext(traitlets.HasTraits):
    """What the tabs of one ``StudioApp`` share: the studio, the open project, a change counter."""

    studio = traitlets.Any()
    project = traitlets.Any(None, allow_none=True)
    revision = traitlets.Int(0)

    def __init__(self, studio: Studio) -> None:
        super().__init__(studio=studio)

    def open(self, project_id: str | None) -> Project | None:
        """Make ``project_id`` the current project (``None`` closes it); ``NotFoundError`` if unknown."""
        self.project = None if project_id is None else self.studio.project(project_id)
        return self.project

    def touch(self) -> None:
        """Tell every panel that stored state changed (they refresh)."""
        self.revision += 1


class PanelMixin:
    """Wires a widget to a ``StudioContext`` following the convention above."""

    context: StudioContext | None = None

    def bind(self, context: StudioContext | None) -> None:
        """Follow ``context``'s current project and revisions (no-op for a standalone widget)."""
        self.context = context
        if context is None:
            return
        context.observe(lambda change: self.set_project(change["new"]), "project")
        context.observe(lambda _change: self.refresh(), "revision")
        self.set_project(context.project)

    def set_project(self, project: Any) -> None:
        """The current project changed (``None``: no project open)."""

    def refresh(self) -> None:
        """Stored state changed somewhere; re-read what this panel shows."""

    def touch(self) -> None:
        """This panel changed stored state; let the others know."""
        if self.context is not None:
            self.context.touch()


__all__ = ["PanelMixin", "StudioContext"]
