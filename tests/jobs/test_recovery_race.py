"""A job another kernel has just written (its row, not yet its first attempt) is not taken for an interrupted one.

The studio feed makes widgets open other kernels' jobs the moment they appear, so ``recover_interrupted`` runs in
that gap; before, it marked such jobs failed ("Interrupted") and their own kernel then crashed on its next state.
"""

from __future__ import annotations

from pathlib import Path

from nerf_widgets.core.ids import new_id
from nerf_widgets.jobs import JobRunner
from nerf_widgets.store import jobs as job_store
from nerf_widgets.store.db import Database


def test_fresh_job_without_attempt_is_left_alone_and_an_old_one_recovered(db: Database, runner: JobRunner,
                                                                           project_id: str, tmp_path: Path) -> None:
    fresh, old = new_id("job"), new_id("job")
    for job_id in (fresh, old):
        job_store.insert_job(db=db, job_id=job_id, project_id=project_id, type="train", params={}, state="queued",
                             run_dir=str(tmp_path))
    db.execute("UPDATE jobs SET created_at = created_at - ? WHERE id = ?", (runner.stale_after + 1, old))
    assert runner.recover_interrupted(project_id) == [old]
    assert job_store.get_job(db=db, job_id=fresh).state == "queued"
    assert job_store.get_job(db=db, job_id=old).state == "failed"
