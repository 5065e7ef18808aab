"""The panel convention shared by every tab of ``StudioApp``.

A panel is an ipywidgets widget class constructed as ``Panel(context=ctx)``. ``ctx`` is a
``StudioContext``: ``ctx.studio`` is the ``Studio``, ``ctx.project`` the project currently open (or
``None``), ``ctx.revision`` a counter bumped whenever some panel changed stored state (so the others
re-read, e.g. the project list shows the new lifecycle state). A panel:

- reacts to the current project: override ``set_project(project)`` (``PanelMixin`` calls it once at
  bind time and on every change);
- optionally re-reads on ``refresh()`` (called when ``ctx.revision`` changes);
- after an action that changes stored state, calls ``self.touch()``; to open another project it sets
  ``ctx.project``;
- follows what *anyone* did to the studio (a cell, another widget, another kernel) by overriding
  ``on_feed(events)``: the context subscribes once to the studio feed (``jobs/feed.py``) and hands each
  batch of events to every panel, on the feed's delivery thread (at most ~10 batches a second). A batch
  of ``None`` means "resynced from a snapshot: re-read everything".

Every action a panel performs is one call of the Studio API (``Studio`` / ``Project`` methods).
Do not name panel methods ``open``, ``close``, ``send`` or ``keys``: ipywidgets' ``Widget`` owns them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import traitlets

if TYPE_CHECKING:
    from nerf_widgets.jobs.bus import Batch, Event, Subscription
    from nerf_widgets.studio import Project, Studio

log = logging.getLogger(__name__)
FeedListener = Callable[["list[Event] | None"], None]


class StudioContext(traitlets.HasTraits):
    """What the tabs of one ``StudioApp`` share: the studio, the open project, a change counter."""

    studio = traitlets.Any()
    project = traitlets.Any(None, allow_none=True)
    revision = traitlets.Int(0)

    def __init__(self, studio: Studio) -> None:
        super().__init__(studio=studio)
        self._listeners: list[FeedListener] = []
        self._feed_sub: Subscription | None = None
        self._synced = False  # the first snapshot is what the panels just read; later ones are resyncs

    def listen(self, listener: FeedListener) -> None:
        """Call ``listener(events)`` for every batch of studio-feed events (subscribes on the first listener)."""
        self._listeners.append(listener)
        if self._feed_sub is None:
            self._feed_sub = self.studio.feed.subscribe(self._on_feed, name="studio-context")

    def _on_feed(self, batch: Batch) -> None:
        first, self._synced = not self._synced, True
        events = None if batch.snapshot is not None and not first else list(batch.events)
        project = self.project
        if project is not None and any(e.kind == "removed" and e.data["project_id"] == project.id
                                       for e in events or []):
            self.project = None  # deleted elsewhere: every panel closes it
        for listener in list(self._listeners):
            try:
                listener(events)
            except Exception:  # one broken panel must not starve the others
                log.exception("a panel failed on studio feed events")

    def unlisten(self) -> None:
        """Stop following the feed (``StudioApp.close``)."""
        sub, self._feed_sub = self._feed_sub, None
        self._listeners.clear()
        if sub is not None:
            sub.close()

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
        context.listen(self.on_feed)
        self.set_project(context.project)

    def set_project(self, project: Any) -> None:
        """The current project changed (``None``: no project open)."""

    def refresh(self) -> None:
        """Stored state changed somewhere; re-read what this panel shows."""

    def on_feed(self, events: list[Event] | None) -> None:
        """Studio feed events (``None``: resynced, re-read everything); the default re-reads when the current
        project moved, was removed or its images changed (job steps are left to panels that show jobs)."""
        if events is None or about_project(events, self.context, ("project", "removed", "images")):
            self.refresh()

    def touch(self) -> None:
        """This panel changed stored state; let the others know."""
        if self.context is not None:
            self.context.touch()


def about_project(events: list[Event], context: StudioContext | None, kinds: tuple[str, ...]) -> list[Event]:
    """The events of ``kinds`` that concern the context's current project."""
    project = context.project if context is not None else None
    if project is None:
        return []
    return [e for e in events if e.kind in kinds and e.data.get("project_id") == project.id]


__all__ = ["PanelMixin", "StudioContext", "about_project"]
