"""Waits that end on an event or a count, never on the clock: the timeout only turns a hang into a failure."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

WAIT_S = 120.0  # a failure guard only: every wait below ends on an event or a count, never on the clock


def wait_until(pred: Callable[[], object], timeout: float = WAIT_S, what: str = "condition") -> None:
    """Poll ``pred`` until it holds; the timeout only turns a hang into a failure."""
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, f"{what} not reached within {timeout:.0f} s"
        time.sleep(0.01)


def blocked_in(thread: threading.Thread | None, *functions: str) -> bool:
    """True while ``thread`` is inside one of ``functions`` (e.g. a pause's ``wait_while_paused``): a thread
    blocked there cannot report anything, so what was seen so far is all there is until it is released."""
    frame = sys._current_frames().get(thread.ident) if thread is not None and thread.ident else None
    while frame is not None:
        if frame.f_code.co_name in functions:
            return True
        frame = frame.f_back
    return False
