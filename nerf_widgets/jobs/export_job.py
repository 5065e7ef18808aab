"""The export job type: a trained run's field -> mesh file(s) in ``exports/<exp_id>/``, on a runner thread.

Everything a request can get wrong is checked before the job row exists (``runner.submit`` calls the
factory and ``before_queue`` first): the format and options (``export.make_request``), the project's
state (TrainingCompleted or ModelExported) and a trained run with a checkpoint. The job loads the field
(``engine.load_field``), runs ``export.run_export`` with progress by stage, records the ``exports`` row
and, once the job has succeeded, moves the project TrainingCompleted -> ModelExported (``re_export``
after that). A cancelled or failed export leaves no files: the export writes in a hidden work folder
and its ``exports/<exp_id>/`` folder is removed.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nerf_widgets.core.errors import NotFoundError, StateConflictError, ValidationError
from nerf_widgets.core.ids import new_id, validate_id
from nerf_widgets.core.paths import safe_join
from nerf_widgets.domain import lifecycle
from nerf_widgets.jobs.context import JobContext
from nerf_widgets.jobs.handle import Job
from nerf_widgets.jobs.registry import JobSpec, register_job_type
from nerf_widgets.jobs.resources import ResourceRequest
from nerf_widgets.jobs.runner import runner_for
from nerf_widgets.jobs.states import JobState
from nerf_widgets.store import exports as export_store
from nerf_widgets.store import projects as project_store
from nerf_widgets.store.db import Database
from nerf_widgets.store.jobs import JobRow, get_job, list_jobs
from nerf_widgets.store.locks import project_lock

__all__ = ["ExportHooks", "ExportJob", "download_path", "find_trained_run", "make_export_factory", "run_export_job",
           "start_export", "validate_export_params"]

log = logging.getLogger(__name__)
MiB = 1024 * 1024
LOCK_WAIT_S = 30.0  # an upload or another kernel's short task may hold the project lock briefly
FieldLoader = Callable[[Path], Any]  # run_dir -> object with density, color, aabb (engine.load_field)
# (run_dir, training=bool, comparison=bool) -> export_photos.RunPhotos (the photos asked for, read once)
PhotoLoader = Callable[..., Any]
_EXPORTABLE = (lifecycle.State.TRAINING_COMPLETED, lifecycle.State.MODEL_EXPORTED)
_MODEL_STATES = (JobState.SUCCEEDED.value, JobState.CANCELLED.value)  # cancelled = stopped with a checkpoint


def project_dir(db: Database, project_id: str) -> Path:
    """``<home>/projects/<id>``: the studio database lives in the home folder."""
    return safe_join(Path(db.path).parent, "projects", validate_id(project_id, "prj"))


def validate_export_params(params: dict[str, Any]) -> dict[str, Any]:
    """Check format and options with the export's own rules (a placeholder box: the real one comes from the run).

    Multi-file formats (gltf, obj) are always zipped, so one file can be downloaded. Returns the options.
    """
    from nerf_widgets.export.request import FORMATS, make_request

    fmt = params.get("format")
    if fmt not in FORMATS:
        raise ValidationError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}", field="format", value=fmt)
    options = dict(params.get("options") or {})
    if FORMATS[fmt].multi_file:
        options["zip"] = True
    make_request(fmt, Path("model").with_suffix(FORMATS[fmt].suffix), [[-1.0] * 3, [1.0] * 3], **options)
    return options


def _has_checkpoint(row: JobRow) -> bool:
    from nerf_widgets.engine.checkpoint import latest_checkpoint

    return row.run_dir is not None and latest_checkpoint(row.run_dir) is not None


def find_trained_run(*, db: Database, project_id: str, job_id: str | None = None) -> JobRow:
    """The training job whose model is exported: ``job_id``, else the newest one that ended with a checkpoint."""
    if job_id is not None:
        row = get_job(db=db, job_id=validate_id(job_id, "job"))
        if row.project_id != project_id or row.state not in _MODEL_STATES or not _has_checkpoint(row):
            raise NotFoundError(f"Job {job_id} of this project has no trained model to export "
                                "(it must have ended with a checkpoint).", job_id=job_id)
        return row
    for row in list_jobs(db=db, project_id=project_id, states=list(_MODEL_STATES)):
        if row.run_dir and _has_checkpoint(row):
            return row
    raise NotFoundError("This project has no trained model to export: no finished training run with a "
                        "checkpoint. Train one with project.start_training() first.", project_id=project_id)


def check_exportable(*, db: Database, project_id: str) -> str:
    """The lifecycle transition an export would apply now (``export`` or ``re_export``), or StateConflictError."""
    state = lifecycle.State(project_store.get_project_state(db=db, project_id=project_id))
    if state not in _EXPORTABLE:
        raise StateConflictError(f"Cannot export: the project is {state.value}; a trained model is needed "
                                 "(state TrainingCompleted or ModelExported). Train one first.", state=state.value)
    return "export" if state is lifecycle.State.TRAINING_COMPLETED else "re_export"


class ExportHooks:
    """Keeps the ``exports`` row and the project lifecycle in step with the export job."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def before_queue(self, job: JobRow, *, retry: bool) -> None:
        check_exportable(db=self.db, project_id=job.project_id)
        find_trained_run(db=self.db, project_id=job.project_id, job_id=job.params.get("source_job"))

    def on_state(self, job: JobRow, old: str, new: str, ctx: JobContext | None) -> None:
        p = job.params
        export_store.insert_export(db=self.db, export_id=p["export_id"], project_id=job.project_id, job_id=job.id,
                                   format=p["format"], options=p.get("options", {}), status=new)
        if new in (JobState.FAILED.value, JobState.CANCELLED.value, JobState.QUEUED.value):
            shutil.rmtree(export_dir(self.db, job), ignore_errors=True)  # nothing half-written stays
            export_store.set_export_status(db=self.db, export_id=p["export_id"], status=new, clear_path=True)
            return
        export_store.set_export_status(db=self.db, export_id=p["export_id"], status=new)
        if new == JobState.SUCCEEDED.value:
            try:
                name = check_exportable(db=self.db, project_id=job.project_id)
                lifecycle.transition(db=self.db, project_id=job.project_id, name=name,
                                     reason=f"{p['format']} export {p['export_id']} (job {job.id})")
            except StateConflictError:
                log.warning("export %s finished but the project moved on; its state is kept", p["export_id"])


def export_dir(db: Database, job: JobRow) -> Path:
    return safe_join(project_dir(db, job.project_id), "exports", validate_id(job.params["export_id"], "exp"))


def _default_loader(run_dir: Path) -> Any:
    from nerf_widgets.engine import load_field

    return load_field(run_dir)


def _default_photos(run_dir: Path, *, training: bool, comparison: bool) -> Any:
    from nerf_widgets.jobs.export_photos import run_photos

    return run_photos(run_dir, training=training, comparison=comparison)


def run_export_job(ctx: JobContext, *, db: Database, loader: FieldLoader = _default_loader,
                   photos: PhotoLoader = _default_photos) -> dict[str, Any]:
    """Job function: hold the project lock, load the field (the training photos when the texture is refined,
    the held-out ones for the comparison), export stage by stage, record the file."""
    from nerf_widgets.export import make_request, run_export
    from nerf_widgets.jobs.export_photos import field_layer, field_renderer

    job = get_job(db=db, job_id=ctx.job_id)
    p, options = ctx.params, validate_export_params(ctx.params)
    out_dir = export_dir(db, job)
    source = find_trained_run(db=db, project_id=ctx.project_id, job_id=p.get("source_job"))
    with project_lock(project_dir(db, ctx.project_id), purpose=f"export job {ctx.job_id}", timeout=LOCK_WAIT_S):
        shutil.rmtree(out_dir, ignore_errors=True)  # leftovers of an interrupted attempt
        try:
            ctx.report_progress(stage="load", stage_fraction=0.0, fraction=0.0)
            field = loader(Path(source.run_dir or ""))
            ctx.check()
            request = make_request(p["format"], out_dir / p["file_name"], field.aabb, **options)
            layer = field_layer(field)
            shell = request.wants_background(layer is not None)  # its centre and what it keeps come from the photos
            asked = photos(Path(source.run_dir or ""), training=request.refine_budget(True) > 0 or shell,
                           comparison=request.compare > 0 and request.format != "points")
            ctx.check()
            result = run_export(request, field.density, field.color, progress=lambda e: _report(ctx, e),
                                should_stop=ctx.should_stop, views=asked.training, compare_views=asked.comparison,
                                render_field=field_renderer(field), layer=layer)
            ctx.check()
        except BaseException:
            shutil.rmtree(out_dir, ignore_errors=True)
            raise
    download = result.archive or result.path
    relative = download.relative_to(project_dir(db, ctx.project_id)).as_posix()
    export_store.set_export_status(db=db, export_id=p["export_id"], status=JobState.RUNNING.value, path=relative,
                                   size_bytes=download.stat().st_size)
    ctx.report_progress(stage="done", stage_fraction=1.0, fraction=1.0)
    summary = {k: v for k, v in result.to_dict().items() if k in ("format", "vertices", "faces", "iso", "texture",
                                                                   "uv_method", "compress", "sizes", "seconds",
                                                                   "refine", "comparison", "background",
                                                                   "normal_map", "view_term")}
    return {**summary, "export_id": p["export_id"], "path": relative, "source_job": source.id}


def _report(ctx: JobContext, event: Any) -> None:
    """An ``ExportProgress`` to the job; a paused job blocks here (inside a stage) until resumed or cancelled."""
    ctx.report_progress(stage=event.stage, stage_fraction=event.stage_fraction, fraction=event.overall)
    ctx.wait_while_paused()


def _memory_bytes(options: dict[str, Any]) -> int:
    """A rough peak: two float32 grids plus marching-cubes/bake working sets and the float texture."""
    from nerf_widgets.export.request import ExportRequest

    res = int(options.get("resolution", ExportRequest.resolution))
    tex = int(options.get("texture", ExportRequest.texture))
    return 256 * MiB + 12 * res**3 + 16 * tex * tex


def make_export_factory(loader: FieldLoader = _default_loader,
                        photos: PhotoLoader = _default_photos) -> Callable[[JobRow, Database], JobSpec]:
    """Factory of an export job type (``loader`` replaces ``engine.load_field``, e.g. an analytic field in tests;
    ``photos`` the reader of the run's training photos and of those the result is compared on)."""

    def factory(row: JobRow, db: Database) -> JobSpec:
        for key in ("export_id", "file_name"):
            if not isinstance(row.params.get(key), str):
                raise ValidationError(f"export job parameters lack {key!r}", field=key)
        validate_id(row.params["export_id"], "exp")
        options = validate_export_params(row.params)
        return JobSpec(fn=lambda ctx: run_export_job(ctx, db=db, loader=loader, photos=photos),
                       resources=ResourceRequest(device="cpu", memory_bytes=_memory_bytes(options)),
                       hooks=ExportHooks(db))

    return factory


def file_name(project_name: str, format: str) -> str:
    """``<project name as a safe slug><suffix>`` (what the download is called)."""
    from nerf_widgets.export.request import FORMATS

    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", project_name).strip("-")[:48] or "model"
    return slug + FORMATS[format].suffix if format in FORMATS else slug


class ExportJob(Job):
    """An export's job handle: ``status`` (the seed's GET /exports/{id}/status), ``wait()``, ``path``."""

    def __init__(self, runner: Any, job_id: str, export_id: str) -> None:
        super().__init__(runner, job_id)
        self.export_id = export_id

    def __repr__(self) -> str:
        s = self.status
        return f"<ExportJob {self.export_id} {s['format']} {s['state']} {s['stage'] or ''} {s['fraction']:.0%}>"

    @property
    def status(self) -> dict[str, Any]:
        """``{export_id, job_id, format, state, stage, stage_fraction, fraction, error, path, size_bytes}``."""
        row = export_store.get_export(db=self.runner.db, export_id=self.export_id)
        job, progress = self.record(), self.progress
        return {"export_id": self.export_id, "job_id": self.id, "format": row.format, "state": job.state,
                "stage": progress.get("stage"), "stage_fraction": float(progress.get("stage_fraction") or 0.0),
                "fraction": float(progress.get("fraction") or 0.0), "error": job.error, "path": row.path,
                "size_bytes": row.size_bytes}

    @property
    def path(self) -> Path:
        """The downloadable file (``NotFoundError`` until the export has succeeded)."""
        return download_path(db=self.runner.db, project_id=self.record().project_id, export_id=self.export_id)


def start_export(*, db: Database, home: Path, project_id: str, project_name: str, format: str = "glb",
                 source_job: str | None = None, job_type: str = "export", **options: Any) -> ExportJob:
    """Queue an export; returns its handle at once. Nothing is written when the request is refused:

    ``ValidationError`` (unknown format or option, value out of range), ``StateConflictError`` (the project
    is not TrainingCompleted/ModelExported), ``NotFoundError`` (no finished training run with a checkpoint).
    """
    check_exportable(db=db, project_id=project_id)
    export_id = new_id("exp")
    params = {"export_id": export_id, "format": format, "options": options,
              "file_name": file_name(project_name, format),
              "source_job": find_trained_run(db=db, project_id=project_id, job_id=source_job).id}
    runner = runner_for(db, home)
    job_id = runner.submit(project_id=project_id, type=job_type, params=params)
    export_store.insert_export(db=db, export_id=export_id, project_id=project_id, job_id=job_id, format=format,
                               options=options, status=JobState.QUEUED.value)
    return ExportJob(runner, job_id, export_id)


def download_path(*, db: Database, project_id: str, export_id: str | None = None) -> Path:
    """The file of an export (default: the newest succeeded one); a zip for multi-file formats."""
    if export_id is None:
        done = export_store.list_exports(db=db, project_id=project_id, statuses=[JobState.SUCCEEDED.value])
        if not done:
            raise NotFoundError("This project has no finished export yet; run project.export() first.")
        row = done[0]
    else:
        row = export_store.get_export(db=db, export_id=validate_id(export_id, "exp"))
        if row.project_id != project_id:
            raise NotFoundError(f"Export {export_id} does not belong to this project.", export_id=export_id)
    if row.status != JobState.SUCCEEDED.value or not row.path:
        raise NotFoundError(f"Export {row.id} has no file: it is {row.status}.", export_id=row.id, status=row.status)
    path = safe_join(project_dir(db, project_id), *row.path.split("/"))
    if not path.is_file():
        raise NotFoundError(f"The file of export {row.id} is missing on disk ({path}).", export_id=row.id)
    return path


register_job_type("export", make_export_factory())
