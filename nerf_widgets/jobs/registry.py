"""Job types: how the runner turns a stored job row back into something it can run.

A job type is registered once with a factory ``(JobRow, Database) -> JobSpec``; because the spec is rebuilt
from the row (type + params), a job interrupted by a kernel restart can be resumed by a new kernel.
The runner never cares what the function computes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.jobs.context import JobContext
from nerf_widgets.jobs.resources import ResourceRequest
from nerf_widgets.store.db import Database
from nerf_widgets.store.jobs import JobRow

__all__ = ["JobFn", "JobHooks", "JobSpec", "NoHooks", "RemoteBody", "job_factory", "register_job_type", "registered_types"]

JobFn = Callable[[JobContext], "dict[str, Any] | None"]


class JobHooks(Protocol):
    """Side effects of job state changes outside the job table (e.g. the project lifecycle)."""

    def before_queue(self, job: JobRow, *, retry: bool) -> None:
        """Called before a job (re)enters the queue; raise to refuse (nothing is written then)."""

    def on_state(self, job: JobRow, old: str, new: str, ctx: JobContext | None) -> None:
        """Called after a state was written; errors are logged, not raised."""


class NoHooks:
    def before_queue(self, job: JobRow, *, retry: bool) -> None:
        return None

    def on_state(self, job: JobRow, old: str, new: str, ctx: JobContext | None) -> None:
        return None


def _one_cpu(cluster: dict[str, float]) -> dict[str, float]:
    return {"num_cpus": 1}


@dataclass(frozen=True)
class RemoteBody:
    """The same job's body as it runs away from this kernel (on a Ray worker, ``jobs/ray_executor.py``).

    ``fn`` must pickle (a module-level function or ``functools.partial`` of one); it gets a worker context
    with ``run_dir`` and ``data_dir`` on the worker's disk. ``inputs`` are shipped there through Ray's
    object store; the run folder goes there and comes back (checkpoints) the same way.
    """

    fn: Callable[[Any], dict[str, Any] | None]
    inputs: Path | None = None  # shipped: these parts of this folder (all of it when no parts are named)
    input_parts: tuple[str, ...] = ()
    data_entry: str = ""  # the worker's ``data_dir`` is this path inside its copy of ``inputs``
    resources: Callable[[dict[str, float]], dict[str, float]] = _one_cpu  # Ray's cluster_resources() -> options
    handlers: dict[str, Callable[[dict[str, Any]], None]] = field(default_factory=dict)  # the body's own events
    hold: Callable[[], AbstractContextManager[Any]] | None = None  # held in this kernel while it runs (a lock)
    after_sync: Callable[[Path], None] | None = None  # fixes files of the run folder that came home


@dataclass(frozen=True)
class JobSpec:
    fn: JobFn
    resources: ResourceRequest = field(default_factory=ResourceRequest)
    hooks: JobHooks = field(default_factory=NoHooks)
    remote: RemoteBody | None = None  # None: the job type runs in this kernel only


JobFactory = Callable[[JobRow, Database], JobSpec]
_TYPES: dict[str, JobFactory] = {}
_lock = threading.Lock()


def register_job_type(name: str, factory: JobFactory) -> None:
    """Register (or replace) the factory of job type ``name``."""
    with _lock:
        _TYPES[name] = factory


def registered_types() -> list[str]:
    with _lock:
        return sorted(_TYPES)


def job_factory(name: str) -> JobFactory:
    with _lock:
        factory = _TYPES.get(name)
    if factory is None:
        _load_builtin(name)
        with _lock:
            factory = _TYPES.get(name)
    if factory is None:
        raise ValidationError(f"Unknown job type {name!r}; known: {', '.join(registered_types()) or 'none'}.")
    return factory


def _load_builtin(name: str) -> None:
    """Built-in types register themselves on import (imported lazily: training pulls in torch)."""
    if name == "train":
        import nerf_widgets.jobs.training  # noqa: F401
    elif name == "export":
        import nerf_widgets.jobs.export_job  # noqa: F401
    elif name == "estimate_poses":
        import nerf_widgets.jobs.poses_job  # noqa: F401
