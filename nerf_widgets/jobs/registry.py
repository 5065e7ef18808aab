"""Job types: how the runner turns a stored job row back into something it can run.

A job type is registered once with a factory ``(JobRow, Database) -> JobSpec``; because the spec is rebuilt
from the row (type + params), a job interrupted by a kernel restart can be resumed by a new kernel.
The runner never cares what the function computes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.jobs.context import JobContext
from nerf_widgets.jobs.resources import ResourceRequest
from nerf_widgets.store.db import Database
from nerf_widgets.store.jobs import JobRow

__all__ = ["JobFn", "JobHooks", "JobSpec", "NoHooks", "job_factory", "register_job_type", "registered_types"]

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


@dataclass(frozen=True)
class JobSpec:
    fn: JobFn
    resources: ResourceRequest = field(default_factory=ResourceRequest)
    hooks: JobHooks = field(default_factory=NoHooks)


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
