"""Helpers of the Ray executor tests: a posed project on a studio that trains on the test cluster, and
waits on the job's bus (each delivered batch re-checks the condition; the timeout only guards failure)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from nerf_widgets.jobs import Job, register_job_type
from nerf_widgets.jobs.training import make_training_factory
from nerf_widgets.studio import Project, Studio
from tests.jobs.fake_trainer import fake_config, fake_train
from tests.jobs.jobs_scene import make_scene

register_job_type("ray_fake_train", make_training_factory(trainer=fake_train, config_builder=fake_config))
WAIT_S = 300  # failure guard only: a worker process starts in seconds, but the shared machine is busy


def posed_project(studio: Studio, name: str) -> Project:
    project = studio.create_project(name)
    make_scene(project.dir / "poses", n_views=4, size=16)
    project.transition("upload_images", "test scene")
    project.transition("skip_pose_estimation", "analytic poses")
    return project


def wait_view(job: Job, pred: Callable[[dict[str, Any]], bool], timeout: float = WAIT_S) -> dict[str, Any]:
    """Block until ``pred(snapshot state)`` holds, checked as events arrive; returns that state."""
    hit = threading.Event()

    def on_batch(batch: Any) -> None:
        if pred(job.bus.snapshot().state):
            hit.set()

    sub = job.bus.subscribe(on_batch, max_rate_hz=50, name="test-wait")
    try:
        assert hit.wait(timeout), f"condition not reached; job is {job.record().state}: {job.record().progress}"
    finally:
        sub.close()
    return job.bus.snapshot().state


def wait_any(jobs: list[Job], pred: Callable[[dict[str, Any]], bool], timeout: float = WAIT_S) -> Job:
    """The first of ``jobs`` whose view satisfies ``pred``, watching all their buses at once."""
    hit: list[Job] = []
    ready = threading.Event()

    def watcher(job: Job) -> Callable[[Any], None]:
        def on_batch(batch: Any) -> None:
            if pred(job.bus.snapshot().state):
                hit.append(job)
                ready.set()
        return on_batch

    subs = [j.bus.subscribe(watcher(j), max_rate_hz=50, name="test-wait-any") for j in jobs]
    try:
        assert ready.wait(timeout), f"no job reached the condition: {[j.record().state for j in jobs]}"
    finally:
        for sub in subs:
            sub.close()
    return hit[0]


def job_state(view: dict[str, Any]) -> str | None:
    return view.get("job", {}).get("state")


def step_of(view: dict[str, Any]) -> int:
    return int(view.get("progress", {}).get("step") or 0)
