"""Jobs: records, runner threads, resource checks, event bus, alerts; the only layer wiring compute to the store.

Light to import: the training job type (which needs torch) loads only when a training job is built.
"""

from nerf_widgets.jobs.alerts import Alert, AlertRules, AlertThresholds
from nerf_widgets.jobs.bus import Batch, Cursor, Event, EventBus, Snapshot, Subscription
from nerf_widgets.jobs.context import JobContext
from nerf_widgets.jobs.convergence import ConvergenceStatus, assess_convergence
from nerf_widgets.jobs.handle import Job
from nerf_widgets.jobs.registry import JobSpec, register_job_type
from nerf_widgets.jobs.resources import ResourcePool, ResourceRequest
from nerf_widgets.jobs.runner import JobRunner, runner_for, shutdown_runners
from nerf_widgets.jobs.states import JobState, JobType

__all__ = [
    "Alert",
    "AlertRules",
    "AlertThresholds",
    "Batch",
    "ConvergenceStatus",
    "Cursor",
    "Event",
    "EventBus",
    "Job",
    "JobContext",
    "JobRunner",
    "JobSpec",
    "JobState",
    "JobType",
    "ResourcePool",
    "ResourceRequest",
    "Snapshot",
    "Subscription",
    "assess_convergence",
    "register_job_type",
    "runner_for",
    "shutdown_runners",
]
