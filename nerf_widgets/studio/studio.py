"""``Studio``: the root of the Python API (the seed's ``/projects`` endpoints); widgets call exactly these."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nerf_widgets.core.errors import StateConflictError
from nerf_widgets.core.ids import new_id, validate_id
from nerf_widgets.core.paths import safe_join
from nerf_widgets.core.settings import Settings, load_settings
from nerf_widgets.domain import lifecycle
from nerf_widgets.domain.names import clean_description, clean_project_name
from nerf_widgets.store import projects as project_store
from nerf_widgets.store.db import Database, open_db
from nerf_widgets.store.locks import project_lock
from nerf_widgets.studio.project import PROJECT_SUBDIRS, Project

if TYPE_CHECKING:
    from nerf_widgets.jobs.executor import ExecutorChoice
    from nerf_widgets.jobs.feed import StudioFeed
    from nerf_widgets.jobs.handle import Job
    from nerf_widgets.store.jobs import JobRow

PROJECTS_DIR = "projects"


class Studio:
    """A studio home: ``studio.db`` plus one folder per project.

    ``Studio()`` uses ``$NERF_WIDGETS_HOME`` or ``~/nerf-widgets``; ``Studio(home, max_file_bytes=...)``
    overrides any ``Settings`` field for this object. Several ``Studio`` objects (in one kernel or
    several) may open the same home at once. ``executor="ray"`` (or ``$NERF_WIDGETS_RAY_ADDRESS``) runs
    its trainings on the Ray cluster at ``address`` (default: Ray's own); ``start_training(executor=...)``
    overrides it per job.
    """

    def __init__(self, home: str | os.PathLike[str] | None = None, *, executor: str | None = None,
                 address: str | None = None, **setting_overrides: Any) -> None:
        from nerf_widgets.jobs.executor import choose_executor

        self.executor: ExecutorChoice = choose_executor(executor, address)
        self.settings: Settings = load_settings(home, **setting_overrides)
        self.home: Path = self.settings.home.resolve()
        (self.home / PROJECTS_DIR).mkdir(parents=True, exist_ok=True)
        self.db: Database = open_db(self.home)

    def __repr__(self) -> str:
        where = "" if self.executor.name == "local" else f", executor={self.executor.name!r}"
        return f"Studio(home={str(self.home)!r}{where})"

    @property
    def feed(self) -> StudioFeed:
        """This home's studio feed in this kernel: every project, image and job change, from anyone."""
        from nerf_widgets.jobs.feed import feed_for

        return feed_for(self.db)

    def changed(self) -> None:
        """Tell the feed (if one is open) that this kernel just wrote to the store."""
        from nerf_widgets.jobs.feed import poke

        poke(self.db)

    def project_dir(self, project_id: str) -> Path:
        """``<home>/projects/<id>``, built from the validated id only."""
        return safe_join(self.home, PROJECTS_DIR, validate_id(project_id, "prj"))

    def create_project(self, name: str, description: str = "") -> Project:
        """Create a project in state ``Created``. Names are unique (case-insensitive), 1-100 characters."""
        name, description = clean_project_name(name), clean_description(description)
        project_id = new_id("prj")
        folder = self.project_dir(project_id)
        for sub in PROJECT_SUBDIRS:
            (folder / sub).mkdir(parents=True, exist_ok=True)
        try:
            record = project_store.insert_project(
                db=self.db, project_id=project_id, name=name, description=description,
                state=lifecycle.INITIAL_STATE.value,
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.changed()
        return Project(self, record)

    def projects(self) -> list[Project]:
        """All projects, newest first."""
        return [Project(self, rec) for rec in project_store.list_projects(db=self.db)]

    def project(self, project_id: str) -> Project:
        """Open one project; ``NotFoundError`` if the id is unknown, ``ValidationError`` if it is malformed."""
        validate_id(project_id, "prj")
        return Project(self, project_store.get_project(db=self.db, project_id=project_id))

    def train_all(self, projects: Iterable[Project | str], **options: Any) -> list[Job]:
        """Start a training of each project (``Project`` or id) with the same options; returns the jobs.

        On a Ray studio they all go to the cluster at once and Ray runs as many as its resources allow; locally
        they queue for this machine's device. Every project must be ready to train (posed, not training):
        ``StateConflictError`` names those that are not, and then nothing was started.
        """
        chosen = [p if isinstance(p, Project) else self.project(p) for p in projects]
        startable = {"PosesEstimated", "TrainingCompleted", "TrainingFailed", "TrainingInterrupted", "ModelExported"}
        unready = [f"{p.name} ({p.state})" for p in chosen if p.state not in startable]
        if unready:
            raise StateConflictError(f"Cannot train all: not ready to train: {', '.join(unready)}. "
                                     "Estimate or import their poses, or wait for their trainings to end.")
        return [p.start_training(**options) for p in chosen]

    def newest_jobs(self) -> dict[str, JobRow]:
        """Each project's newest job (a training, pose estimation or export), by project id."""
        from nerf_widgets.store.jobs import list_jobs

        newest: dict[str, JobRow] = {}
        for row in list_jobs(db=self.db):  # newest first
            newest.setdefault(row.project_id, row)
        return newest

    def delete_project(self, project_id: str) -> None:
        """Delete a project, its images, runs and exports.

        Refused with ``ResourceUnavailableError`` while a task (training, pose estimation, an upload)
        holds the project's lock. The folder is first moved aside, so a failure never leaves a
        project row pointing at a half-deleted folder.
        """
        folder = self.project_dir(project_id)
        project_store.get_project(db=self.db, project_id=project_id)
        if not folder.exists():
            project_store.delete_project_row(db=self.db, project_id=project_id)
            self.changed()
            return
        with project_lock(folder, purpose="deletion"):
            trash = safe_join(self.home, PROJECTS_DIR, f".deleted-{project_id}-{secrets.token_hex(4)}")
            os.replace(folder, trash)
            try:
                project_store.delete_project_row(db=self.db, project_id=project_id)
            except BaseException:
                os.replace(trash, folder)
                raise
            shutil.rmtree(trash, ignore_errors=True)
        self.changed()

    def close(self) -> None:
        """Close this object's database connections (optional; they also close when garbage-collected)."""
        self.db.close()

    def __enter__(self) -> Studio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Studio"]
