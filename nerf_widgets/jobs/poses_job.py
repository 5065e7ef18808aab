"""The pose estimation job type: COLMAP (``poses.estimate_poses``) on the project's working images, on a runner thread.

Matcher/mapper and the project's state are checked before the job row exists. The job holds the
project lock, reports progress by stage (check, extract, match, map, normalize, write), stops at
cancel (``poses`` checks between stages and inside pycolmap's long calls) and moves the project to
PosesEstimated once ``poses/`` is written; a failure or cancel leaves ``poses/`` as it was.
In-kernel callables (a caller's ``progress``/``should_stop``) cannot be stored in the job row, so
they are kept here by job id for the first attempt only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nerf_widgets.core.errors import StateConflictError, ValidationError
from nerf_widgets.core.ids import new_id
from nerf_widgets.domain import lifecycle
from nerf_widgets.jobs.context import JobContext
from nerf_widgets.jobs.export_job import project_dir
from nerf_widgets.jobs.handle import Job
from nerf_widgets.jobs.registry import JobSpec, register_job_type
from nerf_widgets.jobs.resources import ResourceRequest
from nerf_widgets.jobs.runner import runner_for
from nerf_widgets.jobs.states import ACTIVE, TERMINAL, JobState
from nerf_widgets.store import images as image_store
from nerf_widgets.store.db import Database
from nerf_widgets.store.jobs import JobRow, list_jobs
from nerf_widgets.store.locks import project_lock

log = logging.getLogger(__name__)

__all__ = ["PoseHooks", "make_pose_factory", "run_pose_job", "start_pose_estimation", "validate_pose_params"]

MiB = 1024 * 1024
LOCK_WAIT_S = 30.0
JOB_TYPE = "estimate_poses"
Callbacks = tuple[Callable[[Any], None] | None, Callable[[], bool] | None]
_callbacks: dict[str, Callbacks] = {}
_callbacks_lock = threading.Lock()


def validate_pose_params(params: dict[str, Any]) -> dict[str, Any]:
    """matcher and mapper must be ones ``poses.estimate_poses`` knows (checked before any work)."""
    from nerf_widgets.poses.estimate import MAPPERS
    from nerf_widgets.poses.pairs import MATCHERS

    out = {"matcher": params.get("matcher", "auto"), "mapper": params.get("mapper", "auto")}
    for name, choices in (("matcher", MATCHERS), ("mapper", MAPPERS)):
        if out[name] not in choices:
            raise ValidationError(f"{name} must be one of {', '.join(choices)}, got {out[name]!r}", field=name)
    return out


class PoseHooks:
    """Refuses a pose job the lifecycle does not allow, or while another one of the project is active."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def before_queue(self, job: JobRow, *, retry: bool) -> None:
        lifecycle.check_transition(db=self.db, project_id=job.project_id, name="estimate_poses")
        active = [j.id for j in list_jobs(db=self.db, project_id=job.project_id, states=[s.value for s in ACTIVE])
                  if j.type == job.type and j.id != job.id]
        if active:
            raise StateConflictError(f"Pose estimation is already running for this project (job {active[0]}).",
                                     job_id=active[0])

    def on_state(self, job: JobRow, old: str, new: str, ctx: JobContext | None) -> None:
        """The lifecycle moves inside the job (with the project lock held); here only callbacks are dropped."""
        if JobState(new) in TERMINAL:
            with _callbacks_lock:
                _callbacks.pop(job.id, None)


def run_pose_job(ctx: JobContext, *, db: Database) -> dict[str, Any]:
    """Job function: COLMAP on the working images -> ``poses/``; -> PosesEstimated."""
    from nerf_widgets.poses import CameraPrior, estimate_poses

    params = validate_pose_params(ctx.params)
    with _callbacks_lock:
        progress_cb, stop_cb = _callbacks.pop(ctx.job_id, (None, None))
    folder = project_dir(db, ctx.project_id)

    def on_progress(event: Any) -> None:
        ctx.report_progress(stage=event.stage, stage_fraction=event.fraction, fraction=event.overall,
                            message=event.message)
        if progress_cb is not None:
            progress_cb(event)
        ctx.wait_while_paused()  # pause = block between two progress reports (cancel still wakes it)

    def should_stop() -> bool:
        return ctx.should_stop() or (stop_cb is not None and bool(stop_cb()))

    with project_lock(folder, purpose=f"pose estimation job {ctx.job_id}", timeout=LOCK_WAIT_S):
        recs = {folder / "images" / r.working_file: r for r in image_store.list_images(db=db, project_id=ctx.project_id)}
        priors = {p: CameraPrior(r.camera_make, r.camera_model, r.focal_35mm) for p, r in recs.items()}
        report = estimate_poses(list(recs), folder / "poses", matcher=params["matcher"], mapper=params["mapper"],
                                progress=on_progress, should_stop=should_stop, camera_priors=priors)
        lifecycle.transition(db=db, project_id=ctx.project_id, name="estimate_poses",
                             reason=f"{report.num_registered}/{report.num_images} images posed (job {ctx.job_id})")
        _propose_region(db, ctx.project_id, folder / "poses")
    return {"num_images": report.num_images, "num_registered": report.num_registered, "matcher": report.matcher,
            "mapper": report.mapper, "mean_reprojection_error": report.mean_reprojection_error}


def _propose_region(db: Database, project_id: str, poses: Path) -> None:
    """The region of interest proposed from the new poses, stored for ``Project.region`` (never fails the job)."""
    from nerf_widgets.poses.region import poses_key, propose_from_dir
    from nerf_widgets.store.regions import save_proposal

    try:
        save_proposal(db=db, project_id=project_id, proposed=propose_from_dir(poses).to_dict(),
                      poses_key=poses_key(poses))
    except Exception:  # noqa: BLE001 - Project.region() proposes again on demand and says why it cannot
        log.warning("no region proposed for project %s", project_id, exc_info=True)


def make_pose_factory() -> Callable[[JobRow, Database], JobSpec]:
    def factory(row: JobRow, db: Database) -> JobSpec:
        validate_pose_params(row.params)
        return JobSpec(fn=lambda ctx: run_pose_job(ctx, db=db),
                       resources=ResourceRequest(device="cpu", memory_bytes=512 * MiB), hooks=PoseHooks(db))

    return factory


def start_pose_estimation(*, db: Database, home: Any, project_id: str, matcher: str = "auto", mapper: str = "auto",
                          progress: Callable[[Any], None] | None = None, should_stop: Callable[[], bool] | None = None,
                          job_type: str = JOB_TYPE) -> Job:
    """Queue pose estimation; returns the ``Job`` at once (``job.wait()``; its error lists images and reasons).

    ``progress(PoseProgress)`` runs on the job's thread; ``should_stop() -> True`` cancels like ``job.cancel()``.
    Raises ``ValidationError`` (matcher/mapper) or ``StateConflictError`` (lifecycle, already running) first.
    """
    params = validate_pose_params({"matcher": matcher, "mapper": mapper})
    job_id = new_id("job")
    with _callbacks_lock:
        _callbacks[job_id] = (progress, should_stop)
    runner = runner_for(db, home)
    try:
        runner.submit(project_id=project_id, type=job_type, params=params, job_id=job_id)
    except BaseException:
        with _callbacks_lock:
            _callbacks.pop(job_id, None)
        raise
    return Job(runner, job_id)


register_job_type(JOB_TYPE, make_pose_factory())
