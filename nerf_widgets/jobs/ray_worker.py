"""The worker side of a job on Ray: an actor that unpacks the inputs, runs the body and reports home.

The body sees a ``WorkerContext`` with the calls of ``JobContext`` it uses (reports, pause, cancel);
reports go into an outbox whose sender thread puts them, in batches every ``FLUSH_S`` seconds, on the
job's ``ray.util.queue.Queue``; the notebook's runner drains that queue into the job's bus and store.
Files of the run folder (checkpoints, config, renders) travel home through the same queue when the
body reports a checkpoint and when it ends, so nothing assumes the notebook's disk is shared.
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

FLUSH_S = 0.02  # the outbox's batch interval: events arrive home coalesced, like the bus's deliveries
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


class _Outbox:
    """Messages for home, sent in batches by one thread (the training thread only appends)."""

    def __init__(self, queue: Any, node: dict[str, Any], home: Path) -> None:
        self.queue, self.node, self.home = queue, node, home
        self._items: list[Message] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nerf-ray-outbox", daemon=True)
        self._last_system = 0.0

    def start(self) -> None:
        self._thread.start()

    def put(self, message: Message, *, now: bool = False) -> None:
        with self._lock:
            self._items.append(message)
        if now:
            self._wake.set()

    def send(self) -> None:
        with self._lock:
            items, self._items = self._items, []
        if items:
            self.queue.put(items)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self.send()

    def _loop(self) -> None:
        from nerf_widgets.sysmetrics import SystemSampler

        sampler = SystemSampler(self.home)
        while not self._stop.is_set():
            self._wake.wait(FLUSH_S)
            self._wake.clear()
            if time.monotonic() - self._last_system >= SYSTEM_S:
                self._last_system = time.monotonic()
                self.put(("system", {**sampler.sample().to_dict(), **self.node}))
            self.send()


class WorkerContext:
    """``JobContext``'s job-facing calls on a Ray worker (see ``jobs/context.py`` for their meaning)."""

    def __init__(self, *, job: dict[str, Any], run_dir: Path, data_dir: Path, outbox: _Outbox,
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
        self._outbox.put(("progress", fields), now="checkpoint" in fields)

    def report_step(self, step: int, elapsed_s: float, values: dict[str, float], **progress: Any) -> None:
        self._outbox.put(("step", step, elapsed_s, values, progress))

    def report_eval(self, step: int, elapsed_s: float, values: dict[str, float | None]) -> None:
        self._outbox.put(("eval", step, elapsed_s, values))

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        self._outbox.put(("publish", kind, data))

    def flush_metrics(self) -> None:
        self._outbox.put(("flush",))
        self._outbox.send()

    def sync_files(self) -> None:
        """Send the run folder's new and changed files, and the list of all, home (deletions follow)."""
        changed = pack_tree(self.run_dir, stamps=self._stamps)
        present = sorted(p.relative_to(self.run_dir).as_posix() for p in self.run_dir.rglob("*")
                         if p.is_file() and not p.name.startswith("."))
        self._stamps = {k: v for k, v in self._stamps.items() if k in present}
        self._outbox.put(("files", changed, present))


class JobWorker:
    """The Ray actor (threaded: ``pause``/``resume``/``cancel`` arrive while ``run`` trains)."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self._run, self._cancel = threading.Event(), threading.Event()
        self._run.set()

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
        outbox = _Outbox(self.queue, {"node": socket.gethostname(), "pid": os.getpid()}, tmp)
        try:
            unpack_tree(data_files, tmp / "data")
            unpack_tree(run_files, tmp / "run")
            ctx = WorkerContext(job=job, run_dir=tmp / "run", data_dir=tmp / "data" / job["data_entry"], outbox=outbox,
                                run=self._run,
                                cancel=self._cancel)
            outbox.start()
            result = fn(ctx)
            ctx.sync_files()
            return result
        finally:
            outbox.close()
            shutil.rmtree(tmp, ignore_errors=True)
