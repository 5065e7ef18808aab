"""Event bus: ordering, snapshot + resume from a cursor (no gap, no duplicate), slow subscribers."""

from __future__ import annotations

import threading
import time

from nerf_widgets.jobs import Batch, Cursor, EventBus
from nerf_widgets.jobs.view import copy_view, reduce_job_event


class Collector:
    """Applies batches like a widget would: snapshot state + events, checking continuity."""

    def __init__(self, delay: float = 0.0) -> None:
        self.seqs: list[int] = []
        self.snapshot_seqs: list[int] = []
        self.count = 0
        self.delay = delay
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, batch: Batch) -> None:
        with self.lock:
            last = self.seqs[-1] if self.seqs else None
            if batch.snapshot is not None:
                self.snapshot_seqs.append(batch.snapshot.seq)
                self.count = batch.snapshot.state.get("count", 0)
                last = batch.snapshot.seq
            for ev in batch.events:
                if last is not None and ev.seq != last + 1:
                    self.errors.append(f"gap or duplicate: {last} -> {ev.seq}")
                last = ev.seq
                self.seqs.append(ev.seq)
                self.count += 1
            if batch.snapshot is not None and not batch.events:
                self.seqs.append(batch.snapshot.seq)
        if self.delay:
            time.sleep(self.delay)


def counting_reducer(state: dict, ev) -> None:  # type: ignore[no-untyped-def]
    state["count"] = state.get("count", 0) + 1


WAIT_S = 120.0  # failure guards only: every wait ends on a count


def wait_for(pred, timeout: float = WAIT_S) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def test_sequence_numbers_strictly_increase_across_threads() -> None:
    bus = EventBus("job_x")
    seen: list[int] = []
    lock = threading.Lock()

    def produce() -> None:
        for i in range(500):
            ev = bus.publish("step", {"i": i})
            with lock:
                seen.append(ev.seq)

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 2001))
    assert bus.seq == 2000


def test_snapshot_then_events_without_gap_or_duplicate() -> None:
    bus = EventBus("job_x", reducer=counting_reducer)
    for i in range(30):
        bus.publish("step", {"i": i})
    col = Collector()
    sub = bus.subscribe(col, max_rate_hz=0)
    for i in range(70):
        bus.publish("step", {"i": i})
    assert wait_for(lambda: col.seqs and col.seqs[-1] == 100)
    sub.close()
    assert col.errors == []
    assert col.snapshot_seqs[0] == 30
    assert col.count == 100  # snapshot said 30, 70 events followed


def test_reattach_with_cursor_gets_only_later_events() -> None:
    bus = EventBus("job_x", reducer=counting_reducer)
    first = Collector()
    sub = bus.subscribe(first, max_rate_hz=0)
    for i in range(10):
        bus.publish("step", {"i": i})
    assert wait_for(lambda: first.seqs and first.seqs[-1] == 10)
    sub.close()
    cursor = sub.cursor
    assert cursor == Cursor(bus.epoch, 10)
    for i in range(5):  # published while nobody watched
        bus.publish("step", {"i": i})
    again = Collector()
    sub2 = bus.subscribe(again, after=cursor, max_rate_hz=0)
    bus.publish("step", {})
    assert wait_for(lambda: again.seqs and again.seqs[-1] == 16)
    sub2.close()
    assert again.snapshot_seqs == []  # continued from the cursor, no snapshot needed
    assert again.seqs == list(range(11, 17))


def test_stale_or_foreign_cursor_gets_snapshot() -> None:
    bus = EventBus("job_x", reducer=counting_reducer, history=8)
    for i in range(50):
        bus.publish("step", {"i": i})
    for cursor in (Cursor(bus.epoch, 3), Cursor("another-kernel", 49)):
        col = Collector()
        sub = bus.subscribe(col, after=cursor, max_rate_hz=0)
        assert wait_for(lambda: bool(col.snapshot_seqs))  # noqa: B023
        sub.close()
        assert col.snapshot_seqs == [50] and col.count == 50


def test_slow_subscriber_does_not_slow_producer_or_others() -> None:
    bus = EventBus("job_x", reducer=counting_reducer)
    slow, fast = Collector(delay=0.5), Collector()
    s1 = bus.subscribe(slow, max_rate_hz=0, queue_size=64, name="slow")
    s2 = bus.subscribe(fast, max_rate_hz=0, name="fast")
    for i in range(1000):
        bus.publish("step", {"i": i})
        if i % 100 == 0:
            time.sleep(0.01)
    # counted in the slow watcher's deliveries, not seconds (the machine is shared): it needs 0.5 s a batch,
    # so a producer or a fast watcher held up by it would see ~16 of its batches (1000 events, queue 64)
    slow_at_produced = s1.delivered_batches
    assert wait_for(lambda: fast.seqs and fast.seqs[-1] == 1000)
    slow_at_fast_done = s1.delivered_batches
    assert wait_for(lambda: slow.count == 1000)
    s1.close()
    s2.close()
    assert slow_at_produced <= 2 and slow_at_fast_done <= 3, (slow_at_produced, slow_at_fast_done)
    assert fast.errors == [] and slow.errors == []
    assert s1.resyncs >= 1  # its 64-event queue overflowed: it was resynced by snapshot, not stalled


def test_events_published_during_a_delivery_coalesce_into_one_batch() -> None:
    """Counted, not timed: while the watcher is busy with a batch, everything published meanwhile waits in its
    queue and arrives as ONE next batch (at 10 Hz the pump also waits its interval before taking it)."""
    bus = EventBus("job_x", reducer=counting_reducer)
    inside, release = threading.Event(), threading.Event()
    col = Collector()

    def gated(batch: Batch) -> None:
        col(batch)
        if not inside.is_set():  # hold the first delivery (the snapshot) until the test releases it
            inside.set()
            assert release.wait(WAIT_S)

    sub = bus.subscribe(gated, max_rate_hz=10)
    assert inside.wait(WAIT_S), "the snapshot was never delivered"
    for _ in range(500):
        bus.publish("step", {})
    release.set()
    assert wait_for(lambda: col.seqs and col.seqs[-1] == 500)
    sub.close()
    assert sub.delivered_batches == 2, sub.delivered_batches  # the snapshot, then all 500 events at once
    assert col.count == 500 and col.seqs == [0, *range(1, 501)] and col.errors == []


def test_close_unregisters() -> None:
    bus = EventBus("job_x")
    sub = bus.subscribe(Collector())
    assert bus.subscribers == [sub]
    sub.close()
    assert bus.subscribers == [] and sub.closed


def test_job_view_reducer_keeps_series_bounded_and_replays_overwrite() -> None:
    bus = EventBus("job_x", reducer=reduce_job_event, copier=copy_view)
    for step in range(1, 10001):
        bus.publish("step", {"step": step, "elapsed_s": step / 10, "values": {"loss": 1 / step, "psnr": 20.0}})
    for step in range(9001, 9101):  # resumed from a checkpoint at 9000: steps are replayed
        bus.publish("step", {"step": step, "elapsed_s": step / 10, "values": {"loss": 1 / step, "psnr": 21.0}})
    series = bus.snapshot().state["series"]["psnr"]
    steps = [p[0] for p in series]
    assert steps == sorted(set(steps)) and steps[-1] == 9100
    assert len(series) <= 4000
    assert bus.snapshot().state["progress"]["step"] == 9100
