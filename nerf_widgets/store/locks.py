"""Inter-process project lock: one heavy job (training, pose estimation, export, deletion) per project.

The lock is an OS file lock (``filelock``) on ``projects/<id>/.lock``, so it works across kernels and
is released by the OS if a kernel dies. Two lock objects on the same file conflict even inside one
process (each opens its own descriptor), so a second training thread in the same kernel is refused too.
A small ``.lock.json`` beside it says who holds the lock, for the error message.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from nerf_widgets.core.errors import ResourceUnavailableError

LOCK_FILE = ".lock"
INFO_FILE = ".lock.json"


def _holder(project_dir: Path) -> str:
    try:
        info = json.loads((project_dir / INFO_FILE).read_text())
        since = time.strftime("%H:%M:%S", time.localtime(float(info["since"])))
        return f"{info['purpose']} (pid {info['pid']} on {info['host']}, since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another task"


@contextmanager
def project_lock(project_dir: Path, *, purpose: str, timeout: float = 0.0) -> Iterator[None]:
    """Hold the project's lock for the ``with`` block.

    ``timeout`` seconds to wait (0 = fail at once, -1 = wait forever). Raises ``ResourceUnavailableError``
    naming the current holder when the lock is not free in time.
    """
    project_dir = Path(project_dir)
    lock = filelock.FileLock(str(project_dir / LOCK_FILE), timeout=timeout, thread_local=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise ResourceUnavailableError(
            f"This project is busy with {_holder(project_dir)}; wait for it to finish or stop it, then try again.",
            purpose=purpose,
        ) from None
    try:
        info = {"purpose": purpose, "pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        (project_dir / INFO_FILE).write_text(json.dumps(info))
        yield
    finally:
        try:
            (project_dir / INFO_FILE).unlink(missing_ok=True)
        finally:
            lock.release()


def is_locked(project_dir: Path) -> bool:
    """True when some task holds the project's lock right now (a momentary answer)."""
    try:
        with project_lock(project_dir, purpose="probe"):
            return False
    except ResourceUnavailableError:
        return True


__all__ = ["project_lock", "is_locked"]
