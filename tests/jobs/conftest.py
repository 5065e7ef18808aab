from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nerf_widgets.jobs import JobRunner
from nerf_widgets.store.db import Database, open_db
from tests.jobs.jobs_helpers import make_project


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_db(tmp_path / "home")
    yield database
    database.close()


@pytest.fixture
def runner(db: Database, tmp_path: Path) -> Iterator[JobRunner]:
    r = JobRunner(db, tmp_path / "home", monitor_interval=0.1, heartbeat_interval=0.2)
    yield r
    r.shutdown()


@pytest.fixture
def project_id(db: Database) -> str:
    return make_project(db)
