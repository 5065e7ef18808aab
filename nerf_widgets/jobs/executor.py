"""Where a job's body runs: ``local`` (a thread of this kernel, the default) or ``ray`` (a Ray actor).

The runner owns states, the store and the bus either way; an executor only runs the body and says
when it started. The local executor waits for our ``ResourcePool``; the Ray executor leaves placement
and waiting to Ray's scheduler (``jobs/ray_executor.py``, imported only when a job runs there, so
importing nerf_widgets never imports ray).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.jobs.context import JobContext
from nerf_widgets.jobs.registry import JobSpec

__all__ = ["ENV_ADDRESS", "EXECUTORS", "Executor", "ExecutorChoice", "LocalExecutor", "Started", "choose_executor",
           "make_executor"]

EXECUTORS = ("local", "ray")
ENV_ADDRESS = "NERF_WIDGETS_RAY_ADDRESS"
Started = Callable[[str | None], None]  # started(None): running now; started("why"): waiting for resources


class Executor(Protocol):
    name: str
    schedules_here: bool  # True: the runner's ResourcePool decides when the job starts

    def run(self, spec: JobSpec, ctx: JobContext, started: Started) -> dict[str, Any] | None:
        """Run the job's body to its end (raising as the body does); call ``started`` as it starts."""


class LocalExecutor:
    """Today's behaviour: the body runs on the runner's thread of this kernel."""

    name = "local"
    schedules_here = True

    def run(self, spec: JobSpec, ctx: JobContext, started: Started) -> dict[str, Any] | None:
        started(None)
        ctx.check()
        return spec.fn(ctx)


@dataclass(frozen=True)
class ExecutorChoice:
    """A studio's default: the executor's name and, for Ray, the cluster address (None: Ray's own default)."""

    name: str = "local"
    address: str | None = None


def choose_executor(name: str | None = None, address: str | None = None) -> ExecutorChoice:
    """Validate a choice; without a name, ``$NERF_WIDGETS_RAY_ADDRESS`` selects Ray at that address."""
    env = os.environ.get(ENV_ADDRESS) or None
    if name is None:
        name = "ray" if (address or env) else "local"
    if name not in EXECUTORS:
        raise ValidationError(f"Unknown executor {name!r}; use one of {', '.join(EXECUTORS)}.")
    if name == "local" and address:
        raise ValidationError("address= is for executor='ray'; a local job runs in this kernel.")
    if name == "ray" and importlib.util.find_spec("ray") is None:
        raise ValidationError("executor='ray' needs Ray in this kernel: pip install 'nerf_widgets[ray]'.")
    return ExecutorChoice(name, (address or env) if name == "ray" else None)


def make_executor(choice: ExecutorChoice) -> Executor:
    if choice.name == "local":
        return LocalExecutor()
    from nerf_widgets.jobs.ray_executor import RayExecutor

    return RayExecutor(choice.address)
