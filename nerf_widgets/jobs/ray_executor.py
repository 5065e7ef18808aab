"""The Ray executor: a job's body runs in a Ray actor placed by Ray's scheduler, watched from this kernel.

One actor per attempt, created with the resources the body declares (``num_gpus=1`` for CUDA training,
CPUs otherwise) and no restarts: a worker that dies is a failed attempt, and ``resume()`` starts a new
one from the last checkpoint that came home. While Ray cannot place the actor the job shows
``waiting_for_resources`` with what it asks for and what the cluster has. Inputs go to the worker
through Ray's object store; events and files come back as the results of ``pull`` calls on the actor,
which a thread here applies to the job's context (bus, metric buffer, progress), so the panels cannot tell
a remote job from a local one. Pause, resume and cancel are actor calls.
"""

from __future__ import annotations

import logging
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import ray

from nerf_widgets.core.errors import CancelledError, NerfWidgetsError, ValidationError
from nerf_widgets.jobs.context import JobContext
from nerf_widgets.jobs.executor import Started
from nerf_widgets.jobs.ray_worker import JobWorker, pack_tree, unpack_tree
from nerf_widgets.jobs.registry import JobSpec, RemoteBody

__all__ = ["NAMESPACE", "RayExecutor", "WorkerLostError", "connect", "pending_reason"]

log = logging.getLogger(__name__)
NAMESPACE = "nerf_widgets"
_connect_lock = threading.Lock()
CLIENT_ATTEMPTS = 3


class WorkerLostError(NerfWidgetsError):
    """The Ray worker running an attempt died (killed, node lost, out of memory)."""


def connect(address: str | None) -> None:
    """Join the cluster at ``address`` (None: Ray's default: $RAY_ADDRESS, a running local cluster, or a new
    local instance) once per kernel; a kernel talks to one cluster."""
    options: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False, "logging_level": logging.WARNING}
    with _connect_lock:
        if ray.is_initialized():
            return
        if address is not None and address.startswith("ray://"):
            _client_init(address, options)
            return
        if address is not None:
            ray.init(address=address, **options)
            return
        try:
            ray.init(address="auto", **options)  # $RAY_ADDRESS or the cluster this machine runs
        except ConnectionError:
            ray.init(include_dashboard=False, **options)  # a local one for this kernel (no dashboard: lighter)


def _client_init(address: str, options: dict[str, Any], attempts: int = CLIENT_ATTEMPTS) -> None:
    """Join through Ray Client, again when the head was too slow: its proxy gives each new session server
    30 s to start (fixed in Ray), which a busy head node misses; the next try usually finds it warm."""
    for attempt in range(1, attempts + 1):
        try:
            ray.init(address=address, **options)
            return
        except ConnectionError as err:  # ConnectionAbortedError: "Initialization failure from server"
            ray.shutdown()
            if attempt == attempts:
                raise ConnectionError(f"Could not join the Ray cluster at {address} after {attempts} tries: {err}. "
                                      "Check that the head node runs and its Ray Client port is reachable.") from err
            log.warning("Ray Client could not start a session at %s (try %d of %d): %s", address, attempt,
                        attempts, err)


def pending_reason(options: dict[str, Any]) -> str:
    """Why Ray has not placed an actor asking for ``options``, in the cluster's own numbers."""
    asked = {"CPU": float(options.get("num_cpus", 1)), "GPU": float(options.get("num_gpus", 0))}
    asked = {k: v for k, v in asked.items() if v > 0}
    total, free = ray.cluster_resources(), ray.available_resources()
    want = ", ".join(f"{v:g} {k}" for k, v in asked.items())
    missing = [k for k, v in asked.items() if total.get(k, 0) < v]
    if missing:
        have = ", ".join(f"{total.get(k, 0):g} {k}" for k in asked)
        return (f"Ray is waiting for a node with {want}: the cluster has {have} in all. It starts when such a node "
                f"joins; cancel it or train with device='cpu'.")
    return (f"Ray is waiting for {want} to be free: " + ", ".join(f"{free.get(k, 0):g} of {total[k]:g} {k}"
                                                                  for k in asked) + " free (other jobs hold them).")


class RayExecutor:
    name = "ray"
    schedules_here = False  # Ray's scheduler decides where and when

    def __init__(self, address: str | None = None) -> None:
        self.address = address

    def run(self, spec: JobSpec, ctx: JobContext, started: Started) -> dict[str, Any] | None:
        body = spec.remote
        if body is None:
            raise ValidationError(f"Job type {ctx.job_type!r} cannot run on Ray; start it with executor='local'.")
        connect(self.address)
        options = body.resources(ray.cluster_resources())
        with body.hold() if body.hold else nullcontext():
            return _Attempt(body, ctx, options).run(started)


PULL_WAIT_S = 0.5  # a pull returns after this long without news, so the loop sees ``run`` end


class _Attempt:
    """One attempt on Ray: the actor, placement wait, the pull loop, control forwarding."""

    def __init__(self, body: RemoteBody, ctx: JobContext, options: dict[str, Any]) -> None:
        self.body, self.ctx, self.options = body, ctx, options
        actor = ray.remote(JobWorker).options(**options, max_restarts=0, max_concurrency=4,
                                              name=f"nerf-{ctx.job_id}-{ctx.attempt}")
        self.worker: Any = actor.remote()  # an ActorHandle (Ray's stubs type its methods as plain)
        self.where: dict[str, Any] = {}

    def run(self, started: Started) -> dict[str, Any] | None:
        try:
            self._wait_placed(started)
            self.ctx.on_control = self._forward
            self._forward("pause" if self.ctx.paused else "resume")  # a pause that came while it was placed
            if self.ctx.cancel_requested:
                raise CancelledError(f"Job {self.ctx.job_id} was cancelled.", job_id=self.ctx.job_id)
            job = {"job_id": self.ctx.job_id, "project_id": self.ctx.project_id, "job_type": self.ctx.job_type,
                   "params": self.ctx.params, "attempt": self.ctx.attempt, "data_entry": self.body.data_entry}
            inputs = pack_tree(self.body.inputs, parts=self.body.input_parts)
            result = self.worker.run.remote(self.body.fn, job, ray.put(inputs),
                                            ray.put(pack_tree(self.ctx.run_dir)))
            return self._drain_until(result)
        finally:
            self.ctx.on_control = None
            ray.kill(self.worker, no_restart=True)

    def _wait_placed(self, started: Started) -> None:
        ready, said = self.worker.where.remote(), None
        while not ray.wait([ready], timeout=0.5)[0]:
            if self.ctx.cancel_requested:
                raise CancelledError(f"Job {self.ctx.job_id} was cancelled before Ray placed it.")
            reason = self._pending()
            if reason and reason != said:
                started(reason)
                said = reason
        self.where = ray.get(ready)
        started(None)
        self.ctx.report_progress(node=self.where["node"], worker_pid=self.where["pid"], executor="ray")

    def _pending(self) -> str | None:
        """Ray's reason while the actor waits for resources, else None (leased, its worker starting).

        Ray's actor table (the GCS's, no dashboard needed) gives a leased actor its worker's pid; one without
        waits when Ray's own pending demand (the autoscaler's view) holds a request of its shape."""
        try:
            from ray._private.state import actors

            info = actors(self.worker._actor_id.hex())
            if info.get("State") != "PENDING_CREATION" or info.get("Pid"):
                return None
        except Exception:  # Ray Client ("ray://") has no GCS table here
            pass
        return pending_reason(self.options) if self._demanded() else None

    def _demanded(self) -> bool:
        asked = {"CPU": float(self.options.get("num_cpus", 1)), "GPU": float(self.options.get("num_gpus", 0))}
        asked = {k: v for k, v in asked.items() if v > 0}
        total = ray.cluster_resources()
        if any(total.get(k, 0) < v for k, v in asked.items()):
            return True  # no node can ever take it: Ray keeps it pending (infeasible)
        try:
            from ray.autoscaler.v2.sdk import get_cluster_status

            status = get_cluster_status(ray.get_runtime_context().gcs_address)
            return any(req.bundle == asked for demand in status.resource_demands.ray_task_actor_demand
                       for req in demand.bundles_by_count)
        except Exception:  # no autoscaler view (Ray Client): judge by what is free now
            free = ray.available_resources()
            return any(free.get(k, 0) < v for k, v in asked.items())

    def _forward(self, verb: str) -> None:
        getattr(self.worker, verb).remote()

    def _drain_until(self, result: Any) -> dict[str, Any] | None:
        """Apply the worker's batches as they come until ``run`` ends, then what it reported last."""
        try:
            pull = self.worker.pull.remote(PULL_WAIT_S)
            while True:
                ray.wait([pull, result], num_returns=1)
                if ray.wait([pull], timeout=0)[0]:
                    self._apply(ray.get(pull))
                    pull = self.worker.pull.remote(PULL_WAIT_S)
                elif ray.wait([result], timeout=0)[0]:
                    break
            self._apply(ray.get(pull))
            while batch := ray.get(self.worker.pull.remote(0.0)):
                self._apply(batch)
            return ray.get(result)
        except ray.exceptions.RayTaskError as err:
            raise err.cause if isinstance(err.cause, Exception) else err from None
        except ray.exceptions.RayActorError as err:
            raise self._lost(err) from None

    def _lost(self, err: Exception) -> WorkerLostError:
        progress = self.ctx.progress
        at = f" at step {progress['step']}" if progress.get("step") else ""
        ckpt = progress.get("checkpoint_step")
        tail = f"resume() continues from the checkpoint at step {ckpt}." if ckpt else "resume() starts it again."
        return WorkerLostError(f"The Ray worker running this job died{at} (node {self.where.get('node')}, pid "
                               f"{self.where.get('pid')}): {type(err).__name__}. {tail}", job_id=self.ctx.job_id)

    def _apply(self, batch: list[tuple[Any, ...]]) -> None:
        ctx = self.ctx
        for kind, *args in batch:
            if kind == "step":
                ctx.report_step(args[0], args[1], args[2], **args[3])
            elif kind == "progress":
                fields = dict(args[0])
                if "checkpoint" in fields and ctx.run_dir is not None:
                    fields["checkpoint"] = str(ctx.run_dir / fields["checkpoint"])
                ctx.report_progress(**fields)
            elif kind == "eval":
                ctx.report_eval(*args)
            elif kind == "publish":
                handler = self.body.handlers.get(args[0])
                handler(args[1]) if handler else ctx.publish(args[0], args[1])
            elif kind == "system":
                ctx.remote_system = args[0]
                ctx.publish("system", args[0])
            elif kind == "files":
                self._files(*args)
            elif kind == "flush":
                ctx.flush_metrics()

    def _files(self, changed: dict[str, bytes], present: list[str]) -> None:
        run_dir = self.ctx.run_dir
        if run_dir is None:
            return
        unpack_tree(changed, run_dir)
        keep = set(present)
        for path in (run_dir / "checkpoints").glob("*") if (run_dir / "checkpoints").is_dir() else []:
            if path.is_file() and not path.name.startswith(".") and f"checkpoints/{path.name}" not in keep:
                path.unlink(missing_ok=True)  # pruned on the worker (the engine keeps the newest two)
        if self.body.after_sync is not None:
            self.body.after_sync(Path(run_dir))
