"""The studio feed: one event bus per studio home per kernel saying what happened to projects, images and jobs.

Whoever made the change (a cell's Python call, a widget, a job thread, another kernel on the same home),
the store (SQLite, WAL) is the source of truth and the feed is its notifier. One watcher thread per feed
reads a compact summary of the store (project transitions after the last one seen, image counts, job
states) and publishes the differences as numbered events on an ``EventBus``; widgets subscribe once and
get a snapshot, then events. It reads when

- ``poke()`` is called: the Studio/Project API and the job runner poke after each write of this kernel,
  so the event follows within a few milliseconds;
- ``PRAGMA data_version`` of its own connection changed: SQLite bumps it whenever *another* connection
  commits (another thread's or another process's), so changes by other kernels arrive within one
  ``interval`` (0.25 s). Checking it reads the WAL index in shared memory, not the database file.

Events (``Event.kind``: ``data``)::

    project:  {project_id, name, state, from_state, transition}   one per recorded transition (and creation)
    removed:  {project_id}                                         the project was deleted
    images:   {project_id, count}                                  images added or removed
    job:      {job_id, project_id, type, state, step, new}         a job appeared, changed state or step
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerf_widgets.jobs.bus import Event, EventBus
from nerf_widgets.store.db import Database

__all__ = ["StudioFeed", "feed_for", "poke", "reduce_feed_event", "shutdown_feeds"]

log = logging.getLogger(__name__)
WATCH_INTERVAL_S = 0.25
_ACTIVE_JOB_STATES = ("queued", "waiting_for_resources", "running", "paused")


def reduce_feed_event(state: dict[str, Any], ev: Event) -> None:
    """Fold one feed event into ``{projects: {id: {name, state}}, images: {id: count}, jobs: {id: {...}}}``."""
    d = ev.data
    if ev.kind == "project":
        state.setdefault("projects", {})[d["project_id"]] = {"name": d["name"], "state": d["state"]}
    elif ev.kind == "removed":
        pid = d["project_id"]
        state.setdefault("projects", {}).pop(pid, None)
        state.setdefault("images", {}).pop(pid, None)
        state["jobs"] = {k: v for k, v in state.get("jobs", {}).items() if v["project_id"] != pid}
    elif ev.kind == "images":
        state.setdefault("images", {})[d["project_id"]] = d["count"]
    elif ev.kind == "job":
        state.setdefault("jobs", {})[d["job_id"]] = {k: d[k] for k in ("project_id", "type", "state", "step")}


@dataclass
class _Summary:
    """What the watcher last saw: enough to tell every change apart from the previous read."""

    history_id: int = 0
    projects: set[str] = field(default_factory=set)
    images: dict[str, tuple[int, int]] = field(default_factory=dict)  # project -> (count, max rowid)
    jobs: dict[str, tuple[str, str, str, int | None]] = field(default_factory=dict)  # id -> (project, type, state, step)


class StudioFeed:
    """Studio-wide events of one home in this kernel (``feed_for(db)``); ``subscribe`` like any ``EventBus``."""

    def __init__(self, db_path: Path, *, interval: float = WATCH_INTERVAL_S) -> None:
        self.db = Database(db_path)  # its own connections: data_version counts the others' commits
        self.interval = interval
        self._sync_lock = threading.Lock()
        self._last = _Summary()
        self.bus = EventBus("studio", reducer=reduce_feed_event)
        self.syncs = 0
        self._poked = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="nerf-studio-feed", daemon=True)
        self.sync()  # the first read seeds the snapshot; its events only reach later subscribers as state
        self._thread.start()

    def subscribe(self, callback: Any, **options: Any) -> Any:
        """``EventBus.subscribe`` on the feed: a snapshot of every project, image count and job first."""
        return self.bus.subscribe(callback, **options)

    def poke(self) -> None:
        """Something of this home changed in this kernel: read the store now rather than at the next tick."""
        self._poked.set()

    def sync(self) -> list[Event]:
        """Read the store, publish what changed since the last read; returns the events published."""
        with self._sync_lock:
            events = [self.bus.publish(kind, data) for kind, data in self._diff()]
            self.syncs += 1
        return events

    def _watch(self) -> None:
        version = None
        while not self._closed.is_set():
            poked = self._poked.wait(self.interval)
            self._poked.clear()
            if self._closed.is_set():
                return
            try:
                now = self.db.query_one("PRAGMA data_version")[0]  # type: ignore[index]
                if poked or now != version:
                    version = now
                    self.sync()
            except Exception:  # a locked or vanished file must not end the watcher
                log.exception("studio feed: reading the store failed")

    def _diff(self) -> list[tuple[str, dict[str, Any]]]:
        old, new = self._last, _read_summary(self.db, self._last.history_id)
        out: list[tuple[str, dict[str, Any]]] = []
        for row in new.transitions:
            out.append(("project", row))
        out += [("removed", {"project_id": pid}) for pid in sorted(old.projects - new.summary.projects)]
        for pid, mark in new.summary.images.items():
            if old.images.get(pid) != mark:
                out.append(("images", {"project_id": pid, "count": mark[0]}))
        for pid in old.images.keys() - new.summary.images.keys():
            if pid in new.summary.projects:
                out.append(("images", {"project_id": pid, "count": 0}))
        for jid, job in new.summary.jobs.items():
            if old.jobs.get(jid) != job:
                out.append(("job", {"job_id": jid, "project_id": job[0], "type": job[1], "state": job[2],
                                    "step": job[3], "new": jid not in old.jobs}))
        self._last = new.summary
        return out

    def close(self) -> None:
        self._closed.set()
        self._poked.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
        self.bus.close()
        self.db.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()


@dataclass
class _Read:
    summary: _Summary
    transitions: list[dict[str, Any]]


def _read_summary(db: Database, after_history: int) -> _Read:
    """One consistent read (a single read transaction) of everything the feed compares."""
    conn = db.connection()
    conn.execute("BEGIN")
    try:
        history = conn.execute(
            "SELECT h.id, h.project_id, h.from_state, h.to_state, h.transition, p.name FROM state_history h "
            "JOIN projects p ON p.id = h.project_id WHERE h.id > ? ORDER BY h.id", (after_history,)).fetchall()
        projects = {r[0] for r in conn.execute("SELECT id FROM projects")}
        images = {r[0]: (int(r[1]), int(r[2])) for r in conn.execute(
            "SELECT project_id, COUNT(*), MAX(rowid) FROM images GROUP BY project_id")}
        marks = ",".join("?" * len(_ACTIVE_JOB_STATES))
        jobs = {r[0]: (r[1], r[2], r[3], _step(r[4])) for r in conn.execute(
            f"SELECT id, project_id, type, state, CASE WHEN state IN ({marks}) THEN progress_json END FROM jobs",
            _ACTIVE_JOB_STATES)}
        top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM state_history").fetchone()[0]
    finally:
        conn.execute("COMMIT")
    transitions = [{"project_id": r[1], "name": r[5], "state": r[3], "from_state": r[2], "transition": r[4]}
                   for r in history]
    return _Read(_Summary(max(int(top), after_history), projects, images, jobs), transitions)


def _step(progress_json: str | None) -> int | None:
    """The step an active job reported (Python's JSON, which may hold NaN: SQLite's json_extract refuses it)."""
    if not progress_json:
        return None
    step = json.loads(progress_json).get("step")
    return int(step) if isinstance(step, int | float) and step == step else None


_feeds: dict[str, StudioFeed] = {}
_feeds_lock = threading.Lock()


def feed_for(db: Database) -> StudioFeed:
    """The kernel's feed for this studio database (created, and its watcher started, on first use)."""
    path = Path(db.path).resolve()
    with _feeds_lock:
        feed = _feeds.get(str(path))
        if feed is None or feed.closed:
            feed = _feeds[str(path)] = StudioFeed(path)
        return feed


def poke(db: Database) -> None:
    """Poke the kernel's feed for ``db`` if one exists (writers call this; no feed, nothing to tell)."""
    feed = _feeds.get(str(Path(db.path).resolve()))
    if feed is not None:
        feed.poke()


def shutdown_feeds() -> None:
    with _feeds_lock:
        feeds = list(_feeds.values())
        _feeds.clear()
    for feed in feeds:
        feed.close()

