"""Repositories on a real database file: duplicates by hash, ordering, cascades, foreign keys."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from nerf_widgets.core.errors import DuplicateImageError, NerfWidgetsError, NotFoundError
from nerf_widgets.store import images as image_store
from nerf_widgets.store import projects as project_store
from nerf_widgets.store.db import Database, open_db

PID = "prj_00000000000000aa"


def image_values(image_id: str, sha: str, **extra: Any) -> dict[str, Any]:
    base = dict(
        id=image_id, project_id=PID, original_name="a.jpg", source_id=None, format="jpeg", original_ext="jpg",
        working_ext="jpg", size_bytes=10, orig_width=4, orig_height=3, width=4, height=3, has_alpha=0, focal_mm=None,
        focal_35mm=None, camera_make=None, camera_model=None, sha256=sha, sharpness=1.0, blurry=0, frame_time=None,
    )
    return {**base, **extra}


@pytest.fixture
def db(tmp_path: Path) -> Database:
    db = open_db(tmp_path)
    project_store.insert_project(db=db, project_id=PID, name="p", description="", state="Created")
    return db


def test_insert_list_and_duplicate_hash(db: Database) -> None:
    a = image_store.insert_image(db=db, values=image_values("img_000000000000000a", "h1"))
    image_store.insert_image(db=db, values=image_values("img_000000000000000b", "h2"))
    assert a.position == 0 and a.has_alpha is False
    with pytest.raises(DuplicateImageError, match="already holds this image") as info:
        image_store.insert_image(db=db, values=image_values("img_000000000000000c", "h1"))
    assert info.value.existing_id == a.id and isinstance(info.value, NerfWidgetsError)
    assert [i.id for i in image_store.list_images(db=db, project_id=PID)] == ["img_000000000000000a",
                                                                             "img_000000000000000b"]
    with pytest.raises(ValueError, match="missing"):
        image_store.insert_image(db=db, values={"id": "img_000000000000000d", "project_id": PID, "sha256": "h9"})


def test_delete_project_cascades_to_everything(db: Database) -> None:
    image_store.insert_image(db=db, values=image_values("img_000000000000000a", "h1"))
    db.execute("INSERT INTO jobs (id, project_id, type, state, created_at) VALUES ('job_1', ?, 'train', 'queued', 0)",
               (PID,))
    db.execute("INSERT INTO exports (id, project_id, job_id, format, status, created_at) "
               "VALUES ('exp_1', ?, 'job_1', 'glb', 'done', 0)", (PID,))
    project_store.delete_project_row(db=db, project_id=PID)
    for table in ("images", "state_history", "jobs", "exports"):
        assert db.query(f"SELECT * FROM {table}") == [], table
    with pytest.raises(NotFoundError, match=f"No project with id '{PID}'"):
        project_store.get_project(db=db, project_id=PID)


def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        image_store.insert_image(db=db, values=image_values("img_000000000000000a", "h1", project_id="prj_nope"))


def test_missing_image_is_not_found(db: Database) -> None:
    with pytest.raises(NotFoundError, match="img_0000000000000099"):
        image_store.delete_image_row(db=db, project_id=PID, image_id="img_0000000000000099")
