"""The worker side of a job on Ray: an actor that unpacks the inputs, runs the body and reports home.

The body sees a ``WorkerContext`` with the calls of ``JobContext`` it uses (reports, pause, cancel);
reports go into the actor's mailbox, which the notebook's runner empties with ``JobWorker.pull`` calls (at
most one every ``FLUSH_S`` seconds) into the job's bus and store. Pulling from the actor itself needs no
process of its own: a ``ray.util.queue.Queue`` (an actor beside it) cost a fifth of a core and about 20 %
of the training's steps/s on 2 cores. Files of the run folder (checkpoints, config, renders) travel home in
the same batches when the body reports a checkpoint and when it ends, so nothing assumes the notebook's disk
is shared.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nerf_widgets.core.errors import CancelledError

__all__ = ["FLUSH_S", "JobWorker", "WorkerContext", "pack_tree", "unpack_tree"]

FLUSH_S = 0.05  # a pull waits this long after the previous one: events arrive home coalesced, like the bus's
SYSTEM_S = 1.0  # system samples of the worker's machine, as the runner's monitor takes them at home
Message = tuple[Any, ...]


def pack_tree(root: Path | None, *, parts: tuple[str, ...] = (),
              stamps: dict[str, tuple[int, int]] | None = None) -> dict[str, bytes]:
    """``{relative posix path: bytes}`` of the files under ``root`` (or its subfolders ``parts``), skipping
    hidden partial files; with ``stamps``, only files whose (size, mtime) changed since the last call."""
    files: dict[str, bytes] = {}
    if root is None or not root.is_dir():
        return files
    tops = [root / p for p in parts] if parts else [root]
    for path in sorted(p for top in tops if top.is_dir() for p in top.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        rel, st = path.relative_to(root).as_posix(), path.stat()
        if stamps is not None:
            if stamps.get(rel) == (st.st_size, st.st_mtime_ns):
                continue
            stamps[rel] = (st.st_size, st.st_mtime_ns)
        files[rel] = path.read_bytes()
    return files


def unpack_tree(files: dict[str, bytes], root: Path) -> None:
    """Write ``files`` under ``root``, each atomically (temp name, then rename)."""
    for rel, data in files.items():
        target = (root / rel).resolve()
        if root.resolve() not in target.parents:
            raise ValueError(f"{rel!r} points outside {root}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, target)


class _Mailbox:
    """Messages for home, kept until the notebook pulls them (the training thread only appends)."""

    def __init__(self, node: dict[str, Any]) -> None:
        self.node = node
        self.home: Path | None = None  # the run's folder on this node, for the disk gauge
        self._items: list[Message] = []
        self._cond = threading.Condition()
        self._last_pull = self._last_system = 0.0
        self._sampler: Any = None

    def put(self, message: Message) -> None:
        with self._cond:
            self._items.append(message)
            self._cond.notify_all()

    def take(self, wait_s: float) -> list[Message]:
        """What came since the last take: waits up to ``wait_s`` for a first message, then until ``FLUSH_S``
        has passed since the previous take so the batch gathers what follows it."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._items), wait_s)
        rest = FLUSH_S - (time.monotonic() - self._last_pull)
        if self._items and rest > 0 and wait_s > 0:
            time.sleep(rest)
        self._last_pull = now = time.monotonic()
        if self.home is not None and now - self._last_system >= SYSTEM_S:
            from nerf_widgets.sysmetrics import SystemSampler

            self._sampler = self._sampler or SystemSampler(self.home)
            self._last_system = now
            self.put(("system", {**self._sampler.sample().to_dict(), **self.node}))
        with self._cond:
            items, self._items = self._items, []
        return items


class WorkerContext:
    """``JobContext``'s job-facing calls on a Ray worker (see ``jobs/context.py`` for their meaning)."""

    def __init__(self, *, job: dict[str, Any], run_dir: Path, data_dir: Path, outbox: _Mailbox,
                 run: threading.Event, cancel: threading.Event) -> None:
        self.job_id, self.project_id, self.job_type = job["job_id"], job["project_id"], job["job_type"]
        self.params: dict[str, Any] = job["params"]
        self.attempt: int = job["attempt"]
        self.run_dir, self.data_dir = run_dir, data_dir
        self._outbox, self._run, self._cancel = outbox, run, cancel
        self._stamps: dict[str, tuple[int, int]] = {}
        pack_tree(run_dir, stamps=self._stamps)  # what came with the inputs needs no trip home

    @property
    def paused(self) -> bool:
        return not self._run.is_set()

    def should_stop(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        self._run.wait()
        if self._cancel.is_set():
            raise CancelledError(f"Job {self.job_id} was cancelled.", job_id=self.job_id)

    def wait_while_paused(self) -> None:
        self._run.wait()

    def report_progress(self, **fields: Any) -> None:
        if "checkpoint" in fields:  # its files go home first, then the notebook's path of it
            self.sync_files()
            fields["checkpoint"] = Path(fields["checkpoint"]).resolve().relative_to(self.run_dir.resolve()).as_posix()
        self._outbox.put(("progress", fields))

    def report_step(self, step: int, elapsed_s: float, values: dict[str, float], **progress: Any) -> None:
        self._outbox.put(("step", step, elapsed_s, values, progress))

    def report_eval(self, step: int, elapsed_s: float, values: dict[str, float | None]) -> None:
        self._outbox.put(("eval", step, elapsed_s, values))

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        self._outbox.put(("publish", kind, data))

    def flush_metrics(self) -> None:
        self._outbox.put(("flush",))

    def sync_files(self) -> None:
        """Send the run folder's new and changed files, and the list of all, home (deletions follow)."""
        changed = pack_tree(self.run_dir, stamps=self._stamps)
        present = sorted(p.relative_to(self.run_dir).as_posix() for p in self.run_dir.rglob("*")
                         if p.is_file() and not p.name.startswith("."))
        self._stamps = {k: v for k, v in self._stamps.items() if k in present}
        self._outbox.put(("files", changed, present))


class JobWorker:
    """The Ray actor (threaded: ``pause``/``resume``/``cancel`` arrive while ``run`` trains)."""

    def __init__(self) -> None:
        self._run, self._cancel = threading.Event(), threading.Event()
        self._run.set()
        self._mailbox = _Mailbox({"node": socket.gethostname(), "pid": os.getpid()})

    def pull(self, wait_s: float) -> list[Message]:
        """The messages reported since the last pull (empty after ``wait_s`` seconds without any)."""
        return self._mailbox.take(wait_s)

    def where(self) -> dict[str, Any]:
        """The node and process this worker runs on (the SystemMonitor's label, the state API's pid)."""
        import ray

        return {"node": socket.gethostname(), "node_ip": ray.util.get_node_ip_address(),
                "node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

    def pause(self) -> None:
        self._run.clear()

    def resume(self) -> None:
        self._run.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._run.set()

    def run(self, fn: Callable[[WorkerContext], dict[str, Any] | None], job: dict[str, Any],
            data_files: dict[str, bytes], run_files: dict[str, bytes]) -> dict[str, Any] | None:
        tmp = Path(tempfile.mkdtemp(prefix=f"nerf-{job['job_id']}-"))
        outbox = self._mailbox
        outbox.home = tmp
        try:
            unpack_tree(data_files, tmp / "data")
            unpack_tree(run_files, tmp / "run")
            ctx = WorkerContext(job=job, run_dir=tmp / "run", data_dir=tmp / "data" / job["data_entry"], outbox=outbox,
                                run=self._run,
                                cancel=self._cancel)
            result = fn(ctx)
            ctx.sync_files()
            return result
        finally:
            outbox.home = None
            shutil.rmtree(tmp, ignore_errors=True)
