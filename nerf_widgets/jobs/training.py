"""The training job type: engine training on a runner thread, wired to the job's bus, the store and the
project lifecycle.

The engine only sees ``TrainCallbacks``; this module turns its ``StepInfo``/``EvalInfo`` into job
reports, blocks in ``on_step`` while paused, answers ``should_stop`` on cancel, and moves the project
through TrainingStarted -> TrainingInProgress -> TrainingCompleted | TrainingFailed | TrainingInterrupted.
"""

from __future__ import annotations

import functools
import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nerf_widgets.core.devices import normalize_device, pick_device
from nerf_widgets.core.errors import StateConflictError, ValidationError
from nerf_widgets.domain import lifecycle
from nerf_widgets.jobs.context import JobContext
from nerf_widgets.jobs.registry import JobSpec, RemoteBody, register_job_type
from nerf_widgets.jobs.resources import ResourceRequest
from nerf_widgets.jobs.states import JobState, is_interrupted
from nerf_widgets.store import projects as project_store
from nerf_widgets.store.db import Database
from nerf_widgets.store.jobs import JobRow, list_jobs
from nerf_widgets.store.locks import project_lock

__all__ = ["JobTrainCallbacks", "TrainingHooks", "make_training_factory", "ray_resources", "release_memory",
           "remove_partial_files", "run_training", "train_on_worker", "validate_training_params"]

log = logging.getLogger(__name__)
MiB = 1024 * 1024
DEFAULT_MEMORY_MB = {"cpu": 1024, "cuda": 2048}
Trainer = Callable[..., Any]  # engine.train(data_dir, run_dir, config, callbacks=None, resume=True)


def validate_training_params(params: dict[str, Any]) -> dict[str, Any]:
    """Check budgets and choices at the boundary so a bad call writes nothing."""
    out = dict(params)
    for key in ("max_minutes", "max_steps", "num_cpus"):
        value = out.get(key)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool) or value <= 0):
            raise ValidationError(f"{key} must be a positive number, got {value!r}.")
    device = normalize_device(out.get("device"))
    if device == "auto":
        out.pop("device", None)
    else:
        out["device"] = device
    return out


def job_device(params: dict[str, Any]) -> str:
    """The device the job reserves and the engine trains on (``engine_config`` passes it on, so the two never
    differ): the one asked for, else the first GPU PyTorch sees, else the CPU. A GPU request on a machine
    where PyTorch sees none is refused here, when the job is submitted. On Ray the kernel's own devices do not
    matter (finding a GPU is Ray's job, ``ray_resources``): it checks the request's spelling and names the kind
    asked for; the worker, where ``executor`` is dropped, picks its device with the same rule."""
    if params.get("executor") == "ray":
        requested = normalize_device(params.get("device"))
        return "cpu" if requested == "auto" else requested
    return pick_device(params.get("device"))


class JobTrainCallbacks:
    """``TrainCallbacks`` for one job attempt (called on the training thread: keep it lean)."""

    def __init__(self, ctx: JobContext, *, on_first_step: Callable[[], None] | None = None) -> None:
        self.ctx = ctx
        self._first = on_first_step

    def on_step(self, info: Any) -> None:
        if self._first is not None:
            first, self._first = self._first, None
            self.ctx.report_progress(resumed_from=info.step - 1)  # the checkpoint step the engine restored
            first()
        self.ctx.report_step(
            info.step, info.elapsed_s,
            {"loss": info.loss, "psnr": info.psnr, "lr": info.lr, "steps_per_s": info.steps_per_s,
             "rays_per_s": info.rays_per_s},
            max_steps=info.max_steps, eta_s=info.eta_s, fraction=min(1.0, info.step / max(1, info.max_steps)),
        )
        if self.ctx.paused:
            self.ctx.report_progress(stage="paused")
            self.ctx.wait_while_paused()
            self.ctx.report_progress(stage="train")

    def on_eval(self, info: Any) -> None:
        self.ctx.report_eval(info.step, info.elapsed_s, {"psnr": info.psnr, "ssim": info.ssim, "lpips": info.lpips})
        rendered, truth = _png(info.rendered), _png(info.ground_truth)
        if self.ctx.run_dir is not None:
            renders = self.ctx.run_dir / "renders"
            renders.mkdir(parents=True, exist_ok=True)
            (renders / "preview_rendered.png").write_bytes(rendered)
            (renders / "preview_truth.png").write_bytes(truth)
        self.ctx.publish("preview", {"step": info.step, "rendered_png": rendered, "truth_png": truth})

    def on_checkpoint(self, step: int, path: str) -> None:
        self.ctx.report_progress(checkpoint_step=step, checkpoint=str(path))
        self.ctx.flush_metrics()  # the store then holds every step the checkpoint covers

    def should_stop(self) -> bool:
        return self.ctx.should_stop()


def _png(image: Any) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class TrainingHooks:
    """Keeps the project lifecycle in step with the job's states."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def before_queue(self, job: JobRow, *, retry: bool) -> None:
        state = lifecycle.State(project_store.get_project_state(db=self.db, project_id=job.project_id))
        name = {lifecycle.State.TRAINING_FAILED: "retry", lifecycle.State.POSES_ESTIMATED: "start_training",
                lifecycle.State.TRAINING_COMPLETED: "retrain", lifecycle.State.MODEL_EXPORTED: "retrain",
                lifecycle.State.TRAINING_INTERRUPTED: "resume_training" if retry else "retry"}.get(state)
        if name is None:
            raise StateConflictError(
                f"Cannot start training: the project is {state.value}. "
                + ("Estimate or import camera poses first." if state in (lifecycle.State.CREATED,
                   lifecycle.State.IMAGES_UPLOADED) else "Wait for the current training to end or cancel it."),
                state=state.value)
        lifecycle.transition(db=self.db, project_id=job.project_id, name=name,
                             reason=f"job {job.id}" + (" (new attempt)" if retry else ""))

    def on_state(self, job: JobRow, old: str, new: str, ctx: JobContext | None) -> None:
        name = {JobState.SUCCEEDED.value: "training_completed", JobState.FAILED.value: "training_failed"}.get(new)
        if is_interrupted(new, job.error):
            name = "training_interrupted"
        if new == JobState.CANCELLED.value:
            name = "training_stopped" if self._has_model(job) else "training_cancelled"
        if name is None:
            return
        reason = f"job {job.id}" + (f": {job.error}" if job.error and new == JobState.FAILED.value else "")
        try:
            lifecycle.transition(db=self.db, project_id=job.project_id, name=name, reason=reason)
        except StateConflictError:
            log.warning("job %s %s but the project could not follow (%s)", job.id, new, name)

    def first_step(self, job_id: str, project_id: str) -> None:
        try:
            lifecycle.transition(db=self.db, project_id=project_id, name="training_progress", reason=f"job {job_id}")
        except StateConflictError:
            pass  # already in progress (a resumed attempt)

    def _has_model(self, job: JobRow) -> bool:
        """A usable model exists: this run has a checkpoint, or an earlier training of the project succeeded."""
        from nerf_widgets.engine.checkpoint import latest_checkpoint

        if job.run_dir is not None and latest_checkpoint(job.run_dir) is not None:
            return True
        done = list_jobs(db=self.db, project_id=job.project_id, states=[JobState.SUCCEEDED.value])
        return any(j.type == job.type for j in done)


def engine_config(params: dict[str, Any]) -> Any:
    """The engine's config for these job parameters (method, preset, budgets, the job's device, overrides)."""
    from nerf_widgets import engine

    budgets = {k: params[k] for k in ("max_steps", "max_minutes") if params.get(k) is not None}
    budgets["device"] = job_device(params)
    return engine.make_config(params.get("method", "fast"), params.get("preset", "quick"),
                              **budgets, **params.get("overrides", {}))


def run_training(ctx: JobContext, *, hooks: TrainingHooks, trainer: Trainer | None = None,
                 config_builder: Callable[[dict[str, Any]], Any] = engine_config) -> dict[str, Any]:
    """Job function: hold the project lock, build the config, train (resuming from the run's checkpoint)."""
    if ctx.run_dir is None:
        raise ValidationError(f"Training job {ctx.job_id} has no run folder.")
    run_dir = ctx.run_dir
    project_dir = run_dir.parent.parent
    if trainer is None:
        from nerf_widgets import engine

        trainer = engine.train
    config = config_builder(validate_training_params(ctx.params))
    ctx.report_progress(stage="train")
    callbacks = JobTrainCallbacks(ctx, on_first_step=lambda: hooks.first_step(ctx.job_id, ctx.project_id))
    with project_lock(project_dir, purpose=f"training job {ctx.job_id}"):
        remove_partial_files(run_dir)
        try:
            result = trainer(project_dir / "poses", run_dir, config, callbacks=callbacks, resume=True)
        finally:
            release_memory()
    return _summary(result)


def train_on_worker(ctx: Any, *, trainer: Trainer | None = None,
                    config_builder: Callable[[dict[str, Any]], Any] = engine_config) -> dict[str, Any]:
    """The remote body (a Ray worker, ``jobs/ray_worker.WorkerContext``): the same training on the worker's
    copies of the poses folder and the run folder; the lifecycle's first-step move happens at home."""
    if trainer is None:
        from nerf_widgets import engine

        trainer = engine.train
    params = validate_training_params(ctx.params)
    params.pop("executor", None)  # here, on the worker, its own devices decide (job_device)
    if str(params.get("device", "")).startswith("cuda"):
        params["device"] = "cuda:0"  # Ray gave this worker its GPU(s) as CUDA_VISIBLE_DEVICES
    config = config_builder(params)
    ctx.report_progress(stage="train")
    callbacks = JobTrainCallbacks(ctx, on_first_step=lambda: ctx.publish("first_step", {}))
    remove_partial_files(ctx.run_dir)
    try:
        result = trainer(ctx.data_dir, ctx.run_dir, config, callbacks=callbacks, resume=True)
    finally:
        release_memory()
    return _summary(result)


def ray_resources(params: dict[str, Any], cluster: dict[str, float]) -> dict[str, float]:
    """Ray actor options: one GPU for a CUDA training (or an unspecified device on a cluster with GPUs),
    else ``num_cpus`` CPUs (default 1)."""
    device = str(params.get("device") or "")
    cpus = float(params.get("num_cpus") or 1)
    if device.startswith("cuda") or (not device and cluster.get("GPU", 0) > 0):
        return {"num_gpus": 1, "num_cpus": cpus}
    return {"num_cpus": cpus}


def _point_config_home(data_dir: Path, run_dir: Path) -> None:
    """config.json came from the worker naming its own data folder; name the notebook's (video, eval)."""
    path = run_dir / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if isinstance(config, dict) and config.get("data_dir") != str(data_dir):
        config["data_dir"] = str(data_dir)
        tmp = path.with_name(".config.json.tmp")
        tmp.write_text(json.dumps(config, indent=2))
        tmp.replace(path)


def remove_partial_files(run_dir: Path) -> list[Path]:
    """Delete half-written files (``.name.tmpPID``) a killed attempt left in the run folder."""
    leftovers = [p for folder in (run_dir, run_dir / "checkpoints", run_dir / "renders") if folder.is_dir()
                 for p in folder.glob(".*.tmp*") if p.is_file()]
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers


def release_memory() -> None:
    """Give the model's memory back when a run ends (CUDA caches included)."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _summary(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    if isinstance(result, dict):
        return result
    fields = getattr(result, "__dataclass_fields__", {})
    return {k: getattr(result, k) for k in fields if isinstance(getattr(result, k), int | float | str | bool)}


def make_training_factory(trainer: Trainer | None = None,
                          config_builder: Callable[[dict[str, Any]], Any] = engine_config
                          ) -> Callable[[JobRow, Database], JobSpec]:
    """Factory for a training job type (``trainer``/``config_builder`` replace the engine's, e.g. in tests)."""

    def factory(row: JobRow, db: Database) -> JobSpec:
        params = validate_training_params(row.params)
        config_builder(params)  # a bad method/preset/override is refused here, before anything is written
        device = job_device(params)
        memory_mb = params.get("memory_mb") or DEFAULT_MEMORY_MB["cpu" if device == "cpu" else "cuda"]
        hooks = TrainingHooks(db)
        return JobSpec(
            fn=lambda ctx: run_training(ctx, hooks=hooks, trainer=trainer, config_builder=config_builder),
            resources=ResourceRequest(device=device, memory_bytes=int(memory_mb * MiB)),
            hooks=hooks,
            remote=_remote_body(row, params, hooks, trainer, config_builder),
        )

    return factory


def _remote_body(row: JobRow, params: dict[str, Any], hooks: TrainingHooks, trainer: Trainer | None,
                 config_builder: Callable[[dict[str, Any]], Any]) -> RemoteBody | None:
    if row.run_dir is None:
        return None
    project_dir = Path(row.run_dir).parent.parent
    return RemoteBody(
        fn=functools.partial(train_on_worker, trainer=trainer, config_builder=config_builder),
        inputs=project_dir, input_parts=("poses", "images"), data_entry="poses",  # frames name ../images/*
        resources=functools.partial(ray_resources, params),
        handlers={"first_step": lambda data: hooks.first_step(row.id, row.project_id)},
        hold=lambda: project_lock(project_dir, purpose=f"training job {row.id} (on Ray)"),
        after_sync=functools.partial(_point_config_home, project_dir / "poses"),
    )


register_job_type("train", make_training_factory())
