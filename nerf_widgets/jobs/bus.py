"""Per-job event bus: numbered events, snapshots, and subscribers that can never slow the producer.

Every event gets the next sequence number under one lock, is folded into a snapshot state by a
reducer, kept in a bounded history, and appended to each subscriber's bounded queue. Each
subscriber has its own pump thread that delivers *batches* at most ``max_rate_hz`` times a second
(coalescing), so a slow widget only delays itself. A subscriber whose queue overflows is resynced
with a fresh snapshot: it may skip events, but never sees a gap or a duplicate after its snapshot.

A cursor ``(epoch, seq)`` lets a re-attaching watcher continue after the last event it saw; a
cursor from another bus instance (another kernel) or too old for the history gets a snapshot.
"""

from __future__ import annotations

import copy
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Batch", "Cursor", "Event", "EventBus", "Reducer", "Snapshot", "Subscription"]

log = logging.getLogger(__name__)

Reducer = Callable[[dict[str, Any], "Event"], None]


@dataclass(frozen=True)
class Event:
    seq: int
    kind: str  # progress | step | eval | state | alert | system | checkpoint | preview
    data: dict[str, Any]
    time: float  # unix seconds


@dataclass(frozen=True)
class Cursor:
    """Where a watcher stands: the bus instance it saw and the last sequence number it applied."""

    epoch: str
    seq: int


@dataclass(frozen=True)
class Snapshot:
    epoch: str
    seq: int  # the last event folded into ``state``; events after it follow without a gap
    state: dict[str, Any]

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.epoch, self.seq)


@dataclass
class Batch:
    """What one delivery carries: an optional snapshot (first delivery or resync) then events after it."""

    snapshot: Snapshot | None
    events: list[Event] = field(default_factory=list)

    @property
    def last_seq(self) -> int:
        if self.events:
            return self.events[-1].seq
        return self.snapshot.seq if self.snapshot else -1


def last_value_reducer(state: dict[str, Any], event: Event) -> None:
    """Default reducer: remember the latest payload of each kind."""
    state.setdefault("last", {})[event.kind] = event.data


class Subscription:
    """One watcher: a bounded queue drained by its own thread into ``callback(batch)``."""

    def __init__(self, bus: EventBus, callback: Callable[[Batch], None], *, max_rate_hz: float,
                 queue_size: int, name: str) -> None:
        self.bus, self.callback, self.name = bus, callback, name
        self.min_interval = 1.0 / max_rate_hz if max_rate_hz > 0 else 0.0
        self.queue_size = queue_size
        self.cursor: Cursor | None = None
        self.delivered_batches = 0
        self.resyncs = 0
        self._queue: deque[Event] = deque()
        self._pending_snapshot: Snapshot | None = None
        self._overflow = False
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._pump, name=f"bus-sub-{name or id(self)}", daemon=True)

    # -- producer side (called with the bus lock held; must never block for long) --
    def _push(self, event: Event) -> None:
        with self._cond:
            if len(self._queue) >= self.queue_size:
                self._overflow = True
                self._queue.clear()
            elif not self._overflow:
                self._queue.append(event)
            self._cond.notify()

    def _seed(self, snapshot: Snapshot | None, events: list[Event]) -> None:
        with self._cond:
            self._pending_snapshot, self._overflow = snapshot, False
            self._queue.clear()
            self._queue.extend(events)
            self._cond.notify()

    # -- consumer side --
    def _take(self) -> Batch | None:
        with self._cond:
            while not (self._queue or self._pending_snapshot or self._overflow or self._closed.is_set()):
                self._cond.wait(0.5)
            if self._closed.is_set():
                return None
            overflow = self._overflow
        if overflow:
            self.resyncs += 1
            self.bus._resync(self)
        with self._cond:
            batch = Batch(self._pending_snapshot, list(self._queue))
            self._pending_snapshot = None
            self._queue.clear()
        return batch

    def _pump(self) -> None:
        while not self._closed.is_set():
            batch = self._take()
            if batch is None:
                return
            if batch.snapshot is None and not batch.events:
                continue
            started = time.monotonic()
            try:
                self.callback(batch)
            except Exception:  # a broken widget must not kill the pump or the job
                log.exception("bus subscriber %s failed on a batch", self.name)
            self.cursor = Cursor(self.bus.epoch, batch.last_seq)
            self.delivered_batches += 1
            wait = self.min_interval - (time.monotonic() - started)
            if wait > 0:
                self._closed.wait(wait)

    def close(self) -> None:
        """Stop delivering and unregister from the bus (the seed's "remove connection")."""
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        self.bus._unsubscribe(self)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()


class EventBus:
    """Numbered events for one job, folded into a snapshot by ``reducer``."""

    def __init__(self, job_id: str, *, reducer: Reducer = last_value_reducer,
                 initial: dict[str, Any] | None = None, history: int = 4096,
                 copier: Callable[[dict[str, Any]], dict[str, Any]] = copy.deepcopy) -> None:
        self.job_id = job_id
        self._copier = copier
        self.epoch = secrets.token_hex(6)
        self._reducer = reducer
        self._state: dict[str, Any] = initial if initial is not None else {}
        self._history: deque[Event] = deque(maxlen=history)
        self._subs: list[Subscription] = []
        self._seq = 0
        self._lock = threading.Lock()

    @property
    def seq(self) -> int:
        return self._seq

    def publish(self, kind: str, data: dict[str, Any]) -> Event:
        """Number, fold and fan out one event; O(subscribers), never waits for a subscriber."""
        with self._lock:
            self._seq += 1
            event = Event(self._seq, kind, data, time.time())
            self._reducer(self._state, event)
            self._history.append(event)
            for sub in self._subs:
                sub._push(event)
        return event

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot_locked()

    def _snapshot_locked(self) -> Snapshot:
        return Snapshot(self.epoch, self._seq, self._copier(self._state))

    def events_after(self, cursor: Cursor) -> list[Event] | None:
        """Events with seq > cursor.seq, or None when the history no longer reaches back that far."""
        with self._lock:
            return self._events_after_locked(cursor)

    def _events_after_locked(self, cursor: Cursor) -> list[Event] | None:
        if cursor.epoch != self.epoch or cursor.seq > self._seq:
            return None
        first = self._history[0].seq if self._history else self._seq + 1
        if cursor.seq < first - 1:
            return None
        return [e for e in self._history if e.seq > cursor.seq]

    def subscribe(self, callback: Callable[[Batch], None], *, after: Cursor | None = None,
                  max_rate_hz: float = 10.0, queue_size: int = 2048, name: str = "") -> Subscription:
        """Register a watcher; its first batch is the events after ``after`` or else a snapshot."""
        sub = Subscription(self, callback, max_rate_hz=max_rate_hz, queue_size=queue_size, name=name)
        with self._lock:
            events = self._events_after_locked(after) if after is not None else None
            if events is None:
                sub._seed(self._snapshot_locked(), [])
            else:
                sub._seed(None, events)
            self._subs.append(sub)
        sub._thread.start()
        return sub

    def _resync(self, sub: Subscription) -> None:
        with self._lock:
            sub._seed(self._snapshot_locked(), [])

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    @property
    def subscribers(self) -> list[Subscription]:
        with self._lock:
            return list(self._subs)

    def close(self) -> None:
        for sub in self.subscribers:
            sub.close()
