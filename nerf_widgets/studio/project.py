"""``Project``: one project's Python API (the seed's ``/projects/{id}/...`` endpoints).

A ``Project`` is a light handle (studio + id + the row read when it was opened). ``state`` and
``history`` are read live from the database, because a background job or another kernel may move
the project on. Later layers add thin methods here that delegate to their package (poses, jobs,
export); they get ``self.db``, ``self.settings``, ``self.dir``, ``self.lock(...)`` and
``self.transition(...)`` to work with.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nerf_widgets.core.errors import NotFoundError
from nerf_widgets.core.ids import validate_id
from nerf_widgets.core.paths import safe_join
from nerf_widgets.domain import lifecycle
from nerf_widgets.store import images as image_store
from nerf_widgets.store import projects as project_store
from nerf_widgets.store.locks import project_lock
from nerf_widgets.store.records import HistoryEntry, ImageRecord, ProjectRecord

if TYPE_CHECKING:
    from nerf_widgets.core.region import Region
    from nerf_widgets.core.settings import Settings
    from nerf_widgets.ingest.results import UploadResult
    from nerf_widgets.jobs.export_job import ExportJob
    from nerf_widgets.jobs.handle import Job
    from nerf_widgets.poses.types import PoseReport
    from nerf_widgets.store.db import Database
    from nerf_widgets.store.exports import ExportRow
    from nerf_widgets.studio.studio import Studio

PROJECT_SUBDIRS = ("originals", "images", "thumbs", "poses", "runs", "exports")
UPLOAD_LOCK_WAIT_S = 10.0

Progress = Callable[[int, int, str], None]


class Project:
    """Handle on one project. Obtain it from ``Studio.create_project`` / ``project`` / ``projects``."""

    def __init__(self, studio: Studio, record: ProjectRecord) -> None:
        self.studio = studio
        self._record = record

    # --- identity and live state -------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def description(self) -> str:
        return self._record.description

    @property
    def created_at(self) -> float:
        return self._record.created_at

    @property
    def db(self) -> Database:
        return self.studio.db

    @property
    def settings(self) -> Settings:
        return self.studio.settings

    @property
    def dir(self) -> Path:
        """The project folder ``<home>/projects/<id>`` (layout in ARCHITECTURE.md)."""
        return self.studio.project_dir(self.id)

    @property
    def state(self) -> str:
        """Current lifecycle state (a ``lifecycle.State`` value), read from the database.

        While it says training, the jobs layer first checks that a kernel still runs the job: after a killed
        kernel the project reads TrainingInterrupted (``resume_training`` and ``retry`` offered), not training.
        """
        state = project_store.get_project_state(db=self.db, project_id=self.id)
        if lifecycle.State(state) in lifecycle.TRAINING_STATES:
            from nerf_widgets.jobs.api import recover_project_jobs

            recover_project_jobs(db=self.db, home=self.studio.home, project_id=self.id)
            state = project_store.get_project_state(db=self.db, project_id=self.id)
        return state

    @property
    def history(self) -> list[HistoryEntry]:
        """Every recorded transition, oldest first."""
        return project_store.list_history(db=self.db, project_id=self.id)

    def allowed_transitions(self) -> list[str]:
        """Lifecycle steps possible now (what a UI may offer)."""
        return lifecycle.allowed_transitions(self.state)

    def refresh(self) -> Project:
        """Re-read name/description (``NotFoundError`` if the project was deleted meanwhile)."""
        self._record = project_store.get_project(db=self.db, project_id=self.id)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {**self._record.to_dict(), "state": self.state}

    def __repr__(self) -> str:
        return f"Project(id={self.id!r}, name={self.name!r}, state={self.state!r})"

    # --- helpers for the layers built on top ------------------------------------------------
    def transition(self, name: str, reason: str = "") -> str:
        """Apply a lifecycle transition (see ``domain.lifecycle``); returns the new state."""
        state = lifecycle.transition(db=self.db, project_id=self.id, name=name, reason=reason).value
        self.studio.changed()
        return state

    @contextmanager
    def lock(self, purpose: str, timeout: float = 0.0) -> Iterator[None]:
        """The inter-process project lock (``store.locks.project_lock``)."""
        with project_lock(self.dir, purpose=purpose, timeout=timeout):
            yield

    def path(self, *parts: str) -> Path:
        """A path inside the project folder, checked to stay inside it."""
        return safe_join(self.dir, *parts)

    # --- images ---------------------------------------------------------------------------------
    def images(self) -> list[ImageRecord]:
        """Working images in upload order."""
        return image_store.list_images(db=self.db, project_id=self.id)

    def image(self, image_id: str) -> ImageRecord:
        validate_id(image_id, "img")
        return image_store.get_image(db=self.db, project_id=self.id, image_id=image_id)

    def image_path(self, image_id: str, kind: str = "working") -> Path:
        """File of an image: ``working`` (RGB JPEG or RGBA PNG), ``thumbnail`` (JPEG) or ``original``."""
        rec = self.image(image_id)
        files = {"working": ("images", rec.working_file), "thumbnail": ("thumbs", f"{rec.id}.jpg"),
                 "original": ("originals", rec.original_file)}
        if kind not in files:
            raise ValueError(f"kind must be one of {sorted(files)}")
        return self.path(*files[kind])

    def thumbnail(self, image_id: str) -> bytes:
        """JPEG bytes of the thumbnail (long side <= ``Settings.thumbnail_size``)."""
        path = self.image_path(image_id, "thumbnail")
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"The thumbnail of image {image_id!r} is missing on disk.") from None

    def upload_images(self, items: Any, *, progress: Progress | None = None) -> list[UploadResult]:
        """Ingest photos or videos; returns one ``UploadResult`` per stored image or rejected file.

        ``items``: a path (file or folder), ``bytes``, a ``(name, bytes | path)`` pair, or a list of
        these. A folder contributes its regular, non-hidden files in natural name order (``r_2``
        before ``r_10``), not recursively; a link in it is read only when it points inside the folder.
        Files that are not images or videos, or images under ``min_image_side`` px on their short side,
        are reported as rejected. Client names are metadata only (``../../x.jpg`` is stored as ``x.jpg``; names with
        control characters are refused). Identical content is stored once: later copies come back
        as ``duplicate``. A video yields one result per kept frame. ``progress(done, total, name)`` is called in this
        thread after each input file. Raises ``StateConflictError`` (training running) or
        ``ValidationError`` (batch over ``max_batch_bytes``) before anything is written.
        """
        from nerf_widgets.ingest.batch import ingest_batch
        from nerf_widgets.ingest.files import remove_stale_parts

        lifecycle.check_transition(db=self.db, project_id=self.id, name="upload_images")
        with self.lock("image upload", timeout=UPLOAD_LOCK_WAIT_S):
            for sub in ("originals", "images", "thumbs"):
                remove_stale_parts(self.path(sub))
            committer = _UploadCommitter(self)
            return ingest_batch(
                items, settings=self.settings, project_dir=self.dir, commit=committer.commit,
                known_hash=committer.known_hash, progress=progress,
            )

    def remove_image(self, image_id: str) -> None:
        """Delete an image and its files. Invalidates poses; refused while training (``StateConflictError``)."""
        validate_id(image_id, "img")
        with self.lock("image removal", timeout=UPLOAD_LOCK_WAIT_S), self.db.transaction():
            rec = image_store.delete_image_row(db=self.db, project_id=self.id, image_id=image_id)
            left = image_store.count_images(db=self.db, project_id=self.id)
            name = "images_removed" if left else "images_cleared"
            self.transition(name, f"removed {rec.original_name!r}; {left} image(s) left")
            orphan_source = rec.source_id is not None and image_store.count_source_users(
                db=self.db, source_id=rec.source_id) == 0
        self.studio.changed()
        self.path("images", rec.working_file).unlink(missing_ok=True)
        self.path("thumbs", f"{rec.id}.jpg").unlink(missing_ok=True)
        if rec.source_id is None or orphan_source:
            self.path("originals", rec.original_file).unlink(missing_ok=True)


    # --- poses (delegates to nerf_widgets.poses) ---------------------------------------------------
    def estimate_poses(self, *, matcher: str = "auto", mapper: str = "auto", progress: Any = None,
                       should_stop: Callable[[], bool] | None = None) -> Job:
        """Queue COLMAP on the working images as a background job; returns the ``Job`` at once.

        On success ``poses/`` holds transforms.json, points3D.ply, report.json and the project is
        PosesEstimated; a failed job's ``error`` lists images and reasons (nothing written). ``progress``
        (``PoseProgress``) runs on the job's thread; ``should_stop()`` or ``job.cancel()`` stops it.
        ``job.wait()`` blocks; ``project.pose_report()`` reads the result.
        """
        from nerf_widgets.jobs.poses_job import start_pose_estimation

        return start_pose_estimation(db=self.db, home=self.studio.home, project_id=self.id, matcher=matcher,
                                     mapper=mapper, progress=progress, should_stop=should_stop)

    def import_poses(self, file: str | Path, *, normalize: bool = True) -> PoseReport:
        """Poses from transforms.json / Blender splits / COLMAP model / poses_bounds.npy, matched to images by
        their upload names; -> PosesEstimated (``manual_poses``). Images without a frame are listed, not used."""
        from nerf_widgets.poses import import_poses

        lifecycle.check_transition(db=self.db, project_id=self.id, name="manual_poses")
        with self.lock("pose import"):
            mapping = {rec.original_name: self.path("images", rec.working_file) for rec in self.images()}
            report = import_poses(file, mapping, self.path("poses"), normalize=normalize)
            self.transition("manual_poses", f"{report.num_registered} poses imported ({report.source})")
        _import_region(self, Path(file), report)
        return report

    # --- region of interest (delegates to studio.regions) -----------------------------------------
    def region(self) -> Region:
        """The box around the object: the one set with ``set_region`` (or an imported ``aabb``), else the proposal
        made from the poses (cameras' focus, sparse points, ground plane). ``NotFoundError`` without poses."""
        from nerf_widgets.studio.regions import current_region

        return current_region(self)

    def set_region(self, region: Any = None, **values: Any) -> Region:
        """Store a box: a ``Region``, a dict or keywords (``center``, ``size``, ``rotation`` 3x3 or (w, x, y, z),
        ``yaw_deg``, ``floor_cut``); fields left out keep the current region's. Refused with ``ValidationError``
        (nothing stored) for a zero/negative size, NaN, a non-rotation or a box no camera sees. Recorded in history."""
        from nerf_widgets.studio.regions import set_region

        given = dict(region.to_dict() if hasattr(region, "to_dict") else region or {}, **values)
        return set_region(self, given)

    def reset_region(self) -> Region:
        """Forget the person's box; returns the proposal, which applies again."""
        from nerf_widgets.studio.regions import reset_region

        return reset_region(self)

    def pose_report(self) -> PoseReport:
        """The last pose estimation / import report (``NotFoundError`` if there is none)."""
        from nerf_widgets.poses import load_report

        return load_report(self.path("poses"))

    # --- training jobs (delegates to nerf_widgets.jobs) ------------------------------------------
    def start_training(self, method: str = "fast", preset: str = "quick", *, max_minutes: float | None = None,
                       max_steps: int | None = None, device: str | None = None, executor: str | None = None,
                       **overrides: Any) -> Job:
        """Queue training on a background thread of this kernel, or on the studio's Ray cluster; returns the
        ``Job`` at once. ``executor="local"|"ray"`` overrides the studio's choice for this job.

        ``region`` (as for ``export``; default: the box set with ``set_region``) goes into config.json.
        ``device``: ``auto`` (default: the first GPU PyTorch sees, else the CPU), ``cpu``, ``cuda``, ``cuda:<n>``;
        a GPU request where PyTorch sees none raises ``ResourceUnavailableError`` saying why.

        ``job.wait()``, ``job.metrics()``, ``job.pause()``/``resume()``/``cancel()``/``retry()``.
        """
        from nerf_widgets.jobs.api import start_training
        from nerf_widgets.jobs.executor import choose_executor

        studio = self.studio.executor
        choice = studio if executor is None else choose_executor(
            executor, studio.address if executor == studio.name else None)
        from nerf_widgets.studio.regions import region_option

        region = region_option(self, overrides.pop("region", "auto"))
        if region is not None:
            overrides["region"] = region  # carried to config.json (TrainConfig.region)
        return start_training(db=self.db, home=self.studio.home, project_id=self.id, project_dir=self.dir,
                              method=method, preset=preset, max_minutes=max_minutes, max_steps=max_steps,
                              device=device, executor=choice, **overrides)

    def jobs(self) -> list[Job]:
        """This project's jobs, newest first (a job whose kernel died shows as failed "Interrupted ...")."""
        from nerf_widgets.jobs.api import list_project_jobs

        return list_project_jobs(db=self.db, home=self.studio.home, project_id=self.id)

    def job(self, job_id: str) -> Job:
        from nerf_widgets.jobs.api import get_project_job

        return get_project_job(db=self.db, home=self.studio.home, project_id=self.id, job_id=job_id)

    def metrics(self, job_id: str | None = None, *, max_points: int = 2000) -> dict[str, list[tuple[int, float, float]]]:
        """Metric series of a training job (default: the newest), downsampled to ``max_points``."""
        if job_id is not None:
            return self.job(job_id).metrics(max_points=max_points)
        trains = [j for j in self.jobs() if j.record().type == "train"]
        if not trains:
            raise NotFoundError("This project has no training job yet.")
        return trains[0].metrics(max_points=max_points)

    # --- exports (delegates to nerf_widgets.jobs.export_job) -------------------------------------
    def export(self, format: str = "glb", *, source_job: str | None = None, **options: Any) -> ExportJob:
        """Queue an export of the newest trained model (or ``source_job``'s) into ``exports/<exp_id>/``.

        Options as ``nerf_widgets.export.export_field`` (resolution, faces, texture, compress, keep_largest,
        remove_floor, ...). ``region``: ``"auto"`` (default) = the box set with ``set_region`` (or imported), else
        the whole field; ``True`` = ``project.region()`` (set or proposed); ``None`` = the whole field; or a box.
        ``job.status`` gives stage and fraction, ``job.wait()`` blocks, ``job.path`` is the file.
        Refused before anything is written: ``ValidationError`` (format/options), ``StateConflictError``
        (not TrainingCompleted/ModelExported), ``NotFoundError`` (no run with a checkpoint).
        """
        from nerf_widgets.jobs.export_job import start_export
        from nerf_widgets.studio.regions import region_option

        region = region_option(self, options.pop("region", "auto"))
        if region is not None:
            options["region"] = region
        return start_export(db=self.db, home=self.studio.home, project_id=self.id, project_name=self.name,
                            format=format, source_job=source_job, **options)

    def exports(self) -> list[ExportRow]:
        """This project's exports, newest first (``status`` follows the export job)."""
        from nerf_widgets.store.exports import list_exports

        return list_exports(db=self.db, project_id=self.id)

    def download_export(self, export_id: str | None = None) -> Path:
        """The file of an export (default: the newest finished one; a zip for gltf/obj).

        In a notebook, ``nerf_widgets.widgets.show_download(path)`` displays a link to it.
        """
        from nerf_widgets.jobs.export_job import download_path

        return download_path(db=self.db, project_id=self.id, export_id=export_id)


def _import_region(project: Project, source: Path, report: PoseReport) -> None:
    """A transforms.json ``aabb`` becomes the region (one no camera sees is reported, not stored); else the
    proposal is made now, so it is ready when the poses are shown."""
    from nerf_widgets.core.errors import ValidationError
    from nerf_widgets.studio.regions import current_region, import_region

    try:
        if import_region(project, source) is None:
            current_region(project)
    except ValidationError as err:
        report.warnings.append(f"no region from the imported poses: {err}")


class _UploadCommitter:
    """Inserts ingested images one by one; the first insert of a batch also records ``upload_images``.

    Each insert re-checks the state inside its transaction, so a training started by another kernel
    mid-upload stops the remaining files (they are reported as rejected and their files removed).
    """

    def __init__(self, project: Project) -> None:
        self.project = project
        self._lock = threading.Lock()
        self._transitioned = False
        self._base = image_store.next_position(db=project.db, project_id=project.id)

    def known_hash(self, sha256: str) -> str | None:
        return image_store.find_image_by_hash(db=self.project.db, project_id=self.project.id, sha256=sha256)

    def commit(self, values: dict[str, Any]) -> ImageRecord:
        db, pid = self.project.db, self.project.id
        with self._lock:
            with db.transaction():
                lifecycle.check_transition(db=db, project_id=pid, name="upload_images")
                row = {k: v for k, v in values.items() if k != "order"}
                row.update(project_id=pid, position=self._base + int(values["order"]))
                rec = image_store.insert_image(db=db, values=row)
                if not self._transitioned:
                    self.project.transition("upload_images", "images added")
            self._transitioned = True
        self.project.studio.changed()  # the grid of an open uploader grows image by image
        return rec


__all__ = ["PROJECT_SUBDIRS", "Project"]
