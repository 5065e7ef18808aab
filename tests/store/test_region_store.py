"""The regions table: added by migration 3 to a home made with the previous schema, one row per project."""

from __future__ import annotations

from pathlib import Path

from nerf_widgets.store import regions as region_store
from nerf_widgets.store.db import Database, apply_migrations, open_db
from nerf_widgets.store.migrations import MIGRATIONS
from nerf_widgets.store.projects import delete_project_row, insert_project


def _previous_schema_home(home: Path) -> None:
    """A studio.db as the release before regions wrote it (migrations 1 and 2 only), with one project."""
    home.mkdir(parents=True)
    db = Database(home / "studio.db")
    assert apply_migrations(db, [m for m in MIGRATIONS if m.version < 3]) == [1, 2]
    insert_project(db=db, project_id="prj_0000000000000001", name="old", description="", state="PosesEstimated")
    db.close()


def test_migration_adds_regions_to_a_home_of_the_previous_schema(tmp_path: Path) -> None:
    _previous_schema_home(tmp_path / "home")
    db = open_db(tmp_path / "home")
    assert db.schema_version() == 3
    assert db.query_one("SELECT name, state FROM projects")["state"] == "PosesEstimated"  # data kept
    assert region_store.get_region_row(db=db, project_id="prj_0000000000000001") is None
    region_store.save_proposal(db=db, project_id="prj_0000000000000001", proposed={"size": [1, 1, 1]}, poses_key="k1")
    region_store.save_region(db=db, project_id="prj_0000000000000001", region={"size": [2, 2, 2]}, poses_key="k1")
    db.close()
    row = region_store.get_region_row(db=open_db(tmp_path / "home"), project_id="prj_0000000000000001")
    assert row is not None and row.region == {"size": [2, 2, 2]} and row.proposed == {"size": [1, 1, 1]}


def test_new_poses_drop_a_box_made_for_the_old_ones_and_rows_cascade(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    pid = "prj_0000000000000002"
    insert_project(db=db, project_id=pid, name="p", description="", state="PosesEstimated")
    region_store.save_region(db=db, project_id=pid, region={"size": [2, 2, 2]}, poses_key="old")
    region_store.save_proposal(db=db, project_id=pid, proposed={"size": [1, 1, 1]}, poses_key="new")
    row = region_store.get_region_row(db=db, project_id=pid)
    assert row is not None and row.region is None and row.poses_key == "new"
    region_store.save_region(db=db, project_id=pid, region={"size": [3, 3, 3]}, poses_key="new")
    region_store.clear_region(db=db, project_id=pid)
    row = region_store.get_region_row(db=db, project_id=pid)
    assert row is not None and row.region is None and row.proposed == {"size": [1, 1, 1]}
    delete_project_row(db=db, project_id=pid)
    assert db.query("SELECT * FROM regions") == []
